"""What a run reports: the ratio table with geomeans, the per-call overhead table, the plot,
the machine it ran on, the JSON file and the README's table; with --busy, the busy table.

A ratio is peer time / cconv time: above 1, cconv is that many times faster than the peer.
Ratios are computed from one run only: the machine may be shared and noisy, so compare
ratios, not absolute times, and repeat before believing.
"""
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys

import numpy as np

import cconv

from .. import _config
from .peers import (
    CCONV,
    CEILING,
    CEILING_SERIAL,
    CONTENDERS,
    MATMUL_N,
    MATMULS,
    ONE_THREAD,
    SERIAL,
    SHORT,
    SLOW_BLAS_ENV,
    optional,
)

# Issue 18's target for --busy: with CPUs held by other processes, a multi-threaded call's
# median no slower than this many times the quiet 1-thread median.
BUSY_LIMIT = 1.2
README_START = "<!-- bench-table:start -->"
README_END = "<!-- bench-table:end -->"


def ratio(record, peer, path):
    """peer time / cconv time for one record (above 1: cconv is faster), or None."""
    t_peer = record["times"].get(peer)
    t_cconv = record["times"].get(path)
    if not t_peer or not t_cconv:
        return None
    return t_peer / t_cconv


def geomean(values):
    values = [v for v in values if v]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def geomeans(records, peers):
    """{threads: {"peer:f" / "peer:m": geomean ratio over the layers}}."""
    result = {}
    for t in sorted({r["threads"] for r in records}):
        rows = [r for r in records if r["threads"] == t]
        result[t] = {f"{SHORT[p]}:{SHORT[path]}": geomean([ratio(r, p, path) for r in rows])
                     for p in peers for path in CCONV}
    return result


def _cell(record, peer, path):
    v = ratio(record, peer, path)
    if v is not None:
        return f"{v:.2f}"
    for name in (peer, path):
        note = record["notes"].get(name, "")
        if note.startswith("WRONG"):
            return "WRONG"
        if note.startswith("failed"):
            return "fail"
    return "-"


def format_header(info, records, *, elapsed, dtype, threads, rounds, target_s, peers):
    """The lines above the tables: the run, the machine, and how busy other processes kept
    it while `records` (every row, the overhead's too) were timed."""
    cores = (f"{info['cores']} cores, {info['threads_per_core']} thread(s) per core; "
             if info["cores"] and info["threads_per_core"] else "")
    header = (f"cconv {info['cconv']} bench, {info['date']}, {elapsed:.0f} s\n"
              f"machine: {info['cpu']} ({cores}{info['cpus_usable']} usable CPUs)\n"
              f"run: {dtype.name}, threads {','.join(map(str, threads))}, {rounds} "
              f"interleaved rounds of ~{target_s * 1e3:g} ms per contender; peers "
              f"{','.join(peers) or 'none'} (torch {info['torch']}, onnxruntime "
              f"{info['onnxruntime']}, numpy {info['numpy']}"
              + "".join(f", {name} {info.get(key)}" for key, name in
                        (("ncnn", "ncnn"), ("tflite", "ai-edge-litert")) if key in peers)
              + ")")
    loads = [r["others_cpus"] for r in records if r["others_cpus"] is not None]
    if loads:
        header += (f"\nother processes used {statistics.mean(loads):.2f} CPUs on average "
                   f"(at most {max(loads):.2f}) of {info['cpus_usable']} while timing")
        crowded = sorted({r["threads"] for r in records
                          if (r["others_cpus"] or 0) > info["cpus_usable"] - r["threads"] + 0.25})
        if crowded:
            header += (f"; with {','.join(map(str, crowded))} threads they left fewer free "
                       f"CPUs than threads: a parallel call then waits for descheduled "
                       f"threads, so those timings are unreliable; repeat on a quiet machine")
    return header


