# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, embedsignature=True
"""The Cython bridge: checks shapes, dtypes and contiguity, releases the GIL, calls C.

Nothing reaches C before it is checked here; C assumes valid arguments. Each op family has its
own include file (_<family>.pxi) so the bridge stays readable.
"""
cimport numpy as cnp
import numpy as np

cnp.import_array()

include "_common.pxi"
include "_cpu.pxi"
include "_activation.pxi"
include "_gemm.pxi"
include "_loss.pxi"
include "_optim.pxi"
include "_batch.pxi"
include "_norm.pxi"
include "_network.pxi"
