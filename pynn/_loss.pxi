# Losses fused with their gradients (csrc/loss.c). Each returns (loss: float, gradient).

from libc.stdint cimport uint64_t

cdef extern from "pynn.h" nogil:
    double pn_softmax_xent_labels_f32(float *dlogits, const float *logits, const int64_t *labels,
                                      const float *w, pn_size N, pn_size C)
    double pn_softmax_xent_labels_f64(double *dlogits, const double *logits,
                                      const int64_t *labels, const double *w, pn_size N,
                                      pn_size C)
    double pn_softmax_xent_probs_f32(float *dlogits, const float *logits, const float *target,
                                     const float *w, pn_size N, pn_size C)
    double pn_softmax_xent_probs_f64(double *dlogits, const double *logits,
                                     const double *target, const double *w, pn_size N, pn_size C)
    double pn_kl_div_f32(float *dlogits, const float *logits, const float *target,
                         const float *w, pn_size N, pn_size C)
    double pn_kl_div_f64(double *dlogits, const double *logits, const double *target,
                         const double *w, pn_size N, pn_size C)
    double pn_mse_f32(float *d, const float *p, const float *t, const float *w, pn_size N,
                      pn_size K, double param)
    double pn_mse_f64(double *d, const double *p, const double *t, const double *w, pn_size N,
                      pn_size K, double param)
    double pn_bce_f32(float *d, const float *p, const float *t, const float *w, pn_size N,
                      pn_size K, double param)
    double pn_bce_f64(double *d, const double *p, const double *t, const double *w, pn_size N,
                      pn_size K, double param)
    double pn_hinge_f32(float *d, const float *p, const float *t, const float *w, pn_size N,
                      pn_size K, double param)
    double pn_hinge_f64(double *d, const double *p, const double *t, const double *w, pn_size N,
                      pn_size K, double param)
    double pn_mae_f32(float *d, const float *p, const float *t, const float *w, pn_size N,
                      pn_size K, double param)
    double pn_mae_f64(double *d, const double *p, const double *t, const double *w, pn_size N,
                      pn_size K, double param)
    double pn_huber_f32(float *d, const float *p, const float *t, const float *w, pn_size N,
                      pn_size K, double param)
    double pn_huber_f64(double *d, const double *p, const double *t, const double *w, pn_size N,
                      pn_size K, double param)
    double pn_poisson_f32(float *d, const float *p, const float *t, const float *w, pn_size N,
                      pn_size K, double param)
    double pn_poisson_f64(double *d, const double *p, const double *t, const double *w, pn_size N,
                      pn_size K, double param)

ctypedef double (*_loss_f32_fn)(float *, const float *, const float *, const float *, pn_size,
                                pn_size, double) noexcept nogil
ctypedef double (*_loss_f64_fn)(double *, const double *, const double *, const double *,
                                pn_size, pn_size, double) noexcept nogil


cdef cnp.ndarray _not_empty(cnp.ndarray arr, str name):
    if cnp.PyArray_SIZE(arr) == 0:
        raise ValueError(f"{name} must not be empty, got shape {_shape_str((<object>arr).shape)}")
    return arr


cdef object _sample_weight(object sample_weight, pn_size n, object dtype):
    """None, or a C-contiguous (n,) array of `dtype`: finite, >= 0, with a positive sum."""
    if sample_weight is None:
        return None
    try:
        w = np.asarray(sample_weight)
    except Exception as exc:
        raise TypeError(f"sample_weight must be an array of real numbers, got "
                        f"{type(sample_weight).__name__}") from exc
    if w.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must hold real numbers, got dtype {w.dtype}")
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},) (one weight per row), got "
                         f"{_shape_str(w.shape)}")
    if w.dtype.kind == "f" and not np.all(np.isfinite(w)):
        raise ValueError("sample_weight must be finite (no NaN or inf)")
    with np.errstate(over="ignore"):  # an overflow is reported below, not as a warning
        w = _aligned_c(np.ascontiguousarray(w, dtype=dtype))
    if not np.all(np.isfinite(w)):
        raise ValueError(f"sample_weight must fit in {np.dtype(dtype)} (the logits' dtype): "
                         f"|w| <= {np.finfo(dtype).max:g}")
    if np.any(w < 0):
        raise ValueError(f"sample_weight must be >= 0, got a minimum of {w.min()}")
    if not w.sum(dtype=np.float64) > 0:
        raise ValueError("sample_weight must have a positive sum (every weight is 0)")
    return w


