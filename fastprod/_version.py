"""fastprod's version: a leaf module, so that any layer can read it without importing
the package's face (fastprod/__init__.py imports the whole producer)."""

__version__ = "0.1.0"
