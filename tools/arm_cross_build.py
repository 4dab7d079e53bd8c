"""Cross-compile cconv's extensions for another architecture against a Debian sysroot.

    python tools/arm_cross_build.py SRC SYSROOT TRIPLET OUTDIR [--arch-flags "..."] [-j N]

SRC is a copy of the repository (setup.py, cconv/); the .pyx files are turned into C there,
on this machine (Cython's C is the same for every platform). Each extension is then compiled
and linked by `<TRIPLET>-gcc` exactly as `pip install .` on the board would do it:

  * the extensions, their sources, macros and flags come from setup.py itself, run with
    setuptools.setup() and cythonize() replaced by recorders, so this tool never drifts from
    setup.py;
  * the base flags (CFLAGS, CCSHARED, LDSHARED, EXT_SUFFIX) come from the target Python's
    _sysconfigdata in the sysroot, as setuptools would read them on the board;
  * --arch-flags are added to every compile and link (e.g. armv7's Debian armhf baseline).

The shared objects are written to OUTDIR/cconv/_kernels/<name><EXT_SUFFIX>.
Needs: Cython >= 3 and setuptools in this Python.
"""
import argparse
import concurrent.futures
import glob
import json
import os
import runpy
import shlex
import subprocess
import sys


def record_setup(src):
    """setup.py's extensions and cythonize() arguments, from running it with recorders."""
    probe = r"""
import json, runpy, sys
import setuptools, Cython.Build
rec = {}
def cythonize(module_list, **kw):
    rec["cythonize"] = kw
    return module_list
def setup(**kw):
    rec["ext"] = [dict(name=e.name, sources=e.sources, include_dirs=e.include_dirs,
                       extra_compile_args=e.extra_compile_args,
                       extra_link_args=e.extra_link_args, define_macros=e.define_macros)
                  for e in kw["ext_modules"]]
Cython.Build.cythonize = cythonize
setuptools.setup = setup
sys.argv = ["setup.py", "build_ext"]
runpy.run_path("setup.py", run_name="__main__")
sys.stdout.write("\n@@RECORD@@" + json.dumps(rec))
"""
    out = subprocess.run([sys.executable, "-c", probe], cwd=src, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.split("@@RECORD@@")[-1])


def target_sysconfig(sysroot, triplet):
    files = glob.glob(os.path.join(sysroot, "usr/lib/python3*/_sysconfigdata__*"
                                   + triplet + ".py"))
    if not files:
        sys.exit(f"no _sysconfigdata for {triplet} in {sysroot}")
    files.sort(key=len)  # Debian ships _sysconfigdata__<triplet> and __linux_<triplet>
    return runpy.run_path(files[0])["build_time_vars"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("sysroot")
    ap.add_argument("triplet")
    ap.add_argument("outdir")
    ap.add_argument("--arch-flags", default="")
    ap.add_argument("-j", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    src, sysroot = os.path.abspath(args.src), os.path.abspath(args.sysroot)
    outdir = os.path.abspath(args.outdir)
    arch = shlex.split(args.arch_flags)

    rec = record_setup(src)
    from Cython.Build import cythonize
    kw = rec["cythonize"]
    os.chdir(src)
    cythonize([s for e in rec["ext"] for s in e["sources"]], quiet=True, nthreads=args.j,
              compiler_directives=kw.get("compiler_directives"),
              include_path=kw.get("include_path"))

    cfg = target_sysconfig(sysroot, args.triplet)
    cc = f"{args.triplet}-gcc"
    cflags = shlex.split(cfg["CFLAGS"]) + shlex.split(cfg["CCSHARED"])
    ldshared = shlex.split(cfg["LDSHARED"])
    ldshared[0] = cc  # the board's LDSHARED names its own compiler
    py_include = os.path.join(sysroot, cfg["INCLUDEPY"].lstrip("/"))

    def build(ext):
        c_file = os.path.splitext(ext["sources"][0])[0] + ".c"
        obj = os.path.join(outdir, "obj", ext["name"] + ".o")
        so = os.path.join(outdir, *ext["name"].split(".")) + cfg["EXT_SUFFIX"]
        os.makedirs(os.path.dirname(obj), exist_ok=True)
        os.makedirs(os.path.dirname(so), exist_ok=True)
        macros = []
        for name, value in ext["define_macros"]:
            if name == "CC_BUILD_FLAGS" and arch:
                # show_config() reports the flags of the build: add the target's baseline.
                value = value[:-1] + " " + " ".join(arch) + '"'
            macros.append(f"-D{name}" if value is None else f"-D{name}={value}")
        # The sysroot's headers come after the cross compiler's own (same glibc), so only
        # Python's headers (and the multiarch pyconfig.h they include) are taken from it.
        compile_cmd = ([cc] + cflags + arch + macros
                       + [f"-I{d}" for d in ext["include_dirs"]]
                       + [f"-I{py_include}", "-idirafter", os.path.join(sysroot, "usr/include")]
                       + ext["extra_compile_args"] + ["-c", c_file, "-o", obj])
        link_cmd = ldshared + arch + [obj] + ext["extra_link_args"] + ["-o", so]
        for cmd in (compile_cmd, link_cmd):
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode:
                return ext["name"], " ".join(map(shlex.quote, cmd)) + "\n" + r.stderr
        return ext["name"], None

    failed = False
    with concurrent.futures.ThreadPoolExecutor(max(1, args.j)) as pool:
        # The biggest first: the build takes as long as its slowest extension.
        exts = sorted(rec["ext"], key=lambda e: -os.path.getsize(
            os.path.splitext(e["sources"][0])[0] + ".c"))
        for name, err in pool.map(build, exts):
            if err:
                failed = True
                print(f"cross build of {name} failed:\n{err}", file=sys.stderr)
            else:
                print(f"  built {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
