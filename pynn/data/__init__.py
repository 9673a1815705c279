"""Data: the bundled digits, Fashion-MNIST/MNIST readers (IDX files, no download), splits."""
from . import datasets

__all__ = ["datasets"]