cdef inline void *_data_or_null(object arr):
    return NULL if arr is None else cnp.PyArray_DATA(<cnp.ndarray>arr)


cdef tuple _pred_target(object pred, object target, str pname):
    """pred (n,) or (n, k) float; target of the same shape and dtype."""
    cdef cnp.ndarray p = _not_empty(_float_array(pred, pname), pname)
    if cnp.PyArray_NDIM(p) not in (1, 2):
        raise ValueError(f"{pname} must be 1-D (n,) or 2-D (n, k), got shape "
                         f"{_shape_str((<object>p).shape)}")
    cdef cnp.ndarray t = _float_array(target, "target", p.dtype)
    if (<object>t).shape != (<object>p).shape:
        raise ValueError(f"target must have the shape of {pname} {_shape_str((<object>p).shape)}"
                         f", got {_shape_str((<object>t).shape)}")
    return p, t


cdef tuple _elementwise_loss(object pred, object target, object sample_weight, object out,
                             str pname, _loss_f32_fn f32, _loss_f64_fn f64, str check,
                             double param=0.0):
    p, t = _pred_target(pred, target, pname)
    if check == "hinge":
        if not np.all((t == 1) | (t == -1) | (t == 0)):
            bad = t[~((t == 1) | (t == -1) | (t == 0))].flat[0]
            raise ValueError(f"target must hold -1 or 1 (0 is read as -1), got {bad}")
    elif check == "counts":
        if not np.all(t >= 0):  # NaN fails too
            bad = t[~(t >= 0)].flat[0]
            raise ValueError(f"target must hold counts or rates >= 0 (poisson), got {bad}")
    cdef pn_size n = (<object>p).shape[0]
    cdef pn_size k = 1 if cnp.PyArray_NDIM(<cnp.ndarray>p) == 1 else (<object>p).shape[1]
    w = _sample_weight(sample_weight, n, p.dtype)
    cdef cnp.ndarray d = _out_array(out, "out", (<object>p).shape, p.dtype, (p, t, w))
    cdef double loss
    cdef void *pp = cnp.PyArray_DATA(<cnp.ndarray>p)
    cdef void *tp = cnp.PyArray_DATA(<cnp.ndarray>t)
    cdef void *wp = _data_or_null(w)
    cdef void *dp = cnp.PyArray_DATA(d)
    if _is_f32(<cnp.ndarray>p):
        with nogil:
            loss = f32(<float *>dp, <const float *>pp, <const float *>tp, <const float *>wp, n, k,
                       param)
    else:
        with nogil:
            loss = f64(<double *>dp, <const double *>pp, <const double *>tp,
                       <const double *>wp, n, k, param)
    return loss, d


def mse(pred, target, sample_weight=None, out=None):
    """Mean squared error and its gradient; see pynn.ops.mse."""
    return _elementwise_loss(pred, target, sample_weight, out, "pred", pn_mse_f32, pn_mse_f64,
                             "")


def binary_cross_entropy(logits, target, sample_weight=None, out=None):
    """Sigmoid + binary cross-entropy from logits; see pynn.ops.binary_cross_entropy."""
    return _elementwise_loss(logits, target, sample_weight, out, "logits", pn_bce_f32,
                             pn_bce_f64, "")


def hinge(scores, target, sample_weight=None, out=None):
    """Hinge loss (Keras); see pynn.ops.hinge."""
    return _elementwise_loss(scores, target, sample_weight, out, "scores", pn_hinge_f32,
                             pn_hinge_f64, "hinge")


def mae(pred, target, sample_weight=None, out=None):
    """Mean absolute error and its gradient; see pynn.ops.mae."""
    return _elementwise_loss(pred, target, sample_weight, out, "pred", pn_mae_f32, pn_mae_f64,
                             "")


def huber(pred, target, delta=1.0, sample_weight=None, out=None):
    """Huber loss and its gradient; see pynn.ops.huber."""
    cdef double d = _finite_float(delta, "delta", 0.0, 1e308, True)
    return _elementwise_loss(pred, target, sample_weight, out, "pred", pn_huber_f32,
                             pn_huber_f64, "", d)


def poisson(log_rate, target, sample_weight=None, out=None):
    """Poisson negative log-likelihood with a log link and its gradient; see pynn.ops.poisson."""
    return _elementwise_loss(log_rate, target, sample_weight, out, "log_rate", pn_poisson_f32,
                             pn_poisson_f64, "counts")


