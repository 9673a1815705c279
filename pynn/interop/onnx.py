"""Export to ONNX: `to_onnx(model)` builds an ``onnx.ModelProto`` that onnxruntime runs.

Graph, per Dense layer: ``Gemm(h, W, b)`` (W kept as pynn stores it, in × out, so no transpose),
then the activation. Every pynn activation has an exact ONNX form::

    identity    (nothing)            sigmoid   Sigmoid           softmax  Softmax(axis=-1)
    relu        Relu                 tanh      Tanh
    leaky_relu  LeakyRelu(alpha) *   step      Where(IsNaN(z), z, Cast(Greater(z, 0)))

An Activation layer is its activation alone; a BatchNorm is ``BatchNormalization`` with the
running statistics (inference mode); a LayerNorm ``LayerNormalization(axis=-1)`` (opset 17); a
Dropout nothing (the identity at inference).

step keeps NaN as NaN, as pynn's kernel does. (*) In float64 with an alpha that float32 cannot
hold, ``Where(z < 0, alpha * z, z)``: LeakyRelu's alpha attribute is a float32, and 0.01 would
become 0.0099999998.

The input is ``X`` of shape (N, in_features), N a dynamic dimension, in the model's dtype
(float32 or float64); the weights are stored in that dtype, so the graph computes what pynn
computes up to the summation order of the matrix products.

Opset 17 (the default ONNX domain), IR version 8: onnxruntime >= 1.13 runs it. Softmax needs
opset 13 or later (earlier opsets flatten the row before the softmax).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from .._atomic import write_atomically
from .._version import __version__
from ..model import Sequential
from ..nn.layers import Activation, BatchNorm, Dense, LayerNorm
from ._require import require

__all__ = ["IR_VERSION", "OPSET", "estimator_graph", "to_onnx"]

#: The ONNX opset the exported graphs declare (default domain).
OPSET = 17
#: The ONNX IR version written (the one that goes with opset 17).
IR_VERSION = 8

# scikit-learn's activation names (the estimators' `activation`) -> pynn's
_SKLEARN_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh",
                        "relu": "relu", "softmax": "softmax"}
_OUTPUTS = ("logits", "probabilities")


class _Graph:
    """The nodes, initializers and outputs of one graph, with unique names."""

    def __init__(self, onnx: Any, dtype: np.dtype) -> None:
        self.onnx = onnx
        self.dtype = np.dtype(dtype)
        self.elem = onnx.helper.np_dtype_to_tensor_dtype(self.dtype)
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, value: np.ndarray) -> str:
        name = self.name(stem)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list, output: str | None = None, **attrs) -> str:
        out = output or self.name(op.lower())
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], name=self.name(op),
                                                     **attrs))
        return out

    def activation(self, name: str, z: str, alpha: float, output: str | None = None) -> str:
        """The activation `name` applied to `z` (identity: `z` itself, or an Identity node when
        a graph output must carry the name)."""
        if name == "identity":
            return self.node("Identity", [z], output) if output else z
        if name == "relu":
            return self.node("Relu", [z], output)
        if name == "leaky_relu":
            if float(np.float32(alpha)) == alpha or self.dtype == np.float32:
                return self.node("LeakyRelu", [z], output, alpha=float(alpha))
            # LeakyRelu's alpha is a float32 attribute (see the module's docstring)
            slope = self.const("alpha", np.array(alpha, self.dtype))
            negative = self.node("Less", [z, self.const("zero", np.zeros((), self.dtype))])
            return self.node("Where", [negative, self.node("Mul", [z, slope]), z], output)
        if name == "sigmoid":
            return self.node("Sigmoid", [z], output)
        if name == "tanh":
            return self.node("Tanh", [z], output)
        if name == "softmax":
            return self.node("Softmax", [z], output, axis=-1)
        if name == "step":
            zero = self.const("zero", np.zeros((), self.dtype))
            positive = self.node("Cast", [self.node("Greater", [z, zero])], to=self.elem)
            return self.node("Where", [self.node("IsNaN", [z]), z, positive], output)
        raise ValueError(f"activation {name!r} has no ONNX form in pynn's exporter")

    def dense(self, h: str, W: np.ndarray, b: np.ndarray, i: int) -> str:
        return self.node("Gemm", [h, self.const(f"layers.{i}.W", W),
                                  self.const(f"layers.{i}.b", b)])

    def tensor(self, name: str, elem: int, shape: list) -> Any:
        return self.onnx.helper.make_tensor_value_info(name, elem, shape)

    def model(self, inputs: list, outputs: list, doc: str, meta: dict) -> Any:
        helper = self.onnx.helper
        graph = helper.make_graph(self.nodes, "pynn", inputs, outputs, self.initializers)
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="pynn", producer_version=__version__,
                                  doc_string=doc)
        proto.ir_version = IR_VERSION
        helper.set_model_props(proto, {k: str(v) for k, v in meta.items()})
        return proto


def _check_output(output: object) -> str:
    if not isinstance(output, str):
        raise TypeError(f"output must be a str ({' or '.join(map(repr, _OUTPUTS))}), got "
                        f"{type(output).__name__}")
    if output not in _OUTPUTS:
        raise ValueError(f"output must be {' or '.join(map(repr, _OUTPUTS))}, got {output!r}")
    return output


def _sequential_graph(onnx: Any, model: Sequential, output: str) -> Any:
    if not model.built:
        raise ValueError("to_onnx needs the model's parameters, which do not exist yet: fit "
                         "it, or give it its input size (model.build(n) or pynn.Input(n))")
    loss = model.loss
    if output == "probabilities":
        if loss is None:
            raise ValueError("output='probabilities' needs the model's loss (it decides the "
                             "output function): call fit or compile(loss=...) first, or "
                             "export output='logits'")
        if not loss.has_proba:
            raise ValueError(f"output='probabilities' needs a probabilistic loss "
                             f"(cross_entropy, binary_cross_entropy, kl_divergence); this "
                             f"model uses {loss.name}: export output='logits'")
    g = _Graph(onnx, model.dtype)
    h = "X"
    last = len(model.layers) - 1
    for i, layer in enumerate(model.layers):
        named = "logits" if i == last else None
        if isinstance(layer, Dense):
            z = g.dense(h, layer.W, layer.b, i)
            h = g.activation(layer.activation, z, layer.alpha, output=named)
        elif isinstance(layer, Activation):
            h = g.activation(layer.activation, h, layer.alpha, output=named)
        elif isinstance(layer, BatchNorm):  # inference mode: the running statistics
            h = g.node("BatchNormalization", [h] + [
                g.const(f"layers.{i}.{name}", getattr(layer, name)) for name in
                ("gamma", "beta", "running_mean", "running_var")], named,
                epsilon=float(layer.eps))
        elif isinstance(layer, LayerNorm):
            h = g.node("LayerNormalization", [h, g.const(f"layers.{i}.gamma", layer.gamma),
                                              g.const(f"layers.{i}.beta", layer.beta)],
                       named, axis=-1, epsilon=float(layer.eps))
        elif named:  # Dropout is the identity at inference
            h = g.node("Identity", [h], named)
    if output == "probabilities":
        g.activation(loss.output_function, h, 0.0, output="probabilities")
    n_out = model.out_features
    meta = {"pynn.loss": loss.name if loss is not None else "", "pynn.output": output}
    return g.model([g.tensor("X", g.elem, ["N", model.in_features])],
                   [g.tensor(output, g.elem, ["N", n_out])],
                   f"pynn.Sequential {[layer.get_config() for layer in model.layers]}", meta)


def _is_mlp_estimator(model: object) -> bool:
    """A scikit-learn-style MLP estimator (pynn.sklearn's or scikit-learn's own): recognised by
    its public parameters, so that this layer never imports the estimators."""
    return all(hasattr(model, a) for a in ("hidden_layer_sizes", "activation", "get_params"))


def _class_labels(classes: np.ndarray) -> tuple:
    """(array for an initializer, ONNX element type name) of an estimator's classes_."""
    classes = np.asarray(classes)
    if classes.dtype.kind in "iu":
        return classes.astype(np.int64), "INT64"
    if classes.dtype.kind == "b":
        return classes.astype(np.bool_), "BOOL"
    if classes.dtype.kind == "f":
        return classes.astype(np.float64), "DOUBLE"
    if classes.dtype.kind in "UO" and all(isinstance(c, str) for c in classes.tolist()):
        return np.array(classes.tolist(), dtype=object), "STRING"
    raise TypeError(f"classes_ of dtype {classes.dtype} cannot be ONNX labels (integers, "
                    f"floats, bools or strings can)")


