"""sega's cupy backend."""

__version__ = "0.1.0"
