"""crawler: see README."""
