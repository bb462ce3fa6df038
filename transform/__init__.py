"""transform: see README."""
