"""TFLite (ai-edge-litert's Interpreter, XNNPACK delegate, num_threads=n) running a one-op
model written with the flatbuffers schema module the wheel ships (no TensorFlow).

    groups == 1                      CONV_2D, filter (C_out, kH, kW, C_in)
    groups == C_in                   DEPTHWISE_CONV_2D, filter (1, kH, kW, C_out)
    1 < groups < C_in                CONV_2D, filter (C_out, kH, kW, C_in/groups)
    transposed, groups 1, dilation 1 TRANSPOSE_CONV, filter (C_out, kH, kW, C_in)

TFLite pads SAME or VALID only: a layer whose padding is neither gets a PAD op before the
convolution (or, transposed, a SLICE after it), timed with it since a user's model would
carry it too. Grouped or dilated transposed convolutions raise UnavailableError.

TFLite is NHWC: the input is transposed and set once, outside the timing, and the contender
times invoke() alone, the fairest match for peers that take NCHW without a copy (a user
with NCHW data would add one transpose per call); its output is transposed back to NCHW
only for the check.
"""
import numpy as np

from .base import Contender, UnavailableError, optional

# The op versions that state the features used (dilation, bias on TRANSPOSE_CONV).
_VERSIONS = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "TRANSPOSE_CONV": 3, "PAD": 1, "SLICE": 1}


def contender(layer, x, w, b, threads):
    litert = optional("ai_edge_litert.interpreter")
    if litert is None or optional("flatbuffers") is None:
        raise UnavailableError("ai-edge-litert (TFLite) is not installed")
    interp, out_index = make_interpreter(litert, layer, w, b, threads)
    interp.set_tensor(interp.get_input_details()[0]["index"],
                      np.ascontiguousarray(x.transpose(0, 2, 3, 1)))

    def output(_):
        return interp.get_tensor(out_index).transpose(0, 3, 1, 2)
    return Contender("tflite", interp.invoke, output)


def make_interpreter(litert, layer, w, b, threads):
    """(Interpreter of make_model() on `threads` threads, allocated; its output's index)."""
    model = make_model(layer, w, b)
    # The default op resolver applies the XNNPACK delegate, as for any user of the wheel.
    interp = litert.Interpreter(model_content=model, num_threads=threads)
    interp.allocate_tensors()
    return interp, interp.get_output_details()[0]["index"]


