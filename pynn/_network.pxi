# A model's Dense layers bound once to their buffers as csrc/network.c's network object, so that
# a training step is one C call (gather, forward, loss, backward) and the per-op argument checks
# of pynn.ops.linear happen when the network is bound, not for every layer of every step.

from libc.stdlib cimport calloc, free

cdef extern from "pynn.h" nogil:
    enum: PN_LOSS_XENT_LABELS
    enum: PN_LOSS_COUNT
    const char *pn_loss_name(int kind)
    ctypedef struct pn_dense:
        void *w
        void *b
        void *dw
        void *db
        void *out
        void *delta
        pn_size fan_in
        pn_size fan_out
        int act
        double alpha
    ctypedef struct pn_network:
        int f32
        int n_layers
        pn_size rows
        pn_dense *layers
    ctypedef struct pn_batch:
        const void *x
        const void *target
        pn_size target_row
        const int64_t *idx
        pn_size start
        void *x_buf
        void *target_buf
    int pn_network_forward(const pn_network *net, const void *x)
    int pn_network_backward(const pn_network *net, const void *x, void *dx)
    int pn_network_train_step(const pn_network *net, const pn_batch *batch, int loss_kind,
                              double loss_param, double *loss)

# The fused losses by kind (csrc/pynn.h's enum, the one definition): name -> kind.
LOSS_KINDS = {pn_loss_name(i).decode(): i for i in range(PN_LOSS_COUNT)}


