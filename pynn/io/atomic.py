"""The io layer's name for `pynn._atomic` (atomic file writes live at the bottom of the package
so that every layer, plots included, writes files the same way)."""
from .._atomic import write_atomically

__all__ = ["write_atomically"]
