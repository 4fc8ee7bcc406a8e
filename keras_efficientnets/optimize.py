"""Compound-coefficient search: alpha, beta, gamma and phi of the EfficientNet paper.

Compound scaling grows a base network with one knob, phi: depth by alpha^phi,
width by beta^phi and resolution by gamma^phi, where the paper asks for
alpha * beta^2 * gamma^2 ~= 2 with alpha, beta, gamma >= 1, so that FLOPs grow
by about 2^phi (Tan & Le 2019, https://arxiv.org/abs/1905.11946, section 3.3).
The paper's step 1 fixes phi = 1, trains the candidates and keeps the best.

This module covers that whole step, and imports no Keras until a function that
trains or plots is called:

- `optimize_coefficients` and `get_compound_coeff_func` (the 0.1.x API): the
  candidates nearest to a grid of starts on the constraint surface, exactly;
- `compound_scaling` and `candidate_table`: what a candidate really costs, with
  FLOPs and parameters of the model it builds (channel rounding included);
- `search_coefficients`: train every candidate briefly, rank by validation
  accuracy (KerasTuner, so the search can run on several machines);
- `plot_candidates`: the candidates drawn on the constraint surface.

The released B1-B7 are not alpha^phi of the paper's alpha = 1.2, beta = 1.1,
gamma = 1.15: they are a hand-tuned table (`config.VARIANTS`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import tempfile
import time
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np

from keras_efficientnets.config import get_default_block_list
from keras_efficientnets.flops import count_flops

__all__ = [
    "Candidate",
    "CompoundScaling",
    "MAX_GRID_ROWS",
    "candidate_table",
    "compound_scaling",
    "get_compound_coeff_func",
    "optimize_coefficients",
    "plot_candidates",
    "search_coefficients",
]

# The largest grid `optimize_coefficients` accepts: 50 million rows of 3 float64
# coefficients are 1.2 GB before any work array.
MAX_GRID_ROWS = 50_000_000
# Rows projected at a time; bounds the work memory at a few tens of MB.
_CHUNK_ROWS = 1 << 17
# The default cost: the FLOPs of a convolution grow linearly with depth and
# quadratically with width and resolution.
_PAPER_EXPONENTS = (1.0, 2.0, 2.0)


# --------------------------------------------------------------------------- #
# Argument checks
# --------------------------------------------------------------------------- #
def _is_real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _is_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _check_real(name, value, *, greater_than=None, at_least=None, hint=""):
    if not _is_real(value) or not math.isfinite(float(value)):
        raise TypeError(f"`{name}` must be a finite number.{hint} Received: {name}={value!r}")
    if greater_than is not None and not value > greater_than:
        raise ValueError(f"`{name}` must be > {greater_than}.{hint} Received: {name}={value!r}")
    if at_least is not None and not value >= at_least:
        raise ValueError(f"`{name}` must be >= {at_least}.{hint} Received: {name}={value!r}")
    return float(value)


def _check_int(name, value, minimum):
    if not _is_int(value):
        raise TypeError(f"`{name}` must be an integer. Received: {name}={value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}. Received: {name}={value!r}")
    return int(value)


def _default_exponents(num_coeff: int) -> tuple[float, ...]:
    # One depth-like coefficient (cost linear in it), then width- and
    # resolution-like ones (cost quadratic in each): (1, 2, 2) for the paper's
    # three, (1, 2) for depth and width only, (1,) for one.
    return (1.0,) + (2.0,) * (num_coeff - 1)


def _check_exponents(exponents, num_coeff=None) -> np.ndarray:
    if exponents is None:
        return np.asarray(_default_exponents(3 if num_coeff is None else num_coeff))
    try:
        values = [float(e) for e in exponents]
    except (TypeError, ValueError):
        values = []
    if not values or not all(math.isfinite(e) and e > 0 for e in values):
        raise ValueError(
            "`exponents` must be a non-empty sequence of positive numbers, one per "
            f"coefficient, such as (1, 2, 2). Received: exponents={exponents!r}"
        )
    if num_coeff is not None and len(values) != num_coeff:
        raise ValueError(
            f"`exponents` needs one entry per coefficient ({num_coeff}). "
            f"Received: exponents={exponents!r}, num_coeff={num_coeff}"
        )
    return np.asarray(values)


# --------------------------------------------------------------------------- #
# The 0.1.x API
# --------------------------------------------------------------------------- #
def get_compound_coeff_func(phi: float = 1.0, max_cost: float = 2.0, exponents=None):
    """The paper's cost: squared distance of the FLOPs growth from `max_cost`.

    For coefficients (alpha, beta, gamma) the cost is
    ``(alpha^phi * (beta^phi)^2 * (gamma^phi)^2 - max_cost) ** 2``; with other
    `exponents` it is ``(prod(x_i ** (phi * exponents_i)) - max_cost) ** 2``.

    Args:
        phi: The compound coefficient; 1 for the search of the base coefficients.
        max_cost: The FLOPs growth allowed per unit of phi (the paper: 2).
        exponents: Power of each coefficient in the cost; None for (1, 2, 2).

    Returns:
        A function of one vector of coefficients (returns a float) or of an
        (N, num_coeff) array of them (returns N costs).

    Example:
        >>> cost = get_compound_coeff_func(phi=1.0, max_cost=2.0)
        >>> round(float(cost([1.2, 1.1, 1.15])), 6)
        0.006357
        >>> cost([[1.0, 1.0, 1.5], [2.0, 1.0, 1.0]]).tolist()
        [0.0625, 0.0]
    """
    phi = _check_real("phi", phi, greater_than=0)
    max_cost = _check_real("max_cost", max_cost, greater_than=0)
    powers = phi * _check_exponents(exponents)

    def compound_coeff(x):
        values = np.asarray(x, dtype=np.float64)
        if values.ndim not in (1, 2) or values.shape[-1] != powers.size:
            raise ValueError(
                f"The compound cost takes {powers.size} coefficients as a vector or an "
                f"(N, {powers.size}) array. Received: x of shape {values.shape}"
            )
        cost = np.prod(values**powers, axis=-1)
        return (cost - max_cost) ** 2

    # Lets `optimize_coefficients` recognise the paper's cost and solve it exactly.
    compound_coeff.compound_spec = (phi, max_cost, tuple(powers / phi))
    return compound_coeff


def optimize_coefficients(
    num_coeff: int = 3,
    cost_func=None,
    phi: float = 1.0,
    max_cost: float = 2.0,
    search_per_coeff: int = 4,
    sort_by_loss: bool = False,
    save_coeff=False,
    tol: float | None = None,
    verbose: bool = False,
    *,
    loss_func=None,
    unique: bool = False,
    exponents=None,
    max_iter: int = 500,
) -> np.ndarray:
    """Candidate coefficients near a grid of starts, on the paper's constraint.

    The starts are every combination of ``linspace(1, max_cost,
    search_per_coeff)`` per coefficient, in ``itertools.product`` order (the
    order of keras_efficientnets 0.1.x). Each start moves to:

    - with the default cost, its nearest point (Euclidean distance) on the
      surface ``prod(x_i ** (phi * exponents_i)) == max_cost`` with every
      coefficient >= 1, solved exactly: the cost of every row is below 1e-12
      (in practice about 1e-31);
    - with a user `cost_func`, a local minimum of it with every coefficient
      >= 1, found for all starts at once by projected gradient descent with
      finite differences (one call per step on all rows when `cost_func` takes
      an (N, num_coeff) array or a (num_coeff, N) one, else one call per row).

    Args:
        num_coeff: Number of coefficients (3: alpha, beta, gamma).
        cost_func: A function of one coefficient vector returning a float, to
            minimize; None for the paper's cost (`get_compound_coeff_func`).
        phi: The compound coefficient; 1 for the search of the base coefficients.
        max_cost: The FLOPs growth allowed per unit of phi (the paper: 2); also
            the upper end of the grid.
        search_per_coeff: Grid values per coefficient; the grid has
            ``search_per_coeff ** num_coeff`` rows (at most `MAX_GRID_ROWS`).
        sort_by_loss: Sort the rows by ascending cost (stable).
        save_coeff: True writes the result to ``param_coeff.npy`` in the working
            directory, a path writes it there; False (the default, unlike 0.1.x,
            which always wrote the file) writes nothing.
        tol: Keep only rows whose cost is <= `tol`.
        verbose: Print the grid size, the time and the largest cost.
        loss_func: Another name for `cost_func` (pass one of the two).
        unique: Drop rows equal to an earlier row to 12 decimals.
        exponents: Power of each coefficient in the default cost; None for
            (1, 2, 2, ..., 2): the first coefficient scales cost linearly (depth),
            every other quadratically (width, resolution), so num_coeff=2 is
            ``alpha * beta^2`` and num_coeff=1 is ``alpha``.
        max_iter: Iteration limit of the user-cost minimizer.

    Returns:
        A float64 array of shape (rows, num_coeff): ``search_per_coeff **
        num_coeff`` rows before `tol` and `unique`.

    Example:
        >>> results = optimize_coefficients(phi=1.0, max_cost=2.0, search_per_coeff=4)
        >>> results.shape
        (64, 3)
        >>> cost = get_compound_coeff_func(phi=1.0, max_cost=2.0)
        >>> bool(cost(results).max() <= 1e-12) and bool(results.min() >= 1.0)
        True
    """
    num_coeff = _check_int("num_coeff", num_coeff, 1)
    phi = _check_real("phi", phi, greater_than=0)
    max_cost = _check_real(
        "max_cost",
        max_cost,
        greater_than=1,
        hint=" Coefficients are >= 1, so a cost of 1 or less leaves nothing to search.",
    )
    search_per_coeff = _check_int("search_per_coeff", search_per_coeff, 1)
    max_iter = _check_int("max_iter", max_iter, 1)
    if tol is not None:
        tol = _check_real("tol", tol, at_least=0)
    if loss_func is not None:
        if cost_func is not None:
            raise ValueError(
                "Pass either `cost_func` or its alias `loss_func`, not both. "
                f"Received: cost_func={cost_func!r}, loss_func={loss_func!r}"
            )
        cost_func = loss_func
    if cost_func is not None and not callable(cost_func):
        raise TypeError(f"`cost_func` must be callable. Received: cost_func={cost_func!r}")
    rows = search_per_coeff**num_coeff
    if rows > MAX_GRID_ROWS:
        raise ValueError(
            f"The grid would have search_per_coeff ** num_coeff = {search_per_coeff}"
            f"**{num_coeff} = {rows:,} rows ({rows * num_coeff * 8 / 1e9:,.1f} GB), over the "
            f"limit of {MAX_GRID_ROWS:,}. Lower `search_per_coeff` or `num_coeff`. "
            f"Received: search_per_coeff={search_per_coeff}, num_coeff={num_coeff}"
        )

    start_time = time.perf_counter()
    starts = _grid(num_coeff, max_cost, search_per_coeff)
    spec = getattr(cost_func, "compound_spec", None)
    if cost_func is None or (spec is not None and len(spec[2]) == num_coeff):
        if cost_func is None:
            powers = _check_exponents(exponents, num_coeff)
            cost_func = get_compound_coeff_func(phi, max_cost, powers)
            target_phi, target_cost = phi, max_cost
        else:
            target_phi, target_cost, powers = spec[0], spec[1], np.asarray(spec[2])
        results = _project_onto_constraint(starts, powers, math.log(target_cost) / target_phi)
        costs = cost_func(results)
    else:
        evaluate = _vectorize_cost(cost_func, starts)
        results = _minimize_user_cost(evaluate, starts, max_iter)
        costs = evaluate(results)

    keep = np.ones(len(results), dtype=bool) if tol is None else costs <= tol
    order = np.flatnonzero(keep)
    if unique and order.size:
        _, first = np.unique(np.round(results[order], 12), axis=0, return_index=True)
        order = order[np.sort(first)]
    if sort_by_loss:
        order = order[np.argsort(costs[order], kind="stable")]
    results = results[order]

    if save_coeff is True:
        save_coeff = "param_coeff.npy"
    if save_coeff:
        np.save(os.fspath(save_coeff), results)
    if verbose:
        worst = float(np.max(costs[order])) if order.size else float("nan")
        print(
            f"optimize_coefficients: {rows:,} starts -> {len(results):,} rows in "
            f"{time.perf_counter() - start_time:.3f} s; largest cost {worst:.3g}"
        )
    return results


def _grid(num_coeff: int, max_cost: float, search_per_coeff: int) -> np.ndarray:
    """All starts in itertools.product order (the last coefficient varies fastest)."""
    axis = np.linspace(1.0, max_cost, search_per_coeff)
    mesh = np.meshgrid(*([axis] * num_coeff), indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=1)


# --------------------------------------------------------------------------- #
# Exact projection onto the constraint surface
# --------------------------------------------------------------------------- #
# Problem, per start p (every p_i >= 1), with u = the exponents and
# L = log(max_cost) / phi:
#
#     minimize  1/2 |x - p|^2   subject to   sum_i u_i log x_i = L,   x_i >= 1.
#
# Lagrangian relaxation with multiplier t: minimize
#     psi_i(x) = 1/2 (x - p_i)^2 - t u_i log x      over x >= 1, coordinate by coordinate.
# Stationary points solve x^2 - p_i x - t u_i = 0, so the candidates are
#     r_i(t) = (p_i + sqrt(p_i^2 + 4 t u_i)) / 2     and the bound x = 1.
# For t >= 0 psi_i is convex, and for t < 0 with p_i <= 2 it is unimodal on
# [1, inf) (the smaller root is <= p_i / 2 <= 1); either way its minimizer is
# x_i(t) = max(1, r_i(t)), continuous and non-decreasing in t. Then
# G(t) = sum_i u_i log x_i(t) is continuous, runs from 0 to infinity, and its
# root t* gives x(t*), feasible and minimizing the Lagrangian, hence the global
# nearest point (weak duality, no gap). It is found by safeguarded Newton steps
# on t, vectorized over the rows.
#
# Only a start above the surface with some p_i > 2 (max_cost > 2) can make
# psi_i bimodal, so that x_i(t) jumps from r_i to 1 and G(t) jumps over L
# (a duality gap). Those rows are solved by enumerating the stationary points
# (each coordinate at 1, at the larger or at the smaller root, at most one at
# the smaller, since two would give the Lagrangian's Hessian two negative
# directions on the tangent space), finding every root of the constraint along
# each branch, and keeping the nearest.
def _project_onto_constraint(starts, powers, log_target):
    out = np.empty_like(starts)
    for begin in range(0, len(starts), _CHUNK_ROWS):
        chunk = starts[begin : begin + _CHUNK_ROWS]
        out[begin : begin + len(chunk)] = _project_chunk(chunk, powers, log_target)
    return out


def _relaxed_minimizer(p, t, powers):
    """x(t): the minimizer of the Lagrangian over x >= 1, and dx/dt."""
    tt = t[:, None]
    disc = p * p + (4.0 * tt) * powers
    root_disc = np.sqrt(np.maximum(disc, 0.0))
    upper = root_disc + p
    upper *= 0.5
    # Where disc < 0, upper = p / 2, which is <= 1 unless p > 2 (handled below).
    x = np.maximum(upper, 1.0)
    bimodal = (p > 2.0) & (tt < 0.0)
    if bimodal.any():
        # For t < 0 and p > 2 the bound may beat the larger root, and a negative
        # discriminant leaves only the bound.
        with np.errstate(invalid="ignore", divide="ignore"):
            psi_root = 0.5 * (x - p) ** 2 - tt * powers * np.log(x)
        psi_one = 0.5 * (1.0 - p) ** 2
        x[bimodal & ((disc < 0.0) | (psi_one < psi_root))] = 1.0
    with np.errstate(divide="ignore"):
        slope = np.where(x > 1.0, powers / root_disc, 0.0)
    return x, slope


def _project_chunk(p, powers, log_target):
    start_log = np.log(p) @ powers
    # Brackets of the multiplier: G(t) < L at t_low (every x_i = 1), G(t) >= L at
    # t_high (every x_i >= sqrt(t u_i) >= exp(L / sum u)).
    t_floor = -np.max(p * p / (4.0 * powers), axis=1) * (1.0 + 1e-9) - 1e-12
    t_ceiling = math.exp(2.0 * log_target / powers.sum()) / powers.min() + 1.0
    above = start_log >= log_target
    low = np.where(above, t_floor, 0.0)
    high = np.where(above, 0.0, t_ceiling)
    # First guess from linearizing x_i(t) ~ p_i + t u_i / p_i around t = 0.
    t = np.clip((log_target - start_log) / np.sum((powers / p) ** 2, axis=1), low, high)
    t[start_log == log_target] = 0.0

    # Work on compact copies of the unfinished rows; write each t back when done.
    index = np.flatnonzero(start_log != log_target)
    pa, ta, la, ha = p[index], t[index], low[index], high[index]
    # `_polish` removes what is left of the residual exactly.
    tolerance = 1e-14 * max(1.0, abs(log_target))
    for _ in range(200):
        if index.size == 0:
            break
        x, slope = _relaxed_minimizer(pa, ta, powers)
        residual = np.log(x) @ powers - log_target
        derivative = np.einsum("ij,ij->i", slope / x, np.broadcast_to(powers, x.shape))
        la = np.where(residual < 0, ta, la)
        ha = np.where(residual > 0, ta, ha)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = ta - residual / derivative
        bisect = ~((step > la) & (step < ha))  # also catches NaN
        step[bisect] = 0.5 * (la[bisect] + ha[bisect])
        # A bracket that cannot shrink any more: converged, or a jump (a gap).
        finished = np.abs(residual) <= tolerance
        finished |= (step <= la) | (step >= ha) | (ha - la <= 1e-15 * np.maximum(1.0, np.abs(ta)))
        t[index[finished]] = np.where(np.abs(residual) <= tolerance, ta, step)[finished]
        keep = ~finished
        index, pa, ta, la, ha = index[keep], pa[keep], step[keep], la[keep], ha[keep]

    x, _ = _relaxed_minimizer(p, t, powers)
    residual = np.log(x) @ powers - log_target
    gap = np.abs(residual) > 1e-9 * max(1.0, abs(log_target))
    if gap.any():
        x[gap] = _project_by_enumeration(p[gap], powers, log_target)
    return _polish(x, powers, log_target)


def _polish(x, powers, log_target):
    """Removes the last rounding error of the constraint through the largest coordinate."""
    residual = log_target - np.log(x) @ powers
    rows = np.arange(len(x))
    largest = np.argmax(x, axis=1)
    x[rows, largest] = np.maximum(1.0, x[rows, largest] * np.exp(residual / powers[largest]))
    return x


def _branch_patterns(num_coeff):
    """Codes per coordinate: 0 bound, 1 larger root, 2 smaller root (at most one)."""
    patterns = [
        code for code in itertools.product((0, 1, 2), repeat=num_coeff) if code.count(2) <= 1 and any(code)
    ]
    return np.asarray(patterns)


def _branch_values(p, s, powers, codes):
    """Stationary points of one branch pattern at multiplier t = -s; NaN where invalid.

    p: (..., n), s: (...,), codes: (n,). A coordinate may sit at the bound only
    where its KKT multiplier is >= 0 (s * u_i >= p_i - 1), and at a root only
    where that root is real and >= 1.
    """
    su = s[..., None] * powers
    disc = p * p - 4.0 * su
    with np.errstate(invalid="ignore"):
        root_disc = np.sqrt(disc)
    value = np.where(codes == 1, 0.5 * (p + root_disc), 0.5 * (p - root_disc))
    value = np.where(value >= 1.0 - 1e-12, np.maximum(value, 1.0), np.nan)
    bound = np.where(su >= p - 1.0 - 1e-12, 1.0, np.nan)
    return np.where(codes == 0, bound, value)


def _project_by_enumeration(p, powers, log_target, samples=64):
    out = np.empty_like(p)
    for begin in range(0, len(p), _CHUNK_ROWS // 8):
        chunk = p[begin : begin + _CHUNK_ROWS // 8]
        out[begin : begin + len(chunk)] = _enumerate_chunk(chunk, powers, log_target, samples)
    return out


def _enumerate_chunk(p, powers, log_target, samples):
    rows, n = p.shape
    # The multiplier t = -s with s in (0, s_max]: beyond s_max no root is real.
    # Sample it, plus every point where a branch starts, ends or meets the bound.
    s_max = np.max(p * p / (4.0 * powers), axis=1)
    grid = s_max[:, None] * np.linspace(0.0, 1.0, samples + 1)[1:]
    breaks = np.concatenate([p * p / (4.0 * powers), (p - 1.0) / powers], axis=1)
    s = np.sort(np.concatenate([grid, np.clip(breaks, 1e-300, None)], axis=1), axis=1)
    best = np.full((rows, n), np.nan)
    best_distance = np.full(rows, np.inf)
    for codes in _branch_patterns(n):
        g = np.log(_branch_values(p[:, None, :], s, powers, codes)) @ powers - log_target
        crossing = np.isfinite(g[:, :-1]) & np.isfinite(g[:, 1:]) & (g[:, :-1] * g[:, 1:] <= 0)
        hit_rows, hit_cols = np.nonzero(crossing)
        if hit_rows.size == 0:
            continue
        lo, hi = s[hit_rows, hit_cols], s[hit_rows, hit_cols + 1]
        g_lo = g[hit_rows, hit_cols]
        ph = p[hit_rows]
        for _ in range(64):  # bisection on s; both ends stay on the branch
            mid = 0.5 * (lo + hi)
            g_mid = np.log(_branch_values(ph, mid, powers, codes)) @ powers - log_target
            same = (np.sign(g_mid) == np.sign(g_lo)) & np.isfinite(g_mid)
            lo, g_lo = np.where(same, mid, lo), np.where(same, g_mid, g_lo)
            hi = np.where(same, hi, mid)
        point = _branch_values(ph, lo, powers, codes)
        distance = np.sum((point - ph) ** 2, axis=1)
        distance[~np.isfinite(distance)] = np.inf
        # The nearest hit of each row, then against the best so far.
        order = np.lexsort((distance, hit_rows))
        first = order[np.r_[True, hit_rows[order][1:] != hit_rows[order][:-1]]]
        better = distance[first] < best_distance[hit_rows[first]]
        chosen = first[better]
        best_distance[hit_rows[chosen]] = distance[chosen]
        best[hit_rows[chosen]] = point[chosen]
    # Should never be needed (the nearest point is a stationary point, so it is
    # among the hits); still feasible: scale log p onto the surface.
    missing = ~np.isfinite(best_distance)
    if missing.any():
        logs = np.log(p[missing])
        best[missing] = np.exp(logs * (log_target / (logs @ powers))[:, None])
    return best


# --------------------------------------------------------------------------- #
# User cost functions
# --------------------------------------------------------------------------- #
def _as_scalar(value):
    array = np.asarray(value, dtype=np.float64)
    if array.size != 1:
        raise ValueError(f"returned shape {array.shape}, not a single number")
    return float(array.reshape(()))


def _vectorize_cost(cost_func, starts):
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


def _minimize_user_cost(evaluate, starts, max_iter):
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


# --------------------------------------------------------------------------- #
# Real cost of candidates
# --------------------------------------------------------------------------- #
class CompoundScaling(NamedTuple):
    """Builder settings of a candidate scaled by phi."""

    width_coefficient: float
    depth_coefficient: float
    resolution: int


def compound_scaling(
    phi: float, alpha: float, beta: float, gamma: float, base_resolution: int = 224
) -> CompoundScaling:
    """Width, depth and resolution of ``(alpha, beta, gamma)`` at compound coefficient phi.

    Depth scales by alpha^phi, width by beta^phi and the input side by gamma^phi,
    rounded to the nearest pixel.

    Args:
        phi: The compound coefficient (>= 0; 0 gives the base model).
        alpha: Depth coefficient (>= 1).
        beta: Width coefficient (>= 1).
        gamma: Resolution coefficient (>= 1).
        base_resolution: Input side of the base model.

    Returns:
        A `CompoundScaling` (width_coefficient, depth_coefficient, resolution).

    Example:
        >>> compound_scaling(1, 1.2, 1.1, 1.15)
        CompoundScaling(width_coefficient=1.1, depth_coefficient=1.2, resolution=258)
    """
    phi = _check_real("phi", phi, at_least=0)
    for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        _check_real(name, value, at_least=1)
    base_resolution = _check_int("base_resolution", base_resolution, 1)
    return CompoundScaling(
        width_coefficient=float(beta) ** phi,
        depth_coefficient=float(alpha) ** phi,
        resolution=max(1, int(round(base_resolution * float(gamma) ** phi))),
    )


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One set of coefficients and what it costs once built.

    Attributes:
        alpha, beta, gamma: The coefficients.
        phi: The compound coefficient they are applied with.
        width_coefficient, depth_coefficient, resolution: The scaled model's settings.
        ideal_cost: ``alpha^phi * beta^(2 phi) * gamma^(2 phi)``: the FLOPs ratio the
            paper's formula promises.
        macs, params: Multiply-adds and parameters of the scaled model (`count_flops`).
        flops_ratio, params_ratio: Those two against the base model: the actual
            cost, after channel rounding, whole blocks and whole pixels.
        accuracy: Validation accuracy, once `search_coefficients` has trained it.
    """

    alpha: float
    beta: float
    gamma: float
    phi: float
    width_coefficient: float
    depth_coefficient: float
    resolution: int
    ideal_cost: float
    macs: int
    params: int
    flops_ratio: float
    params_ratio: float
    accuracy: float | None = None


