"""scikit-learn's MLPs and pynn's, both ways: ``pynn.sklearn.MLPClassifier.from_sklearn(est)``
and ``est.to_sklearn()`` (and the regressor's) carry a fitted estimator across, so that
`predict` and `predict_proba` agree (in float64 up to the summation order of the matrix
products, about 1e-15).

What crosses:

- the constructor parameters both classes have (pynn's ``dtype`` and ``n_threads`` keep their
  defaults one way and are left behind the other; ``class_weight``, which scikit-learn's
  MLPClassifier lacks, is left behind with a warning: it only weighs further training);
- copies of ``coefs_`` and ``intercepts_`` in their dtype (float32 or float64), and the fitted
  attributes ``n_features_in_``, ``feature_names_in_``, ``n_layers_``, ``n_outputs_``,
  ``out_activation_``, ``classes_``, ``loss_``, ``best_loss_``, ``loss_curve_``,
  ``validation_scores_``, ``best_validation_score_``, ``n_iter_``, ``t_``;
- the label binarizer, rebuilt from ``classes_`` and the output layer (multi-class: softmax;
  binary: one logistic output; multi-label: one logistic output per label).

What only one side has stays behind: the optimizer's state (a warm-start fit of the converted
estimator starts a new optimizer from the carried weights) and pynn's
``validation_loss_curve_`` (NaN per epoch coming from scikit-learn, which does not record it).

scikit-learn is imported only here, when a conversion runs; the pynn estimators' methods call
these functions and never the other way round.
"""
from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np

from ..model import Sequential
from ..nn.layers import Dense
from ._require import require

__all__ = ["from_sklearn", "label_binarizer", "to_sklearn"]

# scikit-learn's hidden activations -> pynn's
_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_OUTPUTS = {"MLPClassifier": ("softmax", "logistic"), "MLPRegressor": ("identity", "exp")}
_FITTED = ("n_features_in_", "feature_names_in_", "n_layers_", "n_outputs_", "out_activation_",
           "classes_", "loss_", "best_loss_", "loss_curve_", "validation_scores_",
           "best_validation_score_", "n_iter_", "t_")
_PYNN_ONLY = ("dtype", "n_threads", "class_weight")


def _kind(cls: type) -> str:
    """'MLPClassifier' or 'MLPRegressor': which of scikit-learn's classes matches `cls`."""
    for base in cls.__mro__:
        if base.__name__ in _OUTPUTS:
            return base.__name__
    raise TypeError(f"{cls.__name__} is neither an MLPClassifier nor an MLPRegressor")


def label_binarizer(classes: np.ndarray, out_activation: str, n_outputs: int) -> Any:
    """A fitted ``LabelBinarizer`` as the estimator's fit leaves it, from its public attributes:
    multi-label (several logistic outputs) knows its labels as columns 0..n-1; otherwise the
    classes themselves decide binary or multi-class."""
    preprocessing = require("sklearn.preprocessing", "scikit-learn", "converting an MLP")
    binarizer = preprocessing.LabelBinarizer()
    if out_activation == "logistic" and n_outputs > 1:
        binarizer.fit(np.eye(n_outputs, dtype=np.int64))  # multilabel-indicator, n columns
    else:
        binarizer.fit(np.asarray(classes))
    return binarizer


def _checked_weights(est: Any, name: str) -> tuple[list, list, np.dtype]:
    """(coefs, intercepts, dtype) of a fitted estimator, their shapes chained and finite."""
    coefs, intercepts = list(est.coefs_), list(est.intercepts_)
    if not coefs or len(coefs) != len(intercepts):
        raise ValueError(f"{name}.coefs_ and {name}.intercepts_ must hold one array per layer "
                         f"(got {len(coefs)} and {len(intercepts)})")
    coefs = [np.asarray(c) for c in coefs]
    intercepts = [np.asarray(b) for b in intercepts]
    dtype = np.result_type(*coefs, *intercepts)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}.coefs_ hold {dtype} numbers; pynn computes in float32 or "
                        f"float64")
    fan_in = getattr(est, "n_features_in_", coefs[0].shape[0] if coefs[0].ndim == 2 else None)
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        if W.ndim != 2 or W.shape[0] != fan_in:
            raise ValueError(f"{name}.coefs_[{i}] has shape {W.shape}; ({fan_in}, n) expected "
                             f"(the inputs of layer {i})")
        if b.shape != (W.shape[1],):
            raise ValueError(f"{name}.intercepts_[{i}] has shape {b.shape}; ({W.shape[1]},) "
                             f"expected")
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ValueError(f"{name}.coefs_[{i}] or intercepts_[{i}] contain NaN or inf")
        fan_in = W.shape[1]
    if getattr(est, "n_layers_", len(coefs) + 1) != len(coefs) + 1:
        raise ValueError(f"{name}.n_layers_ is {est.n_layers_} but it has {len(coefs)} weight "
                         f"matrices")
    if getattr(est, "n_outputs_", fan_in) != fan_in:
        raise ValueError(f"{name}.n_outputs_ is {est.n_outputs_} but its last layer has "
                         f"{fan_in} outputs")
    return coefs, intercepts, np.dtype(dtype)