def format_table(records, peers):
    """The summary table: one row per layer and thread count, then geomeans per thread
    count, then the notes (skipped and failed contenders)."""
    head = ["layer", "thr", "module ms", "GFLOP/s", "algorithm", "used", "ws KiB", "busy"]
    ceiling = any(CEILING in r["times"] for r in records)
    serial = any(SERIAL in r["times"] for r in records)
    mm1 = any(CEILING_SERIAL in r["times"] for r in records)
    if mm1:
        head.insert(4, "mm1T")
    if serial:
        head.insert(4, "vs1T")
    if ceiling:
        head.insert(4, "%mm")
    for p in peers:
        head += [f"{SHORT[p]}:f", f"{SHORT[p]}:m"]
    rows = []
    for r in records:
        t = r["times"].get("cconv-module")
        ws = r.get("workspace_bytes")
        row = [r["layer"], str(r["threads"]),
               "-" if t is None else f"{t * 1e3:.3f}",
               "-" if t is None else f"{r['flops'] / t / 1e9:.1f}",
               r.get("algorithm") or "-",
               str(r.get("plan_threads", "-")),
               "-" if ws is None else f"{ws / 1024:.0f}",
               "-" if r.get("others_cpus") is None else f"{r['others_cpus']:.2f}"]
        if mm1:
            m1, mt = r["times"].get(CEILING_SERIAL), r["times"].get(CEILING)
            row.insert(4, "-" if m1 is None or mt is None else f"{m1 / mt:.2f}")
        if serial:
            t1 = r["times"].get(SERIAL)
            row.insert(4, "-" if t is None or t1 is None else f"{t1 / t:.2f}")
        if ceiling:
            mm = r["times"].get(CEILING)
            row.insert(4, "-" if t is None or mm is None
                       else f"{r['flops'] * mm / (t * 2 * MATMUL_N ** 3) * 100:.0f}")
        for p in peers:
            row += [_cell(r, p, "cconv-functional"), _cell(r, p, "cconv-module")]
        rows.append(row)
    gm = geomeans(records, peers)
    foot = []
    for t, values in gm.items():
        n = sum(r["threads"] == t and any(ratio(r, p, c) for p in peers for c in CCONV)
                for r in records)
        row = [f"geomean ({n} layers)", str(t)]
        row += [""] * (6 + ceiling + serial + mm1)
        for p in peers:
            for path in CCONV:
                v = values[f"{SHORT[p]}:{SHORT[path]}"]
                row.append("-" if v is None else f"{v:.2f}")
        foot.append(row)
    widths = [max(len(x[i]) for x in [head] + rows + foot) for i in range(len(head))]

    def fmt(row):
        return "  ".join(c.ljust(w) if i == 0 or head[i] == "algorithm" else c.rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths))).rstrip()
    rule = "-" * len(fmt(head))
    lines = [fmt(head), rule] + [fmt(r) for r in rows] + [rule] + [fmt(r) for r in foot]
    lines.append("")
    lines.append("thr: threads allowed; used: threads cconv's plan uses; ws: cconv's workspace; "
                 "module ms and GFLOP/s: cconv-module, median per call;")
    lines.append("busy: CPUs' worth of time other processes took while the row was timed "
                 "(noise).")
    if ceiling:
        lines.append(f"%mm: cconv-module's GFLOP/s as a percentage of numpy's float32 matmul "
                     f"({MATMUL_N}x{MATMUL_N}) timed in the same rounds.")
    if serial:
        lines.append("vs1T: cconv-module's time on 1 thread / its time on thr threads, both "
                     "timed in the same rounds.")
    if mm1:
        lines.append("mm1T: the same for numpy's matmul (1 BLAS thread / thr), in the same "
                     "rounds: what the machine gives a compute-bound BLAS.")
    lines.append("<peer>:f / <peer>:m = peer time / cconv time, for cconv-functional / "
                 "cconv-module: above 1, cconv is faster.")
    return "\n".join(lines + note_lines(records))


