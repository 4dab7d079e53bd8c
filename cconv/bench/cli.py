"""`cconv bench [...]` / `python -m cconv bench [...]`: the command line (`--help`).

run() first re-runs the command in a fresh process without the environment variables that
slow numpy's matmul (unless --keep-env), then main() benchmarks the chosen layers at each
thread count and prints the tables.
"""
import argparse
import os
import shutil
import sys
import time

import numpy as np

import cconv

from . import harness, layers, report
from .peers import CCONV, MATMULS, ONE_THREAD, PEERS, SERIAL, SLOW_BLAS_ENV

# The per-call overhead row: a 1x1 convolution of a 1x1x1x1 input.
OVERHEAD_LAYER = layers.Layer("overhead.1x1x1x1", "per-call overhead", 1, 1, 1, 1, 1, (1, 1))


class Progress:
    """One line rewritten in place on a terminal; plain lines (one per step) otherwise."""

    def __init__(self, stream=None, enabled=True):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.step_text = ""
        self.dirty = False

    def step(self, text):
        self.step_text = text
        if not self.enabled:
            return
        if self.tty:
            self.update("")
        else:
            print(text, file=self.stream, flush=True)

    def update(self, detail):
        if not self.tty:
            return
        width = shutil.get_terminal_size((100, 20)).columns - 1
        line = f"{self.step_text}: {detail}" if detail else self.step_text
        self.stream.write("\r" + line[:width] + "\x1b[K")
        self.stream.flush()
        self.dirty = True

    def close(self):
        if self.tty and self.dirty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.dirty = False


# ---- command line --------------------------------------------------------------------------
def _parse_threads(text):
    try:
        threads = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--threads {text!r}: expected comma-separated "
                                         f"ints, e.g. 1,2") from None
    if not threads or min(threads) < 1:
        raise argparse.ArgumentTypeError(f"--threads {text!r}: expected ints >= 1")
    return threads


