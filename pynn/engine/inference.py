"""Inference: a model's forward pass over any number of rows, through cached buffers.

Big inputs run in chunks of `CHUNK_ROWS` rows so that the hidden activations stay small; the
hidden buffers are kept per chunk size (a few sizes, least recently used out), so a serving loop
that calls predict on batches of one size allocates only its output.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from .network import inference_steps

__all__ = ["CHUNK_ROWS", "Inference"]

#: Rows per chunk: keeps the hidden-activation buffers of a big call small at no cost to GEMM
#: efficiency.
CHUNK_ROWS = 4096
# Hidden buffers are cached for this many distinct chunk sizes.
_MAX_CACHED_SIZES = 4


class Inference:
    """The inference-mode forward pass of a model's layers (bound to its parameter views):
    Dropout is the identity, BatchNorm uses its running statistics."""

    def __init__(self, layers: Sequence, dtype: np.dtype) -> None:
        self._steps = inference_steps(layers)
        self._hidden = [layer.out_features for layer in layers[:-1]]
        self._n_out = layers[-1].out_features
        self._dtype = dtype
        self._buffers: dict[int, list] = {}
        self._lock = threading.Lock()

    def __call__(self, X: np.ndarray, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
        """Raw outputs of checked X (C-contiguous; the model's dtype, or a memory map's own,
        cast chunk by chunk), shape (n, outputs), computed `chunk_rows` rows at a time."""
        n = X.shape[0]
        out = np.empty((n, self._n_out), self._dtype)
        for start in range(0, n, chunk_rows):
            stop = min(start + chunk_rows, n)
            chunk = X[start:stop]
            if chunk.dtype != self._dtype:  # a memory-mapped input in its own dtype
                chunk = chunk.astype(self._dtype)
            self._forward_into(chunk, out[start:stop])
        return out

    def _new_buffers(self, n: int) -> list:
        return [np.empty((n, width), self._dtype) for width in self._hidden]

    def _forward_into(self, X: np.ndarray, out: np.ndarray) -> None:
        n = X.shape[0]
        # Another thread using the cached buffers at this moment: use private ones instead.
        locked = self._lock.acquire(False)
        try:
            bufs = self._buffers.get(n) if locked else None
            if bufs is None:
                bufs = self._new_buffers(n)
                if locked:
                    if len(self._buffers) >= _MAX_CACHED_SIZES:
                        self._buffers.pop(next(iter(self._buffers)))
                    self._buffers[n] = bufs
            a = X
            for run, buf in zip(self._steps, bufs + [out]):
                a = run(a, buf)
            if a is not out:  # the last layer passed its input through (Dropout)
                np.copyto(out, a)
        finally:
            if locked:
                self._lock.release()