cdef class _Network:
    """Dense layers bound to their parameter, gradient and activation buffers for one batch size
    (internal: the engine builds these around a model's own buffers).

    forward(x): acts[i] = act_i(acts[i-1] . W_i + b_i), acts[-1] being x.
    backward(x): from deltas[-1] (the loss gradient at the outputs), every layer's dW and db
    (overwritten) and the deltas of the hidden layers; the input's gradient only on request.
    train_step(...): a batch's gather, forward, fused loss and backward in one call.
    """
    cdef list keep            # every array pointed to, kept alive
    cdef pn_network net       # net.n_layers == 0 until __init__ has checked everything

    def __cinit__(self):
        self.net.layers = NULL
        self.net.n_layers = 0

    def __dealloc__(self):
        free(self.net.layers)

    def __init__(self, list weights, list biases, list dweights, list dbiases, list activations,
                 list alphas, list acts, list deltas):
        cdef int n = len(weights), i
        if n < 1 or not all(len(v) == n for v in (biases, dweights, dbiases, activations,
                                                   alphas, acts, deltas)):
            raise ValueError("one W, b, dW, db, activation, alpha, act and delta per layer")
        self.net.n_layers = 0  # usable only once every check below has passed
        cdef cnp.ndarray w0 = _operand(weights[0], "weights[0]", -1)
        cdef int typenum = cnp.PyArray_TYPE(w0)
        cdef cnp.ndarray a0 = _operand(acts[0], "acts[0]", typenum)
        _check_2d(a0, "acts[0]", "(rows, out)")
        free(self.net.layers)  # __init__ called again on the same object: start over
        self.net.layers = <pn_dense *>calloc(n, sizeof(pn_dense))
        if not self.net.layers:
            raise MemoryError()
        self.net.f32 = typenum == cnp.NPY_FLOAT32
        self.net.rows = a0.shape[0]
        self.keep = []
        cdef cnp.ndarray arr, W
        cdef pn_size fan_in = w0.shape[0], fan_out
        cdef pn_dense *L
        cdef void **slot[5]
        for i in range(n):
            L = &self.net.layers[i]
            W = _operand(weights[i], f"weights[{i}]", typenum)
            _check_2d(W, f"weights[{i}]", "(in, out)")
            if W.shape[0] != fan_in:
                raise ValueError(f"weights[{i}] must have {fan_in} rows, got "
                                 f"{_shape_str((<object>W).shape)}")
            fan_out = W.shape[1]
            L.w, L.fan_in, L.fan_out = cnp.PyArray_DATA(W), fan_in, fan_out
            self.keep.append(W)
            # (name, array, ndim, shape) of the five arrays after W, and where each goes
            named = (("biases", biases[i], 1, fan_out, 0),
                     ("dweights", dweights[i], 2, fan_in, fan_out),
                     ("dbiases", dbiases[i], 1, fan_out, 0),
                     ("acts", acts[i], 2, self.net.rows, fan_out),
                     ("deltas", deltas[i], 2, self.net.rows, fan_out))
            slot[0], slot[1], slot[2], slot[3], slot[4] = &L.b, &L.dw, &L.db, &L.out, &L.delta
            for k in range(5):
                name, given, ndim, d0, d1 = named[k]
                arr = _gemm_out(given, f"{name}[{i}]", ndim, d0, d1, typenum, [])
                slot[k][0] = cnp.PyArray_DATA(arr)
                self.keep.append(arr)
            L.act = _act_id(activations[i], "activation", False)
            L.alpha = _alpha(alphas[i])
            fan_in = fan_out
        self.net.n_layers = n

    cdef int _typenum(self):
        return cnp.NPY_FLOAT32 if self.net.f32 else cnp.NPY_FLOAT64

    cdef const void *_input(self, object x) except NULL:
        if self.net.n_layers == 0:
            raise RuntimeError("this _Network was not built (its __init__ failed)")
        cdef cnp.ndarray X = _operand(x, "x", self._typenum())
        _check_2d(X, "x", "(rows, in)")
        if X.shape[0] != self.net.rows or X.shape[1] != self.net.layers[0].fan_in:
            raise ValueError(f"x must have shape {(self.net.rows, self.net.layers[0].fan_in)}, "
                             f"got {_shape_str((<object>X).shape)}")
        return cnp.PyArray_DATA(X)

    def forward(self, x):
        """Every layer's output into acts (x: (rows, in_features), C-contiguous)."""
        cdef const void *a = self._input(x)
        cdef int rc
        with nogil:
            rc = pn_network_forward(&self.net, a)
        if rc != 0:
            raise MemoryError("could not allocate the matrix-multiply packing buffers")

    def backward(self, x, dx=None):
        """Gradients of every layer from deltas[-1] (x: the forward's input); with `dx`
        (rows, in_features), the gradient at the input too (a layer comes before this chain)."""
        cdef const void *x0 = self._input(x)
        cdef void *dx0 = NULL
        cdef int rc
        if dx is not None:
            dx0 = cnp.PyArray_DATA(_gemm_out(dx, "dx", 2, self.net.rows,
                                             self.net.layers[0].fan_in, self._typenum(), []))
        with nogil:
            rc = pn_network_backward(&self.net, x0, dx0)
        if rc != 0:
            raise MemoryError("could not allocate the matrix-multiply packing buffers")

    def train_step(self, x, target, idx, Py_ssize_t start, x_buf, target_buf, int loss_kind,
                   double loss_param=0.0):
        """One step without the update: the batch's rows of the training set (x, target) --
        rows ``idx`` gathered into x_buf and target_buf, or with idx None rows
        ``start:start + rows`` read in place --, the forward, the fused loss `loss_kind` (one
        of LOSS_KINDS; target in that kernel's form) writing deltas[-1], and when the loss is
        finite the backward. Returns the batch's mean loss."""
        if self.net.n_layers == 0:
            raise RuntimeError("this _Network was not built (its __init__ failed)")
        if not 0 <= loss_kind < PN_LOSS_COUNT:
            raise ValueError(f"loss_kind must be one of {sorted(LOSS_KINDS.values())}, got "
                             f"{loss_kind}")
        cdef int typenum = self._typenum()
        cdef pn_size rows = self.net.rows
        cdef cnp.ndarray X = _row_source(x)
        if (cnp.PyArray_TYPE(X) != typenum or cnp.PyArray_NDIM(X) != 2
                or X.shape[1] != self.net.layers[0].fan_in):
            raise ValueError(f"x must be a C-contiguous "
                             f"{'float32' if self.net.f32 else 'float64'} array of shape "
                             f"(n, {self.net.layers[0].fan_in}), got {X.dtype} "
                             f"{_shape_str((<object>X).shape)}")
        cdef cnp.ndarray T = _row_source(target)
        cdef pn_size k_out = self.net.layers[self.net.n_layers - 1].fan_out
        if loss_kind == PN_LOSS_XENT_LABELS:
            ok = cnp.PyArray_TYPE(T) == cnp.NPY_INT64 and cnp.PyArray_NDIM(T) == 1
            want = "int64 labels of shape (n,)"
        else:
            ok = (cnp.PyArray_TYPE(T) == typenum and cnp.PyArray_NDIM(T) == 2
                  and T.shape[1] == k_out)
            want = f"rows of shape (n, {k_out}) in the network's dtype"
        if not ok or T.shape[0] != X.shape[0]:
            raise ValueError(f"target must be {want}, one per row of x ({X.shape[0]}), got "
                             f"{T.dtype} {_shape_str((<object>T).shape)}")
        cdef pn_batch batch
        batch.x, batch.target = cnp.PyArray_DATA(X), cnp.PyArray_DATA(T)
        batch.target_row = cnp.PyArray_ITEMSIZE(T) * (1 if cnp.PyArray_NDIM(T) == 1 else k_out)
        batch.idx, batch.start, batch.x_buf, batch.target_buf = NULL, start, NULL, NULL
        cdef cnp.ndarray ix, xb, tb
        if idx is None:
            if start < 0 or start + rows > X.shape[0]:
                raise ValueError(f"rows {start}:{start + rows} are not all rows of x (which "
                                 f"has {X.shape[0]})")
        else:
            ix = _row_indices(idx, X.shape[0])
            if ix.shape[0] != rows:
                raise ValueError(f"idx must hold {rows} rows (the batch size), got "
                                 f"{ix.shape[0]}")
            xb = _gemm_out(x_buf, "x_buf", 2, rows, X.shape[1], typenum, [X])
            tb = _batch_out(target_buf, "target_buf", (<object>T).shape[1:], rows, T)
            batch.idx = <const int64_t *>cnp.PyArray_DATA(ix)
            batch.x_buf, batch.target_buf = cnp.PyArray_DATA(xb), cnp.PyArray_DATA(tb)
        cdef double value = 0
        cdef int rc
        with nogil:
            rc = pn_network_train_step(&self.net, &batch, loss_kind, loss_param, &value)
        if rc != 0:
            raise MemoryError("could not allocate the matrix-multiply packing buffers")
        return value


cdef cnp.ndarray _batch_out(object out, str name, tuple row_shape, pn_size rows,
                            cnp.ndarray src):
    """A gather destination: (rows,) + row_shape in src's dtype, C-contiguous, writeable, not
    overlapping src."""
    if not isinstance(out, cnp.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    cdef cnp.ndarray o = <cnp.ndarray>out
    cdef tuple shape = (rows,) + row_shape
    if o.dtype != src.dtype or (<object>o).shape != shape:
        raise ValueError(f"{name} must be {src.dtype} of shape {_shape_str(shape)}, got "
                         f"{o.dtype} {_shape_str((<object>o).shape)}")
    if not cnp.PyArray_ISCARRAY(o):
        raise ValueError(f"{name} must be C-contiguous, aligned and writeable")
    if _overlap(o, src):
        raise ValueError(f"{name} must not overlap the training set")
    return o
