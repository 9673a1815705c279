# Argument checking shared by every op family. Errors name the argument, the expectation and
# what was given: TypeError for a wrong type or dtype, ValueError for a wrong value or shape.

from libc.stdint cimport int64_t

cdef extern from "pynn.h" nogil:
    ctypedef int64_t pn_size

cdef object _FLOAT32 = np.dtype(np.float32)
cdef object _FLOAT64 = np.dtype(np.float64)


cdef inline str _shape_str(tuple shape):
    return str(tuple(int(s) for s in shape))  # "(2,)" for one dimension, like NumPy


cdef cnp.ndarray _float_array(object x, str name, object dtype=None):
    """x as a C-contiguous float32/float64 ndarray (copied if strided), dtype-checked.

    dtype=None accepts float32 or float64; otherwise the dtype must match exactly (no silent
    casts: mixing float32 and float64 is a TypeError).
    """
    cdef cnp.ndarray arr
    if isinstance(x, cnp.ndarray):
        arr = <cnp.ndarray>x
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:
            raise TypeError(f"{name} must be an array of float32 or float64, got "
                            f"{type(x).__name__}") from exc
    cdef object dt = arr.dtype
    if dtype is None:
        if dt != _FLOAT32 and dt != _FLOAT64:
            raise TypeError(f"{name} must have dtype float32 or float64, got {dt}")
    elif dt != dtype:
        raise TypeError(f"{name} must have dtype {dtype} (the same as the other operands), "
                        f"got {dt}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr) or not cnp.PyArray_ISALIGNED(arr):
        # strided or misaligned input is copied, never misread (np.ascontiguousarray would
        # return a contiguous but misaligned array as is: UB in C, found by UBSan)
        arr = np.array(arr, order="C", copy=True)
    return arr


cdef object _aligned_c(object arr):
    """arr itself when C-contiguous and aligned, else an aligned C-contiguous copy."""
    if not arr.flags.c_contiguous or not arr.flags.aligned:
        return np.array(arr, order="C", copy=True)
    return arr


cdef inline void _check_ndim(cnp.ndarray arr, str name, int ndim, str letters) except *:
    if cnp.PyArray_NDIM(arr) != ndim:
        raise ValueError(f"{name} must be {ndim}-D with shape {letters}, got shape "
                         f"{_shape_str((<object>arr).shape)}")


cdef inline bint _overlap(cnp.ndarray x, cnp.ndarray y):
    """True if the memory ranges of two contiguous arrays intersect."""
    cdef char *x0 = <char *>cnp.PyArray_DATA(x)
    cdef char *y0 = <char *>cnp.PyArray_DATA(y)
    cdef Py_ssize_t xn = cnp.PyArray_NBYTES(x), yn = cnp.PyArray_NBYTES(y)
    if xn == 0 or yn == 0:
        return False
    return x0 < y0 + yn and y0 < x0 + xn


cdef int _may_overlap(object a, object b) except -1:
    """Whether two arrays may share memory: a pointer-range test for contiguous ndarrays (the
    common case, ~50x cheaper than np.may_share_memory), np.may_share_memory otherwise."""
    if (isinstance(a, cnp.ndarray) and isinstance(b, cnp.ndarray)
            and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>a)
            and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>b)):
        return _overlap(<cnp.ndarray>a, <cnp.ndarray>b)
    return np.may_share_memory(a, b)


cdef cnp.ndarray _out_array(object out, str name, tuple shape, object dtype, tuple inputs=()):
    """A checked `out=` array: exact shape and dtype, C-contiguous, writeable, not overlapping
    any array in `inputs`. None allocates a new one."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, cnp.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>out
    if arr.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {arr.dtype}")
    if tuple((<object>arr).shape) != shape:
        raise ValueError(f"{name} must have shape {_shape_str(shape)}, got "
                         f"{_shape_str((<object>arr).shape)}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr) or not cnp.PyArray_ISALIGNED(arr):
        raise ValueError(f"{name} must be C-contiguous and aligned (it is written in place)")
    if not cnp.PyArray_ISWRITEABLE(arr):
        raise ValueError(f"{name} must be writeable")
    for other in inputs:
        if other is not None and _may_overlap(arr, other):
            raise ValueError(f"{name} must not overlap an input array")
    return arr


cdef inline bint _is_f32(cnp.ndarray arr):
    return cnp.PyArray_TYPE(arr) == cnp.NPY_FLOAT32


cdef double _finite_float(object value, str name, double low=-1e308, double high=1e308,
                          bint low_open=False) except? -1.0:
    """A real, finite hyperparameter within [low, high] (or (low, high] with low_open)."""
    if isinstance(value, (str, bytes)):  # float("0.1") would parse: a string is a type error
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}") from exc
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, got {v}")
    if v < low or v > high or (low_open and v == low):
        lo = "(" if low_open else "["
        raise ValueError(f"{name} must be in {lo}{low:g}, {high:g}], got {v:g}")
    return v
