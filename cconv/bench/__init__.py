"""`cconv bench` / `python -m cconv bench`: cconv against its peers on named layers of real
networks (`--help`). Imported only by that command, `benchmarks/` and tests: `import cconv`
never loads it, and importing this package loads none of its modules.

    layers.py      the named layers of real networks (Layer, LAYERS, QUICK, by_name, select)
    peers/         the contenders: cconv itself, torch, onnxruntime, a naive numpy im2col
    harness.py     check each contender against cconv.testing, then time them in rounds
    report.py      ratio tables, geomeans, plot, machine info, JSON, README table
    cli.py         the command line: options, the run, the re-run without slow BLAS settings
"""
__all__ = ["main"]


def main(argv=None):
    """Run the bench with command-line arguments `argv` (those after `bench`)."""
    from .cli import main
    return main(argv)
