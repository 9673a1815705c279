# Normalization and dropout layers (csrc/norm.c). Every function checks its arrays, then runs C
# without the GIL; outputs and saved statistics are written into the arrays given (`out=`
# style), so a training step allocates nothing.

cdef extern from "pynn.h" nogil:
    void pn_dropout_f32(float *y, const float *x, pn_size n, double rate, uint64_t key,
                        uint64_t counter)
    void pn_dropout_f64(double *y, const double *x, pn_size n, double rate, uint64_t key,
                        uint64_t counter)
    pn_size pn_dropout_kept(pn_size n, double rate, uint64_t key, uint64_t counter)
    void pn_batchnorm_forward_f32(float *y, float *xhat, double *mean, double *var,
                                  double *invstd, const float *x, const float *gamma,
                                  const float *beta, pn_size R, pn_size C, double eps)
    void pn_batchnorm_forward_f64(double *y, double *xhat, double *mean, double *var,
                                  double *invstd, const double *x, const double *gamma,
                                  const double *beta, pn_size R, pn_size C, double eps)
    void pn_batchnorm_backward_f32(float *dx, float *dgamma, float *dbeta, const float *dy,
                                   const float *xhat, const float *gamma, const double *invstd,
                                   double *scratch, pn_size R, pn_size C)
    void pn_batchnorm_backward_f64(double *dx, double *dgamma, double *dbeta, const double *dy,
                                   const double *xhat, const double *gamma,
                                   const double *invstd, double *scratch, pn_size R, pn_size C)
    void pn_scale_shift_f32(float *y, const float *x, const float *scale, const float *shift,
                            pn_size R, pn_size C)
    void pn_scale_shift_f64(double *y, const double *x, const double *scale,
                            const double *shift, pn_size R, pn_size C)
    void pn_layernorm_forward_f32(float *y, float *xhat, double *invstd, const float *x,
                                  const float *gamma, const float *beta, pn_size R, pn_size C,
                                  double eps)
    void pn_layernorm_forward_f64(double *y, double *xhat, double *invstd, const double *x,
                                  const double *gamma, const double *beta, pn_size R,
                                  pn_size C, double eps)
    void pn_layernorm_backward_f32(float *dx, float *dgamma, float *dbeta, const float *dy,
                                   const float *xhat, const float *gamma, const double *invstd,
                                   double *scratch, pn_size R, pn_size C)
    void pn_layernorm_backward_f64(double *dx, double *dgamma, double *dbeta, const double *dy,
                                   const double *xhat, const double *gamma,
                                   const double *invstd, double *scratch, pn_size R, pn_size C)


cdef uint64_t _u64(object value, str name) except? 0:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0 or value >= 2 ** 64:
        raise ValueError(f"{name} must be in [0, 2**64), got {value}")
    return <uint64_t>int(value)


cdef double _rate(object rate) except? -1.0:
    cdef double r = _finite_float(rate, "rate", 0.0, 1.0)
    if r >= 1.0:
        raise ValueError(f"rate must be in [0, 1), got {r:g}")
    return r


def dropout(x, rate, key, counter, out=None):
    """Inverted dropout with a counter-based mask; see pynn.ops.dropout."""
    cdef cnp.ndarray xa = _float_array(x, "x")
    cdef double r = _rate(rate)
    cdef uint64_t k = _u64(key, "key"), c = _u64(counter, "counter")
    cdef cnp.ndarray y = _out_array(out, "out", (<object>xa).shape, xa.dtype, (xa,))
    cdef pn_size n = cnp.PyArray_SIZE(xa)
    if _is_f32(xa):
        with nogil:
            pn_dropout_f32(<float *>cnp.PyArray_DATA(y), <const float *>cnp.PyArray_DATA(xa),
                           n, r, k, c)
    else:
        with nogil:
            pn_dropout_f64(<double *>cnp.PyArray_DATA(y),
                           <const double *>cnp.PyArray_DATA(xa), n, r, k, c)
    return y


