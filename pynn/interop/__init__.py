"""Taking a model elsewhere: ONNX (`to_onnx`), PyTorch (`to_torch`, `from_torch`).

The packages are optional and imported only when a function needs them (``pip install onnx``,
``pip install torch``); ``import pynn`` never loads them. safetensors files are `pynn.save` /
`pynn.load` with a ``.safetensors`` path (`pynn.io.safetensors`).
"""
from .onnx import to_onnx
from .torch import from_torch, to_torch

__all__ = ["from_torch", "to_onnx", "to_torch"]
