# Optimizer steps, in place over flat buffers (csrc/optim.c).

cdef extern from "pynn.h" nogil:
    void pn_sgd_step_f32(float *params, float *velocity, const float *grads, pn_size P,
                         double lr, double momentum, int nesterov, double weight_decay)
    void pn_sgd_step_f64(double *params, double *velocity, const double *grads, pn_size P,
                         double lr, double momentum, int nesterov, double weight_decay)
    double pn_l2_penalty_f32(float *grad, const float *w, pn_size P, double c)
    double pn_l2_penalty_f64(double *grad, const double *w, pn_size P, double c)
    void pn_adam_step_f32(float *params, float *m, float *v, const float *grads, pn_size P,
                          int64_t step, double lr, double beta1, double beta2, double eps,
                          double weight_decay)
    void pn_adam_step_f64(double *params, double *m, double *v, const double *grads, pn_size P,
                          int64_t step, double lr, double beta1, double beta2, double eps,
                          double weight_decay)
    void pn_rmsprop_step_f32(float *params, float *v, float *gavg, float *buf,
                             const float *grads, pn_size P, double lr, double alpha, double eps,
                             double weight_decay, double momentum)
    void pn_rmsprop_step_f64(double *params, double *v, double *gavg, double *buf,
                             const double *grads, pn_size P, double lr, double alpha, double eps,
                             double weight_decay, double momentum)
    void pn_adagrad_step_f32(float *params, float *sum, const float *grads, pn_size P,
                             int64_t step, double lr, double lr_decay, double eps,
                             double weight_decay)
    void pn_adagrad_step_f64(double *params, double *sum, const double *grads, pn_size P,
                             int64_t step, double lr, double lr_decay, double eps,
                             double weight_decay)


