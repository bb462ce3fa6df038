"""A deterministic replica of a legacy Joomla-era site and its successor, for demo and tests.

generate() writes the replica and its ground truth to disk; serve() runs both
sites over real HTTP on loopback.
"""

from .generate import generate
from .server import serve

__all__ = ["generate", "serve"]