def _parse_peers(text):
    peers = [p.strip() for p in text.split(",") if p.strip() and p.strip() != "none"]
    aliases = {"ort": "onnxruntime", "np": "numpy", "tfl": "tflite"}
    peers = [aliases.get(p, p) for p in peers]
    bad = [p for p in peers if p not in PEERS]
    if bad:
        raise argparse.ArgumentTypeError(f"--peers: unknown {bad}; expected some of "
                                         f"{', '.join(PEERS)} (or none)")
    return list(dict.fromkeys(peers))


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m cconv bench",
        description="Time cconv (functional and module) against torch, onnxruntime, a "
                    "naive numpy im2col, ncnn and TFLite on named layers of real networks, in "
                    "interleaved "
                    "rounds; print ratios (peer time / cconv time: above 1, cconv is "
                    "faster) and their geomeans.")
    parser.add_argument("--layers", default=None,
                        help="'quick', 'all' (the default) or comma-separated layer names or "
                             "substrings of names (see --list)")
    parser.add_argument("--threads", type=_parse_threads, default=[1, 2],
                        help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--peers", type=_parse_peers, default=list(PEERS),
                        help=f"comma-separated peers among {','.join(PEERS)}, or none "
                             f"(default: all; those not installed are skipped with a note)")
    parser.add_argument("--quick", action="store_true",
                        help="the quick layer set (unless --layers), 4 rounds of 15 ms, no "
                             "matmul ceiling: under a minute")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds per layer (default 7; --quick 4)")
    parser.add_argument("--target-ms", type=float, default=None,
                        help="time of one batch of calls per contender and round (default "
                             "30; --quick 15)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--json", metavar="FILE", help="write every measurement to FILE")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="bar chart of GFLOP/s per layer and contender (matplotlib)")
    parser.add_argument("--update-readme", metavar="FILE",
                        help="replace the table between the bench-table markers in FILE "
                             "(benchmarks/README.md) with this run's")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                        help="before each row, wait up to SECONDS until other processes use "
                             "under a quarter of a CPU (default 0: no wait)")
    parser.add_argument("--busy", action="store_true",
                        help="instead of the ratio tables: per layer and thread count N above "
                             "1, time cconv-module quietly on 1 thread, then on N threads "
                             "while busy processes (python -c 'while True: pass', unpinned) "
                             "hold CPUs; report the N-thread median and worst call against "
                             "the quiet 1-thread median. cconv only: --peers is ignored, "
                             "peers are not part of this measurement")
    parser.add_argument("--busy-cpus", type=int, default=None, metavar="K",
                        help="with --busy: how many busy processes, one per CPU held "
                             "(default 1)")
    parser.add_argument("--networks", nargs="?", const="all", default=None, metavar="NAMES",
                        help="instead of layers: whole networks of cconv.models ('all', the "
                             "default, or comma-separated names among "
                             "resnet18,resnet50,mobilenet_v2,unet), ms per image of cconv "
                             "fused and unfused, torch eager and onnxruntime")
    parser.add_argument("--batch", type=_parse_threads, default=[1, 8], metavar="B",
                        help="with --networks: comma-separated batch sizes (default 1,8)")
    parser.add_argument("--no-overhead", action="store_true",
                        help="skip the per-call overhead row")
    parser.add_argument("--no-progress", action="store_true", help="no progress display")
    parser.add_argument("--list", action="store_true", help="list the layers and exit")
    parser.add_argument("--keep-env", action="store_true",
                        help=f"do not re-run without {', '.join(SLOW_BLAS_ENV)} (they slow "
                             f"numpy's matmul)")
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.busy_cpus is not None and not args.busy:
        parser.error("--busy-cpus needs --busy")
    if args.busy_cpus is not None and args.busy_cpus < 1:
        parser.error(f"--busy-cpus {args.busy_cpus}: expected an int >= 1")
    if args.busy and (args.plot or args.update_readme):
        parser.error("--plot and --update-readme draw the ratio tables, which --busy does "
                     "not measure")
    if args.networks is not None and (args.busy or args.plot or args.layers):
        parser.error("--networks times whole networks: not with --busy, --plot or --layers")
    if args.busy and max(args.threads) < 2:
        parser.error("--busy times calls on more than one thread: give --threads with a "
                     "count above 1, e.g. 1,2")
    if args.list:
        for layer in layers.LAYERS:
            quick = "quick" if layer.name in layers.QUICK else ""
            print(f"{layer.name:28s} {layer.network:22s} {layer.describe():42s} "
                  f"{layer.flops / 1e6:9.1f} MFLOP  {quick}")
        return 0
    spec = args.layers or ("quick" if args.quick else "all")
    try:
        chosen = layers.select(spec)
    except ValueError as exc:
        print(f"python -m cconv bench: {exc}", file=sys.stderr)
        return 2
    for path in (args.json, args.plot):
        if path and os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
    rounds = args.rounds or (4 if args.quick else 7)
    target_s = (args.target_ms or (15 if args.quick else 30)) / 1e3
    dtype = np.dtype(args.dtype)
    peers = [] if args.busy else args.peers   # --busy times cconv alone
    # The matmul ceiling (the %mm column) is the slowest contender of a row: not in the quick run.
    ceiling = "numpy" in peers and not args.quick
    contenders = (list(CCONV) + peers + (list(MATMULS) if ceiling else [])
                  + ([SERIAL] if not args.quick else []))
    info = report.machine_info()
    if info["slow_blas_env"]:
        print(f"warning: {info['slow_blas_env']} is set and slows numpy's matmul; run "
              f"without --keep-env, or with env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE",
              file=sys.stderr)
    if "numpy" in peers and info["threadpoolctl"] is None:
        print("warning: threadpoolctl is not installed: numpy's BLAS uses every core in every "
              "row, so the numpy column at fewer threads is not a like-for-like peer (pip "
              "install threadpoolctl, or \".[bench]\")", file=sys.stderr)
    progress = Progress(enabled=not args.no_progress)
    if args.networks is not None:
        return _main_networks(args, argv, info, progress, rounds=rounds, target_s=target_s)
    if args.busy:
        return _main_busy(args, argv, chosen, spec, info, progress, rounds=rounds,
                          target_s=target_s, dtype=dtype)
    steps = [(layer, t) for layer in chosen for t in args.threads]
    if not args.no_overhead:
        steps += [(OVERHEAD_LAYER, t) for t in args.threads]
    t_start = time.perf_counter()
    records, overhead = [], []
    try:
        for i, (layer, t) in enumerate(steps, 1):
            progress.step(f"[{i}/{len(steps)}] {layer.name} ({layer.describe()}), "
                          f"{t} thread{'s' if t > 1 else ''}")
            if args.wait_quiet > 0:
                harness.wait_quiet(args.wait_quiet, progress.update)
            row = [c for c in contenders if (c not in MATMULS or layer is not OVERHEAD_LAYER)
                   and (c not in ONE_THREAD or t > 1)]
            rec = harness.bench_layer(layer, t, row, dtype=dtype, rounds=rounds,
                                      target_s=target_s, progress=progress)
            (overhead if layer is OVERHEAD_LAYER else records).append(rec)
    finally:
        progress.close()
    elapsed = time.perf_counter() - t_start
    header = report.format_header(info, records + overhead, elapsed=elapsed, dtype=dtype,
                                  threads=args.threads, rounds=rounds, target_s=target_s,
                                  peers=peers)
    table = report.format_table(records, peers)
    text = header + "\n\n" + table
    if overhead:
        text += "\n\n" + report.format_overhead(overhead)
    print(text)
    wrong = [f"{r['layer']}:{n}" for r in records + overhead for n, c in r["checks"].items()
             if not c["ok"]]
    if args.json:
        data = {"meta": dict(info, argv=argv,
                             layers=spec, threads=args.threads, peers=peers, rounds=rounds,
                             target_ms=target_s * 1e3, dtype=dtype.name, elapsed_s=elapsed,
                             tolerance=harness.TOLERANCE),
                "records": records, "overhead": overhead,
                "geomeans": {str(t): g for t, g in report.geomeans(records, peers).items()}}
        report.write_json(args.json, data)
    if args.plot:
        if report.plot(records, args.plot, contenders):
            print(f"\nplot written to {args.plot}")
    if args.update_readme:
        cmd = "python -m cconv bench " + " ".join(argv)
        report.update_readme(args.update_readme, f"`{cmd.strip()}`\n\n```\n{text}\n```")
        print(f"table written to {args.update_readme}")
    if wrong:
        print(f"\nerror: outputs disagree with the reference: {', '.join(wrong)}",
              file=sys.stderr)
        return 1
    return 0