def dropout_kept(n, rate, key, counter):
    """How many of n elements the mask of (rate, key, counter) keeps."""
    cdef uint64_t count = _u64(n, "n")
    return pn_dropout_kept(<pn_size>count, _rate(rate), _u64(key, "key"), _u64(counter, "counter"))


cdef tuple _norm_operands(object x, object gamma, object beta):
    cdef cnp.ndarray xa = _float_array(x, "x")
    _check_2d(xa, "x", "(rows, features)")
    if xa.shape[0] < 1:
        raise ValueError("x must have at least one row")
    cdef tuple vec = (xa.shape[1],)
    cdef cnp.ndarray g = _float_array(gamma, "gamma", xa.dtype)
    cdef cnp.ndarray b = _float_array(beta, "beta", xa.dtype)
    for name, arr in (("gamma", g), ("beta", b)):
        if (<object>arr).shape != vec:
            raise ValueError(f"{name} must have shape {_shape_str(vec)} (one per feature), got "
                             f"{_shape_str((<object>arr).shape)}")
    return xa, g, b


cdef cnp.ndarray _f64_vector(object arr, str name, pn_size n):
    return _out_array(arr, name, (n,), _FLOAT64)


def batchnorm_forward(x, gamma, beta, eps=1e-5, out=None, xhat=None, mean=None, var=None,
                      invstd=None):
    """Training-mode BatchNorm; see pynn.ops.batchnorm_forward. Returns (y, xhat, mean, var,
    invstd)."""
    xa, g, b = _norm_operands(x, gamma, beta)
    cdef double e = _finite_float(eps, "eps", 0.0, 1e308, True)
    cdef pn_size R = (<object>xa).shape[0], C = (<object>xa).shape[1]
    cdef cnp.ndarray y = _out_array(out, "out", (R, C), xa.dtype, (xa, g, b))
    cdef cnp.ndarray h = _out_array(xhat, "xhat", (R, C), xa.dtype, (xa, g, b, y))
    cdef cnp.ndarray m = _f64_vector(mean, "mean", C)
    cdef cnp.ndarray v = _f64_vector(var, "var", C)
    cdef cnp.ndarray s = _f64_vector(invstd, "invstd", C)
    if _is_f32(<cnp.ndarray>xa):
        with nogil:
            pn_batchnorm_forward_f32(<float *>cnp.PyArray_DATA(y), <float *>cnp.PyArray_DATA(h),
                                     <double *>cnp.PyArray_DATA(m), <double *>cnp.PyArray_DATA(v),
                                     <double *>cnp.PyArray_DATA(s),
                                     <const float *>cnp.PyArray_DATA(<cnp.ndarray>xa),
                                     <const float *>cnp.PyArray_DATA(<cnp.ndarray>g),
                                     <const float *>cnp.PyArray_DATA(<cnp.ndarray>b), R, C, e)
    else:
        with nogil:
            pn_batchnorm_forward_f64(<double *>cnp.PyArray_DATA(y),
                                     <double *>cnp.PyArray_DATA(h),
                                     <double *>cnp.PyArray_DATA(m), <double *>cnp.PyArray_DATA(v),
                                     <double *>cnp.PyArray_DATA(s),
                                     <const double *>cnp.PyArray_DATA(<cnp.ndarray>xa),
                                     <const double *>cnp.PyArray_DATA(<cnp.ndarray>g),
                                     <const double *>cnp.PyArray_DATA(<cnp.ndarray>b), R, C, e)
    return y, h, m, v, s