def estimator_graph(onnx: Any, est: Any, dtype: np.dtype | None = None) -> Any:
    """The graph of a fitted MLP estimator, computed in `dtype` (default: its weights')."""
    kind = type(est).__name__
    if not hasattr(est, "coefs_"):
        raise ValueError(f"this {kind} is not fitted yet: call fit before to_onnx")
    coefs = [np.asarray(c) for c in est.coefs_]
    intercepts = [np.asarray(b) for b in est.intercepts_]
    hidden = _SKLEARN_ACTIVATIONS.get(est.activation)
    out_act = getattr(est, "out_activation_", None)
    if hidden is None:
        raise ValueError(f"{kind}.activation={est.activation!r} has no ONNX form here "
                         f"(identity, logistic, tanh, relu have)")
    if out_act not in ("identity", "logistic", "softmax", "exp"):
        raise ValueError(f"{kind}.out_activation_={out_act!r} has no ONNX form here "
                         f"(identity, logistic, softmax, exp have)")
    if dtype is None:
        dtype = np.result_type(*coefs)
        if dtype not in (np.float32, np.float64):
            dtype = np.dtype(np.float64)
    g = _Graph(onnx, dtype)
    h = "X"
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        z = g.dense(h, W.astype(dtype), b.astype(dtype), i)
        h = g.activation(hidden, z, 0.0) if i < len(coefs) - 1 else z
    n_out = coefs[-1].shape[1]
    inputs = [g.tensor("X", g.elem, ["N", coefs[0].shape[0]])]
    T = onnx.TensorProto
    if not hasattr(est, "classes_"):  # a regressor: skl2onnx names its output "variable"
        g.node("Exp" if out_act == "exp" else "Identity", [h], "variable")
        return g.model(inputs, [g.tensor("variable", g.elem, ["N", n_out])],
                       f"{kind} (pynn.to_onnx)", {"pynn.estimator": kind})
    if out_act == "softmax":
        g.activation("softmax", h, 0.0, output="probabilities")
        index = g.node("ArgMax", [h], axis=1, keepdims=0)
        n_prob = n_out
    elif n_out == 1:  # binary: [1 - p, p], the label where the logit is > 0 (pynn's rule)
        p = g.activation("sigmoid", h, 0.0)
        one = g.const("one", np.ones((), dtype))
        g.node("Concat", [g.node("Sub", [one, p]), p], "probabilities", axis=1)
        positive = g.node("Cast", [g.node("Greater", [h, g.const("zero", np.zeros((), dtype))])],
                          to=T.INT64)
        index = g.node("Reshape", [positive, g.const("flat", np.array([-1], np.int64))])
        n_prob = 2
    else:  # multi-label: an indicator matrix, as the estimator's predict
        g.activation("sigmoid", h, 0.0, output="probabilities")
        g.node("Cast", [g.node("Greater", [h, g.const("zero", np.zeros((), dtype))])], "label",
               to=T.INT64)
        return g.model(inputs, [g.tensor("label", T.INT64, ["N", n_out]),
                                g.tensor("probabilities", g.elem, ["N", n_out])],
                       f"{kind} (pynn.to_onnx)", {"pynn.estimator": kind})
    labels, elem = _class_labels(est.classes_)
    g.node("Gather", [g.const("classes", labels), index], "label", axis=0)
    return g.model(inputs, [g.tensor("label", getattr(T, elem), ["N"]),
                            g.tensor("probabilities", g.elem, ["N", n_prob])],
                   f"{kind} (pynn.to_onnx)", {"pynn.estimator": kind})


