"""The version of fastbp (a module of its own, so that any module can read it without
importing the package's front end)."""
__version__ = "0.1.0"
