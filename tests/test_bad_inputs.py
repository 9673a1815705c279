"""A table-driven corpus of bad inputs to every public entry point (issue 7).

Each row builds fresh arguments, calls one entry point and expects a TypeError or ValueError
whose message names the offending argument. Every array passed in is compared bitwise with a
copy taken before the call: a rejected call changes nothing. A second table holds inputs that
are *accepted by copy* (strided, negative-stride, Fortran-ordered, broadcast, misaligned views):
their results must equal those of a contiguous copy, never a misread of the memory.

The corpus grows with the library: rows for the model layer, save/load, the command line and the
scikit-learn estimators live in the files that test those layers' other behaviour when they are
too entangled with fixtures to be rows here (tests/test_files.py for hostile model files).
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import pynn
from pynn import ops

F32, F64 = np.float32, np.float64


# ---- helpers -------------------------------------------------------------------------------------
def _ro(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def _misaligned(shape, dtype) -> np.ndarray:
    """A writeable array whose data pointer is off by one byte (never aligned)."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    buf = np.zeros(n * dtype.itemsize + 1, np.uint8)
    arr = np.frombuffer(buf[1:].data, dtype=dtype, count=n).reshape(shape)
    assert not arr.flags.aligned
    arr[...] = np.arange(n, dtype=dtype).reshape(shape) / 7
    return arr


def _x(shape=(5, 7), dtype=F32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _labels(n=5, c=7):
    return np.arange(n) % c


def _arrays(obj) -> list:
    """Every ndarray inside obj (args tuples, kwargs dicts, lists)."""
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, dict):
        return [a for v in obj.values() for a in _arrays(v)]
    if isinstance(obj, (list, tuple)):
        return [a for v in obj for a in _arrays(v)]
    return []


@dataclass
class Bad:
    """One bad call: build() -> (function, args, kwargs); it must raise `exc` matching `match`."""

    id: str
    build: Callable[[], tuple]
    exc: type | tuple
    match: str


def _call(fn, *args, **kwargs):
    return fn, args, kwargs


def _given(make, build):
    """A row whose arguments share one array: build(make()) when the row runs."""
    return lambda: build(make())


# ---- pynn.ops --------------------------------------------------------------------------------------
x57, w73 = (5, 7), (7, 3)

