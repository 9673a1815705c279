"""Taking a model elsewhere: ONNX (`to_onnx`), PyTorch (`to_torch`, `from_torch`).

The packages are optional and imported only when a function needs them (``pip install onnx``,
``pip install torch``); ``import pynn`` never loads them. Also here: scikit-learn's own MLPs
(`pynn.interop.sklearn`, behind ``pynn.sklearn.MLPClassifier.from_sklearn`` and
``est.to_sklearn()``) and skl2onnx's hooks for pynn's estimators (`pynn.interop.skl2onnx`).
safetensors files are `pynn.save` / `pynn.load` with a ``.safetensors`` path
(`pynn.io.safetensors`, which needs no package).
"""
from .onnx import to_onnx
from .torch import from_torch, to_torch

__all__ = ["from_torch", "to_onnx", "to_torch"]
