# Matrix multiply with fused bias and activation (csrc/gemm.c).

cdef extern from "pynn.h" nogil:
    int pn_gemm_f32(float *c, const float *a, const float *b, pn_size m, pn_size n, pn_size k,
                    int trans_a, int trans_b, int accumulate)
    int pn_gemm_f64(double *c, const double *a, const double *b, pn_size m, pn_size n,
                    pn_size k, int trans_a, int trans_b, int accumulate)
    void pn_gemm_naive_f32(float *c, const float *a, const float *b, pn_size m, pn_size n,
                           pn_size k, int trans_a, int trans_b, int accumulate)
    void pn_gemm_naive_f64(double *c, const double *a, const double *b, pn_size m, pn_size n,
                           pn_size k, int trans_a, int trans_b, int accumulate)
    int pn_linear_forward_f32(float *y, const float *x, const float *w, const float *bias,
                              pn_size n, pn_size i, pn_size o, int act, float alpha)
    int pn_linear_forward_f64(double *y, const double *x, const double *w, const double *bias,
                              pn_size n, pn_size i, pn_size o, int act, double alpha)
    int pn_linear_backward_f32(float *dx, float *dw, float *db, const float *x, const float *w,
                               const float *y, const float *dy, pn_size n, pn_size i, pn_size o,
                               int act, float alpha, int accumulate)
    int pn_linear_backward_f64(double *dx, double *dw, double *db, const double *x,
                               const double *w, const double *y, const double *dy, pn_size n,
                               pn_size i, pn_size o, int act, double alpha, int accumulate)
    void pn_gemm_release_buffers()

from libc.math cimport isfinite


cdef inline cnp.ndarray _operand(object x, str name, int typenum):
    """x as an aligned C-contiguous float array: as is when it already is one (the fast path of
    a small call), else through _float_array (copy of strided input, dtype errors).
    typenum -1 accepts float32 or float64; otherwise the dtype must be that one."""
    cdef cnp.ndarray arr
    cdef int t
    if isinstance(x, cnp.ndarray):
        arr = <cnp.ndarray>x
        t = cnp.PyArray_TYPE(arr)
        if ((t == typenum or (typenum < 0 and (t == cnp.NPY_FLOAT32 or t == cnp.NPY_FLOAT64)))
                and cnp.PyArray_ISCARRAY_RO(arr)):
            return arr
    if typenum < 0:
        return _float_array(x, name)
    return _float_array(x, name, _FLOAT32 if typenum == cnp.NPY_FLOAT32 else _FLOAT64)


