"""Record a hash of every output of cconv over the test sweeps and the bench layers: every
algorithm that applies, every instruction set this CPU runs, both dtypes, 1 and 2 threads,
the functional call and the module. A change meant to keep results bitwise identical (a
restructure) records before and after and compares:

    PYTHONPATH=OLD_TREE python tools/record_outputs.py before.json
    PYTHONPATH=NEW_TREE python tools/record_outputs.py after.json
    python tools/record_outputs.py --compare before.json after.json

Run it from a directory outside the trees, so that PYTHONPATH picks the tree. The cases come
from this checkout's tests (test_conv2d.CASES, test_conv_transpose2d.CASES).
"""
import hashlib
import json
import os
import sys

import numpy as np

TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests")
ALGORITHMS = ("igemm", "igemm_cl", "depthwise", "depthwise_cl")


def digest(a):
    a = np.ascontiguousarray(a)
    return hashlib.sha256(a.tobytes()).hexdigest()[:16] + str(a.shape)


def cases():
    """(name, transposed, x shape, w shape, bias, C_out, kwargs, C_in, groups) to record."""
    sys.path.insert(0, TESTS)
    import test_conv2d
    import test_conv_transpose2d

    from cconv.bench import layers
    for i, c in enumerate(test_conv2d.CASES):
        yield (f"case{i}", False, c.x_shape, c.w_shape, c.bias, c.w_shape[0], c.kwargs,
               c.C_in, c.groups)
    for i, c in enumerate(test_conv_transpose2d.CASES):
        yield (f"tcase{i}", True, c.x_shape, c.w_shape, c.bias, c.C_out, c.kwargs, c.C_in,
               c.groups)
    for layer in layers.LAYERS:
        yield (layer.name, layer.transposed, layer.input_shape, layer.weight_shape, True,
               layer.C_out, layer.conv_kwargs(), layer.C_in, layer.groups)


def outcome(call, *args, **kwargs):
    try:
        return digest(call(*args, **kwargs))
    except Exception as exc:       # an error is an outcome to compare too
        return "ERR " + type(exc).__name__


def module_output(module, x, w, b, cin, cout, kernel, dtype, kw):
    m = module(cin, cout, kernel, bias=b is not None, dtype=dtype, **kw)
    m.load_state_dict({"weight": w, **({} if b is None else {"bias": b})})
    return m(x)


def record(path):
    import cconv
    from cconv import _isa
    rec = {}
    for seed, (name, tr, xs, ws, bias, cout, kw, cin, groups) in enumerate(cases()):
        fn = cconv.conv_transpose2d if tr else cconv.conv2d
        module = cconv.ConvTranspose2d if tr else cconv.Conv2d
        algorithms = [a for a in ALGORITHMS
                      if not a.startswith("depthwise") or (cin == groups and not tr)]
        for dtype in (np.float32, np.float64):
            rng = np.random.default_rng(seed)
            x = rng.standard_normal(xs).astype(dtype)
            w = rng.standard_normal(ws).astype(dtype)
            b = rng.standard_normal(cout).astype(dtype) if bias else None
            for isa in _isa.SUPPORTED:
                with _isa.forced(isa):
                    for threads in (1, 2):
                        cconv.set_num_threads(threads)
                        key = f"{name}|{np.dtype(dtype).name}|{isa}|{threads}"
                        for a in [None, *algorithms]:
                            rec[f"{key}|{a}|f"] = outcome(fn, x, w, b, **kw, algorithm=a)
                        rec[f"{key}|m"] = outcome(module_output, module, x, w, b, cin, cout,
                                                  ws[2:], dtype, kw)
    cconv.set_num_threads(None)
    with open(path, "w") as f:
        json.dump(rec, f, indent=0, sort_keys=True)
    print(f"{len(rec)} records")


def compare(before, after):
    with open(before) as f, open(after) as g:
        a, b = json.load(f), json.load(g)
    diff = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    print(f"{len(a)} and {len(b)} records, {len(diff)} differ")
    for k in diff[:20]:
        print(" ", k, a.get(k), b.get(k))
    return 1 if diff else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--compare"]:
        sys.exit(compare(*sys.argv[2:4]))
    record(sys.argv[1])
