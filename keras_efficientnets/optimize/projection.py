"""Exact projection of grid starts onto the compound-scaling constraint surface. Keras-free."""

from __future__ import annotations

import itertools
import math

import numpy as np

__all__ = ["project_onto_constraint"]

# Rows projected at a time; bounds the work memory at a few tens of MB.
CHUNK_ROWS = 1 << 17


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
def project_onto_constraint(starts, powers, log_target):
    out = np.empty_like(starts)
    for begin in range(0, len(starts), CHUNK_ROWS):
        chunk = starts[begin : begin + CHUNK_ROWS]
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
    for begin in range(0, len(p), CHUNK_ROWS // 8):
        chunk = p[begin : begin + CHUNK_ROWS // 8]
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
