"""pynn's benchmarks (`python -m bench`; see bench/run.py)."""
import os as _os
import sys as _sys

# The repository root holds pynn's *uncompiled* source tree. `python -m bench`, the scripts' own
# bootstrap and PYTHONPATH all put the root first on sys.path, where `import pynn` would find
# that tree instead of the installed package with its compiled core. Move the root to the end:
# `bench` is already imported, and pynn then resolves to the installed (or editable) package.
_ROOT = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
_sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or ".") != _ROOT] + [_ROOT]