_SORT_KEYS = ("flops_ratio", "params_ratio", "ideal_cost", "flops_error")


def candidate_table(
    coefficients,
    phi: float = 1.0,
    *,
    block_args_list=None,
    base_width: float = 1.0,
    base_depth: float = 1.0,
    base_resolution: int = 224,
    include_top: bool = True,
    classes: int = 1000,
    use_se: bool = True,
    fix_stem_and_head: bool = False,
    sort_by: str | None = None,
    target_flops_ratio: float | None = None,
    min_flops_ratio: float | None = None,
    max_flops_ratio: float | None = None,
) -> list[Candidate]:
    """Idealized and actual cost of each (alpha, beta, gamma) against the base model.

    Each candidate scales the base (`block_args_list` at `base_width`,
    `base_depth`, `base_resolution`) by `compound_scaling`; its FLOPs and
    parameters are counted with `count_flops`, so rounding to multiples of 8
    channels, whole blocks and whole pixels shows in `flops_ratio`.

    Args:
        coefficients: Rows of (alpha, beta, gamma), e.g. `optimize_coefficients`'s result.
        phi: The compound coefficient.
        block_args_list: The base stages; None for EfficientNet-B0's.
        base_width, base_depth, base_resolution: The base model's settings.
        include_top, classes: Whether the count includes the classifier, and its size.
        use_se, fix_stem_and_head: Family options (EfficientNet-Lite: False, True;
            see `config.Variant.family_options`).
        sort_by: None (input order), "flops_ratio", "params_ratio", "ideal_cost",
            or "flops_error" (distance of `flops_ratio` from `target_flops_ratio`).
        target_flops_ratio: The FLOPs growth aimed at; None for ``2 ** phi``.
        min_flops_ratio, max_flops_ratio: Keep only candidates within these.

    Returns:
        A list of `Candidate`.

    Example:
        >>> table = candidate_table([[1.2, 1.1, 1.15]], phi=1.0)
        >>> round(table[0].ideal_cost, 3), round(table[0].flops_ratio, 2)
        (1.92, 2.55)
    """
    phi = _check_real("phi", phi, at_least=0)
    rows = np.asarray(coefficients, dtype=np.float64)
    if rows.ndim == 1 and rows.size == 3:
        rows = rows[None, :]
    if rows.ndim != 2 or rows.shape[1] != 3:
        raise ValueError(
            "`coefficients` must be rows of (alpha, beta, gamma), shape (N, 3). "
            f"Received: coefficients of shape {rows.shape}"
        )
    if sort_by is not None and sort_by not in _SORT_KEYS:
        raise ValueError(f"`sort_by` must be None or one of {_SORT_KEYS}. Received: sort_by={sort_by!r}")
    if target_flops_ratio is None:
        target_flops_ratio = 2.0**phi
    blocks = tuple(get_default_block_list() if block_args_list is None else block_args_list)
    options = dict(
        include_top=include_top, classes=classes, use_se=use_se, fix_stem_and_head=fix_stem_and_head
    )
    cache = {}

    def measure(width, depth, resolution):
        key = (width, depth, resolution)
        if key not in cache:
            cache[key] = count_flops(blocks, width, depth, resolution, **options)
        return cache[key]

    base = measure(base_width, base_depth, base_resolution)
    table = []
    for alpha, beta, gamma in rows:
        scaled = compound_scaling(phi, alpha, beta, gamma, base_resolution)
        width = base_width * scaled.width_coefficient
        depth = base_depth * scaled.depth_coefficient
        report = measure(width, depth, scaled.resolution)
        table.append(
            Candidate(
                alpha=float(alpha),
                beta=float(beta),
                gamma=float(gamma),
                phi=phi,
                width_coefficient=width,
                depth_coefficient=depth,
                resolution=scaled.resolution,
                ideal_cost=float(alpha**phi * beta ** (2 * phi) * gamma ** (2 * phi)),
                macs=report.macs,
                params=report.params,
                flops_ratio=report.macs / base.macs,
                params_ratio=report.params / base.params,
            )
        )
    if min_flops_ratio is not None:
        table = [c for c in table if c.flops_ratio >= min_flops_ratio]
    if max_flops_ratio is not None:
        table = [c for c in table if c.flops_ratio <= max_flops_ratio]
    if sort_by == "flops_error":
        table.sort(key=lambda c: abs(c.flops_ratio - target_flops_ratio))
    elif sort_by is not None:
        table.sort(key=lambda c: getattr(c, sort_by))
    return table


