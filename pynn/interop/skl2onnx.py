"""skl2onnx's hooks for pynn's estimators: ``skl2onnx.convert_sklearn`` / ``to_onnx`` on a
fitted `pynn.sklearn.MLPClassifier` / `MLPRegressor` (alone or inside a Pipeline) give
`pynn.to_onnx`'s graph, with skl2onnx's output names (``label`` and ``probabilities`` for a
classifier, ``variable`` for a regressor; no ZipMap).

skl2onnx finds them through the estimators' ``onnx_shape_calculator()`` and
``onnx_converter()`` methods (its documented hook for models it has no converter for). The
graph is built in the dtype of the converter's input (FloatTensorType: float32, weights cast
as skl2onnx does for its own MLPs) and copied node by node into skl2onnx's container under
names unique in the whole model.

The errors pynn raises here (an opset below 13, an input that is not float or double) name
`pynn.to_onnx`, which exports the estimator directly. skl2onnx itself refuses converter
options for a model it converts through these hooks (``options={"zipmap": False}`` is a
NameError): the graph has no ZipMap to turn off, so pass none.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._require import require
from .onnx import OPSET, estimator_graph

__all__ = ["converter", "shape_calculator"]


def _input_dtype(operator: Any) -> np.dtype:
    dt = require("skl2onnx.common.data_types", "skl2onnx", "converting a pynn estimator")
    kind = operator.inputs[0].type
    if isinstance(kind, dt.DoubleTensorType):
        return np.dtype(np.float64)
    if isinstance(kind, dt.FloatTensorType):
        return np.dtype(np.float32)
    raise TypeError(f"{type(operator.raw_operator).__name__} takes float or double input, got "
                    f"{type(kind).__name__}; give initial_types FloatTensorType or "
                    f"DoubleTensorType (or export the estimator with pynn.to_onnx)")


def _graph(operator: Any) -> Any:
    onnx = require("onnx", "onnx", "converting a pynn estimator to ONNX")
    return estimator_graph(onnx, operator.raw_operator, _input_dtype(operator))


def shape_calculator(operator: Any) -> None:
    """Set the types of the operator's outputs from the graph pynn builds."""
    dt = require("skl2onnx.common.data_types", "skl2onnx", "converting a pynn estimator")
    graph = _graph(operator).graph
    n = operator.inputs[0].get_first_dimension()
    if len(graph.output) != len(operator.outputs):
        raise RuntimeError(f"skl2onnx declared {len(operator.outputs)} outputs for "
                           f"{type(operator.raw_operator).__name__}; pynn's graph has "
                           f"{[o.name for o in graph.output]}")
    types = {1: dt.FloatTensorType, 11: dt.DoubleTensorType, 7: dt.Int64TensorType,
             8: dt.StringTensorType, 9: dt.BooleanTensorType}
    for variable, value in zip(operator.outputs, graph.output):
        tensor = value.type.tensor_type
        shape = [n] + [d.dim_value for d in tensor.shape.dim[1:]]
        variable.type = types[tensor.elem_type](shape=shape)


def converter(scope: Any, operator: Any, container: Any) -> None:
    """Copy pynn's graph of the estimator into skl2onnx's container."""
    onnx = require("onnx", "onnx", "converting a pynn estimator to ONNX")
    if container.target_opset is not None and container.target_opset < 13:
        raise RuntimeError(f"pynn's estimators export with opset >= 13 (Softmax over the last "
                           f"axis); target_opset is {container.target_opset}. pynn.to_onnx "
                           f"writes opset {OPSET}")
    graph = _graph(operator).graph
    names = {"X": operator.inputs[0].full_name}
    names.update({value.name: variable.full_name
                  for value, variable in zip(graph.output, operator.outputs)})

    def rename(name: str) -> str:
        if name not in names:
            names[name] = scope.get_unique_variable_name(name)
        return names[name]

    for tensor in graph.initializer:
        if tensor.data_type == onnx.TensorProto.STRING:
            container.add_initializer(rename(tensor.name), tensor.data_type, list(tensor.dims),
                                      [s.decode("utf-8") for s in tensor.string_data])
        else:
            container.add_initializer(rename(tensor.name), None, None, tensor)
    for node in graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        container.add_node(node.op_type, [rename(i) for i in node.input],
                           [rename(o) for o in node.output],
                           name=scope.get_unique_operator_name(node.op_type), **attrs)