def _main_busy(args, argv, chosen, spec, info, progress, *, rounds, target_s, dtype):
    """--busy: one row per layer and thread count above 1 (harness.bench_busy), the busy
    table, the JSON; exit status 1 where cconv's output disagreed with the reference."""
    cpus = args.busy_cpus or 1
    steps = [(layer, t) for layer in chosen for t in args.threads if t > 1]
    t_start = time.perf_counter()
    records = []
    try:
        for i, (layer, t) in enumerate(steps, 1):
            progress.step(f"[{i}/{len(steps)}] {layer.name} ({layer.describe()}), quiet on 1 "
                          f"thread, then {t} threads with {cpus} CPU{'s' if cpus > 1 else ''} "
                          f"held")
            if args.wait_quiet > 0:
                harness.wait_quiet(args.wait_quiet, progress.update)
            records.append(harness.bench_busy(layer, t, busy_cpus=cpus, dtype=dtype,
                                              rounds=rounds, target_s=target_s,
                                              progress=progress))
    finally:
        progress.close()
    elapsed = time.perf_counter() - t_start
    # No records for the header's load line: in the busy timing the load is ours on purpose;
    # the table's quiet and others columns show it.
    header = report.format_header(info, [], elapsed=elapsed, dtype=dtype,
                                  threads=args.threads, rounds=rounds, target_s=target_s,
                                  peers=[])
    print(header + f"\nbusy: {cpus} busy process{'es' if cpus > 1 else ''} of "
          f"{info['cpus_usable']} usable CPUs\n\n" + report.format_busy(records))
    if args.json:
        data = {"meta": dict(info, argv=argv, layers=spec, threads=args.threads, peers=[],
                             rounds=rounds, target_ms=target_s * 1e3, dtype=dtype.name,
                             elapsed_s=elapsed, tolerance=harness.TOLERANCE, busy_cpus=cpus,
                             busy_limit=report.BUSY_LIMIT),
                "busy": records}
        report.write_json(args.json, data)
    wrong = [r["layer"] for r in records for c in r["checks"].values() if not c["ok"]]
    if wrong:
        print(f"\nerror: outputs disagree with the reference: {', '.join(wrong)}",
              file=sys.stderr)
        return 1
    return 0