def format_overhead(records):
    """Per-call overhead table (microseconds per call of the 1x1x1x1 layer)."""
    names = [n for n in CONTENDERS if any(n in r["times"] for r in records)]
    head = ["per-call overhead, us", "thr"] + names
    rows = [[r["shape"], str(r["threads"])]
            + [f"{r['times'][n] * 1e6:.1f}" if n in r["times"] else "-" for n in names]
            for r in records]
    widths = [max(len(x[i]) for x in [head] + rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths)))
                     for row in [head] + rows)


def busy_ratios(record):
    """(busy median / quiet 1-thread median, worst busy call / quiet 1-thread median) of a
    --busy record, or (None, None) where it was not timed."""
    quiet = record.get("quiet_1t")
    if not quiet or record.get("busy") is None:
        return None, None
    return record["busy"] / quiet, record["busy_worst"] / quiet


def busy_over(records, limit=BUSY_LIMIT):
    """The timed --busy records whose median ratio exceeds `limit`, and how many were timed."""
    timed = [r for r in records if busy_ratios(r)[0] is not None]
    return [r for r in timed if busy_ratios(r)[0] > limit], len(timed)


def note_lines(records, shown=4):
    """The notes of the records' contenders, each with the rows it concerns (at most
    `shown` of them named)."""
    notes = {}
    for r in records:
        for name, note in r["notes"].items():
            notes.setdefault(f"{name}: {note}", []).append(f"{r['layer']} (t={r['threads']})")
    lines = ["", "notes:"] if notes else []
    for note, where in notes.items():
        more = len(where) - shown if shown is not None and len(where) > shown else 0
        lines.append(f"  {note} -- {', '.join(where[:len(where) - more])}"
                     + (f" and {more} more" if more else ""))
    return lines


def format_busy(records, limit=BUSY_LIMIT):
    """The --busy table: per layer and thread count, cconv-module's quiet 1-thread median and
    its median and worst call on `thr` threads with busy processes running; then the count
    of rows above `limit`, the legend and the notes."""
    head = ["layer", "thr", "held", "1T quiet ms", "busy ms", "busy/1T", "worst/1T",
            "algorithm", "used", "quiet", "others"]

    def opt(value, fmt, scale=1):
        return "-" if value is None else format(value * scale, fmt)
    rows = []
    for r in records:
        med, worst = busy_ratios(r)
        rows.append([r["layer"], str(r["threads"]), str(r["busy_cpus"]),
                     opt(r.get("quiet_1t"), ".3f", 1e3), opt(r.get("busy"), ".3f", 1e3),
                     opt(med, ".2f") + ("!" if med is not None and med > limit else " "),
                     opt(worst, ".2f"), r.get("algorithm") or "-",
                     str(r.get("plan_threads", "-")), opt(r.get("quiet_others_cpus"), ".2f"),
                     opt(r.get("others_cpus"), ".2f")])
    widths = [max(len(x[i]) for x in [head] + rows) for i in range(len(head))]

    def fmt(row):
        return "  ".join(c.ljust(w) if i == 0 or head[i] == "algorithm" else c.rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths))).rstrip()
    rule = "-" * len(fmt(head))
    over, timed = busy_over(records, limit)
    summary = (f"{len(over)} of {timed} rows above {limit:g}x the quiet 1-thread time "
               f"(busy/1T)" + (": " + ", ".join(f"{r['layer']} (t={r['threads']})"
                                               for r in over) if over else ""))
    lines = [fmt(head), rule] + [fmt(r) for r in rows] + [rule, summary, ""]
    lines.append("cconv-module only (no peers). held: busy processes (python -c 'while True: "
                 "pass', unpinned) running while")
    lines.append("the thr-thread call was timed; 1T quiet ms: median per call on 1 thread "
                 "with none running, timed just before;")
    lines.append(f"busy ms: median per call on thr threads with them; busy/1T: busy ms / 1T "
                 f"quiet ms (! above {limit:g}); worst/1T: the")
    lines.append("slowest single busy call / 1T quiet ms; used: threads cconv's plan uses; "
                 "quiet, others: CPUs' worth of")
    lines.append("time other processes took during the quiet and the busy timing (the "
                 "latter includes the busy processes).")
    lines += note_lines(records, shown=None)
    return "\n".join(lines)


