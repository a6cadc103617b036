"""The package version, apart so that modules inside the package never import its root."""

__version__ = "0.1.0"
