"""optimize_coefficients: this package against keras_efficientnets 0.1.7, in one run.

The 2019 package solves one scipy SLSQP problem per grid start in a Python loop;
ours projects every start onto the constraint surface in closed form, vectorized.
Printed per grid size: each time, the speed-up, and the largest constraint error
|alpha * beta^2 * gamma^2 - max_cost| of each; then ours on a 100^3 grid with its
peak memory.

The 2019 code needs Keras 2 for everything but its optimize.py, so that file is
loaded on its own, from a copy of the package outside this venv; its own
dependencies, scipy and scikit-learn, come with the bench extra:

    pip install keras-efficientnets==0.1.7 --no-deps --target /tmp/ke017

Run:

    python -m benchmarks.bench_optimize [--legacy-dir /tmp/ke017]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import platform
import time
import tracemalloc

import numpy as np

PHI, MAX_COST = 1.0, 2.0


def load_legacy(legacy_dir: str):
    """The 2019 `optimize` module, or None with the reason printed."""
    path = pathlib.Path(legacy_dir) / "keras_efficientnets" / "optimize.py"
    if not path.is_file():
        print(
            f"[skip 2019 side] {path} not found. Get it with:\n"
            f"    pip install keras-efficientnets==0.1.7 --no-deps --target {legacy_dir}"
        )
        return None
    spec = importlib.util.spec_from_file_location("keras_efficientnets_017_optimize", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as error:
        print(
            f"[skip 2019 side] its optimize.py needs scipy and scikit-learn ({error}): pip install '.[bench]'"
        )
        return None
    return module


def constraint_error(rows: np.ndarray) -> float:
    if len(rows) == 0:
        return float("nan")
    cost = rows[:, 0] ** PHI * rows[:, 1] ** (2 * PHI) * rows[:, 2] ** (2 * PHI)
    return float(np.max(np.abs(cost - MAX_COST)))


def best_time(func, repeats: int) -> tuple[float, np.ndarray]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--legacy-dir", default=os.environ.get("KE017_DIR", "/tmp/ke017"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 10, 20])
    parser.add_argument("--large", type=int, default=100, help="search_per_coeff of the big run")
    args = parser.parse_args()

    from keras_efficientnets.optimize import optimize_coefficients

    legacy = load_legacy(args.legacy_dir)
    print(f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    print(f"phi={PHI}, max_cost={MAX_COST}; error = max |alpha * beta^2 * gamma^2 - max_cost|\n")
    header = f"{'per coeff':>9} {'points':>9} {'2019 s':>9} {'ours s':>9} {'speed-up':>9}"
    print(header + f" {'2019 error':>11} {'ours error':>11}")
    for size in args.sizes:
        ours_time, ours = best_time(
            lambda size=size: optimize_coefficients(phi=PHI, max_cost=MAX_COST, search_per_coeff=size), 5
        )
        if legacy is not None:
            legacy_time, theirs = best_time(
                lambda size=size: legacy.optimize_coefficients(
                    phi=PHI, max_cost=MAX_COST, search_per_coeff=size, save_coeff=False
                ),
                1,
            )
            legacy_cells = f"{legacy_time:9.3f} {ours_time:9.4f} {legacy_time / ours_time:8.0f}x"
            legacy_error = f"{constraint_error(theirs):11.2e}"
        else:
            legacy_cells = f"{'-':>9} {ours_time:9.4f} {'-':>9}"
            legacy_error = f"{'-':>11}"
        print(f"{size:9d} {size**3:9,d} {legacy_cells} {legacy_error} {constraint_error(ours):11.2e}")

    size = args.large
    large_time, large = best_time(
        lambda: optimize_coefficients(phi=PHI, max_cost=MAX_COST, search_per_coeff=size), 3
    )
    tracemalloc.start()
    optimize_coefficients(phi=PHI, max_cost=MAX_COST, search_per_coeff=size)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"\nours, search_per_coeff={size} ({size**3:,} points): {large_time:.3f} s, "
        f"peak memory {peak / 2**20:.0f} MiB (tracemalloc), error {constraint_error(large):.2e}"
    )


if __name__ == "__main__":
    main()