# --------------------------------------------------------------------------- #
# The paper's step 1: train the candidates
# --------------------------------------------------------------------------- #
def search_coefficients(
    candidates,
    train_data=None,
    validation_data=None,
    *,
    build_and_evaluate=None,
    phi: float = 1.0,
    block_args_list=None,
    base_width: float = 1.0,
    base_depth: float = 1.0,
    base_resolution: int = 224,
    classes: int | None = None,
    epochs: int = 1,
    batch_size: int = 32,
    model_kwargs: dict | None = None,
    compile_kwargs: dict | None = None,
    directory=None,
    project_name: str = "efficientnet_coefficients",
    overwrite: bool = True,
    verbose: int = 0,
) -> list[Candidate]:
    """Trains every candidate briefly and ranks them by validation accuracy.

    This is the paper's step 1: with phi = 1, scale the base model by each
    candidate's (alpha, beta, gamma), train it for a short budget, keep the most
    accurate. Each candidate is one trial of a KerasTuner grid search, so the
    trials can run on several machines with KerasTuner's distributed mode: start
    the same script on every machine with the same `directory` (a shared file
    system) and the environment variables ``KERASTUNER_ORACLE_IP`` and
    ``KERASTUNER_ORACLE_PORT`` (the chief's address), plus
    ``KERASTUNER_TUNER_ID=chief`` on one machine and ``tuner0``, ``tuner1``, ...
    on the others; the chief's call returns the full ranking.

    The default training: the images are resized to each candidate's resolution
    inside the model, an `EfficientNet` with ``weights=None`` is trained with
    Adam and sparse categorical cross-entropy for `epochs`, and the score is the
    last epoch's validation accuracy.

    Args:
        candidates: `Candidate`s (from `candidate_table`) or rows of
            (alpha, beta, gamma), which are passed through `candidate_table` with
            the base settings below.
        train_data: ``(images, labels)`` arrays, or a batched dataset of such pairs.
        validation_data: The same, for the score.
        build_and_evaluate: Instead of the default training, a function of one
            `Candidate` returning its validation accuracy.
        phi: The compound coefficient (the paper: 1).
        block_args_list, base_width, base_depth, base_resolution: The base model.
        classes: Number of classes; None infers it from integer labels.
        epochs, batch_size: The training budget per candidate.
        model_kwargs: More `EfficientNet` arguments (e.g. ``dropout_rate``).
        compile_kwargs: `Model.compile` arguments replacing the defaults.
        directory, project_name, overwrite: Where KerasTuner keeps its trials;
            None for a temporary directory removed afterwards.
        verbose: Keras training verbosity.

    Returns:
        The candidates with `accuracy` filled in, most accurate first.

    Example:
        >>> ranked = search_coefficients(
        ...     [[1.2, 1.1, 1.15], [1.0, 1.0, 1.414]],
        ...     build_and_evaluate=lambda c: 1.0 / c.flops_ratio)  # a stand-in score
        >>> [round(c.gamma, 3) for c in ranked]
        [1.414, 1.15]
    """
    if build_and_evaluate is None and (train_data is None or validation_data is None):
        raise ValueError(
            "`search_coefficients` needs `train_data` and `validation_data`, or a "
            f"`build_and_evaluate` function. Received: train_data={type(train_data).__name__}, "
            f"validation_data={type(validation_data).__name__}"
        )
    if build_and_evaluate is not None and not callable(build_and_evaluate):
        raise TypeError(
            f"`build_and_evaluate` must be callable. Received: build_and_evaluate={build_and_evaluate!r}"
        )
    epochs = _check_int("epochs", epochs, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    blocks = get_default_block_list() if block_args_list is None else list(block_args_list)
    table_options = dict(
        block_args_list=blocks, base_width=base_width, base_depth=base_depth, base_resolution=base_resolution
    )
    if classes is not None:
        table_options["classes"] = _check_int("classes", classes, 1)
    candidates = list(candidates)
    if not candidates:
        raise ValueError(f"`candidates` is empty. Received: candidates={candidates!r}")
    if not all(isinstance(c, Candidate) for c in candidates):
        candidates = candidate_table(candidates, phi, **table_options)

    if build_and_evaluate is None:
        build_and_evaluate = _default_trainer(
            train_data,
            validation_data,
            blocks,
            classes,
            epochs,
            batch_size,
            model_kwargs or {},
            compile_kwargs,
            verbose,
        )

    import keras_tuner  # optional extra: pip install keras-tuner

    class CandidateTuner(keras_tuner.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            index = trial.hyperparameters.get("candidate")
            score = float(build_and_evaluate(candidates[index]))
            return {"val_accuracy": score}

    hyperparameters = keras_tuner.HyperParameters()
    hyperparameters.Choice("candidate", list(range(len(candidates))))
    oracle = keras_tuner.oracles.GridSearchOracle(
        objective=keras_tuner.Objective("val_accuracy", "max"),
        max_trials=len(candidates),
        hyperparameters=hyperparameters,
    )
    with tempfile.TemporaryDirectory(prefix="kt_coefficients_") as scratch:
        tuner = CandidateTuner(
            oracle=oracle,
            directory=os.fspath(directory) if directory is not None else scratch,
            project_name=project_name,
            overwrite=overwrite,
        )
        tuner.search(verbose=bool(verbose))
        scores = {}
        for trial in tuner.oracle.trials.values():
            if trial.score is not None:
                scores[trial.hyperparameters.get("candidate")] = float(trial.score)
    ranked = [dataclasses.replace(c, accuracy=scores.get(i)) for i, c in enumerate(candidates)]
    ranked.sort(key=lambda c: -math.inf if c.accuracy is None else c.accuracy, reverse=True)
    return ranked


def _default_trainer(
    train_data, validation_data, blocks, classes, epochs, batch_size, model_kwargs, compile_kwargs, verbose
):
    """A `build_and_evaluate` that trains an EfficientNet on the given data."""
    import keras

    from keras_efficientnets.model import EfficientNet

    def split(data, name):
        if isinstance(data, (tuple, list)):
            if len(data) != 2:
                raise ValueError(
                    f"`{name}` must be an (images, labels) pair or a dataset. "
                    f"Received: {name} with {len(data)} items"
                )
            return np.asarray(data[0]), np.asarray(data[1])
        return data, None

    train_x, train_y = split(train_data, "train_data")
    val_x, val_y = split(validation_data, "validation_data")
    if train_y is not None:
        image_shape = tuple(train_x.shape[1:])
    else:
        image_shape = tuple(train_data.element_spec[0].shape[1:])
    if classes is None:
        if train_y is None:
            raise ValueError("`classes` is needed when `train_data` is a dataset. Received: classes=None")
        classes = int(max(np.max(train_y), np.max(val_y))) + 1

    def build_and_evaluate(candidate):
        inputs = keras.Input(shape=image_shape)
        size = candidate.resolution
        resized = keras.layers.Resizing(size, size, name="resize_to_candidate")(inputs)
        network = EfficientNet(
            (size, size, image_shape[-1]),
            blocks,
            candidate.width_coefficient,
            candidate.depth_coefficient,
            include_top=True,
            weights=None,
            classes=classes,
            **model_kwargs,
        )
        model = keras.Model(inputs, network(resized))
        model.compile(
            **(
                compile_kwargs
                or {
                    "optimizer": "adam",
                    "loss": "sparse_categorical_crossentropy",
                    "metrics": ["accuracy"],
                }
            )
        )
        if train_y is not None:
            history = model.fit(
                train_x,
                train_y,
                validation_data=(val_x, val_y),
                epochs=epochs,
                batch_size=batch_size,
                verbose=verbose,
            )
        else:
            history = model.fit(train_data, validation_data=validation_data, epochs=epochs, verbose=verbose)
        return history.history["val_accuracy"][-1]

    return build_and_evaluate


# --------------------------------------------------------------------------- #
# Plots
# --------------------------------------------------------------------------- #
def plot_candidates(results, path=None, phi: float = 1.0, max_cost: float = 2.0):
    """Draws candidates on the constraint surface, in three pairwise projections.

    Each panel plots two coefficients against each other, with the edge of the
    surface where the third is 1 as a line; points are coloured by the actual
    FLOPs ratio for `Candidate`s, by the idealized cost for plain rows.

    Args:
        results: `Candidate`s, or rows of (alpha, beta, gamma).
        path: Where to write a PNG; None writes nothing.
        phi, max_cost: The constraint drawn, ``alpha * beta^2 * gamma^2 ==
            max_cost ** (1 / phi)``.

    Returns:
        The matplotlib `Figure`.

    Example:
        >>> figure = plot_candidates(optimize_coefficients(search_per_coeff=4))
        >>> len(figure.axes)
        4
    """
    from matplotlib.figure import Figure  # optional extra: pip install matplotlib

    phi = _check_real("phi", phi, greater_than=0)
    max_cost = _check_real("max_cost", max_cost, greater_than=1)
    items = list(results)
    if items and all(isinstance(c, Candidate) for c in items):
        points = np.array([[c.alpha, c.beta, c.gamma] for c in items], dtype=np.float64)
        colour, label = np.array([c.flops_ratio for c in items]), "actual FLOPs ratio"
    else:
        points = np.asarray(items, dtype=np.float64).reshape(-1, 3) if items else np.empty((0, 3))
        colour, label = np.prod(points ** (phi * np.asarray(_PAPER_EXPONENTS)), axis=1), "ideal cost"
    if points.size == 0:
        raise ValueError("`results` is empty: nothing to plot. Received: results=[]")

    target = max_cost ** (1.0 / phi)  # alpha * beta^2 * gamma^2 at phi = 1
    figure = Figure(figsize=(13, 4), layout="constrained")
    axes = figure.subplots(1, 3)
    names = ("alpha", "beta", "gamma")
    scatter = None
    for axis, (i, j) in zip(axes, ((0, 1), (0, 2), (1, 2)), strict=True):
        # Edge of the surface with the third coefficient at 1: x_i^u_i x_j^u_j = target.
        u_i, u_j = _PAPER_EXPONENTS[i], _PAPER_EXPONENTS[j]
        xs = np.linspace(1.0, target ** (1.0 / u_i), 200)
        axis.plot(xs, (target / xs**u_i) ** (1.0 / u_j), color="0.6", lw=1, label="3rd = 1")
        scatter = axis.scatter(points[:, i], points[:, j], c=colour, s=14, cmap="viridis")
        axis.set_xlabel(names[i])
        axis.set_ylabel(names[j])
        axis.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize="small")
    figure.colorbar(scatter, ax=axes, label=label)
    figure.suptitle(f"Candidates on alpha * beta^2 * gamma^2 = {target:.3g}")
    if path is not None:
        figure.savefig(os.fspath(path), dpi=100)
    return figure
