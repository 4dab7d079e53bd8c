"""The benchmark instruments themselves: layers, the numpy im2col peer, the CLI, the tables.

Fast (no timing thresholds, a few seconds), and independent of the peers: the reference is
cconv.testing's, and no test needs torch or onnxruntime.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import run_python

import cconv
from cconv import _params, _planner, testing
from cconv.bench import harness, layers, peers, report
from cconv.bench.peers import numpy_peer

REPO = Path(__file__).resolve().parents[1]         # this checkout (benchmarks/ is here)

# Small geometries that break im2col bookkeeping: non-square kernels, asymmetric stride,
# padding and dilation, groups, prime sizes.
SMALL = [
    layers.Layer("small.a", "test", 2, 3, 7, 5, 4, (3, 2), (2, 1), (1, 0), (1, 2), 1),
    layers.Layer("small.g", "test", 1, 6, 9, 11, 4, (3, 3), (1, 2), (2, 1), (2, 1), 2),
    layers.Layer("small.dw", "test", 1, 5, 8, 7, 5, (3, 3), (2, 2), (1, 1), (1, 1), 5),
    layers.Layer("small.1x1", "test", 3, 4, 5, 5, 7, (1, 1)),
]
SMALL_T = [
    layers.Layer("small.t", "test", 2, 4, 5, 6, 3, (4, 3), (2, 3), (1, 0), (1, 2), 1,
                 True, (1, 2)),
    layers.Layer("small.tg", "test", 1, 6, 4, 4, 4, (3, 3), (2, 2), (1, 1), (1, 1), 2,
                 True, (1, 0)),
]


@pytest.mark.parametrize("layer", SMALL, ids=lambda layer: layer.name)
def test_numpy_im2col_matches_the_reference_and_cconv(layer):
    x, w, b = harness.make_arrays(layer, np.float64)
    kw = layer.conv_kwargs()
    got = numpy_peer.conv2d(x, w, b, **kw)
    assert got.shape == layer.output_shape
    want = testing.conv2d_ref(x, w, b, **kw)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cconv.conv2d(x, w, b, **kw), want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["mnist.conv1", "resnext50.s2.3x3g32", "tinycam96.stem",
                                  "mobilenetv2.dw56s2"])
def test_numpy_im2col_matches_cconv_on_real_layers(name):
    layer = layers.by_name(name)
    x, w, b = harness.make_arrays(layer, np.float32)
    got = numpy_peer.conv2d(x, w, b, **layer.conv_kwargs())
    ok, diff = harness.check(got, cconv.conv2d(x, w, b, **layer.conv_kwargs()).astype(float))
    assert ok, diff


@pytest.mark.parametrize("layer", SMALL_T, ids=lambda layer: layer.name)
def test_numpy_conv_transpose_is_the_adjoint_of_conv2d(layer):
    """<conv2d(y, w), x> == <y, conv_transpose2d(x, w)>, with the transposed layer's output
    shape as conv2d's input (output_padding makes that shape unambiguous)."""
    rng = np.random.default_rng(1)
    x, w, _ = harness.make_arrays(layer, np.float64)
    y = rng.standard_normal(layer.output_shape)
    t = numpy_peer.conv_transpose2d(x, w, None, **layer.conv_kwargs())
    assert t.shape == layer.output_shape
    c = testing.conv2d_ref(y, w, None, layer.stride, layer.padding, layer.dilation,
                           layer.groups)
    assert c.shape == x.shape
    np.testing.assert_allclose(np.vdot(c, x), np.vdot(y, t), rtol=1e-10)
    want = testing.conv_transpose2d_ref(x, w, None, **layer.conv_kwargs())
    np.testing.assert_allclose(t, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("layer", layers.LAYERS, ids=lambda layer: layer.name)
def test_every_layer_has_a_valid_geometry(layer):
    assert min(layer.output_shape) >= 1
    x, w, b = harness.make_arrays(layer, np.float32)
    if layer.transposed:
        out = numpy_peer.conv_transpose2d(x, w, b, **layer.conv_kwargs())
        if hasattr(cconv, "conv_transpose2d"):
            assert cconv.conv_transpose2d(x, w, b, **layer.conv_kwargs()).shape == out.shape
    else:
        plan = _planner.plan_for_conv2d(layer.input_shape, layer.weight_shape,
                                        **layer.conv_kwargs())
        assert plan.algorithm in _planner.ALGORITHMS and plan.workspace_bytes >= 0
        out = cconv.conv2d(x, w, b, **layer.conv_kwargs())
        p = _params.conv2d_params("conv2d", layer.input_shape, layer.weight_shape,
                                  layer.stride, (layer.padding[0],) * 2 + (layer.padding[1],) * 2,
                                  layer.dilation, layer.groups)
        assert p.flops == layer.flops
    assert out.shape == layer.output_shape


def test_layer_selection():
    assert len(layers.LAYERS) >= 30
    quick = layers.select("quick")
    assert [layer.name for layer in quick] == [n for n in (lay.name for lay in layers.LAYERS)
                                               if n in layers.QUICK]
    kinds = {layer.kind for layer in quick}
    assert {"dense", "1x1", "strided", "depthwise", "grouped", "dilated",
            "transposed"} <= kinds
    assert any(layer.N > 1 for layer in quick)
    assert {layer.name for layer in layers.select("mnist")} == {"mnist.conv1",
                                                                 "mnist.conv2.b32"}
    assert len(layers.select("all")) == len(layers.LAYERS)
    with pytest.raises(ValueError, match="matches no layer"):
        layers.select("no-such-layer")


def test_check_catches_a_wrong_output():
    ref = np.ones((1, 2, 3, 3))
    assert harness.check(ref.astype(np.float32), ref)[0]
    ok, diff = harness.check(ref + 0.1, ref)
    assert not ok and diff == pytest.approx(0.1)
    assert not harness.check(np.ones((1, 2, 3, 4)), ref)[0]


@pytest.mark.parametrize("name", ["resnext50.s2.3x3g32", "dcgan.convT4x4s2"])
def test_the_bench_checks_against_cconv_testing(name):
    """The bench's reference is the project's one float64 reference, in either direction."""
    layer = layers.by_name(name)
    x, w, b = harness.make_arrays(layer, np.float32)
    ref = (testing.conv_transpose2d_ref if layer.transposed else testing.conv2d_ref)(
        x, w, b, **layer.conv_kwargs())
    got = harness.reference(layer, x, w, b)
    assert got.dtype == np.float64 and np.array_equal(got, ref)


def test_bench_layer_does_not_time_a_wrong_contender(monkeypatch):
    """A contender that disagrees with the reference is noted as WRONG and not timed; the
    others are checked and timed as usual."""
    real = harness.make_contender

    def make(name, *args):
        c = real(name, *args)
        if name != "numpy":
            return c
        return peers.Contender(name, lambda: c.call() + 0.1)
    monkeypatch.setattr(harness, "make_contender", make)
    rec = harness.bench_layer(layers.by_name("mnist.conv1"), 1, ["cconv-module", "numpy"],
                              rounds=1, target_s=0.001)
    assert rec["checks"]["cconv-module"]["ok"] and not rec["checks"]["numpy"]["ok"]
    assert rec["notes"]["numpy"].startswith("WRONG") and "numpy" not in rec["times"]
    assert rec["times"]["cconv-module"] > 0


def test_a_timed_batch_follows_untimed_calls(monkeypatch):
    """The calls of a batch are timed only after WARM_S of untimed ones (at least one), so a
    contender's first, slower calls after a pause are not part of its time."""
    clock = [0.0]
    calls = []

    def call():
        calls.append(clock[0])
        clock[0] += 0.002 if len(calls) > 1 else 0.1     # the first call is slow

    monkeypatch.setattr(harness.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(harness.time, "sleep", lambda s: None)
    assert harness.time_batch(call, 4) == pytest.approx(0.002)
    assert len(calls) == 4 + 1


def test_format_table_ratios_and_geomeans():
    rec = {"layer": "x", "threads": 1, "flops": 2e9, "algorithm": "igemm", "plan_threads": 1,
           "workspace_bytes": 2048, "others_cpus": 0.0,
           "times": {"cconv-module": 0.01, "cconv-functional": 0.02, "numpy": 0.04},
           "checks": {}, "notes": {"torch": "torch is not installed"}}
    assert report.ratio(rec, "numpy", "cconv-module") == pytest.approx(4)
    text = report.format_table([rec, dict(rec, layer="y", threads=2)], ["numpy", "torch"])
    assert "200.0" in text and "4.00" in text and "2.00" in text
    assert "torch is not installed" in text
    assert report.geomeans([rec], ["numpy"])[1]["numpy:m"] == pytest.approx(4)


def test_import_cconv_does_not_load_the_bench():
    """The bench is imported only by its command: neither `import cconv` nor `python -m
    cconv`'s module loads it, and its layers load without the harness or the peers."""
    code = """if True:
        import sys
        import cconv, cconv.__main__
        assert not any(m.startswith("cconv.bench") for m in sys.modules), sorted(sys.modules)
        from cconv.bench import layers
        loaded = sorted(m for m in sys.modules if m.startswith("cconv.bench"))
        assert loaded == ["cconv.bench", "cconv.bench.layers"], loaded
    """
    proc = run_python(["-c", code], timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_cli_writes_valid_json(tmp_path):
    out = tmp_path / "out.json"
    env = {k: v for k, v in os.environ.items() if k not in peers.SLOW_BLAS_ENV}
    proc = run_python(
        ["-m", "cconv", "bench", "--layers", "mnist", "--threads", "1",
         "--peers", "numpy", "--json", str(out), "--rounds", "2", "--target-ms", "2"],
        env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "mnist.conv1" in proc.stdout and "numpy:m" in proc.stdout and "%mm" in proc.stdout
    data = json.loads(out.read_text())
    assert {r["layer"] for r in data["records"]} == {"mnist.conv1", "mnist.conv2.b32"}
    for r in data["records"]:
        assert r["threads"] == 1 and r["algorithm"]
        assert set(r["times"]) == {"cconv-functional", "cconv-module", "numpy", "matmul"}
        assert all(c["ok"] for c in r["checks"].values())
    assert data["overhead"] and data["meta"]["peers"] == ["numpy"]


def test_console_script_runs_in_a_source_checkout():
    """README's main command, `cconv bench ...`, run from the root of a checkout whose
    cconv/ is unbuilt (CI: a clean clone, cconv pip-installed): neither the script nor its
    re-run without OPENBLAS_CORETYPE may import that source tree (`python -m` would)."""
    script = Path(sys.executable).with_name("cconv")
    if not script.exists() or os.environ.get("CCONV_TEST_NO_CHILD_PYTHON") == "1":
        pytest.skip("the cconv console script is not installed here (pip install .)")
    env = dict(os.environ, OPENBLAS_CORETYPE="Haswell")
    proc = subprocess.run([str(script), "bench", "--list"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "re-running without OPENBLAS_CORETYPE" in proc.stderr
    assert "founding.3x3" in proc.stdout


def test_summary_reads_pytest_benchmark_json(tmp_path, capsys):
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import summary
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    info = {"layer": "founding.3x3", "threads": 1, "flops": 339738624, "algorithm": "igemm",
            "plan_threads": 1, "workspace_bytes": 196608}
    data = {"benchmarks": [
        {"extra_info": dict(info, contender=c), "stats": {"median": t}}
        for c, t in (("cconv-module", 0.005), ("cconv-functional", 0.006), ("torch", 0.01))]}
    path = tmp_path / "b.json"
    path.write_text(json.dumps(data))
    assert summary.main([str(path)]) == 0
    text = capsys.readouterr().out
    assert "founding.3x3" in text and "2.00" in text and "1.67" in text


def test_format_table_matmul_share():
    """%mm: the module's GFLOP/s as a percentage of the matmul timed with it."""
    mm_flops = 2 * peers.MATMUL_N ** 3
    rec = {"layer": "x", "threads": 1, "flops": mm_flops, "algorithm": "igemm",
           "plan_threads": 1, "workspace_bytes": 0, "others_cpus": 0.0,
           "times": {"cconv-module": 0.4, "cconv-functional": 0.4, "matmul": 0.3},
           "checks": {}, "notes": {}}
    head, _, row = report.format_table([rec], []).splitlines()[:3]
    assert head.split()[5] == "%mm" and row.split()[4] == "75"   # ("module ms" is 2 words)
    assert "%mm" not in report.format_table([dict(rec, times={"cconv-module": 0.4})], [])


def test_format_table_thread_speedup():
    """vs1T: cconv-module's time on one thread over its time on the row's threads, from the
    same rounds; '-' in one-thread rows."""
    rec = {"layer": "x", "threads": 2, "flops": 1e9, "algorithm": "igemm", "plan_threads": 2,
           "workspace_bytes": 0, "others_cpus": 0.0,
           "times": {"cconv-module": 0.5, peers.SERIAL: 0.9}, "checks": {}, "notes": {}}
    one = dict(rec, threads=1, times={"cconv-module": 0.9})
    head, _, row2, row1 = report.format_table([rec, one], []).splitlines()[:4]
    assert head.split()[5] == "vs1T" and row2.split()[4] == "1.80" and row1.split()[4] == "-"
    assert "vs1T" not in report.format_table([one], [])


def test_format_table_matmul_speedup():
    """mm1T: numpy's matmul on one BLAS thread over its time on the row's threads, from the
    same rounds, next to vs1T; '-' in one-thread rows."""
    rec = {"layer": "x", "threads": 2, "flops": 1e9, "algorithm": "igemm", "plan_threads": 2,
           "workspace_bytes": 0, "others_cpus": 0.0,
           "times": {"cconv-module": 0.5, peers.SERIAL: 0.9, "matmul": 0.4,
                     peers.CEILING_SERIAL: 0.7}, "checks": {}, "notes": {}}
    one = dict(rec, threads=1, times={"cconv-module": 0.9, "matmul": 0.7})
    head, _, row2, row1 = report.format_table([rec, one], []).splitlines()[:4]
    assert head.split()[5:8] == ["%mm", "vs1T", "mm1T"]
    assert row2.split()[5:7] == ["1.80", "1.75"] and row1.split()[5:7] == ["-", "-"]
    assert "mm1T" not in report.format_table([one], [])


def test_serial_matmul_uses_one_blas_thread(monkeypatch):
    """The mm1T contender limits numpy's BLAS to one thread during its call only."""
    tpc = pytest.importorskip("threadpoolctl")
    layer = layers.by_name("mnist.conv1")
    x, w, b = harness.make_arrays(layer, np.float32)
    seen = []
    real = np.matmul

    def spy(a, c):
        seen.append([i["num_threads"] for i in tpc.threadpool_info()
                     if i["user_api"] == "blas"])
        return real(a, c)
    c = peers.make_contender(peers.CEILING_SERIAL, layer, x, w, b, 2)
    before = [i["num_threads"] for i in tpc.threadpool_info() if i["user_api"] == "blas"]
    monkeypatch.setattr(np, "matmul", spy)
    c.call()
    assert seen == [[1] * len(before)]
    assert [i["num_threads"] for i in tpc.threadpool_info() if i["user_api"] == "blas"] == before


# ---- ncnn and TFLite (skipped when their wheels are not installed) --------------------------
# Geometries for the two runtimes' own layer kinds and padding rules: dense, depthwise (and a
# channel multiplier), grouped, strided, dilated, padding that TFLite's SAME cannot express
# (a PAD op) and padding it can, batches, transposed ones with and without a crop.
PEER_LAYERS = SMALL + [
    layers.Layer("small.same", "test", 1, 5, 9, 9, 6, (3, 3), (1, 1), (1, 1)),
    layers.Layer("small.s2p1", "test", 1, 4, 10, 10, 6, (3, 3), (2, 2), (1, 1)),
    layers.Layer("small.pad20", "test", 2, 3, 6, 7, 4, (3, 3), (1, 1), (2, 0)),
    layers.Layer("small.dil", "test", 1, 4, 11, 9, 3, (3, 3), (1, 1), (2, 2), (2, 2)),
    layers.Layer("small.dwx2", "test", 1, 4, 8, 7, 8, (3, 3), (1, 1), (1, 1), (1, 1), 4),
    layers.Layer("small.t4s2", "test", 2, 5, 4, 5, 3, (4, 4), (2, 2), (1, 1), (1, 1), 1,
                 True),
    layers.Layer("small.t2s2", "test", 1, 6, 4, 3, 4, (2, 2), (2, 2), (0, 0), (1, 1), 1,
                 True),
    layers.Layer("small.t3op", "test", 1, 4, 5, 5, 3, (3, 3), (2, 2), (1, 1), (1, 1), 1,
                 True, (1, 1)),
    layers.Layer("small.t-nodil", "test", 2, 4, 5, 6, 3, (4, 3), (2, 3), (1, 0), (1, 1), 1,
                 True, (1, 2)),
]
# Transposed geometries that TRANSPOSE_CONV cannot express: ncnn runs them.
NOT_TFLITE = [SMALL_T[0], SMALL_T[1],
              layers.Layer("small.tdw", "test", 1, 4, 4, 5, 4, (3, 3), (2, 2), (1, 1), (1, 1),
                           4, True, (1, 1)),
              layers.Layer("small.td", "test", 1, 3, 4, 5, 2, (3, 2), (1, 2), (1, 0), (2, 1),
                           1, True)]
PEER_MODULES = {"ncnn": "ncnn", "tflite": "ai_edge_litert.interpreter"}


def _peer_output(name, layer, x, w, b, threads=1):
    pytest.importorskip(PEER_MODULES[name])
    c = peers.make_contender(name, layer, x, w, b, threads)
    return c.to_numpy(c.call())


@pytest.mark.parametrize("name", ["ncnn", "tflite"])
@pytest.mark.parametrize("layer", PEER_LAYERS + NOT_TFLITE, ids=lambda layer: layer.name)
def test_runtime_peers_match_the_reference(name, layer):
    """Each runtime's output equals cconv.testing's float64 reference within float32
    rounding (far inside the bench's TOLERANCE), with and without a bias."""
    if name == "tflite" and layer in NOT_TFLITE:
        pytest.skip("not supported by TFLite (test_tflite_refuses_what_it_cannot_express)")
    x, w, b = harness.make_arrays(layer, np.float32)
    for bias in (b, None):
        got = _peer_output(name, layer, x, w, bias)
        want = harness.reference(layer, x, w, bias)
        assert got.shape == layer.output_shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layer", NOT_TFLITE, ids=lambda layer: layer.name)
def test_tflite_refuses_what_it_cannot_express(layer):
    x, w, b = harness.make_arrays(layer, np.float32)
    with pytest.raises(peers.UnavailableError, match="not supported by this peer"):
        _peer_output("tflite", layer, x, w, b)


@pytest.mark.parametrize("name", ["ncnn", "tflite"])
def test_runtime_peers_refuse_float64(name):
    layer = SMALL[0]
    x, w, b = harness.make_arrays(layer, np.float64)
    with pytest.raises(peers.UnavailableError, match="float32 only"):
        _peer_output(name, layer, x, w, b)


@pytest.mark.parametrize("name", ["ncnn", "tflite"])
def test_runtime_peers_go_through_the_bench(name):
    """bench_layer checks the peer against the reference and times it at 2 threads; a layer it
    cannot express becomes a note, not a failure."""
    pytest.importorskip(PEER_MODULES[name])
    rec = harness.bench_layer(layers.by_name("mnist.conv1"), 2, ["cconv-module", name],
                              rounds=1, target_s=0.001)
    assert rec["checks"][name]["ok"] and rec["times"][name] > 0
    rec = harness.bench_layer(NOT_TFLITE[0], 1, ["cconv-module", name], rounds=1,
                              target_s=0.001)
    if name == "tflite":
        assert "not supported" in rec["notes"][name] and name not in rec["times"]
        assert "tfl:m" in report.format_table([rec], [name])
    else:
        assert rec["checks"][name]["ok"]
    assert set(peers.SHORT) >= set(peers.PEERS) and name in peers.PEERS


# ---- --busy ---------------------------------------------------------------------------------
def test_busy_options_parse():
    from cconv.bench import cli
    args = cli.build_parser().parse_args(["--busy", "--busy-cpus", "2", "--threads", "1,2"])
    assert args.busy and args.busy_cpus == 2 and args.threads == [1, 2]
    args = cli.build_parser().parse_args([])
    assert not args.busy and args.busy_cpus is None
    for argv in (["--busy-cpus", "1"], ["--busy", "--busy-cpus", "0"],
                 ["--busy", "--threads", "1"], ["--busy", "--plot", "x.png"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2, argv


def _alive(pid):
    """Whether process `pid` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_busy_processes_are_killed_on_exit_and_on_error():
    with harness.BusyProcesses(2) as busy:
        assert len(busy.procs) == 2 and all(p.poll() is None for p in busy.procs)
    assert all(p.returncode is not None for p in busy.procs)
    with pytest.raises(KeyboardInterrupt):
        with harness.BusyProcesses(1) as busy:
            raise KeyboardInterrupt
    assert busy.procs[0].returncode is not None


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_a_busy_process_does_not_outlive_a_killed_bench():
    """A bench that dies without its cleanup (os._exit here, SIGKILL in life) leaves no busy
    process behind: each one exits by itself once its parent is gone."""
    code = """if True:
        import os
        from cconv.bench import harness
        busy = harness.BusyProcesses(1).__enter__()
        print(busy.procs[0].pid, flush=True)
        os._exit(0)
    """
    proc = run_python(["-c", code], timeout=60)
    assert proc.returncode == 0, proc.stderr
    pid = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


def _recording_popen(monkeypatch):
    """Popen in the harness, recording every process it starts."""
    started = []
    real = subprocess.Popen

    def popen(*args, **kwargs):
        started.append(real(*args, **kwargs))
        return started[-1]
    monkeypatch.setattr(harness.subprocess, "Popen", popen)
    return started


def test_bench_busy_times_cconv_and_kills_its_busy_process(monkeypatch):
    started = _recording_popen(monkeypatch)
    rec = harness.bench_busy(layers.by_name("mnist.conv1"), 2, busy_cpus=1, rounds=2,
                             target_s=0.001)
    assert len(started) == 1 and started[0].returncode is not None
    assert rec["checks"]["cconv-module"]["ok"]
    assert rec["quiet_1t"] > 0 and rec["busy"] > 0 and rec["busy_worst"] >= min(
        rec["samples"]["busy"])
    assert len(rec["samples"]["busy"]) == len(rec["samples"]["busy_worst"]) == 2
    assert rec["threads"] == 2 and rec["busy_cpus"] == 1


def test_bench_busy_kills_its_busy_process_when_the_call_fails(monkeypatch):
    started = _recording_popen(monkeypatch)
    real = harness.make_contender

    def make(name, *args):
        c = real(name, *args)

        def call():
            if started:                     # fails once the busy process runs
                raise RuntimeError("boom")
            return c.call()
        return peers.Contender(name, call)
    monkeypatch.setattr(harness, "make_contender", make)
    with pytest.raises(RuntimeError, match="boom"):
        harness.bench_busy(layers.by_name("mnist.conv1"), 2, rounds=1, target_s=0.001)
    assert len(started) == 1 and started[0].returncode is not None


def _busy_record(layer, quiet, busy, worst, **extra):
    return dict({"layer": layer, "threads": 2, "busy_cpus": 1, "quiet_1t": quiet,
                 "busy": busy, "busy_worst": worst, "algorithm": "igemm", "plan_threads": 2,
                 "quiet_others_cpus": 0.01, "others_cpus": 1.0, "checks": {}, "notes": {}},
                **extra)


def test_format_busy_ratios_and_summary():
    records = [_busy_record("a", 0.002, 0.0018, 0.004),
               _busy_record("b", 0.001, 0.0015, 0.0091),
               _busy_record("c", None, None, None,
                            notes={"cconv-module": "WRONG: max abs diff 1"})]
    assert report.busy_ratios(records[1]) == (pytest.approx(1.5), pytest.approx(9.1))
    assert report.busy_ratios(records[2]) == (None, None)
    over, timed = report.busy_over(records)
    assert [r["layer"] for r in over] == ["b"] and timed == 2
    text = report.format_busy(records)
    rows = {line.split()[0]: line.split() for line in text.splitlines()
            if line.split() and line.split()[0] in ("a", "b", "c")}
    assert rows["a"][3:7] == ["2.000", "1.800", "0.90", "2.00"]
    assert rows["b"][3:7] == ["1.000", "1.500", "1.50!", "9.10"]
    assert rows["c"][3:7] == ["-", "-", "-", "-"]
    assert "1 of 2 rows above 1.2x the quiet 1-thread time (busy/1T): b (t=2)" in text
    assert "WRONG: max abs diff 1 -- c (t=2)" in text
    assert "0 of 2 rows above 2x" in report.format_busy(records, limit=2)


def test_cli_busy_writes_valid_json(tmp_path):
    out = tmp_path / "busy.json"
    proc = run_python(["-m", "cconv", "bench", "--layers", "mnist.conv1", "--busy",
                       "--threads", "1,2", "--rounds", "1", "--target-ms", "1", "--json",
                       str(out), "--no-progress"], timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "busy/1T" in proc.stdout and "rows above 1.2x" in proc.stdout
    data = json.loads(out.read_text())
    assert [(r["layer"], r["threads"]) for r in data["busy"]] == [("mnist.conv1", 2)]
    assert data["meta"]["busy_cpus"] == 1 and data["meta"]["peers"] == []


# ---- --networks --------------------------------------------------------------------------
def test_networks_selection_and_options():
    from cconv.bench import cli, networks
    assert networks.select("all") == list(networks.NETWORKS)
    assert networks.select("unet,resnet18") == ["unet", "resnet18"]
    with pytest.raises(ValueError, match="--networks 'vgg'"):
        networks.select("vgg")
    args = cli.build_parser().parse_args(["--networks", "--batch", "1,4"])
    assert args.networks == "all" and args.batch == [1, 4]
    assert cli.main(["--networks", "vgg", "--no-progress"]) == 2
    with pytest.raises(SystemExit):
        cli.main(["--networks", "--busy"])


def test_networks_check_refuses_a_wrong_output():
    from cconv.bench import networks
    want = np.linspace(-3, 3, 10)
    assert networks.check(want + 1e-4, want)[0]
    assert not networks.check(want + 1e-2, want)[0]


def test_networks_table_ratios_and_notes():
    from cconv.bench import networks
    records = [{"network": "resnet18", "batch": 1, "threads": 2,
                "times": {"cconv-fused": 0.010, "cconv": 0.012, "torch": 0.020,
                          "onnxruntime": 0.015},
                "checks": {}, "notes": {}},
               {"network": "unet", "batch": 8, "threads": 1, "times": {"cconv-fused": 0.1},
                "checks": {}, "notes": {"onnxruntime": "onnxruntime (with onnx) is not "
                                                      "installed"}}]
    text = networks.format_table(records)
    row = next(line for line in text.splitlines() if line.startswith("resnet18"))
    assert row.split()[-3:] == ["2.00", "1.50", "1.20"]
    assert "10.00" in row and "20.00" in row
    assert "unet b8 t1: onnxruntime: onnxruntime (with onnx) is not installed" in text


def test_bench_network_checks_then_times_every_contender(torch):
    """One small network end to end through the bench (few, short rounds): every contender
    agrees with torch and gets a time per image."""
    from cconv.bench import networks
    rec = networks.bench_network("mobilenet_v2", 1, 1, rounds=1, target_s=0.001)
    timed = set(networks.CONTENDERS) - {"onnxruntime"}
    if peers.optional("onnxruntime") is not None:
        timed.add("onnxruntime")
    else:
        assert "not installed" in rec["notes"]["onnxruntime"]
    assert set(rec["times"]) == timed, rec["notes"]
    assert all(c["ok"] for c in rec["checks"].values()), rec["checks"]
