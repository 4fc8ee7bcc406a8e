"""Candidates drawn on the constraint surface (matplotlib, imported when drawing)."""

from __future__ import annotations

import os

import numpy as np

from keras_efficientnets._common.validation import check_real
from keras_efficientnets.optimize.candidates import Candidate
from keras_efficientnets.optimize.coefficients import PAPER_EXPONENTS

__all__ = ["plot_candidates"]


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
        >>> from keras_efficientnets.optimize import optimize_coefficients
        >>> figure = plot_candidates(optimize_coefficients(search_per_coeff=4))
        >>> len(figure.axes)
        4
    """
    from matplotlib.figure import Figure  # optional extra: pip install matplotlib

    phi = check_real("phi", phi, minimum=0, min_open=True)
    max_cost = check_real("max_cost", max_cost, minimum=1, min_open=True)
    items = list(results)
    if items and all(isinstance(c, Candidate) for c in items):
        points = np.array([[c.alpha, c.beta, c.gamma] for c in items], dtype=np.float64)
        colour, label = np.array([c.flops_ratio for c in items]), "actual FLOPs ratio"
    else:
        points = np.asarray(items, dtype=np.float64).reshape(-1, 3) if items else np.empty((0, 3))
        colour, label = np.prod(points ** (phi * np.asarray(PAPER_EXPONENTS)), axis=1), "ideal cost"
    if points.size == 0:
        raise ValueError("`results` is empty: nothing to plot. Received: results=[]")

    target = max_cost ** (1.0 / phi)  # alpha * beta^2 * gamma^2 at phi = 1
    figure = Figure(figsize=(13, 4), layout="constrained")
    axes = figure.subplots(1, 3)
    names = ("alpha", "beta", "gamma")
    scatter = None
    for axis, (i, j) in zip(axes, ((0, 1), (0, 2), (1, 2)), strict=True):
        # Edge of the surface with the third coefficient at 1: x_i^u_i x_j^u_j = target.
        u_i, u_j = PAPER_EXPONENTS[i], PAPER_EXPONENTS[j]
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