cdef cnp.ndarray _gemm_out(object out, str name, int ndim, cnp.npy_intp d0, cnp.npy_intp d1,
                           int typenum, list inputs):
    """A checked in-place output of shape (d0, d1) (or (d0,) when ndim == 1): exact shape and
    dtype, C-contiguous, aligned, writeable, overlapping no input. None allocates one."""
    cdef cnp.npy_intp dims[2]
    dims[0] = d0
    dims[1] = d1
    if out is None:
        return cnp.PyArray_EMPTY(ndim, dims, typenum, 0)
    if not isinstance(out, cnp.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>out
    if cnp.PyArray_TYPE(arr) != typenum:
        want_dt = "float32" if typenum == cnp.NPY_FLOAT32 else "float64"
        raise TypeError(f"{name} must have dtype {want_dt} (the inputs' dtype), "
                        f"got {arr.dtype}")
    cdef tuple want = (<object>d0, <object>d1) if ndim == 2 else (<object>d0,)
    if (cnp.PyArray_NDIM(arr) != ndim or cnp.PyArray_DIMS(arr)[0] != d0
            or (ndim == 2 and cnp.PyArray_DIMS(arr)[1] != d1)):
        raise ValueError(f"{name} must have shape {_shape_str(want)}, got "
                         f"{_shape_str((<object>arr).shape)}")
    if not cnp.PyArray_ISCARRAY_RO(arr):
        raise ValueError(f"{name} must be C-contiguous and aligned (it is written in place)")
    if not cnp.PyArray_ISWRITEABLE(arr):
        raise ValueError(f"{name} must be writeable")
    cdef cnp.ndarray other
    for o in inputs:
        if o is not None:
            other = <cnp.ndarray>o
            if _overlap(arr, other):
                raise ValueError(f"{name} must not overlap an input array")
    return arr


cdef inline double _alpha(object alpha) except? -1.0:
    if type(alpha) is float and isfinite(<double>alpha):
        return <double>alpha
    return _finite_float(alpha, "alpha")


cdef inline void _check_2d(cnp.ndarray arr, str name, str letters) except *:
    if cnp.PyArray_NDIM(arr) != 2:
        raise ValueError(f"{name} must be 2-D with shape {letters}, got shape "
                         f"{_shape_str((<object>arr).shape)}")


def matmul(a, b, *, trans_a=False, trans_b=False, out=None, accumulate=False):
    """Matrix product ``op(a) @ op(b)``, either operand read transposed without a copy.

    Parameters
    ----------
    a : ndarray, float32 or float64, shape (M, K), or (K, M) when ``trans_a``
    b : ndarray, the same dtype, shape (K, N), or (N, K) when ``trans_b``
    trans_a, trans_b : bool
        Use the transpose of the stored array (absorbed by the packing; no copy).
    out : ndarray (M, N), optional
        Written in place (C-contiguous, same dtype, not overlapping ``a`` or ``b``).
    accumulate : bool
        Add the product into ``out`` (which is then required) instead of overwriting it.

    Returns
    -------
    c : ndarray (M, N)
        ``out`` when given. Results are bitwise the same at any thread count.
    """
    cdef bint ta = trans_a, tb = trans_b, acc = accumulate
    cdef cnp.ndarray A = _operand(a, "a", -1)
    cdef int typenum = cnp.PyArray_TYPE(A)
    cdef cnp.ndarray B = _operand(b, "b", typenum)
    _check_2d(A, "a", "(K, M)" if ta else "(M, K)")
    _check_2d(B, "b", "(N, K)" if tb else "(K, N)")
    cdef cnp.npy_intp *da = cnp.PyArray_DIMS(A)
    cdef cnp.npy_intp *db = cnp.PyArray_DIMS(B)
    cdef pn_size m = da[1] if ta else da[0]
    cdef pn_size ka = da[0] if ta else da[1]
    cdef pn_size kb = db[1] if tb else db[0]
    cdef pn_size n = db[0] if tb else db[1]
    if ka != kb:
        raise ValueError(f"matmul: inner dimensions differ: op(a) is ({m}, {ka}) and op(b) is "
                         f"({kb}, {n}) (trans_a={ta}, trans_b={tb})")
    if acc and out is None:
        raise ValueError("accumulate=True needs out= (the array to add into)")
    cdef cnp.ndarray C = _gemm_out(out, "out", 2, m, n, typenum, [A, B])
    cdef int rc
    if typenum == cnp.NPY_FLOAT32:
        with nogil:
            rc = pn_gemm_f32(<float *>cnp.PyArray_DATA(C), <const float *>cnp.PyArray_DATA(A),
                             <const float *>cnp.PyArray_DATA(B), m, n, ka, ta, tb, acc)
    else:
        with nogil:
            rc = pn_gemm_f64(<double *>cnp.PyArray_DATA(C), <const double *>cnp.PyArray_DATA(A),
                             <const double *>cnp.PyArray_DATA(B), m, n, ka, ta, tb, acc)
    if rc != 0:
        raise MemoryError("matmul: could not allocate packing buffers")
    return C


def _matmul_naive(a, b, trans_a=False, trans_b=False):
    """The naive C triple loop (test oracle): same semantics as matmul, no blocking."""
    cdef cnp.ndarray A = _float_array(a, "a")
    cdef cnp.ndarray B = _float_array(b, "b", A.dtype)
    _check_2d(A, "a", "(M, K)")
    _check_2d(B, "b", "(K, N)")
    cdef bint ta = bool(trans_a), tb = bool(trans_b)
    cdef pn_size m = A.shape[1] if ta else A.shape[0]
    cdef pn_size k = A.shape[0] if ta else A.shape[1]
    cdef pn_size n = B.shape[0] if tb else B.shape[1]
    if (B.shape[1] if tb else B.shape[0]) != k:
        raise ValueError("inner dimensions differ")
    cdef cnp.ndarray C = np.empty((m, n), dtype=A.dtype)
    if _is_f32(A):
        with nogil:
            pn_gemm_naive_f32(<float *>cnp.PyArray_DATA(C), <const float *>cnp.PyArray_DATA(A),
                              <const float *>cnp.PyArray_DATA(B), m, n, k, ta, tb, 0)
    else:
        with nogil:
            pn_gemm_naive_f64(<double *>cnp.PyArray_DATA(C),
                              <const double *>cnp.PyArray_DATA(A),
                              <const double *>cnp.PyArray_DATA(B), m, n, k, ta, tb, 0)
    return C


def linear(x, w, b=None, *, activation="identity", alpha=0.01, out=None):
    """A dense layer's forward pass ``y = act(x @ w + b)`` in one pass over memory.

    Bias and identity/relu/leaky_relu are applied to each tile in registers before it is stored;
    sigmoid, tanh and step on the stored tile while it is in cache; softmax (row-wise) on each
    finished block of rows.

    Parameters
    ----------
    x : ndarray (N, I), float32 or float64
    w : ndarray (I, O), the same dtype
    b : ndarray (O,), optional
    activation : {"identity", "relu", "leaky_relu", "sigmoid", "tanh", "softmax", "step"}
    alpha : float
        The negative slope of leaky_relu.
    out : ndarray (N, O), optional
        Written in place (must not overlap an input).

    Returns
    -------
    y : ndarray (N, O)
    """
    cdef int act = _act_id(activation, "activation", False)
    cdef double alph = _alpha(alpha)
    cdef cnp.ndarray X = _operand(x, "x", -1)
    cdef int typenum = cnp.PyArray_TYPE(X)
    cdef cnp.ndarray W = _operand(w, "w", typenum)
    _check_2d(X, "x", "(N, I)")
    _check_2d(W, "w", "(I, O)")
    cdef pn_size n = cnp.PyArray_DIMS(X)[0], i = cnp.PyArray_DIMS(X)[1]
    cdef pn_size o = cnp.PyArray_DIMS(W)[1]
    if cnp.PyArray_DIMS(W)[0] != i:
        raise ValueError(f"w must have shape (I, O) with I = {i} (x's columns), got shape "
                         f"{_shape_str((<object>W).shape)}")
    cdef cnp.ndarray Bv = None
    if b is not None:
        Bv = _operand(b, "b", typenum)
        if cnp.PyArray_NDIM(Bv) != 1 or cnp.PyArray_DIMS(Bv)[0] != o:
            raise ValueError(f"b must have shape ({o},) (w's columns), got shape "
                             f"{_shape_str((<object>Bv).shape)}")
    cdef cnp.ndarray Y = _gemm_out(out, "out", 2, n, o, typenum, [X, W, Bv])
    cdef int rc
    cdef void *bp = cnp.PyArray_DATA(Bv) if Bv is not None else NULL
    if typenum == cnp.NPY_FLOAT32:
        with nogil:
            rc = pn_linear_forward_f32(<float *>cnp.PyArray_DATA(Y),
                                       <const float *>cnp.PyArray_DATA(X),
                                       <const float *>cnp.PyArray_DATA(W), <const float *>bp,
                                       n, i, o, act, <float>alph)
    else:
        with nogil:
            rc = pn_linear_forward_f64(<double *>cnp.PyArray_DATA(Y),
                                       <const double *>cnp.PyArray_DATA(X),
                                       <const double *>cnp.PyArray_DATA(W), <const double *>bp,
                                       n, i, o, act, alph)
    if rc != 0:
        raise MemoryError("linear: could not allocate packing buffers")
    return Y


def linear_backward(x, w, y, dy, *, activation="identity", alpha=0.01, need_dx=True, dx=None,
                    dw=None, db=None, accumulate=False):
    """A dense layer's backward pass from its input x, weights w, output y and dL/dy.

    ``dz = dy * act'(y)`` (from the forward output; softmax: its row-wise Jacobian product) and
    ``db = colsum(dz)`` in one fused pass, then ``dw = x.T @ dz`` and ``dx = dz @ w.T`` through
    the packed GEMM with the transposes absorbed by packing.

    Parameters
    ----------
    x : ndarray (N, I), float32 or float64
    w : ndarray (I, O)
    y : ndarray (N, O)
        The forward output ``act(x @ w + b)``.
    dy : ndarray (N, O)
        The gradient of the loss with respect to y.
    activation : str
        The forward's activation ('step' has no derivative and is refused).
    alpha : float
        The negative slope of leaky_relu.
    need_dx : bool
        False skips dx (the first layer needs none) and returns None for it.
    dx, dw, db : ndarray, optional
        Written in place when given (no allocation); none may overlap an input or each other.
    accumulate : bool
        Add into dw and db (which are then required) instead of overwriting them.

    Returns
    -------
    dx : ndarray (N, I) or None
    dw : ndarray (I, O)
    db : ndarray (O,)
    """
    cdef int act = _act_id(activation, "activation", True)
    cdef double alph = _alpha(alpha)
    cdef cnp.ndarray X = _operand(x, "x", -1)
    cdef int typenum = cnp.PyArray_TYPE(X)
    cdef cnp.ndarray W = _operand(w, "w", typenum)
    cdef cnp.ndarray Yv = _operand(y, "y", typenum)
    cdef cnp.ndarray DY = _operand(dy, "dy", typenum)
    _check_2d(X, "x", "(N, I)")
    _check_2d(W, "w", "(I, O)")
    _check_2d(Yv, "y", "(N, O)")
    _check_2d(DY, "dy", "(N, O)")
    cdef pn_size n = cnp.PyArray_DIMS(X)[0], i = cnp.PyArray_DIMS(X)[1]
    cdef pn_size o = cnp.PyArray_DIMS(W)[1]
    if cnp.PyArray_DIMS(W)[0] != i:
        raise ValueError(f"w must have shape (I, O) with I = {i} (x's columns), got shape "
                         f"{_shape_str((<object>W).shape)}")
    if cnp.PyArray_DIMS(Yv)[0] != n or cnp.PyArray_DIMS(Yv)[1] != o:
        raise ValueError(f"y must have shape ({n}, {o}) (N from x, O from w), got shape "
                         f"{_shape_str((<object>Yv).shape)}")
    if cnp.PyArray_DIMS(DY)[0] != n or cnp.PyArray_DIMS(DY)[1] != o:
        raise ValueError(f"dy must have shape ({n}, {o}) (the shape of y), got shape "
                         f"{_shape_str((<object>DY).shape)}")
    cdef bint acc = accumulate, ndx = need_dx
    if acc and (dw is None or db is None):
        raise ValueError("accumulate=True needs dw= and db= (the gradient buffers to add into)")
    if not ndx and dx is not None:
        raise ValueError("dx= was given but need_dx=False")
    cdef list inputs = [X, W, Yv, DY]
    cdef cnp.ndarray DW = _gemm_out(dw, "dw", 2, i, o, typenum, inputs)
    cdef cnp.ndarray DB = _gemm_out(db, "db", 1, o, 0, typenum, inputs + [DW])
    cdef cnp.ndarray DX = None
    if ndx:
        DX = _gemm_out(dx, "dx", 2, n, i, typenum, inputs + [DW, DB])
    cdef void *dxp = cnp.PyArray_DATA(DX) if DX is not None else NULL
    cdef int rc
    if typenum == cnp.NPY_FLOAT32:
        with nogil:
            rc = pn_linear_backward_f32(<float *>dxp, <float *>cnp.PyArray_DATA(DW),
                                        <float *>cnp.PyArray_DATA(DB),
                                        <const float *>cnp.PyArray_DATA(X),
                                        <const float *>cnp.PyArray_DATA(W),
                                        <const float *>cnp.PyArray_DATA(Yv),
                                        <const float *>cnp.PyArray_DATA(DY), n, i, o, act,
                                        <float>alph, acc)
    else:
        with nogil:
            rc = pn_linear_backward_f64(<double *>dxp, <double *>cnp.PyArray_DATA(DW),
                                        <double *>cnp.PyArray_DATA(DB),
                                        <const double *>cnp.PyArray_DATA(X),
                                        <const double *>cnp.PyArray_DATA(W),
                                        <const double *>cnp.PyArray_DATA(Yv),
                                        <const double *>cnp.PyArray_DATA(DY), n, i, o, act,
                                        alph, acc)
    if rc != 0:
        raise MemoryError("linear_backward: could not allocate work buffers")
    return DX, DW, DB


def _gemm_release_buffers():
    """Free the calling thread's GEMM packing buffers (they are otherwise reused)."""
    pn_gemm_release_buffers()
