"""pynn's version (one place: the package, build_info and model files read it)."""
__version__ = "0.1.0"
