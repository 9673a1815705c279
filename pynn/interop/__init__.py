"""Taking a model elsewhere: ONNX (`to_onnx`), PyTorch (`to_torch`, `from_torch`).

The packages are optional and imported only when a function needs them (``pip install onnx``,
``pip install torch``); ``import pynn`` never loads them. safetensors files are `pynn.save` /
`pynn.load` with a ``.safetensors`` path (`pynn.io.safetensors`).
"""
from .onnx import to_onnx

__all__ = ["to_onnx"]