OPS_CASES = [
    # wrong dtypes: int, bool, complex, object, float16, strings, byte-swapped
    Bad("matmul-int", lambda: _call(ops.matmul, np.ones(x57, int), _x(w73)), TypeError, r"^a .*int64"),
    Bad("matmul-bool", lambda: _call(ops.matmul, _x(x57), np.ones(w73, bool)), TypeError, r"^b .*bool"),
    Bad("matmul-complex", lambda: _call(ops.matmul, _x(x57).astype(complex), _x(w73)), TypeError, r"^a .*complex"),
    Bad("matmul-object", lambda: _call(ops.matmul, np.empty(x57, object), _x(w73)), TypeError, r"^a .*object"),
    Bad("matmul-float16", lambda: _call(ops.matmul, _x(x57, np.float16), _x(w73)), TypeError, r"^a .*float16"),
    Bad("matmul-str", lambda: _call(ops.matmul, "abc", _x(w73)), TypeError, r"^a "),
    Bad("matmul-none", lambda: _call(ops.matmul, None, _x(w73)), TypeError, r"^a "),
    Bad("matmul-ragged", lambda: _call(ops.matmul, [[1.0], [1.0, 2.0]], _x(w73)), TypeError, r"^a "),
    Bad("matmul-byteswapped", lambda: _call(ops.matmul, _x(x57).astype(">f4"), _x(w73)), TypeError, r"^a .*>f4"),
    Bad("matmul-mixed-dtypes", lambda: _call(ops.matmul, _x(x57), _x(w73, F64)), TypeError, r"^b .*float32"),
    Bad("linear-int-bias", lambda: _call(ops.linear, _x(x57), _x(w73), np.ones(3, int)), TypeError, r"^b "),
    Bad("activation-int", lambda: _call(ops.activation, "relu", np.ones(x57, np.int32)), TypeError, r"^x .*int32"),
    Bad("activation-complex", lambda: _call(ops.activation, "tanh", np.ones(x57, complex)), TypeError, r"^x .*complex"),
    Bad("softmax-float16", lambda: _call(ops.softmax, _x(x57, np.float16)), TypeError, r"^x .*float16"),
    Bad("bias_grad-bool", lambda: _call(ops.bias_grad, np.ones(x57, bool)), TypeError, r"^dz .*bool"),
    Bad("mse-int-pred", lambda: _call(ops.mse, np.ones(x57, int), _x(x57)), TypeError, r"^pred "),
    Bad("mse-f64-target-f32-pred", lambda: _call(ops.mse, _x(x57), _x(x57, F64)), TypeError, r"^target .*float32"),
    Bad("xent-bool-labels", lambda: _call(ops.softmax_cross_entropy, _x(x57), np.ones(5, bool)), TypeError, r"^target "),
    Bad("xent-object-labels", lambda: _call(ops.softmax_cross_entropy, _x(x57), np.array([0, 1, 2, 3, None])), TypeError, r"^target "),
    Bad("xent-complex-weight", lambda: _call(ops.softmax_cross_entropy, _x(x57), _labels(), sample_weight=np.ones(5, complex)), TypeError, r"^sample_weight "),
    Bad("sgd-params-list", lambda: _call(ops.sgd_step, [1.0, 2.0], _x((2,)), None, lr=0.1), TypeError, r"^params "),
    Bad("sgd-params-int", lambda: _call(ops.sgd_step, np.ones(4, int), np.ones(4, int), None, lr=0.1), TypeError, r"^params .*int64"),
    Bad("sgd-grads-f64", lambda: _call(ops.sgd_step, _x((4,)), _x((4,), F64), None, lr=0.1), TypeError, r"^grads .*float32"),
    Bad("adam-m-f64", lambda: _call(ops.adam_step, _x((4,)), _x((4,)), np.zeros(4), np.zeros(4, F32), step=1), TypeError, r"^m .*float32"),
    # wrong ndim / shape / mismatched batch sizes
    Bad("matmul-1d", lambda: _call(ops.matmul, _x((7,)), _x(w73)), ValueError, r"^a must be 2-D"),
    Bad("matmul-3d", lambda: _call(ops.matmul, _x((2, 5, 7)), _x(w73)), ValueError, r"^a must be 2-D"),
    Bad("matmul-inner-mismatch", lambda: _call(ops.matmul, _x(x57), _x((6, 3))), ValueError, r"inner dimensions"),
    Bad("matmul-trans-mismatch", lambda: _call(ops.matmul, _x(x57), _x(w73), trans_b=True), ValueError, r"inner dimensions"),
    Bad("linear-w-rows", lambda: _call(ops.linear, _x(x57), _x((6, 3))), ValueError, r"^w must have shape"),
    Bad("linear-bias-2d", lambda: _call(ops.linear, _x(x57), _x(w73), _x((1, 3))), ValueError, r"^b must have shape \(3,\)"),
    Bad("linear-bias-len", lambda: _call(ops.linear, _x(x57), _x(w73), _x((4,))), ValueError, r"^b must have shape \(3,\)"),
    Bad("linear_backward-y-batch", lambda: _call(ops.linear_backward, _x(x57), _x(w73), _x((4, 3)), _x((5, 3))), ValueError, r"^y must have shape \(5, 3\)"),
    Bad("linear_backward-dy-batch", lambda: _call(ops.linear_backward, _x(x57), _x(w73), _x((5, 3)), _x((6, 3))), ValueError, r"^dy must have shape \(5, 3\)"),
    Bad("activation_backward-shape", lambda: _call(ops.activation_backward, "relu", _x(x57), _x((4, 7))), ValueError, r"^dy must have the shape"),
    Bad("activation-0d", lambda: _call(ops.activation, "relu", np.float32(1.0)), ValueError, r"^x must have at least 1"),
    Bad("bias_grad-1d", lambda: _call(ops.bias_grad, _x((7,))), ValueError, r"^dz must be 2-D"),
    Bad("xent-1d-logits", lambda: _call(ops.softmax_cross_entropy, _x((7,)), np.array([0])), ValueError, r"^logits must be 2-D"),
    Bad("xent-labels-batch", lambda: _call(ops.softmax_cross_entropy, _x(x57), _labels(4)), ValueError, r"^target .*\(5,\)"),
    Bad("xent-labels-2d-int", lambda: _call(ops.softmax_cross_entropy, _x(x57), np.zeros((5, 7), int)), ValueError, r"^target .*\(5,\)"),
    Bad("xent-probs-shape", lambda: _call(ops.softmax_cross_entropy, _x(x57), _x((5, 6))), ValueError, r"^target must be"),
    Bad("kl-shape", lambda: _call(ops.kl_divergence, _x(x57), np.abs(_x((5, 6)))), ValueError, r"^target must be"),
    Bad("mse-3d", lambda: _call(ops.mse, _x((2, 2, 2)), _x((2, 2, 2))), ValueError, r"^pred must be 1-D"),
    Bad("mse-batch", lambda: _call(ops.mse, _x(x57), _x((4, 7))), ValueError, r"^target must have the shape of pred"),
    Bad("bce-batch", lambda: _call(ops.binary_cross_entropy, _x((5,)), _x((6,))), ValueError, r"^target must have the shape of logits"),
    Bad("weights-batch", lambda: _call(ops.mse, _x(x57), _x(x57), sample_weight=np.ones(4)), ValueError, r"^sample_weight must have shape \(5,\)"),
    Bad("sgd-grads-shape", lambda: _call(ops.sgd_step, _x((4,)), _x((5,)), None, lr=0.1), ValueError, r"^grads must have the shape"),
    Bad("sgd-velocity-shape", lambda: _call(ops.sgd_step, _x((4,)), _x((4,)), np.zeros(5, F32), lr=0.1, momentum=0.9), ValueError, r"^velocity must have the shape"),
    Bad("adam-v-shape", lambda: _call(ops.adam_step, _x((4,)), _x((4,)), np.zeros(4, F32), np.zeros((2, 2), F32), step=1), ValueError, r"^v must have the shape"),
    # empty arrays and zero-size dimensions (where an empty result is meaningless)
    Bad("activation-empty", lambda: _call(ops.activation, "relu", np.ones((0, 3), F32)), ValueError, r"^x must not be empty"),
    Bad("softmax-zero-cols", lambda: _call(ops.softmax, np.ones((3, 0), F32)), ValueError, r"^x must not be empty"),
    Bad("activation_backward-empty", lambda: _call(ops.activation_backward, "tanh", np.ones((0,), F32), np.ones((0,), F32)), ValueError, r"^y must not be empty"),
    Bad("bias_grad-empty", lambda: _call(ops.bias_grad, np.ones((0, 3), F32)), ValueError, r"^dz must not be empty"),
    Bad("xent-zero-classes", lambda: _call(ops.softmax_cross_entropy, np.ones((3, 0), F32), np.zeros(3, int)), ValueError, r"^logits must not be empty"),
    Bad("xent-empty-batch", lambda: _call(ops.softmax_cross_entropy, np.ones((0, 3), F32), np.zeros(0, int)), ValueError, r"^logits must not be empty"),
    Bad("mse-empty", lambda: _call(ops.mse, np.ones((0,), F32), np.ones((0,), F32)), ValueError, r"^pred must not be empty"),
    Bad("hinge-empty", lambda: _call(ops.hinge, np.ones((0, 2), F32), np.ones((0, 2), F32)), ValueError, r"^scores must not be empty"),
    Bad("sgd-empty", lambda: _call(ops.sgd_step, np.ones(0, F32), np.ones(0, F32), None, lr=0.1), ValueError, r"^params must not be empty"),
    # out= and in-place buffers: read-only, strided, wrong shape/dtype, aliased with an input
    Bad("matmul-out-readonly", lambda: _call(ops.matmul, _x(x57), _x(w73), out=_ro(np.zeros((5, 3), F32))), ValueError, r"^out must be writeable"),
    Bad("matmul-out-fortran", lambda: _call(ops.matmul, _x(x57), _x(w73), out=np.zeros((5, 3), F32, order="F")), ValueError, r"^out must be C-contiguous"),
    Bad("matmul-out-strided", lambda: _call(ops.matmul, _x(x57), _x(w73), out=np.zeros((5, 6), F32)[:, ::2]), ValueError, r"^out must be C-contiguous"),
    Bad("matmul-out-misaligned", lambda: _call(ops.matmul, _x(x57), _x(w73), out=_misaligned((5, 3), F32)), ValueError, r"^out must be C-contiguous and aligned"),
    Bad("matmul-out-shape", lambda: _call(ops.matmul, _x(x57), _x(w73), out=np.zeros((3, 5), F32)), ValueError, r"^out must have shape \(5, 3\)"),
    Bad("matmul-out-dtype", lambda: _call(ops.matmul, _x(x57), _x(w73), out=np.zeros((5, 3), F64)), TypeError, r"^out must have dtype float32"),
    Bad("matmul-out-list", lambda: _call(ops.matmul, _x(x57), _x(w73), out=[[0.0] * 3] * 5), TypeError, r"^out must be a numpy.ndarray"),
    Bad("matmul-out-aliases-a", _given(lambda: _x((7, 7)), lambda a: _call(ops.matmul, a, np.eye(7, dtype=F32), out=a)), ValueError, r"^out must not overlap"),
    Bad("linear-out-aliases-x", _given(lambda: _x((5, 8)), lambda a: _call(ops.linear, a[:, :4], _x((4, 4)), out=a[:, 4:8])), ValueError, r"^out must (not overlap|be C-contiguous)"),
    Bad("linear-out-aliases-w", _given(lambda: _x((4, 4)), lambda w: _call(ops.linear, _x((4, 4)), w, out=w)), ValueError, r"^out must not overlap"),
    Bad("matmul-accumulate-no-out", lambda: _call(ops.matmul, _x(x57), _x(w73), accumulate=True), ValueError, r"accumulate=True needs out="),
    Bad("linear_backward-dw-readonly", lambda: _call(ops.linear_backward, _x(x57), _x(w73), _x((5, 3)), _x((5, 3)), dw=_ro(np.zeros(w73, F32))), ValueError, r"^dw must be writeable"),
    Bad("linear_backward-dx-aliases-dw", _given(lambda: np.zeros((4, 4), F32), lambda d: _call(ops.linear_backward, _x((3, 4)), _x((4, 4)), _x((3, 4)), _x((3, 4)), dx=d[:3], dw=d)), ValueError, r"^dx must not overlap"),
    Bad("linear_backward-dx-without-need", lambda: _call(ops.linear_backward, _x(x57), _x(w73), _x((5, 3)), _x((5, 3)), need_dx=False, dx=np.zeros(x57, F32)), ValueError, r"dx= was given but need_dx=False"),
    Bad("activation-out-readonly", lambda: _call(ops.activation, "relu", _x(x57), out=_ro(np.zeros(x57, F32))), ValueError, r"^out must be writeable"),
    Bad("activation-inplace-readonly", _given(lambda: _ro(_x(x57)), lambda a: _call(ops.activation, "relu", a, out=a)), ValueError, r"^out must be writeable"),
    Bad("activation-out-partial-overlap", _given(lambda: _x((10,)), lambda a: _call(ops.activation, "relu", a[:8], out=a[2:10])), ValueError, r"^out must not overlap"),
    Bad("xent-out-aliases-logits", _given(lambda: _x(x57), lambda a: _call(ops.softmax_cross_entropy, a, _labels(), out=a)), ValueError, r"^out must not overlap"),
    Bad("sgd-params-readonly", lambda: _call(ops.sgd_step, _ro(_x((4,))), _x((4,)), None, lr=0.1), ValueError, r"^params must be writeable"),
    Bad("sgd-params-strided", lambda: _call(ops.sgd_step, _x((8,))[::2], _x((4,)), None, lr=0.1), ValueError, r"^params must be C-contiguous"),
    Bad("sgd-params-negative-stride", lambda: _call(ops.sgd_step, _x((4,))[::-1], _x((4,)), None, lr=0.1), ValueError, r"^params must be C-contiguous"),
    Bad("sgd-params-aliases-grads", _given(lambda: _x((4,)), lambda p: _call(ops.sgd_step, p, p, None, lr=0.1)), ValueError, r"^params and grads must not overlap"),
    Bad("adam-m-aliases-v", _given(lambda: np.zeros(4, F32), lambda s: _call(ops.adam_step, _x((4,)), _x((4,)), s, s, step=1)), ValueError, r"^m and v must not overlap"),
    Bad("adam-v-readonly", lambda: _call(ops.adam_step, _x((4,)), _x((4,)), np.zeros(4, F32), _ro(np.zeros(4, F32)), step=1), ValueError, r"^v must be writeable"),
    # labels out of range, negative, non-integer; invalid targets and weights
    Bad("xent-label-too-big", lambda: _call(ops.softmax_cross_entropy, _x(x57), np.array([0, 1, 2, 3, 7])), ValueError, r"^target labels must be in \[0, 7\).* 7$"),
    Bad("xent-label-negative", lambda: _call(ops.softmax_cross_entropy, _x(x57), np.array([0, -1, 2, 3, 4])), ValueError, r"^target labels must be in \[0, 7\).* -1$"),
    Bad("xent-label-uint64-huge", lambda: _call(ops.softmax_cross_entropy, _x(x57), np.array([0, 1, 2, 3, 2**63], np.uint64)), ValueError, r"^target labels must be in"),
    Bad("xent-label-int8-negative", lambda: _call(ops.softmax_cross_entropy, _x(x57), np.array([0, 1, 2, 3, -128], np.int8)), ValueError, r"^target labels .* -128$"),
    Bad("xent-label-float", lambda: _call(ops.softmax_cross_entropy, _x(x57), np.array([0.0, 1.0, 2.0, 3.0, 4.0])), (TypeError, ValueError), r"^target "),
    Bad("hinge-target-2", lambda: _call(ops.hinge, _x(x57), np.full(x57, 2, F32)), ValueError, r"^target must hold -1 or 1"),
    Bad("hinge-target-nan", lambda: _call(ops.hinge, _x(x57), np.full(x57, np.nan, F32)), ValueError, r"^target must hold -1 or 1"),
    Bad("kl-negative-probability", lambda: _call(ops.kl_divergence, _x(x57), -np.abs(_x(x57))), ValueError, r"^target must hold probabilities >= 0"),
    Bad("weights-negative", lambda: _call(ops.mse, _x(x57), _x(x57), sample_weight=[1, 1, -1, 1, 1]), ValueError, r"^sample_weight must be >= 0"),
    Bad("weights-all-zero", lambda: _call(ops.bce if False else ops.binary_cross_entropy, _x(x57), _x(x57), sample_weight=np.zeros(5)), ValueError, r"^sample_weight must have a positive sum"),
    Bad("weights-nan", lambda: _call(ops.softmax_cross_entropy, _x(x57), _labels(), sample_weight=[1, np.nan, 1, 1, 1]), ValueError, r"^sample_weight must be finite"),
    Bad("weights-inf", lambda: _call(ops.hinge, _x(x57), np.ones(x57, F32), sample_weight=[1, np.inf, 1, 1, 1]), ValueError, r"^sample_weight must be finite"),
    Bad("weights-overflow-float32", lambda: _call(ops.softmax_cross_entropy, _x(x57), _labels(), sample_weight=[1e300] * 5), ValueError, r"^sample_weight must fit in float32"),
    # bad hyperparameters and unknown names
    Bad("activation-unknown-name", lambda: _call(ops.activation, "gelu", _x(x57)), ValueError, r"^name must be one of .*'gelu'"),
    Bad("activation-name-case", lambda: _call(ops.activation, "ReLU", _x(x57)), ValueError, r"^name must be one of"),
    Bad("activation-name-none", lambda: _call(ops.activation, None, _x(x57)), TypeError, r"^name must be a str"),
    Bad("activation_backward-step", lambda: _call(ops.activation_backward, "step", _x(x57), _x(x57)), ValueError, r"^name 'step' has no backward"),
    Bad("linear-unknown-activation", lambda: _call(ops.linear, _x(x57), _x(w73), activation="swish"), ValueError, r"^activation must be one of .*'swish'"),
    Bad("linear-activation-int", lambda: _call(ops.linear, _x(x57), _x(w73), activation=3), TypeError, r"^activation must be a str"),
    Bad("linear_backward-step", lambda: _call(ops.linear_backward, _x(x57), _x(w73), _x((5, 3)), _x((5, 3)), activation="step"), ValueError, r"^activation 'step' has no backward"),
    Bad("leaky-alpha-negative", lambda: _call(ops.activation, "leaky_relu", _x(x57), alpha=-0.1), ValueError, r"^alpha must be in \[0"),
    Bad("linear-alpha-nan", lambda: _call(ops.linear, _x(x57), _x(w73), activation="leaky_relu", alpha=float("nan")), ValueError, r"^alpha must be finite"),
    Bad("linear-alpha-str", lambda: _call(ops.linear, _x(x57), _x(w73), alpha="x"), TypeError, r"^alpha must be a real number"),
    Bad("sgd-lr-negative", lambda: _call(ops.sgd_step, _x((4,)), _x((4,)), None, lr=-0.1), ValueError, r"^lr must be in \[0"),
    Bad("sgd-lr-inf", lambda: _call(ops.sgd_step, _x((4,)), _x((4,)), None, lr=np.inf), ValueError, r"^lr must be finite"),
    Bad("sgd-lr-complex", lambda: _call(ops.sgd_step, _x((4,)), _x((4,)), None, lr=1j), TypeError, r"^lr must be a real number"),
    Bad("sgd-lr-string", lambda: _call(ops.sgd_step, _x((4,)), _x((4,)), None, lr="0.1"), TypeError, r"^lr must be a real number, got str"),
    Bad("linear-alpha-bytes", lambda: _call(ops.linear, _x(x57), _x(w73), alpha=b"0.1"), TypeError, r"^alpha must be a real number"),
    Bad("sgd-lr-array", lambda: _call(ops.sgd_step, _x((4,)), _x((4,)), None, lr=np.array([0.1, 0.2])), TypeError, r"^lr must be a real number"),
    Bad("sgd-momentum-negative", lambda: _call(ops.sgd_step, _x((4,)), _x((4,)), np.zeros(4, F32), lr=0.1, momentum=-0.5), ValueError, r"^momentum must be in \[0"),
    Bad("sgd-momentum-without-velocity", lambda: _call(ops.sgd_step, _x((4,)), _x((4,)), None, lr=0.1, momentum=0.9), ValueError, r"^velocity must be an array"),
    Bad("sgd-nesterov-int", lambda: _call(ops.sgd_step, _x((4,)), _x((4,)), np.zeros(4, F32), lr=0.1, momentum=0.9, nesterov=1), TypeError, r"^nesterov must be a bool"),
    Bad("sgd-nesterov-no-momentum", lambda: _call(ops.sgd_step, _x((4,)), _x((4,)), None, lr=0.1, nesterov=True), ValueError, r"^nesterov=True needs momentum > 0"),
    Bad("sgd-weight-decay-negative", lambda: _call(ops.sgd_step, _x((4,)), _x((4,)), None, lr=0.1, weight_decay=-1), ValueError, r"^weight_decay must be in \[0"),
    Bad("adam-step-0", lambda: _call(ops.adam_step, _x((4,)), _x((4,)), np.zeros(4, F32), np.zeros(4, F32), step=0), ValueError, r"^step must be >= 1"),
    Bad("adam-step-float", lambda: _call(ops.adam_step, _x((4,)), _x((4,)), np.zeros(4, F32), np.zeros(4, F32), step=1.5), TypeError, r"^step must be an int"),
    Bad("adam-step-bool", lambda: _call(ops.adam_step, _x((4,)), _x((4,)), np.zeros(4, F32), np.zeros(4, F32), step=True), TypeError, r"^step must be an int"),
    Bad("adam-beta1-one", lambda: _call(ops.adam_step, _x((4,)), _x((4,)), np.zeros(4, F32), np.zeros(4, F32), step=1, beta1=1.0), ValueError, r"^beta1 and beta2 must be in \[0, 1\)"),
    Bad("adam-beta2-negative", lambda: _call(ops.adam_step, _x((4,)), _x((4,)), np.zeros(4, F32), np.zeros(4, F32), step=1, beta2=-0.1), ValueError, r"^beta2 must be in"),
    Bad("adam-eps-negative", lambda: _call(ops.adam_step, _x((4,)), _x((4,)), np.zeros(4, F32), np.zeros(4, F32), step=1, eps=-1e-8), ValueError, r"^eps must be in"),
    # sizes whose result could never be allocated: a clean error before C runs (no crash)
    Bad("matmul-result-too-big", lambda: _call(ops.matmul, np.ones((2**40, 0), F32), np.ones((0, 2**40), F32)), (ValueError, MemoryError), r"."),
    Bad("activation-broadcast-too-big", lambda: _call(ops.activation, "relu", np.broadcast_to(np.float32(1), (2**42,))), (ValueError, MemoryError), r"."),
    # process-wide settings
    Bad("set_num_threads-0", lambda: _call(pynn.set_num_threads, 0), ValueError, r"^n must be >= 1"),
    Bad("set_num_threads-float", lambda: _call(pynn.set_num_threads, 2.0), TypeError, r"^n must be an int"),
    Bad("set_isa-unknown", lambda: _call(pynn.set_isa, "sse2"), ValueError, r"^isa must be one of"),
]