def to_onnx(model: Any, path: str | os.PathLike | None = None, *,
            output: str = "logits") -> Any:
    """The model as an ONNX graph (``onnx.ModelProto``), written to `path` when given.

    Parameters
    ----------
    model : Sequential, or a fitted pynn.sklearn.MLPClassifier / MLPRegressor
        A built Sequential (fitted, or with its input size known). A fitted estimator (also
        scikit-learn's own MLPClassifier/MLPRegressor) gives the outputs skl2onnx gives: a
        classifier ``label`` (the original classes; an indicator matrix for multi-label y)
        and ``probabilities`` (as predict_proba), a regressor ``variable`` (N, n_outputs).
    path : str or path-like, optional
        Where to write the serialised model (atomically: a crash leaves no partial file).
    output : {"logits", "probabilities"}, default "logits"
        For a Sequential: the raw outputs (``model(X)``), or those with the loss's output
        function applied (``model.predict_proba(X)``: softmax or sigmoid). The graph output
        carries this name. Estimators' outputs are fixed; leave it at its default.

    Returns
    -------
    onnx.ModelProto
        Input ``X`` (N, in_features) in the model's dtype, N dynamic; opset `OPSET` (17);
        checked with ``onnx.checker.check_model(full_check=True)``.

    Raises
    ------
    ImportError
        Without the ``onnx`` package (``pip install onnx``).
    ValueError
        An unbuilt model, an unfitted estimator, output='probabilities' without a
        probabilistic loss, or an activation ONNX has no form for (named).
    """
    output = _check_output(output)
    if path is not None and not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a str or path-like, got {type(path).__name__}")
    onnx = require("onnx", "onnx", "pynn.to_onnx")
    if isinstance(model, Sequential):
        proto = _sequential_graph(onnx, model, output)
    elif _is_mlp_estimator(model):
        if output != "logits":
            raise ValueError(f"output={output!r} applies to a Sequential; a {type(model).__name__}"
                             f"'s graph has skl2onnx's outputs (label and probabilities for a "
                             f"classifier, variable for a regressor)")
        proto = estimator_graph(onnx, model)
    else:
        raise TypeError(f"model must be a pynn.Sequential or a fitted pynn.sklearn "
                        f"MLPClassifier/MLPRegressor, got {type(model).__name__}")
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        data = proto.SerializeToString()
        write_atomically(os.fsdecode(os.fspath(path)), lambda f: f.write(data))
    return proto
