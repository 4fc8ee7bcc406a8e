"""Benchmarks of keras_efficientnets beside its peers; run from the repository root as modules,
e.g. ``python -m benchmarks.run_all`` (see benchmarks/README.md)."""