# ---- the model layer: Dense, Sequential, optimizers, fit/predict/evaluate, save ---------------
rng_ = np.random.default_rng(0)
XM = rng_.standard_normal((20, 4))
YM = np.arange(20) % 3


def _model(out=3):
    return pynn.Sequential([pynn.Dense(4, 5, "relu"), pynn.Dense(5, out)], seed=0)


def _fitted():
    model = _model()
    model.fit(XM, YM, loss="cross_entropy", optimizer=pynn.SGD(0.1, momentum=0.9), epochs=1)
    return model


def _fit(*args, model=None, **kwargs):
    """A bad fit call on a model that was trained once (so its optimizer has state too)."""
    kwargs.setdefault("loss", "cross_entropy")
    model = model or _fitted()
    return model.fit, args, kwargs


MODEL_CASES = [
    Bad("Dense-zero-units", lambda: _call(pynn.Dense, 0, 3), ValueError, r"^in_features must be >= 1"),
    Bad("Dense-str-units", lambda: _call(pynn.Dense, "3", 2), TypeError, r"^in_features must be an int"),
    Bad("Dense-float-units", lambda: _call(pynn.Dense, 3, 2.5), TypeError, r"^out_features must be an int"),
    Bad("Dense-unknown-activation", lambda: _call(pynn.Dense, 3, 2, "gelu"), ValueError, r"^activation must be one of"),
    Bad("Dense-negative-alpha", lambda: _call(pynn.Dense, 3, 2, "leaky_relu", alpha=-1), ValueError, r"^alpha must be"),
    Bad("Dense-unknown-init", lambda: _call(pynn.Dense, 3, 2, init="bogus"), ValueError, r"^init must be one of"),
    Bad("Sequential-empty", lambda: _call(pynn.Sequential, []), ValueError, r"^layers must contain"),
    Bad("Sequential-mismatch", lambda: _call(pynn.Sequential, [pynn.Dense(3, 4), pynn.Dense(5, 2)]), ValueError, r"^layers\[1\] takes 5 inputs"),
    Bad("Sequential-not-layers", lambda: _call(pynn.Sequential, ["dense"]), TypeError, r"^layers\[0\] must be a pynn.Dense"),
    Bad("Sequential-float16", lambda: _call(pynn.Sequential, [pynn.Dense(3, 4)], dtype="float16"), ValueError, r"^dtype must be"),
    Bad("Sequential-negative-seed", lambda: _call(pynn.Sequential, [pynn.Dense(3, 4)], seed=-1), (TypeError, ValueError), r"^seed must be"),
    Bad("SGD-lr-zero", lambda: _call(pynn.SGD, 0), ValueError, r"^lr must be > 0"),
    Bad("SGD-lr-negative", lambda: _call(pynn.SGD, -0.1), ValueError, r"^lr must be > 0"),
    Bad("SGD-lr-nan", lambda: _call(pynn.SGD, float("nan")), ValueError, r"^lr must be finite"),
    Bad("SGD-lr-string", lambda: _call(pynn.SGD, "0.1"), TypeError, r"^lr must be a real number"),
    Bad("SGD-momentum-one", lambda: _call(pynn.SGD, 0.1, momentum=1.0), ValueError, r"^momentum must be in \[0, 1\)"),
    Bad("SGD-momentum-negative", lambda: _call(pynn.SGD, 0.1, momentum=-0.1), ValueError, r"^momentum must be in \[0, 1\)"),
    Bad("Adam-eps-negative", lambda: _call(pynn.Adam, eps=-1), ValueError, r"^eps must be > 0"),
    Bad("fit-X-complex", lambda: _fit(XM.astype(complex), YM), TypeError, r"^X must hold real numbers"),
    Bad("fit-X-object", lambda: _fit(XM.astype(object), YM), TypeError, r"^X must hold real numbers"),
    Bad("fit-X-strings", lambda: _fit(XM.astype(str), YM), TypeError, r"^X must hold real numbers"),
    Bad("fit-X-1d", lambda: _fit(XM[0], YM), ValueError, r"^X must be 2-D"),
    Bad("fit-X-3d", lambda: _fit(XM[None], YM), ValueError, r"^X must be 2-D"),
    Bad("fit-X-features", lambda: _fit(XM[:, :3], YM), ValueError, r"^X must have 4 features"),
    Bad("fit-X-empty", lambda: _fit(XM[:0], YM[:0]), ValueError, r"^X must contain at least one sample"),
    Bad("fit-X-nan", lambda: _fit(np.where(XM > 1, np.nan, XM), YM), ValueError, r"^X contains NaN or inf"),
    Bad("fit-X-inf", lambda: _fit(np.where(XM > 1, np.inf, XM), YM), ValueError, r"^X contains NaN or inf"),
    Bad("fit-batch-mismatch", lambda: _fit(XM, YM[:10]), ValueError, r"^y must have 20 labels"),
    Bad("fit-label-out-of-range", lambda: _fit(XM, YM + 1), ValueError, r"^y: labels must be in \[0, 3\)"),
    Bad("fit-label-negative", lambda: _fit(XM, YM - 1), ValueError, r"^y: labels must be in \[0, 3\)"),
    Bad("fit-label-non-integer", lambda: _fit(XM, YM + 0.5), ValueError, r"^y must hold integer class labels"),
    Bad("fit-label-nan", lambda: _fit(XM, np.where(YM == 0, np.nan, YM)), ValueError, r"^y contains NaN or inf"),
    Bad("fit-label-strings", lambda: _fit(XM, YM.astype(str)), TypeError, r"^y must be a real numeric array"),
    Bad("fit-too-few-classes", lambda: _fit(XM, YM, model=_model(out=1)), ValueError, r"cross_entropy needs at least 2 outputs"),
    Bad("fit-mse-target-nan", lambda: _fit(XM, np.full((20, 3), np.nan), loss="mse"), ValueError, r"^y contains NaN or inf"),
    Bad("fit-mse-target-shape", lambda: _fit(XM, np.ones((20, 2)), loss="mse"), ValueError, r"^y must have shape \(20, 3\)"),
    Bad("fit-hinge-target", lambda: _fit(XM, np.full((20, 3), 2.0), loss="hinge"), ValueError, r"^y: hinge targets must be -1 or 1"),
    Bad("fit-bce-target", lambda: _fit(XM, np.full((20, 3), 2.0), loss="binary_cross_entropy"), ValueError, r"^y: binary_cross_entropy targets must be in \[0, 1\]"),
    Bad("fit-epochs-negative", lambda: _fit(XM, YM, epochs=-1), ValueError, r"^epochs must be >= 0"),
    Bad("fit-batch-size-zero", lambda: _fit(XM, YM, batch_size=0), ValueError, r"^batch_size must be >= 1"),
    Bad("fit-batch-size-float", lambda: _fit(XM, YM, batch_size=1.5), TypeError, r"^batch_size must be an int"),
    Bad("fit-unknown-loss", lambda: _fit(XM, YM, loss="bogus"), ValueError, r"^loss must be one of"),
    Bad("fit-unknown-optimizer", lambda: _fit(XM, YM, optimizer="bogus"), ValueError, r"^optimizer must be one of"),
    Bad("fit-validation-split-one", lambda: _fit(XM, YM, validation_split=1.0), ValueError, r"^validation_split must be in \[0, 1\)"),
    Bad("fit-shuffle-string", lambda: _fit(XM, YM, shuffle="yes"), TypeError, r"^shuffle must be a bool"),
    Bad("fit-weight-negative", lambda: _fit(XM, YM, sample_weight=-np.ones(20)), ValueError, r"^sample_weight must be >= 0"),
    Bad("fit-weight-length", lambda: _fit(XM, YM, sample_weight=np.ones(3)), ValueError, r"^sample_weight must have shape \(20,\)"),
    Bad("fit-validation-data-shape", lambda: _fit(XM, YM, validation_data=(XM[:, :2], YM)), ValueError, r"^validation_data\[0\] \(X_val\) must have 4 features"),
    Bad("predict-before-fit", lambda: _call(_model().predict, XM), ValueError, r"^predict needs to know the loss"),
    Bad("predict-features", lambda: _call(_fitted().predict, XM[:, :2]), ValueError, r"^X must have 4 features"),
    Bad("predict-nan", lambda: _call(_fitted().predict, np.full((2, 4), np.nan)), ValueError, r"^X contains NaN or inf"),
    Bad("predict-complex", lambda: _call(_fitted().predict, XM.astype(complex)), TypeError, r"^X must hold real numbers"),
    Bad("evaluate-labels", lambda: _call(_fitted().evaluate, XM, YM + 5), ValueError, r"^y: labels must be in"),
    Bad("set_weights-count", lambda: _call(_fitted().set_weights, [np.ones((2, 2))]), ValueError, r"^weights must hold 4 arrays"),
    Bad("save-not-a-model", lambda: _call(pynn.save, "model", "unused.npz"), TypeError, r"^model must be a pynn.Sequential"),
]


