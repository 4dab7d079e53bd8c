"""onnxruntime running a one-node Conv / ConvTranspose model with constant weights:
intra_op_num_threads=n, inter_op_num_threads=1, sequential execution, CPU provider."""
import numpy as np

from .base import Contender, UnavailableError, optional


def contender(layer, x, w, b, threads):
    ort = optional("onnxruntime")
    if ort is None:
        raise UnavailableError("onnxruntime (with onnx) is not installed")
    session = make_session(ort, layer, w, b, threads)
    feed = {"X": x}
    return Contender("onnxruntime", lambda: session.run(None, feed)[0])


def make_model(layer, w, b):
    """The ONNX model (serialised) of one Conv / ConvTranspose node: input X, output Y."""
    from onnx import TensorProto, helper, numpy_helper
    elem = {np.dtype(np.float32): TensorProto.FLOAT,
            np.dtype(np.float64): TensorProto.DOUBLE}[w.dtype]
    ph, pw = layer.padding
    attrs = {"kernel_shape": list(layer.kernel), "strides": list(layer.stride),
             "pads": [ph, pw, ph, pw], "dilations": list(layer.dilation),
             "group": layer.groups}
    if layer.transposed:
        attrs["output_padding"] = list(layer.output_padding)
    inits = [numpy_helper.from_array(w, "W")]
    inputs = ["X", "W"]
    if b is not None:
        inits.append(numpy_helper.from_array(b, "B"))
        inputs.append("B")
    node = helper.make_node("ConvTranspose" if layer.transposed else "Conv", inputs, ["Y"],
                            **attrs)
    graph = helper.make_graph(
        [node], "conv", [helper.make_tensor_value_info("X", elem, list(layer.input_shape))],
        [helper.make_tensor_value_info("Y", elem, list(layer.output_shape))], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def make_session(ort, layer, w, b, threads):
    """An InferenceSession of make_model() on `threads` intra-op threads."""
    return ort.InferenceSession(make_model(layer, w, b), session_options(ort, threads),
                                providers=["CPUExecutionProvider"])


def session_options(ort, threads):
    """`threads` intra-op threads, sequential, every graph optimisation, quiet."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return so
