"""`cconv bench --networks`: whole models end to end, per image, against torch and onnxruntime.

Each network of cconv.models is built in torch too (cconv.bench.torch_models: the same
architecture, torchvision's names) with random weights and BatchNorm statistics
(torch_models.randomised); cconv's model loads the torch state_dict. Contenders, all on the
same input and checked against torch's output before they are timed:
    cconv-fused   cconv.nn.fuse(model): BatchNorm and activations in the conv epilogues
    cconv         the model as loaded
    torch         torch eager under torch.inference_mode()
    onnxruntime   the torch model exported to ONNX, every graph optimisation on
Times are medians over interleaved rounds (harness._interleaved), per image.
"""
import io
import statistics

import numpy as np

import cconv

from . import harness
from .peers import UnavailableError, onnxruntime_peer, optional
from .peers.base import Contender

NETWORKS = {
    # name: (input channels, input size)
    "resnet18": (3, 224),
    "resnet50": (3, 224),
    "mobilenet_v2": (3, 224),
    "unet": (3, 256),
}
CONTENDERS = ("cconv-fused", "cconv", "torch", "onnxruntime")
# Relative to max|torch's output|: whole networks sum many rounding errors.
TOLERANCE = 1e-3


def select(spec):
    """The network names `spec` ('all' or comma-separated names) chooses."""
    if spec in (None, "all"):
        return list(NETWORKS)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    bad = [n for n in names if n not in NETWORKS]
    if bad or not names:
        raise ValueError(f"--networks {spec!r}: expected 'all' or some of "
                         f"{', '.join(NETWORKS)}")
    return names


def _models(name, size, seed=0):
    """(torch model, cconv model) of network `name` with the same random weights (batch-norm
    statistics from a batch of random images of `size`)."""
    torch = optional("torch")
    from . import torch_models
    torch.manual_seed(seed)
    ref = getattr(torch_models, name)()
    channels = NETWORKS[name][0]
    torch_models.randomised(ref, seed, torch.randn(2, channels, size, size))
    model = getattr(cconv.models, name)()
    model.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    return ref.eval(), model.eval()


def _onnx_session(ref, example, threads):
    ort = optional("onnxruntime")
    torch = optional("torch")
    if ort is None or optional("onnx") is None:
        raise UnavailableError("onnxruntime (with onnx) is not installed")
    buf = io.BytesIO()
    with torch.inference_mode():
        torch.onnx.export(ref, (torch.from_numpy(example),), buf, input_names=["x"],
                          output_names=["y"], dynamo=False, opset_version=17)
    return ort.InferenceSession(buf.getvalue(), onnxruntime_peer.session_options(ort, threads),
                                providers=["CPUExecutionProvider"])


def contenders(name, threads, x):
    """({name: Contender} of CONTENDERS on input x, or the UnavailableError of one that
    cannot run; torch's output for x)."""
    torch = optional("torch")
    if torch is None:
        raise UnavailableError("torch is not installed (it builds the networks' weights)")
    ref, model = _models(name, x.shape[-1])
    fused = cconv.nn.fuse(model, x[:1])
    xt = torch.from_numpy(x)

    def torch_call():
        with torch.inference_mode():
            return ref(xt)
    live = {"cconv-fused": Contender("cconv-fused", lambda: fused(x)),
            "cconv": Contender("cconv", lambda: model(x)),
            "torch": Contender("torch", torch_call, lambda t: t.numpy())}
    try:
        session = _onnx_session(ref, x, threads)
    except UnavailableError as exc:
        live["onnxruntime"] = exc        # noted by the caller; the others still run
    else:
        live["onnxruntime"] = Contender("onnxruntime",
                                        lambda: session.run(None, {"x": x})[0])
    return live, torch_call().numpy()


def example(name, batch):
    """A batch of random images of network `name`'s input size."""
    channels, size = NETWORKS[name]
    return np.random.default_rng(1).standard_normal((batch, channels, size, size)).astype(
        np.float32)


def check(out, want):
    """(within TOLERANCE of torch's output want, max abs diff)."""
    diff = float(np.max(np.abs(np.asarray(out) - want)))
    return diff <= TOLERANCE * max(1.0, float(np.max(np.abs(want)))), diff


def bench_network(name, batch, threads, *, rounds=5, target_s=0.03, progress=None):
    """Check and time the contenders on network `name` at `batch` images, `threads` threads:
    the record (a dict: seconds per image per contender, checks, notes)."""
    x = example(name, batch)
    record = {"network": name, "batch": batch, "threads": threads, "times": {},
              "checks": {}, "notes": {}, "others_cpus": None}
    say = progress.update if progress else (lambda text: None)
    with harness.ThreadSettings(threads):
        say("building")
        try:
            candidates, want = contenders(name, threads, x)
        except UnavailableError as exc:
            record["notes"]["all"] = str(exc)
            return record
        live = {}
        for cname, c in candidates.items():
            if isinstance(c, UnavailableError):
                record["notes"][cname] = str(c)
                continue
            say(f"checking {cname}")
            ok, diff = check(c.to_numpy(c.call()), want)
            record["checks"][cname] = {"ok": ok, "max_abs_diff": diff}
            if ok:
                live[cname] = c
            else:
                record["notes"][cname] = f"WRONG: max abs diff {diff:.3g}; not timed"
        samples, _ = harness._interleaved(live, threads > 1, rounds, target_s, record, say)
    for cname in live:
        record["times"][cname] = statistics.median(samples[cname]) / batch
    return record


def _ratio(times, name):
    fused = times.get("cconv-fused")
    return f"{times[name] / fused:.2f}" if fused and name in times else "-"


def format_table(records):
    """Milliseconds per image and ratios peer / cconv-fused (above 1: cconv-fused is
    faster), one row per network, batch and thread count."""
    head = (f"{'network':14s} {'batch':>5s} {'thr':>3s} " + " ".join(
        f"{c:>12s}" for c in CONTENDERS) + "   torch/fused  ort/fused  unfused/fused")
    lines = ["milliseconds per image (median), ratios to cconv-fused:", head,
             "-" * len(head)]
    for r in records:
        t = r["times"]
        cells = " ".join(f"{t[c] * 1e3:12.2f}" if c in t else f"{'-':>12s}"
                         for c in CONTENDERS)
        torch, ort, unfused = (_ratio(t, c) for c in ("torch", "onnxruntime", "cconv"))
        lines.append(f"{r['network']:14s} {r['batch']:5d} {r['threads']:3d} {cells}   "
                     f"{torch:>11s}  {ort:>9s}  {unfused:>13s}")
    notes = [f"  {r['network']} b{r['batch']} t{r['threads']}: {k}: {v}"
             for r in records for k, v in r["notes"].items()]
    return "\n".join(lines + (["notes:"] + notes if notes else []))