cdef Py_ssize_t _first_label_out_of_range(cnp.ndarray labels, int64_t c):
    """Index of the first label outside [0, c), or -1 (a typed loop: no NumPy call overhead
    in the training step)."""
    cdef const int64_t *lab = <const int64_t *>cnp.PyArray_DATA(labels)
    cdef Py_ssize_t i, n = cnp.PyArray_SIZE(labels)
    cdef uint64_t uc = <uint64_t>c
    with nogil:
        for i in range(n):
            if <uint64_t>lab[i] >= uc:  # negative labels wrap to huge values
                return i
    return -1


cdef tuple _logits_2d(object logits):
    cdef cnp.ndarray x = _float_array(logits, "logits")
    _check_ndim(x, "logits", 2, "(n, c)")
    _not_empty(x, "logits")
    return x, (<object>x).shape[0], (<object>x).shape[1]


cdef cnp.ndarray _prob_target(object target, cnp.ndarray x, str what):
    cdef cnp.ndarray t = _float_array(target, "target", x.dtype)
    if (<object>t).shape != (<object>x).shape:
        raise ValueError(f"target must be {what} of shape {_shape_str((<object>x).shape)} "
                         f"(the logits'), got shape {_shape_str((<object>t).shape)}")
    return t


cdef inline bint _is_int64_vector(object t, Py_ssize_t n):
    """t is an aligned contiguous int64 ndarray of shape (n,)."""
    return (isinstance(t, cnp.ndarray) and cnp.PyArray_TYPE(<cnp.ndarray>t) == cnp.NPY_INT64
            and cnp.PyArray_NDIM(<cnp.ndarray>t) == 1 and cnp.PyArray_DIMS(<cnp.ndarray>t)[0] == n
            and cnp.PyArray_ISCARRAY_RO(<cnp.ndarray>t))


def softmax_cross_entropy(logits, target, sample_weight=None, out=None):
    """Softmax cross-entropy and its gradient, fused; see pynn.ops.softmax_cross_entropy."""
    x, n, c = _logits_2d(logits)
    cdef cnp.ndarray xa = <cnp.ndarray>x
    cdef pn_size N = n, C = c
    t_in = target if isinstance(target, np.ndarray) else np.asarray(target)
    cdef bint ready = _is_int64_vector(t_in, n)  # the training loop's case: range check only
    cdef bint labels = ready or t_in.dtype.kind in "iu"
    if labels:
        if ready:
            t = t_in
        else:
            if t_in.shape != (n,):
                raise ValueError(f"target (integer labels) must have shape ({n},), got "
                                 f"{_shape_str(t_in.shape)}")
            if t_in.dtype == np.uint64 and t_in.max() >= c:  # would wrap when cast to int64
                raise ValueError(f"target labels must be in [0, {c}) for {c} classes, got "
                                 f"{t_in.max()}")
            t = _aligned_c(np.ascontiguousarray(t_in, dtype=np.int64))
        bad_at = _first_label_out_of_range(t, c)
        if bad_at >= 0:
            raise ValueError(f"target labels must be in [0, {c}) for {c} classes; row {bad_at} "
                             f"holds {t[bad_at]}")
    elif t_in.dtype.kind == "f":
        t = _prob_target(t_in, xa, "probabilities or one-hot")
    else:
        raise TypeError(f"target must be integer labels (n,) or probabilities (n, c) of the "
                        f"logits' dtype {xa.dtype}, got dtype {t_in.dtype}")
    w = _sample_weight(sample_weight, N, xa.dtype)
    cdef cnp.ndarray d = _out_array(out, "out", (n, c), xa.dtype, (xa, t, w))
    cdef void *xp = cnp.PyArray_DATA(xa)
    cdef void *tp = cnp.PyArray_DATA(<cnp.ndarray>t)
    cdef void *wp = _data_or_null(w)
    cdef void *dp = cnp.PyArray_DATA(d)
    cdef double loss
    if _is_f32(xa):
        with nogil:
            if labels:
                loss = pn_softmax_xent_labels_f32(<float *>dp, <const float *>xp,
                                                  <const int64_t *>tp, <const float *>wp, N, C)
            else:
                loss = pn_softmax_xent_probs_f32(<float *>dp, <const float *>xp,
                                                 <const float *>tp, <const float *>wp, N, C)
    else:
        with nogil:
            if labels:
                loss = pn_softmax_xent_labels_f64(<double *>dp, <const double *>xp,
                                                  <const int64_t *>tp, <const double *>wp, N, C)
            else:
                loss = pn_softmax_xent_probs_f64(<double *>dp, <const double *>xp,
                                                 <const double *>tp, <const double *>wp, N, C)
    return loss, d