def _main_networks(args, argv, info, progress, *, rounds, target_s):
    """--networks: one row per network, batch and thread count (networks.bench_network);
    exit status 1 where a contender's output disagreed with torch's."""
    from . import networks
    try:
        chosen = networks.select(args.networks)
    except ValueError as exc:
        print(f"python -m cconv bench: {exc}", file=sys.stderr)
        return 2
    steps = [(n, b, t) for n in chosen for b in args.batch for t in args.threads]
    t_start = time.perf_counter()
    records = []
    try:
        for i, (name, batch, t) in enumerate(steps, 1):
            progress.step(f"[{i}/{len(steps)}] {name}, batch {batch}, {t} "
                          f"thread{'s' if t > 1 else ''}")
            if args.wait_quiet > 0:
                harness.wait_quiet(args.wait_quiet, progress.update)
            records.append(networks.bench_network(name, batch, t, rounds=rounds,
                                                  target_s=target_s, progress=progress))
    finally:
        progress.close()
    elapsed = time.perf_counter() - t_start
    header = report.format_header(info, [], elapsed=elapsed, dtype=np.dtype(np.float32),
                                  threads=args.threads, rounds=rounds, target_s=target_s,
                                  peers=["torch", "onnxruntime"])
    text = header + "\n\n" + networks.format_table(records)
    print(text)
    if args.json:
        report.write_json(args.json, {"meta": dict(info, argv=argv, elapsed_s=elapsed),
                                      "networks": records})
    if args.update_readme:
        cmd = "python -m cconv bench " + " ".join(argv)
        report.update_readme(args.update_readme, f"`{cmd.strip()}`\n\n```\n{text}\n```",
                             section="networks")
        print(f"table written to {args.update_readme}")
    wrong = [f"{r['network']}:{n}" for r in records for n, c in r["checks"].items()
             if not c["ok"]]
    if wrong:
        print(f"\nerror: outputs disagree with torch's: {', '.join(wrong)}", file=sys.stderr)
        return 1
    return 0


def reexec_without_slow_blas_env(argv):
    """OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE slow numpy's matmul (a peer) and are read when
    numpy is imported, so re-run this command in a fresh process without them (unless
    --keep-env); does not return then. The removed values are recorded in the run's
    metadata (report.machine_info)."""
    found = {k: os.environ[k] for k in SLOW_BLAS_ENV if k in os.environ}
    if not found or "--keep-env" in argv or os.name != "posix":
        return
    env = {k: v for k, v in os.environ.items() if k not in SLOW_BLAS_ENV}
    env["CCONV_BENCH_UNSET"] = " ".join(f"{k}={v}" for k, v in found.items())
    print(f"cconv bench: re-running without {env['CCONV_BENCH_UNSET']} (they "
          f"slow numpy's matmul; --keep-env keeps them)", file=sys.stderr, flush=True)
    sys.stdout.flush()
    # The new process imports this very cconv, whatever its working directory holds.
    home = os.path.dirname(os.path.dirname(os.path.abspath(cconv.__file__)))
    code = (f"import sys; sys.path.insert(0, {home!r}); from cconv.bench.cli import run; "
            f"sys.exit(run(sys.argv[1:]))")
    os.execve(sys.executable, [sys.executable, "-c", code, *argv], env)


def run(argv):
    """The command line's entry (cconv/__main__.py): `argv` are the arguments after
    `bench`."""
    reexec_without_slow_blas_env(argv)
    return main(argv)