cdef tuple _norm_backward_operands(object dy, object xhat, object gamma, object invstd,
                                   object dgamma, object dbeta, object dx, bint per_row):
    cdef cnp.ndarray g = _float_array(dy, "dy")
    _check_2d(g, "dy", "(rows, features)")
    cdef pn_size R = g.shape[0], C = g.shape[1]
    cdef cnp.ndarray h = _float_array(xhat, "xhat", g.dtype)
    if (<object>h).shape != (<object>g).shape:
        raise ValueError(f"xhat must have dy's shape {_shape_str((<object>g).shape)}, got "
                         f"{_shape_str((<object>h).shape)}")
    cdef cnp.ndarray ga = _float_array(gamma, "gamma", g.dtype)
    if (<object>ga).shape != (C,):
        raise ValueError(f"gamma must have shape ({C},), got {_shape_str((<object>ga).shape)}")
    cdef cnp.ndarray s = _float_array(invstd, "invstd", _FLOAT64)
    cdef pn_size n_stats = R if per_row else C
    if (<object>s).shape != (n_stats,):
        raise ValueError(f"invstd must have shape ({n_stats},), got "
                         f"{_shape_str((<object>s).shape)}")
    inputs = (g, h, ga, s)
    cdef cnp.ndarray dga = _out_array(dgamma, "dgamma", (C,), g.dtype, inputs)
    cdef cnp.ndarray dba = _out_array(dbeta, "dbeta", (C,), g.dtype, inputs + (dga,))
    cdef cnp.ndarray dxa = None
    if dx is not None:
        dxa = _out_array(dx, "dx", (R, C), g.dtype, inputs + (dga, dba))
    return g, h, ga, s, dga, dba, dxa


def batchnorm_backward(dy, xhat, gamma, invstd, dgamma=None, dbeta=None, dx=None):
    """BatchNorm's backward from the forward's xhat and invstd; see
    pynn.ops.batchnorm_backward. Returns (dx or None, dgamma, dbeta)."""
    g, h, ga, s, dga, dba, dxa = _norm_backward_operands(dy, xhat, gamma, invstd, dgamma, dbeta,
                                                         dx, False)
    cdef pn_size R = (<object>g).shape[0], C = (<object>g).shape[1]
    cdef cnp.ndarray scratch = np.empty(2 * C, np.float64)
    cdef void *dxp = _data_or_null(dxa)
    if _is_f32(<cnp.ndarray>g):
        with nogil:
            pn_batchnorm_backward_f32(<float *>dxp, <float *>cnp.PyArray_DATA(<cnp.ndarray>dga),
                                      <float *>cnp.PyArray_DATA(<cnp.ndarray>dba),
                                      <const float *>cnp.PyArray_DATA(<cnp.ndarray>g),
                                      <const float *>cnp.PyArray_DATA(<cnp.ndarray>h),
                                      <const float *>cnp.PyArray_DATA(<cnp.ndarray>ga),
                                      <const double *>cnp.PyArray_DATA(<cnp.ndarray>s),
                                      <double *>cnp.PyArray_DATA(scratch), R, C)
    else:
        with nogil:
            pn_batchnorm_backward_f64(<double *>dxp,
                                      <double *>cnp.PyArray_DATA(<cnp.ndarray>dga),
                                      <double *>cnp.PyArray_DATA(<cnp.ndarray>dba),
                                      <const double *>cnp.PyArray_DATA(<cnp.ndarray>g),
                                      <const double *>cnp.PyArray_DATA(<cnp.ndarray>h),
                                      <const double *>cnp.PyArray_DATA(<cnp.ndarray>ga),
                                      <const double *>cnp.PyArray_DATA(<cnp.ndarray>s),
                                      <double *>cnp.PyArray_DATA(scratch), R, C)
    return dxa, dga, dba


def scale_shift(x, scale, shift, out=None):
    """y = x * scale + shift per column (an inference-mode BatchNorm); see pynn.ops."""
    xa, sc, sh = _norm_operands(x, scale, shift)
    cdef pn_size R = (<object>xa).shape[0], C = (<object>xa).shape[1]
    cdef cnp.ndarray y = _out_array(out, "out", (R, C), xa.dtype, (sc, sh))
    if _is_f32(<cnp.ndarray>xa):
        with nogil:
            pn_scale_shift_f32(<float *>cnp.PyArray_DATA(y),
                               <const float *>cnp.PyArray_DATA(<cnp.ndarray>xa),
                               <const float *>cnp.PyArray_DATA(<cnp.ndarray>sc),
                               <const float *>cnp.PyArray_DATA(<cnp.ndarray>sh), R, C)
    else:
        with nogil:
            pn_scale_shift_f64(<double *>cnp.PyArray_DATA(y),
                               <const double *>cnp.PyArray_DATA(<cnp.ndarray>xa),
                               <const double *>cnp.PyArray_DATA(<cnp.ndarray>sc),
                               <const double *>cnp.PyArray_DATA(<cnp.ndarray>sh), R, C)
    return y