# ---- datasets helpers and the scikit-learn estimators -------------------------------------------
def _sk(estimator, method="fit", X=XM, y=YM, **kwargs):
    return getattr(estimator, method), (X, y) if method == "fit" else (X,), kwargs


def _sklearn_cases():
    from pynn.sklearn import MLPClassifier, MLPRegressor
    return [
        Bad("sklearn-hidden-zero", lambda: _sk(MLPClassifier(hidden_layer_sizes=(0,))), ValueError, r"hidden_layer_sizes must be > 0"),
        Bad("sklearn-lr-negative", lambda: _sk(MLPClassifier(learning_rate_init=-1)), ValueError, r"'learning_rate_init' parameter"),
        Bad("sklearn-activation", lambda: _sk(MLPClassifier(activation="gelu")), ValueError, r"'activation' parameter"),
        Bad("sklearn-batch-zero", lambda: _sk(MLPClassifier(batch_size=0)), ValueError, r"'batch_size' parameter"),
        Bad("sklearn-momentum", lambda: _sk(MLPClassifier(solver="sgd", momentum=1.5)), ValueError, r"'momentum' parameter"),
        Bad("sklearn-X-nan", lambda: _sk(MLPRegressor(max_iter=2), X=np.where(XM > 1, np.nan, XM)), ValueError, r"Input X contains NaN"),
        Bad("sklearn-y-inf", lambda: _sk(MLPRegressor(max_iter=2), y=np.where(YM > 1, np.inf, YM)), ValueError, r"Input y contains infinity"),
        Bad("sklearn-X-complex", lambda: _sk(MLPClassifier(max_iter=2), X=XM.astype(complex)), ValueError, r"[Cc]omplex"),
        Bad("sklearn-batch-mismatch", lambda: _sk(MLPClassifier(max_iter=2), y=YM[:5]), ValueError, r"inconsistent numbers of samples"),
        Bad("sklearn-predict-unfitted", lambda: _sk(MLPClassifier(), "predict"), ValueError, r"not fitted yet"),
    ]


