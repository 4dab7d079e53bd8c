"""`cconv bench`: cconv against its peers on named layers of real networks.

Imported only by that command, `benchmarks/` and tests: `import cconv` never loads it.
"""
