"""corral's version, in a module of its own: the code that reports it (the
built-in plugins) need not import the whole package to read it."""

__version__ = "0.1.0"
