"""sunset: retire a website without losing it."""

__version__ = "0.1.0"
