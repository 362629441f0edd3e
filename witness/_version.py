"""The package version (kept in one place; setup.cfg repeats it for the build)."""

__version__ = "0.1.0"