def layernorm_forward(x, gamma, beta, eps=1e-5, out=None, xhat=None, invstd=None):
    """LayerNorm; see pynn.ops.layernorm_forward. Returns (y, xhat, invstd)."""
    xa, g, b = _norm_operands(x, gamma, beta)
    cdef double e = _finite_float(eps, "eps", 0.0, 1e308, True)
    cdef pn_size R = (<object>xa).shape[0], C = (<object>xa).shape[1]
    cdef cnp.ndarray y = _out_array(out, "out", (R, C), xa.dtype, (xa, g, b))
    cdef cnp.ndarray h = _out_array(xhat, "xhat", (R, C), xa.dtype, (xa, g, b, y))
    cdef cnp.ndarray s = _f64_vector(invstd, "invstd", R)
    if _is_f32(<cnp.ndarray>xa):
        with nogil:
            pn_layernorm_forward_f32(<float *>cnp.PyArray_DATA(y), <float *>cnp.PyArray_DATA(h),
                                     <double *>cnp.PyArray_DATA(s),
                                     <const float *>cnp.PyArray_DATA(<cnp.ndarray>xa),
                                     <const float *>cnp.PyArray_DATA(<cnp.ndarray>g),
                                     <const float *>cnp.PyArray_DATA(<cnp.ndarray>b), R, C, e)
    else:
        with nogil:
            pn_layernorm_forward_f64(<double *>cnp.PyArray_DATA(y),
                                     <double *>cnp.PyArray_DATA(h),
                                     <double *>cnp.PyArray_DATA(s),
                                     <const double *>cnp.PyArray_DATA(<cnp.ndarray>xa),
                                     <const double *>cnp.PyArray_DATA(<cnp.ndarray>g),
                                     <const double *>cnp.PyArray_DATA(<cnp.ndarray>b), R, C, e)
    return y, h, s


def layernorm_backward(dy, xhat, gamma, invstd, dgamma=None, dbeta=None, dx=None):
    """LayerNorm's backward; see pynn.ops.layernorm_backward. Returns (dx or None, dgamma,
    dbeta)."""
    g, h, ga, s, dga, dba, dxa = _norm_backward_operands(dy, xhat, gamma, invstd, dgamma, dbeta,
                                                         dx, True)
    cdef pn_size R = (<object>g).shape[0], C = (<object>g).shape[1]
    cdef cnp.ndarray scratch = np.empty(2 * C, np.float64)
    cdef void *dxp = _data_or_null(dxa)
    if _is_f32(<cnp.ndarray>g):
        with nogil:
            pn_layernorm_backward_f32(<float *>dxp, <float *>cnp.PyArray_DATA(<cnp.ndarray>dga),
                                      <float *>cnp.PyArray_DATA(<cnp.ndarray>dba),
                                      <const float *>cnp.PyArray_DATA(<cnp.ndarray>g),
                                      <const float *>cnp.PyArray_DATA(<cnp.ndarray>h),
                                      <const float *>cnp.PyArray_DATA(<cnp.ndarray>ga),
                                      <const double *>cnp.PyArray_DATA(<cnp.ndarray>s),
                                      <double *>cnp.PyArray_DATA(scratch), R, C)
    else:
        with nogil:
            pn_layernorm_backward_f64(<double *>dxp,
                                      <double *>cnp.PyArray_DATA(<cnp.ndarray>dga),
                                      <double *>cnp.PyArray_DATA(<cnp.ndarray>dba),
                                      <const double *>cnp.PyArray_DATA(<cnp.ndarray>g),
                                      <const double *>cnp.PyArray_DATA(<cnp.ndarray>h),
                                      <const double *>cnp.PyArray_DATA(<cnp.ndarray>ga),
                                      <const double *>cnp.PyArray_DATA(<cnp.ndarray>s),
                                      <double *>cnp.PyArray_DATA(scratch), R, C)
    return dxa, dga, dba