def _check_fitted(est: Any, name: str, how: str) -> None:
    if not hasattr(est, "coefs_"):
        raise ValueError(f"{name} is not fitted yet ({type(est).__name__} without coefs_): "
                         f"call fit before {how}")


def from_sklearn(cls: type, est: Any) -> tuple[dict, Sequential, dict, Any]:
    """The parts of a pynn estimator of class `cls` equal to scikit-learn's fitted `est`:
    (constructor parameters, network, fitted attributes, label binarizer or None).

    Raises
    ------
    TypeError
        `est` is not a scikit-learn estimator of the matching class.
    ValueError
        `est` is not fitted, or its weights and attributes do not agree (named).
    """
    kind = _kind(cls)
    neural_network = require("sklearn.neural_network", "scikit-learn", f"{kind}.from_sklearn")
    theirs = getattr(neural_network, kind)
    if not isinstance(est, theirs):
        raise TypeError(f"est must be a fitted sklearn.neural_network.{kind}, got "
                        f"{type(est).__module__}.{type(est).__name__}")
    _check_fitted(est, "est", f"{kind}.from_sklearn")
    coefs, intercepts, dtype = _checked_weights(est, "est")
    if est.activation not in _ACTIVATIONS:
        raise ValueError(f"est.activation={est.activation!r} has no pynn activation (pynn has "
                         f"{', '.join(_ACTIVATIONS)})")
    if est.out_activation_ not in _OUTPUTS[kind]:
        raise ValueError(f"est.out_activation_={est.out_activation_!r}; a {kind} has "
                         f"{' or '.join(_OUTPUTS[kind])}")
    ours = set(cls().get_params())
    params = {key: copy.deepcopy(value) for key, value in est.get_params(deep=False).items()
              if key in ours}
    hidden = _ACTIVATIONS[est.activation]
    layers = [Dense(W.shape[0], W.shape[1], hidden if i < len(coefs) - 1 else "identity")
              for i, W in enumerate(coefs)]
    network = Sequential(layers, dtype=dtype, seed=0)
    network.set_weights([a for pair in zip(coefs, intercepts) for a in pair])
    fitted = {key: copy.deepcopy(getattr(est, key)) for key in _FITTED if hasattr(est, key)}
    scores = fitted.get("validation_scores_")
    fitted["validation_loss_curve_"] = None if scores is None else [float("nan")] * len(scores)
    binarizer = None
    if kind == "MLPClassifier":
        binarizer = label_binarizer(est.classes_, est.out_activation_, est.n_outputs_)
    return params, network, fitted, binarizer


def to_sklearn(est: Any) -> Any:
    """scikit-learn's own estimator (``sklearn.neural_network.MLPClassifier`` /
    ``MLPRegressor``) equal to the fitted pynn estimator `est`.

    Raises
    ------
    ValueError
        `est` is not fitted yet.
    """
    kind = _kind(type(est))
    neural_network = require("sklearn.neural_network", "scikit-learn", f"{kind}.to_sklearn")
    _check_fitted(est, f"this {kind}", "to_sklearn")
    coefs, intercepts, _dtype = _checked_weights(est, kind)
    params = est.get_params(deep=False)
    if params.get("class_weight") is not None:
        warnings.warn(f"class_weight={params['class_weight']!r} is left behind: scikit-learn's "
                      f"MLPClassifier has no such parameter (predictions are the same; further "
                      f"training would weigh the classes equally)", UserWarning, stacklevel=3)
    theirs = getattr(neural_network, kind)(**{key: copy.deepcopy(value)
                                              for key, value in params.items()
                                              if key not in _PYNN_ONLY})
    for key in _FITTED:
        if hasattr(est, key):
            setattr(theirs, key, copy.deepcopy(getattr(est, key)))
    theirs.coefs_ = [W.copy() for W in coefs]
    theirs.intercepts_ = [b.copy() for b in intercepts]
    # scikit-learn's own bookkeeping, as its fit leaves it: predict decodes the labels with
    # _label_binarizer; a warm-start fit counts epochs without improvement from
    # _no_improvement_count and, with early stopping, falls back to _best_coefs.
    if kind == "MLPClassifier":
        theirs._label_binarizer = label_binarizer(est.classes_, est.out_activation_,
                                                  est.n_outputs_)
    theirs._no_improvement_count = 0
    if est.early_stopping:
        theirs._best_coefs = [W.copy() for W in coefs]
        theirs._best_intercepts = [b.copy() for b in intercepts]
    return theirs
