"""replay: see README."""
