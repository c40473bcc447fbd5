"""sega-backend-example: a worked example of a sega backend distributed on its own.

It implements ReLU and the SGD update rule itself and lets every other kernel fall back to the
NumPy reference backend. See ``plugin.py`` (the entry point) and the README.
"""

__version__ = "0.1.0"
