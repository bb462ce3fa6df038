"""redirects: see README."""