DATA_CASES = [
    Bad("one_hot-float-labels", lambda: _call(pynn.datasets.one_hot, [0.5]), TypeError, r"^y must hold integer class labels"),
    Bad("one_hot-out-of-range", lambda: _call(pynn.datasets.one_hot, [0, 3], n_classes=2), ValueError, r"^y must be in 0..1"),
    Bad("one_hot-negative", lambda: _call(pynn.datasets.one_hot, [0, -1]), ValueError, r"^y must be in .* found label -1"),
    Bad("train_val_split-fraction", lambda: _call(pynn.datasets.train_val_split, XM, YM, val_fraction=1.5), ValueError, r"^val_fraction must be in \(0, 1\)"),
    Bad("train_val_split-lengths", lambda: _call(pynn.datasets.train_val_split, XM, YM[:5]), ValueError, r"^X and y must have the same number of samples"),
    Bad("standardize-nan", lambda: _call(pynn.datasets.standardize, np.full((3, 2), np.nan)), ValueError, r"^X contains NaN"),
]


ALL_CASES = OPS_CASES + MODEL_CASES + DATA_CASES + _sklearn_cases()


def _model_state(fn) -> list:
    """The arrays of the model (or estimator) a bound method belongs to."""
    owner = getattr(fn, "__self__", None)
    model = getattr(owner, "model_", owner)
    arrays = []
    if isinstance(model, pynn.Sequential):
        arrays.append(model.params)
        if model.optimizer is not None:
            arrays.extend(model.optimizer.state_arrays().values())
    return arrays