def plot(records, path, contenders):
    """GFLOP/s per layer of each contender, one panel per thread count (matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"--plot {path}: matplotlib is not installed (pip install matplotlib); no plot "
              f"written", file=sys.stderr)
        return False
    threads = sorted({r["threads"] for r in records})
    names = [n for n in contenders
             if n not in MATMULS + ONE_THREAD and any(n in r["times"] for r in records)]
    layers = list(dict.fromkeys(r["layer"] for r in records))
    fig, axes = plt.subplots(len(threads), 1, figsize=(max(8, 0.45 * len(layers) + 3),
                                                       4.2 * len(threads)), squeeze=False)
    width = 0.8 / max(1, len(names))
    for ax, t in zip(axes[:, 0], threads):
        rows = {r["layer"]: r for r in records if r["threads"] == t}
        for j, name in enumerate(names):
            ys = [rows[lay]["flops"] / rows[lay]["times"][name] / 1e9
                  if lay in rows and name in rows[lay]["times"] else 0 for lay in layers]
            ax.bar([i + (j - (len(names) - 1) / 2) * width for i in range(len(layers))], ys,
                   width, label=name)
        ax.set_yscale("log")
        ax.set_ylabel("GFLOP/s")
        ax.set_title(f"{t} thread{'s' if t > 1 else ''}", loc="right")
        ax.set_xticks(range(len(layers)))
        ax.set_xticklabels(layers, rotation=60, ha="right", fontsize=8)
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8, ncol=len(names), loc="lower left", bbox_to_anchor=(0, 1.0),
                  frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def machine_info():
    """Date, CPU model and core counts, versions: the context a table needs."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    lscpu = {}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        lscpu = {k.strip(): v.strip() for k, _, v in
                 (line.partition(":") for line in out.splitlines()) if v}
    except (OSError, subprocess.SubprocessError):
        pass
    model = lscpu.get("Model name", model)
    cores = lscpu.get("Core(s) per socket")
    if cores and lscpu.get("Socket(s)", "").isdigit() and cores.isdigit():
        cores = str(int(cores) * int(lscpu["Socket(s)"]))
    info = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "cpu": model, "cores": cores, "threads_per_core": lscpu.get("Thread(s) per core"),
            "cpus": os.cpu_count(), "cpus_usable": usable,
            "platform": platform.platform(), "cconv": cconv.__version__,
            "cconv_config": _config.config(), "numpy": np.__version__}
    for key, name in (("torch", "torch"), ("onnxruntime", "onnxruntime"),
                      ("threadpoolctl", "threadpoolctl"), ("ncnn", "ncnn"),
                      ("tflite", "ai_edge_litert")):
        mod = optional(name)
        info[key] = None if mod is None else getattr(mod, "__version__", "?")
    info["slow_blas_env"] = {k: os.environ[k] for k in SLOW_BLAS_ENV if k in os.environ}
    info["slow_blas_env_unset"] = os.environ.get("CCONV_BENCH_UNSET", "")
    return info


def update_readme(path, text, section="table"):
    """Replace what lies between the markers `<!-- bench-SECTION:start -->` and `...:end -->`
    in `path` with `text` (section "table": the layer table, "networks": --networks')."""
    start, end = (README_START, README_END) if section == "table" else (
        f"<!-- bench-{section}:start -->", f"<!-- bench-{section}:end -->")
    with open(path) as f:
        content = f.read()
    i, j = content.find(start), content.find(end)
    if i < 0 or j < i:
        raise ValueError(f"{path}: no {start} ... {end} section to replace")
    content = content[:i + len(start)] + "\n" + text.rstrip() + "\n" + content[j:]
    with open(path, "w") as f:
        f.write(content)



def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)


def write_json(path, data):
    """Every measurement of a run (numpy scalars as numbers, anything else as its str)."""
    with open(path, "w") as f:
        json.dump(data, f, indent=1, default=_json_default)
