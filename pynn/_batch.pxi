# Mini-batch data movement (csrc/batch.c): gathering shuffled rows, the NaN/inf scan.

cdef extern from "pynn.h" nogil:
    void pn_gather_rows(void *dst, const void *src, const int64_t *idx, pn_size n,
                        pn_size row_bytes)
    int pn_all_finite_f32(const float *x, pn_size n)
    int pn_all_finite_f64(const double *x, pn_size n)


cdef cnp.ndarray _row_source(object src):
    if not isinstance(src, cnp.ndarray):
        raise TypeError(f"src must be a numpy.ndarray, got {type(src).__name__}")
    cdef cnp.ndarray s = <cnp.ndarray>src
    if cnp.PyArray_NDIM(s) < 1:
        raise ValueError("src must have at least one dimension (its rows are gathered)")
    if not cnp.PyArray_ISCARRAY_RO(s):
        raise ValueError("src must be C-contiguous and aligned")
    return s


cdef cnp.ndarray _row_indices(object idx, Py_ssize_t n_rows):
    """idx as a contiguous int64 vector, every entry a row of src (no wrap-around)."""
    if not isinstance(idx, cnp.ndarray):
        raise TypeError(f"idx must be a numpy.ndarray of int64, got {type(idx).__name__}")
    cdef cnp.ndarray ix = <cnp.ndarray>idx
    if cnp.PyArray_TYPE(ix) != cnp.NPY_INT64:
        raise TypeError(f"idx must have dtype int64, got {ix.dtype}")
    if cnp.PyArray_NDIM(ix) != 1 or not cnp.PyArray_ISCARRAY_RO(ix):
        raise ValueError(f"idx must be a contiguous 1-D array, got shape "
                         f"{_shape_str((<object>ix).shape)}")
    cdef const int64_t *p = <const int64_t *>cnp.PyArray_DATA(ix)
    cdef Py_ssize_t i, n = cnp.PyArray_DIMS(ix)[0]
    cdef int64_t bad = -1
    with nogil:
        for i in range(n):
            if p[i] < 0 or p[i] >= n_rows:
                bad = i
                break
    if bad >= 0:
        raise IndexError(f"idx[{bad}] = {p[bad]} is not a row of src (which has {n_rows} rows)")
    return ix


def gather_rows(src, idx, out):
    """``out[r] = src[idx[r]]`` for every r: the rows of a shuffled mini-batch.

    Like ``src.take(idx, axis=0, out=out)``, but the next rows' cache lines are requested while
    one is copied (the rows of a shuffled batch lie anywhere in memory) and large batches use
    the threads.

    Parameters
    ----------
    src : ndarray, C-contiguous, any dtype, at least 1-D
    idx : ndarray of int64, shape (n,), every entry in [0, len(src))
    out : ndarray, shape (n,) + src.shape[1:], src's dtype, C-contiguous, not overlapping src

    Returns
    -------
    out
    """
    cdef cnp.ndarray s = _row_source(src)
    cdef cnp.ndarray ix = _row_indices(idx, cnp.PyArray_DIMS(s)[0])
    cdef Py_ssize_t n = cnp.PyArray_DIMS(ix)[0]
    cdef tuple shape = (n,) + (<object>s).shape[1:]
    if not isinstance(out, cnp.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    cdef cnp.ndarray o = <cnp.ndarray>out
    if o.dtype != s.dtype:
        raise TypeError(f"out must have the dtype of src {s.dtype}, got {o.dtype}")
    if (<object>o).shape != shape:
        raise ValueError(f"out must have shape {_shape_str(shape)}, got "
                         f"{_shape_str((<object>o).shape)}")
    if not cnp.PyArray_ISCARRAY(o):
        raise ValueError("out must be C-contiguous, aligned and writeable")
    if _overlap(o, s):
        raise ValueError("out must not overlap src")
    cdef pn_size row_bytes = cnp.PyArray_ITEMSIZE(s)
    cdef int d
    for d in range(1, cnp.PyArray_NDIM(s)):
        row_bytes *= cnp.PyArray_DIMS(s)[d]
    cdef void *dst = cnp.PyArray_DATA(o)
    cdef const void *sp = cnp.PyArray_DATA(s)
    cdef const int64_t *ip = <const int64_t *>cnp.PyArray_DATA(ix)
    if n > 0 and row_bytes > 0:
        with nogil:
            pn_gather_rows(dst, sp, ip, n, row_bytes)
    return out


def all_finite(x):
    """True if the float32/float64 array ``x`` holds no NaN and no infinity.

    One pass without a temporary (``np.isfinite(x).all()`` allocates a boolean array as large
    as ``x``), threaded for large arrays. Non-contiguous input is scanned through a copy.
    """
    cdef cnp.ndarray arr = _float_array(x, "x")
    cdef pn_size n = cnp.PyArray_SIZE(arr)
    cdef int ok
    if _is_f32(arr):
        with nogil:
            ok = pn_all_finite_f32(<const float *>cnp.PyArray_DATA(arr), n)
    else:
        with nogil:
            ok = pn_all_finite_f64(<const double *>cnp.PyArray_DATA(arr), n)
    return bool(ok)