def _check_bad(case: Bad) -> None:
    fn, args, kwargs = case.build()
    model_before = [(a, a.copy()) for a in _model_state(fn)]
    epochs = getattr(getattr(fn, "__self__", None), "epochs_trained", None)
    # (the 0-strided views of the "too big" rows are not copied: they are read-only anyway)
    before = [(a, a.copy(), a.flags.writeable) for a in _arrays((args, kwargs))
              if a.nbytes < 1 << 26]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a rejection is an exception, not a warning plus garbage
        with pytest.raises(case.exc) as info:
            fn(*args, **kwargs)
    assert re.search(case.match, str(info.value)), (
        f"{case.id}: message {str(info.value)!r} does not match {case.match!r}")
    for arr, copy, writeable in before:
        assert arr.tobytes() == copy.tobytes(), f"{case.id}: an argument was modified"
        assert arr.flags.writeable == writeable
    for arr, copy in model_before:
        assert arr.tobytes() == copy.tobytes(), f"{case.id}: the model was modified"
    assert getattr(getattr(fn, "__self__", None), "epochs_trained", None) == epochs


@pytest.mark.parametrize("case", MODEL_CASES + DATA_CASES, ids=[c.id for c in MODEL_CASES + DATA_CASES])
def test_model_layer_rejects_bad_input(case):
    _check_bad(case)


