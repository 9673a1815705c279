# A model's layers as checked C pointers (csrc/gemm.c's linear forward/backward), so that a
# training step runs its forward and its backward in one call each: the per-op argument checks
# of pynn.ops.linear happen once, when the network is bound, not for every layer of every step.

from libc.stdlib cimport calloc, free


cdef class _Network:
    """Dense layers bound to their parameter, gradient and activation buffers for one batch size
    (internal: `Sequential` builds these around its own buffers).

    forward(x): acts[i] = act_i(acts[i-1] . W_i + b_i), acts[-1] being x.
    backward(x): from deltas[-1] (the loss gradient at the outputs), every layer's dW and db
    (overwritten) and the deltas of the hidden layers; the input's gradient is not computed.
    """
    cdef list keep            # every array pointed to, kept alive
    cdef int n_layers
    cdef bint f32
    cdef pn_size rows
    cdef pn_size *dims        # n_layers + 1 feature counts
    cdef int *act
    cdef double *alpha
    cdef void **ptr           # per layer: W, b, dW, db, act, delta (6 pointers)

    def __cinit__(self):
        self.dims = NULL
        self.act = NULL
        self.alpha = NULL
        self.ptr = NULL

    def __dealloc__(self):
        free(self.dims)
        free(self.act)
        free(self.alpha)
        free(self.ptr)

    def __init__(self, list weights, list biases, list dweights, list dbiases, list activations,
                 list alphas, list acts, list deltas):
        cdef int n = len(weights), i
        if n < 1 or not all(len(v) == n for v in (biases, dweights, dbiases, activations,
                                                   alphas, acts, deltas)):
            raise ValueError("one W, b, dW, db, activation, alpha, act and delta per layer")
        cdef cnp.ndarray w0 = _operand(weights[0], "weights[0]", -1)
        cdef int typenum = cnp.PyArray_TYPE(w0)
        self.n_layers = 0  # usable only once every check below has passed
        self.f32 = typenum == cnp.NPY_FLOAT32
        cdef cnp.ndarray a0 = _operand(acts[0], "acts[0]", typenum)
        _check_2d(a0, "acts[0]", "(rows, out)")
        self.rows = a0.shape[0]
        free(self.dims)  # __init__ called again on the same object: start over
        free(self.act)
        free(self.alpha)
        free(self.ptr)
        self.dims = <pn_size *>calloc(n + 1, sizeof(pn_size))
        self.act = <int *>calloc(n, sizeof(int))
        self.alpha = <double *>calloc(n, sizeof(double))
        self.ptr = <void **>calloc(6 * n, sizeof(void *))
        if not (self.dims and self.act and self.alpha and self.ptr):
            raise MemoryError()
        self.keep = []
        self.dims[0] = w0.shape[0]
        cdef cnp.ndarray arr, W
        cdef pn_size fan_in, fan_out
        for i in range(n):
            W = _operand(weights[i], f"weights[{i}]", typenum)
            _check_2d(W, f"weights[{i}]", "(in, out)")
            fan_in, fan_out = W.shape[0], W.shape[1]
            if fan_in != self.dims[i]:
                raise ValueError(f"weights[{i}] must have {self.dims[i]} rows, got "
                                 f"{_shape_str((<object>W).shape)}")
            self.dims[i + 1] = fan_out
            # (name, array, ndim, shape) of the five arrays after W
            named = (("biases", biases[i], 1, fan_out, 0),
                     ("dweights", dweights[i], 2, fan_in, fan_out),
                     ("dbiases", dbiases[i], 1, fan_out, 0),
                     ("acts", acts[i], 2, self.rows, fan_out),
                     ("deltas", deltas[i], 2, self.rows, fan_out))
            self.ptr[6 * i] = cnp.PyArray_DATA(W)
            self.keep.append(W)
            for k in range(5):
                name, given, ndim, d0, d1 = named[k]
                arr = _gemm_out(given, f"{name}[{i}]", ndim, d0, d1, typenum, [])
                self.ptr[6 * i + 1 + k] = cnp.PyArray_DATA(arr)
                self.keep.append(arr)
            self.act[i] = _act_id(activations[i], "activation", False)
            self.alpha[i] = _alpha(alphas[i])
        self.n_layers = n

    cdef const void *_input(self, object x) except NULL:
        if self.n_layers == 0:
            raise RuntimeError("this _Network was not built (its __init__ failed)")
        cdef cnp.ndarray X = _operand(x, "x", cnp.NPY_FLOAT32 if self.f32 else cnp.NPY_FLOAT64)
        _check_2d(X, "x", "(rows, in)")
        if X.shape[0] != self.rows or X.shape[1] != self.dims[0]:
            raise ValueError(f"x must have shape {(self.rows, self.dims[0])}, got "
                             f"{_shape_str((<object>X).shape)}")
        return cnp.PyArray_DATA(X)

    def forward(self, x):
        """Every layer's output into acts (x: (rows, in_features), C-contiguous)."""
        cdef const void *a = self._input(x)
        cdef int i, rc = 0
        cdef void **p = self.ptr
        with nogil:
            for i in range(self.n_layers):
                if self.f32:
                    rc = pn_linear_forward_f32(<float *>p[6 * i + 4], <const float *>a,
                                               <const float *>p[6 * i],
                                               <const float *>p[6 * i + 1], self.rows,
                                               self.dims[i], self.dims[i + 1], self.act[i],
                                               <float>self.alpha[i])
                else:
                    rc = pn_linear_forward_f64(<double *>p[6 * i + 4], <const double *>a,
                                               <const double *>p[6 * i],
                                               <const double *>p[6 * i + 1], self.rows,
                                               self.dims[i], self.dims[i + 1], self.act[i],
                                               self.alpha[i])
                if rc != 0:
                    break
                a = p[6 * i + 4]
        if rc != 0:
            raise MemoryError("could not allocate the matrix-multiply packing buffers")

    def backward(self, x, dx=None):
        """Gradients of every layer from deltas[-1] (x: the forward's input); with `dx`
        (rows, in_features), the gradient at the input too (a layer comes before this chain)."""
        cdef const void *x0 = self._input(x)
        cdef const void *xin
        cdef void *dx0 = NULL
        cdef int i, rc = 0
        cdef void **p = self.ptr
        if dx is not None:
            dx0 = cnp.PyArray_DATA(_gemm_out(dx, "dx", 2, self.rows, self.dims[0],
                                             cnp.NPY_FLOAT32 if self.f32 else cnp.NPY_FLOAT64,
                                             []))
        with nogil:
            for i in range(self.n_layers - 1, -1, -1):
                xin = p[6 * (i - 1) + 4] if i > 0 else x0
                if self.f32:
                    rc = pn_linear_backward_f32(
                        <float *>p[6 * (i - 1) + 5] if i > 0 else <float *>dx0,
                        <float *>p[6 * i + 2],
                        <float *>p[6 * i + 3], <const float *>xin, <const float *>p[6 * i],
                        <const float *>p[6 * i + 4], <const float *>p[6 * i + 5], self.rows,
                        self.dims[i], self.dims[i + 1], self.act[i], <float>self.alpha[i], 0)
                else:
                    rc = pn_linear_backward_f64(
                        <double *>p[6 * (i - 1) + 5] if i > 0 else <double *>dx0,
                        <double *>p[6 * i + 2],
                        <double *>p[6 * i + 3], <const double *>xin, <const double *>p[6 * i],
                        <const double *>p[6 * i + 4], <const double *>p[6 * i + 5], self.rows,
                        self.dims[i], self.dims[i + 1], self.act[i], self.alpha[i], 0)
                if rc != 0:
                    break
        if rc != 0:
            raise MemoryError("could not allocate the matrix-multiply packing buffers")
