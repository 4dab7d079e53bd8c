"""cconv's footprint on this machine: installed size, import time beyond numpy, peak memory.

    python tools/footprint.py [--venv DIR] [--reuse] [--runs N]

Installs the repository with pip into a fresh venv (DIR, default a temporary one; pip builds
cconv there exactly as a user's `pip install .` would), then measures, each in fresh processes
of that venv's Python:

  installed size   du of site-packages/cconv + its .dist-info (as pip left them, with .pyc)
  import time      `import cconv` after `import numpy`, in the same process: median of N runs
  peak RSS         ru_maxrss of `import numpy` alone, and of `import numpy, cconv` plus one
                   convolution (the founding example: 1x256x24x24 float32, 128 kernels 3x3x256,
                   padding 1), at the default thread count

and prints them against the targets: size <= 2 MiB, import <= 50 ms beyond numpy,
peak RSS <= numpy + 10 MiB. --reuse keeps an existing venv (no reinstall).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MiB = 1024 * 1024

IMPORT_TIME = """
import time
t0 = time.perf_counter()
import numpy
t1 = time.perf_counter()
import cconv
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""

RSS_NUMPY = """
import resource
import numpy as np
x = np.random.default_rng(0).standard_normal((1, 256, 24, 24), dtype=np.float32)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""

RSS_CCONV = """
import resource
import numpy as np
import cconv
x = np.random.default_rng(0).standard_normal((1, 256, 24, 24), dtype=np.float32)
conv = cconv.Conv2d(256, 128, 3, padding=1, rng=0)
y = conv(x)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, cconv.get_num_threads())
"""


def run(py, code):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    out = subprocess.run([py, "-c", code], check=True, capture_output=True, text=True, env=env,
                         cwd=tempfile.gettempdir())
    return out.stdout.split()


def du(paths):
    total = 0
    for top in paths:
        for root, _, files in os.walk(top):
            for f in files:
                p = os.path.join(root, f)
                if not os.path.islink(p):
                    total += os.path.getsize(p)
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv")
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    venv = args.venv or os.path.join(tempfile.mkdtemp(prefix="cconv-footprint-"), "venv")
    py = os.path.join(venv, "bin", "python")
    if not (args.reuse and os.path.exists(py)):
        subprocess.run([sys.executable, "-m", "venv", "--clear", venv], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", REPO], check=True)
    site = run(py, "import sysconfig; print(sysconfig.get_paths()['purelib'])")[0]
    pkg = os.path.join(site, "cconv")
    dist = [os.path.join(site, d) for d in os.listdir(site)
            if d.startswith("cconv-") and d.endswith(".dist-info")]
    size = du([pkg] + dist)
    so = {f: os.path.getsize(os.path.join(pkg, "_kernels", f))
          for f in sorted(os.listdir(os.path.join(pkg, "_kernels"))) if f.endswith(".so")}

    times = [tuple(map(float, run(py, IMPORT_TIME))) for _ in range(args.runs)]
    t_numpy = statistics.median(t for t, _ in times)
    t_cconv = statistics.median(t for _, t in times)
    rss_numpy = statistics.median(int(run(py, RSS_NUMPY)[0]) for _ in range(3))
    conv_runs = [run(py, RSS_CCONV) for _ in range(3)]
    rss_cconv = statistics.median(int(r[0]) for r in conv_runs)
    threads = conv_runs[0][1]

    rows = [
        ("installed size", f"{size / MiB:.2f} MiB", "<= 2 MiB", size <= 2 * MiB),
        ("import beyond numpy", f"{t_cconv * 1e3:.1f} ms (numpy: {t_numpy * 1e3:.0f} ms)",
         "<= 50 ms", t_cconv <= 0.050),
        ("peak RSS, one conv", f"{rss_cconv / MiB:.1f} MiB (numpy alone: "
         f"{rss_numpy / MiB:.1f} MiB, +{(rss_cconv - rss_numpy) / MiB:.1f})",
         "<= numpy + 10 MiB", rss_cconv - rss_numpy <= 10 * MiB),
    ]
    import platform
    print(f"cconv footprint on {platform.machine()}, Python {platform.python_version()}, "
          f"numpy {run(py, 'import numpy; print(numpy.__version__)')[0]}, {threads} threads, "
          f"median of {args.runs} imports / 3 runs")
    w = max(len(r[1]) for r in rows)
    print(f"  {'what':<22}{'measured':<{w + 2}}{'target':<20}ok")
    for name, value, target, ok in rows:
        print(f"  {name:<22}{value:<{w + 2}}{target:<20}{'yes' if ok else 'NO'}")
    print("  shared objects: " + ", ".join(f"{k.split('.')[0]} {v / 1024:.0f} KiB"
                                            for k, v in so.items()))
    return 0 if all(r[3] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