@pytest.mark.parametrize("case", _sklearn_cases(), ids=[c.id for c in _sklearn_cases()])
def test_sklearn_estimators_reject_bad_input(case):
    _check_bad(case)


def test_command_line_rejects_bad_input(tmp_path):
    """Unknown commands and options, bad values and bad files: exit status 2 and a usage
    message naming the option, no traceback."""
    import subprocess
    import sys
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04 not really a zip")
    for argv in (["bogus"], ["info", "--bogus"], [], ["train", "--epochs", "-1"],
                 ["train", "--lr", "0"], ["train", "--batch-size", "0"],
                 ["train", "--hidden", "abc"], ["train", "--data", str(tmp_path / "none")],
                 ["evaluate"], ["evaluate", "--model", str(tmp_path / "missing.npz")],
                 ["evaluate", "--model", str(garbage)]):
        out = subprocess.run([sys.executable, "-m", "pynn", *argv], capture_output=True,
                             text=True, timeout=60, check=False)
        assert out.returncode == 2, (argv, out.returncode)
        assert "usage:" in out.stderr and "Traceback" not in out.stderr, argv


@pytest.mark.parametrize("case", OPS_CASES, ids=[c.id for c in OPS_CASES])
def test_ops_reject_bad_input(case):
    _check_bad(case)


