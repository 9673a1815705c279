"""Full-batch training with scipy's L-BFGS-B over the flat parameter buffer.

Each evaluation is one forward and backward of the whole data through the engine (the same
loss, penalty and kernels as a mini-batch step); scipy keeps its own float64 copy of the
parameters, which is copied into the model's buffer before each evaluation. scipy is imported
only here (scikit-learn brings it).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .trainer import Trainer

__all__ = ["run_lbfgs"]


def run_lbfgs(trainer: Trainer, X: np.ndarray, target: np.ndarray,
              weight: np.ndarray | None, *, max_iter: int, max_fun: int, tol: float,
              on_iteration: Callable[[int, float], None] | None = None):
    """Minimise the trainer's loss over (X, target); returns scipy's OptimizeResult.

    `on_iteration(iteration, loss)` runs after every L-BFGS iteration (raise StopIteration in it
    to stop). The model's parameters hold the result when this returns.
    """
    try:
        import scipy.optimize
    except ImportError as exc:  # pragma: no cover - scipy comes with scikit-learn
        raise ImportError("L-BFGS needs scipy: pip install scipy") from exc
    params, grads = trainer.params, trainer.grads

    def loss_and_gradient(x: np.ndarray) -> tuple:
        np.copyto(params, x, casting="same_kind")
        value = trainer.forward_backward(X, target, weight)
        return value, grads.astype(np.float64)

    iteration = [0]

    def callback(intermediate_result) -> None:
        iteration[0] += 1
        if on_iteration is not None:
            on_iteration(iteration[0], float(intermediate_result.fun))

    result = scipy.optimize.minimize(
        loss_and_gradient, params.astype(np.float64), method="L-BFGS-B", jac=True,
        callback=callback if on_iteration is not None else None,
        options={"maxfun": max_fun, "maxiter": max_iter, "gtol": tol})
    np.copyto(params, result.x, casting="same_kind")
    return result
