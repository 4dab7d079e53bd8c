"""Winograd (forced) against the planner's direct plan on the bench's 3x3 stride-1 layers:

    PYTHONPATH=. python benchmarks/winograd_vs_direct.py CPB TILES PPB [f64]

alternating the two in one run; the ratio, not the times, is what to read.
"""
import numpy as np, time, sys
import cconv
from cconv import _params, _isa, _engine, _planner
from cconv._kernels import _winograd
rng = np.random.default_rng(0)
cpb, tc, ppb = (int(a) for a in sys.argv[1:4])
dt = np.float32 if len(sys.argv) < 5 else np.float64
for (C,H,K) in [(256,24,128),(64,56,64),(128,28,128),(256,14,256)]:
    x = rng.standard_normal((1,C,H,H)).astype(dt)
    w = rng.standard_normal((K,C,3,3)).astype(dt)
    params = _params.conv2d_geometry("conv2d", x.shape, w.shape, 1, 1, 1, 1)
    k = _winograd.Winograd(params, _isa.current(), x.itemsize, cpb, tc, ppb)
    packed = np.empty(k.packed_size, dt); k.pack(w.reshape(-1), packed)
    out = np.empty(params.output_shape, dt)
    bound = _engine.bind(_planner.plan(params, dt), params)
    pw = _engine.prepare_weight(bound, w)
    out2 = np.empty_like(out)
    tw=[];td=[]
    for rep in range(7):
        t=time.perf_counter(); k.run(x, packed, True, None, out, 2); tw.append(time.perf_counter()-t)
        t=time.perf_counter(); _engine.execute(bound, x, pw, None, out2); td.append(time.perf_counter()-t)
    print(C,H,K, "wino %.2f ms direct %.2f ms speedup %.2f" % (min(tw)*1e3, min(td)*1e3, min(td)/min(tw)))