def kl_divergence(logits, target, sample_weight=None, out=None):
    """KL(target || softmax(logits)) and its gradient; see pynn.ops.kl_divergence."""
    x, n, c = _logits_2d(logits)
    cdef cnp.ndarray xa = <cnp.ndarray>x
    cdef pn_size N = n, C = c
    cdef cnp.ndarray t = _prob_target(target, xa, "probabilities")
    if np.any(t < 0):
        raise ValueError(f"target must hold probabilities >= 0, got a minimum of {t.min()}")
    w = _sample_weight(sample_weight, N, xa.dtype)
    cdef cnp.ndarray d = _out_array(out, "out", (n, c), xa.dtype, (xa, t, w))
    cdef void *xp = cnp.PyArray_DATA(xa)
    cdef void *tp = cnp.PyArray_DATA(t)
    cdef void *wp = _data_or_null(w)
    cdef void *dp = cnp.PyArray_DATA(d)
    cdef double loss
    if _is_f32(xa):
        with nogil:
            loss = pn_kl_div_f32(<float *>dp, <const float *>xp, <const float *>tp,
                                 <const float *>wp, N, C)
    else:
        with nogil:
            loss = pn_kl_div_f64(<double *>dp, <const double *>xp, <const double *>tp,
                                 <const double *>wp, N, C)
    return loss, d


ctypedef fused _real:
    float
    double


cdef inline Py_ssize_t _first_argmax(const _real *row, Py_ssize_t c) noexcept nogil:
    cdef Py_ssize_t j, best = 0
    cdef _real v, m = row[0]
    if m != m:
        return 0
    for j in range(1, c):
        v = row[j]
        if v != v:
            return j
        if v > m:
            m = v
            best = j
    return best


cdef Py_ssize_t _argmax_hits(const _real *o, const int64_t *lab, const _real *t, Py_ssize_t n,
                             Py_ssize_t c) noexcept nogil:
    cdef Py_ssize_t i, hits = 0, want
    for i in range(n):
        want = lab[i] if lab != NULL else _first_argmax(t + i * c, c)
        hits += _first_argmax(o + i * c, c) == want
    return hits


def argmax_hits(outputs, target):
    """How many rows of ``outputs`` (n, c) have their argmax at the target's class.

    ``target`` is integer labels (n,) of int64, or rows (n, c) of outputs' dtype read by their
    own argmax (one-hot or probabilities). The argmax is np.argmax's: the first maximum, a NaN
    counting as the maximum. One pass, no temporaries (the accuracy of a training batch).
    """
    cdef cnp.ndarray o = _float_array(outputs, "outputs")
    _check_2d(o, "outputs", "(n, c)")
    cdef Py_ssize_t n = o.shape[0], c = o.shape[1], hits = 0
    cdef cnp.ndarray t
    cdef const int64_t *lab = NULL
    if isinstance(target, cnp.ndarray) and (<cnp.ndarray>target).ndim == 1:
        t = <cnp.ndarray>target
        if cnp.PyArray_TYPE(t) != cnp.NPY_INT64 or not cnp.PyArray_ISCARRAY_RO(t):
            raise TypeError(f"target labels must be a contiguous int64 array, got {t.dtype}")
        if t.shape[0] != n:
            raise ValueError(f"target must have shape ({n},), got "
                             f"{_shape_str((<object>t).shape)}")
        lab = <const int64_t *>cnp.PyArray_DATA(t)
    else:
        t = _float_array(target, "target", o.dtype)
        if (<object>t).shape != (<object>o).shape:
            raise ValueError(f"target rows must have shape {_shape_str((<object>o).shape)}, "
                             f"got {_shape_str((<object>t).shape)}")
    if n == 0 or c == 0:
        return 0
    if _is_f32(o):
        with nogil:
            hits = _argmax_hits(<const float *>cnp.PyArray_DATA(o), lab,
                                <const float *>cnp.PyArray_DATA(t), n, c)
    else:
        with nogil:
            hits = _argmax_hits(<const double *>cnp.PyArray_DATA(o), lab,
                                <const double *>cnp.PyArray_DATA(t), n, c)
    return hits