def test_corpus_size():
    assert len({c.id for c in ALL_CASES}) == len(ALL_CASES), "duplicate case ids"
    assert len(ALL_CASES) >= 80


# ---- accepted by copy: strided, reversed, Fortran, broadcast and misaligned views ---------------
def _views(base: np.ndarray) -> dict:
    """Non-contiguous or unaligned arrays holding the same values as `base` (2-D)."""
    n, m = base.shape
    wide = np.zeros((n, 2 * m), base.dtype)
    wide[:, ::2] = base
    rev = np.ascontiguousarray(base[::-1, ::-1])[::-1, ::-1]
    mis = _misaligned(base.shape, base.dtype)
    mis[...] = base
    return {"strided": wide[:, ::2], "negative-stride": rev, "fortran": np.asfortranarray(base),
            "misaligned": mis, "readonly": _ro(base)}


VIEW_OPS = {
    "matmul": lambda a, w: ops.matmul(a, w),
    "matmul-trans": lambda a, w: ops.matmul(a.T, w, trans_a=True),
    "linear": lambda a, w: ops.linear(a, w, w[0], activation="tanh"),
    "linear_backward": lambda a, w: ops.linear_backward(a, w, np.tanh(a @ w), a @ w,
                                                        activation="tanh"),
    "activation": lambda a, w: ops.activation("leaky_relu", a),
    "softmax": lambda a, w: ops.softmax(a),
    "activation_backward": lambda a, w: ops.activation_backward("sigmoid", a, a),
    "bias_grad": lambda a, w: ops.bias_grad(a),
    "softmax_cross_entropy": lambda a, w: ops.softmax_cross_entropy(a, np.arange(len(a)) % 2),
    "mse": lambda a, w: ops.mse(a, a[::-1]),
    "kl_divergence": lambda a, w: ops.kl_divergence(a, np.abs(a)),
}


def _flat(result) -> list:
    if isinstance(result, tuple):
        return [np.asarray(r) for r in result if r is not None]
    return [np.asarray(result)]


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("op", sorted(VIEW_OPS))
def test_views_are_copied_never_misread(op, dtype):
    base = _x((6, 5), dtype, seed=3)
    w = _x((5, 5), dtype, seed=4)
    want = _flat(VIEW_OPS[op](base.copy(), w))
    for kind, view in _views(base).items():
        got = _flat(VIEW_OPS[op](view, w))
        for g, e in zip(got, want):
            np.testing.assert_array_equal(g, e, err_msg=f"{op} on a {kind} view")
        np.testing.assert_array_equal(view, base)  # the input view itself is untouched


@pytest.mark.parametrize("dtype", [F32, F64])
def test_zero_size_matmul_is_well_defined(dtype):
    """Empty products follow NumPy: (0, k)@(k, n) is (0, n); (m, 0)@(0, n) is zeros (+ bias)."""
    np.testing.assert_array_equal(ops.matmul(np.ones((0, 3), dtype), np.ones((3, 4), dtype)),
                                  np.ones((0, 3)) @ np.ones((3, 4)))
    np.testing.assert_array_equal(ops.matmul(np.ones((3, 0), dtype), np.ones((0, 4), dtype)),
                                  np.zeros((3, 4)))
    b = np.arange(4, dtype=dtype)
    np.testing.assert_array_equal(ops.linear(np.ones((2, 0), dtype), np.ones((0, 4), dtype), b,
                                             activation="relu"), np.tile(b, (2, 1)))
    dx, dw, db = ops.linear_backward(np.ones((0, 3), dtype), np.ones((3, 4), dtype),
                                     np.ones((0, 4), dtype), np.ones((0, 4), dtype))
    assert dx.shape == (0, 3)
    np.testing.assert_array_equal(dw, np.zeros((3, 4)))
    np.testing.assert_array_equal(db, np.zeros(4))


def test_misaligned_labels_and_weights_are_copied():
    """Labels and sample weights are converted separately from the float operands: a
    misaligned buffer must be copied there too (C requires aligned element pointers; UBSan in
    the sanitizer stage reports a misaligned load)."""
    x = _x((6, 4), F32)
    labels, weights = _misaligned((6,), np.int64), _misaligned((6,), F32)
    labels[...] = [0, 1, 2, 3, 0, 1]
    weights[...] = [1, 2, 3, 4, 5, 6]
    want = ops.softmax_cross_entropy(x, labels.copy(), sample_weight=weights.copy())
    got = ops.softmax_cross_entropy(x, labels, sample_weight=weights)
    assert got[0] == want[0]
    np.testing.assert_array_equal(got[1], want[1])
