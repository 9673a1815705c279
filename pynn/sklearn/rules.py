"""scikit-learn's definitions, as options of pynn's own pieces.

scikit-learn's MLPClassifier/MLPRegressor define the maths; pynn's engine runs it:

- loss scale (`ScikitLearnLoss`): scikit-learn's squared error is half the mean over outputs
  (pynn's mse: the mean), its multi-label log-loss sums over outputs (pynn's
  binary_cross_entropy: the mean); the gradient scikit-learn descends is
  ``(output - y) * w_i / sum(w)`` for every loss. The value and the gradient are rescaled in
  place (one pass over the batch's outputs).
- L2 (``alpha``): `pynn.nn.regularizers.L2(alpha, per_sample=True)`, on weights only, divided by
  the batch's weight sum.
- Adam: `pynn.Adam(..., epsilon_hat=True)` (epsilon outside the second-moment bias correction).
- 'invscaling' (`invscaling_rate` below) and 'adaptive' (divide by 5 when the stopping rule
  fires) learning rates: the estimator sets them on its
  `pynn.SGD` between epochs.

Outputs are logits: the output function (softmax / logistic) is fused into the loss kernels, so
the loss is computed from logits (no clipping of probabilities is needed, unlike scikit-learn's
``clip(p, eps, 1 - eps)``; the two agree wherever the probabilities are not within eps of 0 or 1).
"""
from __future__ import annotations

import numpy as np
from scipy import special

from .. import _core, ops
from ..nn.losses import Loss

__all__ = ["ScikitLearnLoss", "invscaling_rate"]


class ScikitLearnLoss(Loss):
    """Loss value and d loss / d logits in scikit-learn's scaling, from pynn's fused kernels:
    ``delta = (f(logits) - y) * w_i / sum(w)`` with f = softmax, logistic or identity."""

    has_accuracy = False
    has_proba = False

    def __init__(self, out_activation: str, n_outputs: int) -> None:
        self.out_activation = out_activation
        self.name = f"scikit-learn {out_activation}"
        if out_activation == "softmax":
            self._fused = ops.softmax_cross_entropy
            self._scale_value = self._scale_grad = 1.0
        elif out_activation == "logistic":
            # scikit-learn: -sum over outputs of the per-output mean log-likelihood
            self._fused = ops.binary_cross_entropy
            self._scale_value = self._scale_grad = float(n_outputs)
        elif out_activation == "identity":
            # scikit-learn: 0.5 * mean over outputs of the mean squared error; gradient p - y
            self._fused = ops.mse
            self._scale_value = 0.5
            self._scale_grad = 0.5 * n_outputs
        elif out_activation == "exp":
            # scikit-learn's half Poisson deviance: the sum over outputs of the mean of
            # xlogy(y, y / p) - y + p, p = exp(z); pynn's poisson is the mean of p - y z, so the
            # deviance adds the model-free sum of xlogy(y, y) - y (`_deviance_offset`)
            self._fused = ops.poisson
            self._scale_value = self._scale_grad = float(n_outputs)
        else:
            raise ValueError(f"unknown output activation {out_activation!r}")

    def step_kernel(self, target: np.ndarray) -> tuple[int, float] | None:
        """Where this loss is one of the engine's C kernels unscaled (softmax over classes, a
        single logistic output), that kernel: the estimators then train with the one-call step
        (gather, forward, loss, backward in one C call), bitwise the same; None otherwise."""
        if self._scale_value != 1.0 or self._scale_grad != 1.0 or \
                type(self)._kernel is not ScikitLearnLoss._kernel:
            return None
        if self.out_activation == "softmax":
            kind = "xent_labels" if target.ndim == 1 else "xent_probs"
        elif self.out_activation == "logistic":
            kind = "bce"
        else:
            return None
        return _core.LOSS_KINDS[kind], 0.0

    def _kernel(self, outputs, target, sample_weight, out):
        value, grad = self._fused(outputs, target, sample_weight=sample_weight, out=out)
        if self._scale_grad != 1.0:
            np.multiply(grad, grad.dtype.type(self._scale_grad), out=grad)
        value *= self._scale_value
        if self.out_activation == "exp":
            value += _deviance_offset(target, sample_weight)
        return value, grad

    def get_config(self) -> dict:
        return {"name": self.name}


def _deviance_offset(target: np.ndarray, sample_weight: np.ndarray | None) -> float:
    """The weighted mean over rows of sum_k xlogy(y, y) - y: what the half Poisson deviance adds
    to pynn's Poisson loss (it does not depend on the model)."""
    y = target.astype(np.float64)
    rows = (special.xlogy(y, y) - y).sum(axis=1)
    return float(np.average(rows, weights=sample_weight))


def invscaling_rate(learning_rate_init: float, samples_seen: int, power_t: float) -> float:
    """scikit-learn's 'invscaling': ``learning_rate_init / (t + 1)^power_t``, t the samples seen
    (applied after every epoch)."""
    return learning_rate_init / (samples_seen + 1) ** power_t
