"""Ratio table from a pytest-benchmark JSON file, as `cconv bench` prints it.

    pytest benchmarks --benchmark-only --benchmark-json=bench.json
    python benchmarks/summary.py bench.json [--peers torch,onnxruntime,numpy]

One row per layer and thread count: cconv-module's median ms and GFLOP/s, the algorithm,
threads and workspace cconv's planner chose, and for each peer the ratio peer median /
cconv median (functional `:f` and module `:m`; above 1, cconv is faster), with geomeans per
thread count.
"""
import argparse
import json
import sys
from pathlib import Path

try:
    from cconv.bench import layers, report
    from cconv.bench.peers import PEERS
except ImportError:  # run as a script from a source checkout: cconv sits next to benchmarks/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from cconv.bench import layers, report
    from cconv.bench.peers import PEERS


def records_from(data):
    """Bench records (one per layer and thread count) from pytest-benchmark's JSON."""
    records = {}
    for bench in data.get("benchmarks", []):
        info = bench.get("extra_info", {})
        if "layer" not in info or "contender" not in info:
            continue
        key = (info["layer"], info["threads"])
        rec = records.setdefault(key, {
            "layer": info["layer"], "threads": info["threads"], "flops": info["flops"],
            "algorithm": info.get("algorithm"), "plan_threads": info.get("plan_threads", "-"),
            "workspace_bytes": info.get("workspace_bytes"), "others_cpus": None,
            "times": {}, "checks": {}, "notes": {}})
        rec["times"][info["contender"]] = bench["stats"]["median"]
    order = {layer.name: i for i, layer in enumerate(layers.LAYERS)}
    return sorted(records.values(), key=lambda r: (order.get(r["layer"], len(order)),
                                                   r["layer"], r["threads"]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", help="a file written by --benchmark-json")
    parser.add_argument("--peers", default=None,
                        help="comma-separated peers to show (default: those in the file)")
    args = parser.parse_args(argv)
    with open(args.json) as f:
        data = json.load(f)
    records = records_from(data)
    if not records:
        print(f"{args.json}: no cconv benchmarks found", file=sys.stderr)
        return 1
    present = {c for r in records for c in r["times"]}
    peers = ([p.strip() for p in args.peers.split(",") if p.strip()] if args.peers
             else [p for p in PEERS if p in present])
    machine = data.get("machine_info", {})
    print(f"{args.json}: {data.get('datetime', '?')}, "
          f"{machine.get('cpu', {}).get('brand_raw', machine.get('processor', '?'))}, "
          f"medians of pytest-benchmark rounds (not interleaved)\n")
    print(report.format_table(records, peers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
