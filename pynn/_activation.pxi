# Activations forward/backward, softmax and the bias gradient (csrc/activation.c).

cdef extern from "pynn.h" nogil:
    enum:
        PN_ACT_LEAKY_RELU
        PN_ACT_COUNT
    const char *pn_act_name(int act)
    int pn_act_has_backward(int act)
    void pn_activation_forward_f32(float *y, const float *x, pn_size rows, pn_size cols, int act,
                                   float alpha)
    void pn_activation_forward_f64(double *y, const double *x, pn_size rows, pn_size cols,
                                   int act, double alpha)
    void pn_activation_backward_f32(float *dx, const float *y, const float *dy, pn_size rows,
                                    pn_size cols, int act, float alpha)
    void pn_activation_backward_f64(double *dx, const double *y, const double *dy, pn_size rows,
                                    pn_size cols, int act, double alpha)
    void pn_bias_grad_f32(float *db, const float *dz, pn_size N, pn_size O)
    void pn_bias_grad_f64(double *db, const double *dz, pn_size N, pn_size O)


# THE activation table: names in the order of csrc/pynn.h's enum pn_act (ids are positions), read
# from C so that no other place lists them. pynn's Python layers import these two tuples.
ACTIVATIONS = tuple(pn_act_name(i).decode() for i in range(PN_ACT_COUNT))
FORWARD_ONLY_ACTIVATIONS = tuple(n for i, n in enumerate(ACTIVATIONS) if not pn_act_has_backward(i))
cdef dict _ACT_IDS = {name: i for i, name in enumerate(ACTIVATIONS)}


cdef int _act_id(object name, str arg, bint backward) except -1:
    """The id of activation `name` (checked: a str naming one of ACTIVATIONS, with a backward
    when `backward`); `arg` names the argument in errors. Every bridge function taking an
    activation goes through here."""
    if not isinstance(name, str):
        raise TypeError(f"{arg} must be a str (one of {', '.join(ACTIVATIONS)}), got "
                        f"{type(name).__name__}")
    code = _ACT_IDS.get(name)
    if code is None:
        raise ValueError(f"{arg} must be one of {', '.join(ACTIVATIONS)}; got {name!r}")
    if backward and not pn_act_has_backward(code):
        raise ValueError(f"{arg} {name!r} has no backward: it is forward-only (use sigmoid or "
                         f"tanh for a trainable unit)")
    return code


cdef double _activation_alpha(object alpha, int code) except? -1.0:
    if code == PN_ACT_LEAKY_RELU:
        # the backward reads the input's sign from the output's: needs alpha >= 0
        return _finite_float(alpha, "alpha", 0.0)
    return _finite_float(alpha, "alpha")


cdef inline bint _same_buffer(cnp.ndarray a, cnp.ndarray b):
    """a and b are the same C-contiguous memory (exact in-place use)."""
    return (cnp.PyArray_DATA(a) == cnp.PyArray_DATA(b)
            and tuple((<object>a).shape) == tuple((<object>b).shape))


cdef cnp.ndarray _inplace_out(object out, str name, cnp.ndarray like, tuple inputs):
    """out= for elementwise ops: may be exactly one of `inputs` (in place), else must not
    overlap any of them."""
    if out is not None and isinstance(out, cnp.ndarray):
        for other in inputs:
            if _same_buffer(<cnp.ndarray>out, <cnp.ndarray>other):
                return _out_array(out, name, tuple((<object>like).shape), like.dtype,
                                  tuple(o for o in inputs if o is not other))
    return _out_array(out, name, tuple((<object>like).shape), like.dtype, inputs)


cdef void _rows_cols(cnp.ndarray arr, str name, pn_size *rows, pn_size *cols) except *:
    """(rows, cols) of an array of ndim >= 1: the last axis is the row (softmax's axis)."""
    cdef int nd = cnp.PyArray_NDIM(arr)
    if nd == 0:
        raise ValueError(f"{name} must have at least 1 dimension, got a 0-d array")
    if cnp.PyArray_SIZE(arr) == 0:
        raise ValueError(f"{name} must not be empty, got shape {_shape_str((<object>arr).shape)}")
    cols[0] = (<object>arr).shape[nd - 1]
    rows[0] = cnp.PyArray_SIZE(arr) // cols[0]


def activation(name, x, alpha=0.01, out=None):
    """y = act(x); see pynn.ops.activation."""
    cdef int code = _act_id(name, "name", False)
    cdef double a = _activation_alpha(alpha, code)
    cdef cnp.ndarray xa = _float_array(x, "x")
    cdef pn_size rows, cols
    _rows_cols(xa, "x", &rows, &cols)
    cdef cnp.ndarray y = _inplace_out(out, "out", xa, (xa,))
    if _is_f32(xa):
        with nogil:
            pn_activation_forward_f32(<float *>cnp.PyArray_DATA(y),
                                      <const float *>cnp.PyArray_DATA(xa), rows, cols, code,
                                      <float>a)
    else:
        with nogil:
            pn_activation_forward_f64(<double *>cnp.PyArray_DATA(y),
                                      <const double *>cnp.PyArray_DATA(xa), rows, cols, code, a)
    return y


def activation_backward(name, y, dy, alpha=0.01, out=None):
    """dx = dy * act'(x) from y = act(x); see pynn.ops.activation_backward."""
    cdef int code = _act_id(name, "name", True)
    cdef double a = _activation_alpha(alpha, code)
    cdef cnp.ndarray ya = _float_array(y, "y")
    cdef cnp.ndarray dya = _float_array(dy, "dy", ya.dtype)
    if (<object>dya).shape != (<object>ya).shape:
        raise ValueError(f"dy must have the shape of y {_shape_str((<object>ya).shape)}, got "
                         f"{_shape_str((<object>dya).shape)}")
    cdef pn_size rows, cols
    _rows_cols(ya, "y", &rows, &cols)
    cdef cnp.ndarray dx = _inplace_out(out, "out", ya, (ya, dya))
    if _is_f32(ya):
        with nogil:
            pn_activation_backward_f32(<float *>cnp.PyArray_DATA(dx),
                                       <const float *>cnp.PyArray_DATA(ya),
                                       <const float *>cnp.PyArray_DATA(dya), rows, cols, code,
                                       <float>a)
    else:
        with nogil:
            pn_activation_backward_f64(<double *>cnp.PyArray_DATA(dx),
                                       <const double *>cnp.PyArray_DATA(ya),
                                       <const double *>cnp.PyArray_DATA(dya), rows, cols, code,
                                       a)
    return dx


def bias_grad(dz, out=None):
    """db = dz.sum(axis=0); see pynn.ops.bias_grad."""
    cdef cnp.ndarray z = _float_array(dz, "dz")
    _check_ndim(z, "dz", 2, "(n, o)")
    if cnp.PyArray_SIZE(z) == 0:
        raise ValueError(f"dz must not be empty, got shape {_shape_str((<object>z).shape)}")
    cdef pn_size n = (<object>z).shape[0], o = (<object>z).shape[1]
    cdef cnp.ndarray db = _out_array(out, "out", (o,), z.dtype, (z,))
    if _is_f32(z):
        with nogil:
            pn_bias_grad_f32(<float *>cnp.PyArray_DATA(db), <const float *>cnp.PyArray_DATA(z),
                             n, o)
    else:
        with nogil:
            pn_bias_grad_f64(<double *>cnp.PyArray_DATA(db),
                             <const double *>cnp.PyArray_DATA(z), n, o)
    return db