def _same_pad(size_in, size_out, k, s):
    """TFLite's SAME padding before the data, or None when SAME gives another output size:
    out = ceil(in / s), the total padding split with the odd one after."""
    if -(-size_in // s) != size_out:
        return None
    return max(0, (size_out - 1) * s + k - size_in) // 2


def _check(layer, w):
    """Raise UnavailableError for what this peer cannot express."""
    if w.dtype != np.float32:
        raise UnavailableError(f"TFLite runs float32 only here, not {w.dtype}")
    if layer.transposed and layer.groups > 1:
        raise UnavailableError("grouped transposed convolution: not supported by this peer "
                               "(TRANSPOSE_CONV has no groups)")
    if layer.transposed and layer.dilation != (1, 1):
        raise UnavailableError("dilated transposed convolution: not supported by this peer "
                               "(TRANSPOSE_CONV has no dilation)")


def make_model(layer, w, b):
    """The TFLite flatbuffer (bytes) of the layer: input 'x' (N, H, W, C_in) NHWC, output
    (N, H_out, W_out, C_out)."""
    _check(layer, w)
    import flatbuffers
    from ai_edge_litert import schema_py_generated as fb

    g = _Graph(fb)
    N, C, H, W = layer.input_shape
    Ho, Wo, M = layer.H_out, layer.W_out, layer.C_out
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel, layer.stride, layer.padding
    (dh, dw) = layer.dilation
    x = g.tensor("x", (N, H, W, C))
    y = g.tensor("y", (N, Ho, Wo, M))
    bias = None if b is None else g.constant("bias", b.astype(np.float32))
    if layer.transposed:
        conv_out = y
        full = ((H - 1) * sh + kh + layer.output_padding[0],
                (W - 1) * sw + kw + layer.output_padding[1])
        same = (_same_pad(Ho, H, kh, sh), _same_pad(Wo, W, kw, sw))
        if same == (ph, pw):
            padding = fb.Padding.SAME
        else:
            padding = fb.Padding.VALID
            if (ph, pw) != (0, 0):      # VALID writes the uncropped output: crop it after
                conv_out = g.tensor("full", (N, *full, M))
        filt = g.constant("w", np.ascontiguousarray(w.transpose(1, 2, 3, 0)))
        shape = g.constant("shape", np.array(g.shapes[conv_out], np.int32))
        opts = fb.TransposeConvOptionsT()
        opts.padding, opts.strideH, opts.strideW = padding, sh, sw
        g.op("TRANSPOSE_CONV", [shape, filt, x] + ([] if bias is None else [bias]),
             [conv_out], fb.BuiltinOptions.TransposeConvOptions, opts)
        if conv_out != y:
            begin = g.constant("begin", np.array([0, ph, pw, 0], np.int32))
            size = g.constant("size", np.array([N, Ho, Wo, M], np.int32))
            g.op("SLICE", [conv_out, begin, size], [y], fb.BuiltinOptions.SliceOptions,
                 fb.SliceOptionsT())
    else:
        same = (_same_pad(H, Ho, dh * (kh - 1) + 1, sh), _same_pad(W, Wo, dw * (kw - 1) + 1, sw))
        conv_in = x
        if (ph, pw) == (0, 0):
            padding = fb.Padding.VALID
        elif same == (ph, pw):
            padding = fb.Padding.SAME
        else:                           # explicit padding: a PAD op, then VALID
            padding = fb.Padding.VALID
            conv_in = g.tensor("xpad", (N, H + 2 * ph, W + 2 * pw, C))
            pads = g.constant("pads", np.array([[0, 0], [ph, ph], [pw, pw], [0, 0]], np.int32))
            g.op("PAD", [x, pads], [conv_in], fb.BuiltinOptions.PadOptions, fb.PadOptionsT())
        if layer.groups == C and C > 1:
            filt = g.constant("w", np.ascontiguousarray(
                w.reshape(M, kh, kw).transpose(1, 2, 0)[None]))
            opts = fb.DepthwiseConv2DOptionsT()
            opts.depthMultiplier = M // C
            kind, opts_type = "DEPTHWISE_CONV_2D", fb.BuiltinOptions.DepthwiseConv2DOptions
        else:
            filt = g.constant("w", np.ascontiguousarray(w.transpose(0, 2, 3, 1)))
            opts = fb.Conv2DOptionsT()
            kind, opts_type = "CONV_2D", fb.BuiltinOptions.Conv2DOptions
        opts.padding, opts.strideH, opts.strideW = padding, sh, sw
        opts.dilationHFactor, opts.dilationWFactor = dh, dw
        if bias is None:                # CONV_2D takes a bias: zeros when the layer has none
            bias = g.constant("bias", np.zeros(M, np.float32))
        g.op(kind, [conv_in, filt, bias], [y], opts_type, opts)
    builder = flatbuffers.Builder(1024)
    builder.Finish(g.model(x, y).Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


class _Graph:
    """A one-subgraph TFLite model being written: tensors, constant buffers, operators."""

    def __init__(self, fb):
        self.fb = fb
        self.buffers = [fb.BufferT()]     # buffer 0: the empty one of non-constant tensors
        self.tensors, self.shapes, self.operators, self.codes = [], [], [], []

    def tensor(self, name, shape, dtype=np.float32, buffer=0):
        t = self.fb.TensorT()
        t.name, t.shape, t.buffer = name, list(shape), buffer
        t.type = {np.dtype(np.float32): self.fb.TensorType.FLOAT32,
                  np.dtype(np.int32): self.fb.TensorType.INT32}[np.dtype(dtype)]
        self.tensors.append(t)
        self.shapes.append(tuple(shape))
        return len(self.tensors) - 1

    def constant(self, name, array):
        buf = self.fb.BufferT()
        buf.data = np.frombuffer(np.ascontiguousarray(array).tobytes(), np.uint8)
        self.buffers.append(buf)
        return self.tensor(name, array.shape, array.dtype, len(self.buffers) - 1)

    def op(self, kind, inputs, outputs, options_type, options):
        if kind not in self.codes:
            self.codes.append(kind)
        op = self.fb.OperatorT()
        op.opcodeIndex = self.codes.index(kind)
        op.inputs, op.outputs = list(inputs), list(outputs)
        op.builtinOptionsType, op.builtinOptions = options_type, options
        self.operators.append(op)

    def model(self, x, y):
        fb = self.fb
        sub = fb.SubGraphT()
        sub.tensors, sub.operators, sub.inputs, sub.outputs = (self.tensors, self.operators,
                                                               [x], [y])
        codes = []
        for kind in self.codes:
            code = fb.OperatorCodeT()
            code.builtinCode = getattr(fb.BuiltinOperator, kind)
            code.deprecatedBuiltinCode = min(code.builtinCode, 127)
            code.version = _VERSIONS[kind]
            codes.append(code)
        model = fb.ModelT()
        model.version, model.operatorCodes, model.subgraphs = 3, codes, [sub]
        model.buffers, model.description = self.buffers, "cconv bench"
        return model