cdef cnp.ndarray _state_array(object arr, str name, cnp.ndarray params, str of="params"):
    """A buffer updated in place: the shape and dtype of params (named `of`), C-contiguous,
    writeable."""
    if not isinstance(arr, cnp.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray (it is updated in place), got "
                        f"{type(arr).__name__}")
    cdef cnp.ndarray a = <cnp.ndarray>arr
    if a.dtype != params.dtype:
        raise TypeError(f"{name} must have the dtype of {of} {params.dtype}, got {a.dtype}")
    if (<object>a).shape != (<object>params).shape:
        raise ValueError(f"{name} must have the shape of {of} "
                         f"{_shape_str((<object>params).shape)}, got "
                         f"{_shape_str((<object>a).shape)}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(a) or not cnp.PyArray_ISALIGNED(a):
        raise ValueError(f"{name} must be C-contiguous and aligned (it is updated in place)")
    if not cnp.PyArray_ISWRITEABLE(a):
        raise ValueError(f"{name} must be writeable (it is updated in place)")
    return a


cdef cnp.ndarray _params_array(object params):
    if not isinstance(params, cnp.ndarray):
        raise TypeError(f"params must be a numpy.ndarray (it is updated in place), got "
                        f"{type(params).__name__}")
    cdef cnp.ndarray p = <cnp.ndarray>params
    if p.dtype != _FLOAT32 and p.dtype != _FLOAT64:
        raise TypeError(f"params must have dtype float32 or float64, got {p.dtype}")
    if cnp.PyArray_SIZE(p) == 0:
        raise ValueError(f"params must not be empty, got shape {_shape_str((<object>p).shape)}")
    return _state_array(p, "params", p)


cdef void _no_overlap(list named) except *:
    cdef Py_ssize_t i, j
    for i in range(len(named)):
        for j in range(i + 1, len(named)):
            if named[i][1] is not None and named[j][1] is not None and \
                    _may_overlap(named[i][1], named[j][1]):
                raise ValueError(f"{named[i][0]} and {named[j][0]} must not overlap")


cdef cnp.ndarray _grads_array(object grads, cnp.ndarray p):
    cdef cnp.ndarray g = _float_array(grads, "grads", p.dtype)
    if (<object>g).shape != (<object>p).shape:
        raise ValueError(f"grads must have the shape of params {_shape_str((<object>p).shape)}, "
                         f"got {_shape_str((<object>g).shape)}")
    return g


def sgd_step(params, grads, velocity, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    """One SGD step in place; see pynn.ops.sgd_step."""
    cdef cnp.ndarray p = _params_array(params)
    cdef cnp.ndarray g = _grads_array(grads, p)
    cdef double lr_ = _finite_float(lr, "lr", 0.0)
    cdef double mu = _finite_float(momentum, "momentum", 0.0)
    cdef double wd = _finite_float(weight_decay, "weight_decay", 0.0)
    if not isinstance(nesterov, (bool, np.bool_)):
        raise TypeError(f"nesterov must be a bool, got {type(nesterov).__name__}")
    cdef int nest = 1 if nesterov else 0
    if nest and mu == 0:
        raise ValueError("nesterov=True needs momentum > 0, got momentum=0")
    cdef cnp.ndarray v = None
    if velocity is None:
        if mu != 0:
            raise ValueError(f"velocity must be an array when momentum != 0 (got momentum={mu})")
    else:
        v = _state_array(velocity, "velocity", p)
    _no_overlap([("params", p), ("grads", g), ("velocity", v)])
    cdef pn_size P = cnp.PyArray_SIZE(p)
    cdef void *pp = cnp.PyArray_DATA(p)
    cdef void *gp = cnp.PyArray_DATA(g)
    cdef void *vp = _data_or_null(v)
    if _is_f32(p):
        with nogil:
            pn_sgd_step_f32(<float *>pp, <float *>vp, <const float *>gp, P, lr_, mu, nest, wd)
    else:
        with nogil:
            pn_sgd_step_f64(<double *>pp, <double *>vp, <const double *>gp, P, lr_, mu, nest, wd)


def adam_step(params, grads, m, v, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
              weight_decay=0.0):
    """One Adam(W) step in place; see pynn.ops.adam_step."""
    cdef cnp.ndarray p = _params_array(params)
    cdef cnp.ndarray g = _grads_array(grads, p)
    cdef cnp.ndarray ma = _state_array(m, "m", p)
    cdef cnp.ndarray va = _state_array(v, "v", p)
    cdef int64_t t = _step_count(step)
    cdef double lr_ = _finite_float(lr, "lr", 0.0)
    cdef double b1 = _finite_float(beta1, "beta1", 0.0, 1.0)
    cdef double b2 = _finite_float(beta2, "beta2", 0.0, 1.0)
    if b1 >= 1.0 or b2 >= 1.0:
        raise ValueError(f"beta1 and beta2 must be in [0, 1), got {b1:g} and {b2:g}")
    cdef double eps_ = _finite_float(eps, "eps", 0.0)
    cdef double wd = _finite_float(weight_decay, "weight_decay", 0.0)
    _no_overlap([("params", p), ("grads", g), ("m", ma), ("v", va)])
    cdef pn_size P = cnp.PyArray_SIZE(p)
    cdef void *pp = cnp.PyArray_DATA(p)
    cdef void *gp = cnp.PyArray_DATA(g)
    cdef void *mp = cnp.PyArray_DATA(ma)
    cdef void *vp = cnp.PyArray_DATA(va)
    if _is_f32(p):
        with nogil:
            pn_adam_step_f32(<float *>pp, <float *>mp, <float *>vp, <const float *>gp, P, t, lr_,
                             b1, b2, eps_, wd)
    else:
        with nogil:
            pn_adam_step_f64(<double *>pp, <double *>mp, <double *>vp, <const double *>gp, P, t,
                             lr_, b1, b2, eps_, wd)


cdef int64_t _step_count(object step) except -1:
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, (int, np.integer)):
        raise TypeError(f"step must be an int (1 for the first step), got {type(step).__name__}")
    if step < 1:
        raise ValueError(f"step must be >= 1 (1 for the first step), got {step}")
    return min(int(step), 1 << 62)


def rmsprop_step(params, grads, v, gavg=None, buf=None, lr=1e-2, alpha=0.99, eps=1e-8,
                 weight_decay=0.0, momentum=0.0):
    """One RMSprop step in place; see pynn.ops.rmsprop_step."""
    cdef cnp.ndarray p = _params_array(params)
    cdef cnp.ndarray g = _grads_array(grads, p)
    cdef cnp.ndarray va = _state_array(v, "v", p)
    cdef cnp.ndarray ga = None if gavg is None else _state_array(gavg, "gavg", p)
    cdef double lr_ = _finite_float(lr, "lr", 0.0)
    cdef double al = _finite_float(alpha, "alpha", 0.0, 1.0)
    cdef double eps_ = _finite_float(eps, "eps", 0.0, 1e308, True)
    cdef double wd = _finite_float(weight_decay, "weight_decay", 0.0)
    cdef double mu = _finite_float(momentum, "momentum", 0.0)
    cdef cnp.ndarray ba = None
    if buf is None:
        if mu != 0:
            raise ValueError(f"buf must be an array when momentum != 0 (got momentum={mu})")
    else:
        ba = _state_array(buf, "buf", p)
    _no_overlap([("params", p), ("grads", g), ("v", va), ("gavg", ga), ("buf", ba)])
    cdef pn_size P = cnp.PyArray_SIZE(p)
    cdef void *pp = cnp.PyArray_DATA(p)
    cdef void *gp = cnp.PyArray_DATA(g)
    cdef void *vp = cnp.PyArray_DATA(va)
    cdef void *ap = _data_or_null(ga)
    cdef void *bp = _data_or_null(ba)
    if _is_f32(p):
        with nogil:
            pn_rmsprop_step_f32(<float *>pp, <float *>vp, <float *>ap, <float *>bp,
                                <const float *>gp, P, lr_, al, eps_, wd, mu)
    else:
        with nogil:
            pn_rmsprop_step_f64(<double *>pp, <double *>vp, <double *>ap, <double *>bp,
                                <const double *>gp, P, lr_, al, eps_, wd, mu)


def adagrad_step(params, grads, state_sum, step, lr=1e-2, lr_decay=0.0, eps=1e-10, weight_decay=0.0):
    """One Adagrad step in place; see pynn.ops.adagrad_step."""
    cdef cnp.ndarray p = _params_array(params)
    cdef cnp.ndarray g = _grads_array(grads, p)
    cdef cnp.ndarray sa = _state_array(state_sum, "state_sum", p)
    cdef int64_t t = _step_count(step)
    cdef double lr_ = _finite_float(lr, "lr", 0.0)
    cdef double decay = _finite_float(lr_decay, "lr_decay", 0.0)
    cdef double eps_ = _finite_float(eps, "eps", 0.0, 1e308, True)
    cdef double wd = _finite_float(weight_decay, "weight_decay", 0.0)
    _no_overlap([("params", p), ("grads", g), ("state_sum", sa)])
    cdef pn_size P = cnp.PyArray_SIZE(p)
    cdef void *pp = cnp.PyArray_DATA(p)
    cdef void *gp = cnp.PyArray_DATA(g)
    cdef void *sp = cnp.PyArray_DATA(sa)
    if _is_f32(p):
        with nogil:
            pn_adagrad_step_f32(<float *>pp, <float *>sp, <const float *>gp, P, t, lr_, decay,
                                eps_, wd)
    else:
        with nogil:
            pn_adagrad_step_f64(<double *>pp, <double *>sp, <const double *>gp, P, t, lr_,
                                decay, eps_, wd)


def l2_penalty(weights, grads, coef):
    """sum(weights**2), adding coef * weights into grads on the way; see pynn.ops.l2_penalty."""
    cdef cnp.ndarray w = _float_array(weights, "weights")
    cdef double c = _finite_float(coef, "coef")
    cdef cnp.ndarray g = None
    if grads is not None:
        g = _state_array(grads, "grads", w, "weights")
        _no_overlap([("weights", w), ("grads", g)])
    cdef pn_size P = cnp.PyArray_SIZE(w)
    cdef const void *wp = cnp.PyArray_DATA(w)
    cdef void *gp = _data_or_null(g)
    cdef double total
    if _is_f32(w):
        with nogil:
            total = pn_l2_penalty_f32(<float *>gp, <const float *>wp, P, c)
    else:
        with nogil:
            total = pn_l2_penalty_f64(<double *>gp, <const double *>wp, P, c)
    return total
