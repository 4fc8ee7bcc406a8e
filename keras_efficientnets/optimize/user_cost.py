"""Minimizing a user's cost function over coefficients >= 1, for all grid starts at once. Keras-free."""

from __future__ import annotations

import numpy as np

__all__ = ["check_start_costs", "minimize_user_cost", "vectorize_cost"]


def _as_scalar(value):
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":  # None, strings, objects: NumPy would turn None into NaN
        raise TypeError(f"returned {value!r}, not a number")
    if array.size != 1:
        raise ValueError(f"returned shape {array.shape}, not a single number")
    return float(array.reshape(()))


def vectorize_cost(cost_func, starts):
    """Wraps `cost_func` as a function of an (N, n) array returning N floats.

    Tries, in order: rows (``f(X)`` with X of shape (N, n)), columns
    (``f(X.T)``, which is how a function written as ``x[0] * x[1] ** 2`` for one
    vector works on many), and one call per row; each is checked against calls
    on single vectors.
    """
    n = starts.shape[1]
    name = getattr(cost_func, "__name__", repr(cost_func))
    probe_rows = n + 2  # differs from n, so rows and columns cannot be confused
    rng = np.random.default_rng(0)
    probe = starts[np.arange(probe_rows) % len(starts)] + rng.uniform(0, 0.1, (probe_rows, n))

    try:
        reference = np.array([_as_scalar(cost_func(row.copy())) for row in probe])
        scalar_error = None
    except Exception as error:  # noqa: BLE001 - reported to the user below
        reference, scalar_error = None, error

    def try_batch(transpose):
        # Two batch sizes, so a function returning a fixed-size array is not
        # mistaken for a vectorized one.
        for rows in (probe_rows, probe_rows - 1):
            batch = probe[:rows].copy()
            try:
                out = np.asarray(cost_func(batch.T if transpose else batch), dtype=float)
            except Exception:  # noqa: BLE001 - this calling convention does not apply
                return False
            if out.shape != (rows,):
                return False
            if reference is not None and not np.allclose(
                out, reference[:rows], rtol=1e-9, atol=1e-12, equal_nan=True
            ):
                return False
        return True

    if try_batch(transpose=False):
        return lambda x: np.asarray(cost_func(x), dtype=np.float64).reshape(len(x))
    if reference is not None and try_batch(transpose=True):
        return lambda x: np.asarray(cost_func(x.T), dtype=np.float64).reshape(len(x))
    if reference is None:
        raise TypeError(
            f"`cost_func` must take a vector of {n} coefficients and return one number "
            f"(or take an (N, {n}) array and return N numbers); calling it on a vector of "
            f"shape ({n},) failed with {type(scalar_error).__name__}: {scalar_error}. "
            f"Received: cost_func={name}"
        )
    return lambda x: np.array([_as_scalar(cost_func(row.copy())) for row in x])


def check_start_costs(costs, starts, cost_func) -> None:
    """Refuses a cost function that gives NaN, or no finite cost at all, at the grid's starts.

    Infinity is allowed (a way to forbid a region); NaN is always a bug in the
    function, and would otherwise leave those starts where they are as if they
    were results.
    """
    name = getattr(cost_func, "__name__", repr(cost_func))
    nan = np.flatnonzero(np.isnan(costs))
    if nan.size:
        raise ValueError(
            f"`cost_func` returned NaN at {nan.size} of {len(starts)} starts, first at "
            f"{starts[nan[0]].tolist()}: it must return a number (inf to forbid a point). "
            f"Received: cost_func={name}"
        )
    if not np.isfinite(costs).any():
        raise ValueError(
            f"`cost_func` is infinite at every start of the grid: nothing to minimize. "
            f"Received: cost_func={name}"
        )


def minimize_user_cost(evaluate, starts, max_iter):
    """Projected gradient descent on x >= 1 with a backtracking line search, all rows at once."""
    x = starts.copy()
    n = x.shape[1]

    def safe(values):
        return np.where(np.isfinite(values), values, np.inf)

    def gradient(points):
        step = 1e-7 * np.maximum(1.0, np.abs(points))
        columns = []
        for i in range(n):
            forward, backward = points.copy(), points.copy()
            forward[:, i] += step[:, i]
            backward[:, i] = np.maximum(1.0, backward[:, i] - step[:, i])
            width = forward[:, i] - backward[:, i]
            columns.append((evaluate(forward) - evaluate(backward)) / width)
        return np.stack(columns, axis=1)

    cost = safe(evaluate(x))
    rate = np.full(len(x), 1.0)
    active = np.flatnonzero(np.isfinite(cost))
    for _ in range(max_iter):
        if active.size == 0:
            break
        xa, ca, ra = x[active], cost[active], rate[active]
        grad = gradient(xa)
        grad[~np.isfinite(grad)] = 0.0
        improved = np.zeros(len(active), dtype=bool)
        new_x, new_cost = xa.copy(), ca.copy()
        pending = np.arange(len(active))
        for _ in range(40):  # halve the step until the cost drops enough (Armijo)
            if pending.size == 0:
                break
            trial = np.maximum(1.0, xa[pending] - ra[pending, None] * grad[pending])
            trial_cost = safe(evaluate(trial))
            decrease = np.sum(grad[pending] * (xa[pending] - trial), axis=1)
            ok = trial_cost <= ca[pending] - 1e-4 * decrease
            ok &= decrease > 0
            accepted = pending[ok]
            new_x[accepted], new_cost[accepted] = trial[ok], trial_cost[ok]
            improved[accepted] = True
            ra[pending[~ok]] *= 0.5
            pending = pending[~ok]
        ra[improved] *= 2.0
        moved = np.max(np.abs(new_x - xa), axis=1)
        x[active], cost[active], rate[active] = new_x, new_cost, ra
        converged = ~improved | (moved <= 1e-15 * np.max(np.abs(xa), axis=1))
        converged |= ca - new_cost <= 1e-16 * np.maximum(1e-300, np.abs(ca))
        active = active[~converged]
    return x
