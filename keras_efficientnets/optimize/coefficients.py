"""The 0.1.x API of the coefficient search: the paper's cost and `optimize_coefficients`.

Keras-free. Each start of a grid moves to its nearest point of the constraint
surface, exactly (`projection`), or, for a user's cost function, to a local
minimum of it (`user_cost`).
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from keras_efficientnets._common.validation import check_int, check_real
from keras_efficientnets.optimize.projection import project_onto_constraint
from keras_efficientnets.optimize.user_cost import check_start_costs, minimize_user_cost, vectorize_cost

__all__ = ["MAX_GRID_ROWS", "PAPER_EXPONENTS", "get_compound_coeff_func", "optimize_coefficients"]

# The largest grid `optimize_coefficients` accepts: 50 million rows of 3 float64
# coefficients are 1.2 GB before any work array.
MAX_GRID_ROWS = 50_000_000
# The default cost: the FLOPs of a convolution grow linearly with depth and
# quadratically with width and resolution.
PAPER_EXPONENTS = (1.0, 2.0, 2.0)


def _default_exponents(num_coeff: int) -> tuple[float, ...]:
    # One depth-like coefficient (cost linear in it), then width- and
    # resolution-like ones (cost quadratic in each): (1, 2, 2) for the paper's
    # three, (1, 2) for depth and width only, (1,) for one.
    return (1.0,) + (2.0,) * (num_coeff - 1)


# How FLOPs grow with each coefficient: the paper's are 1 (depth) and 2 (width, resolution).
_MAX_EXPONENT = 100.0
# The log of the largest coefficient the search computes with: beyond it float64 overflows.
_MAX_LOG_COEFFICIENT = math.log(1e300)


def _check_exponents(exponents, num_coeff=None) -> np.ndarray:
    if exponents is None:
        return np.asarray(_default_exponents(3 if num_coeff is None else num_coeff))
    try:
        values = [float(e) for e in exponents]
    except (TypeError, ValueError):
        values = []
    if not values or not all(0 < e <= _MAX_EXPONENT for e in values):
        raise ValueError(
            f"`exponents` must be a non-empty sequence of numbers in (0, {_MAX_EXPONENT}], one per "
            f"coefficient, such as (1, 2, 2). Received: exponents={exponents!r}"
        )
    if num_coeff is not None and len(values) != num_coeff:
        raise ValueError(
            f"`exponents` needs one entry per coefficient ({num_coeff}). "
            f"Received: exponents={exponents!r}, num_coeff={num_coeff}"
        )
    return np.asarray(values)


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
    phi = check_real("phi", phi, minimum=0, min_open=True)
    max_cost = check_real("max_cost", max_cost, minimum=0, min_open=True)
    powers = phi * _check_exponents(exponents)
    # Meeting the cost with the others at 1, a coefficient reaches max_cost ** (1 / power).
    if math.log(max_cost) / powers.min() > _MAX_LOG_COEFFICIENT:
        raise ValueError(
            f"With phi={phi:g} the coefficients that meet max_cost={max_cost:g} reach "
            f"max_cost ** (1 / (phi * exponent)), beyond 1e300: use a larger `phi`. Received: phi={phi!r}"
        )

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
    num_coeff = check_int("num_coeff", num_coeff, minimum=1)
    phi = check_real("phi", phi, minimum=0, min_open=True)
    max_cost = check_real(
        "max_cost",
        max_cost,
        minimum=1,
        min_open=True,
        hint=" Coefficients are >= 1, so a cost of 1 or less leaves nothing to search.",
    )
    search_per_coeff = check_int("search_per_coeff", search_per_coeff, minimum=1)
    max_iter = check_int("max_iter", max_iter, minimum=1)
    if tol is not None:
        tol = check_real("tol", tol, minimum=0)
    if loss_func is not None:
        if cost_func is not None:
            raise ValueError(
                "Pass either `cost_func` or its alias `loss_func`, not both. "
                f"Received: cost_func={cost_func!r}, loss_func={loss_func!r}"
            )
        cost_func = loss_func
    if cost_func is not None and not callable(cost_func):
        raise TypeError(f"`cost_func` must be callable. Received: cost_func={cost_func!r}")
    # Compared in logarithms: the row count itself can be a number too large to compute.
    if num_coeff * math.log(search_per_coeff) > math.log(MAX_GRID_ROWS):
        small = num_coeff * math.log10(search_per_coeff) < 30
        rows = f"{search_per_coeff**num_coeff:,}" if small else f"{search_per_coeff}**{num_coeff}"
        raise ValueError(
            f"The grid would have search_per_coeff ** num_coeff = {rows} rows, "
            f"over the limit of {MAX_GRID_ROWS:,}. Lower `search_per_coeff` or `num_coeff`. "
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
        results = project_onto_constraint(starts, powers, math.log(target_cost) / target_phi)
        costs = cost_func(results)
    else:
        evaluate = vectorize_cost(cost_func, starts)
        check_start_costs(evaluate(starts), starts, cost_func)
        results = minimize_user_cost(evaluate, starts, max_iter)
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
            f"optimize_coefficients: {search_per_coeff**num_coeff:,} starts -> {len(results):,} rows in "
            f"{time.perf_counter() - start_time:.3f} s; largest cost {worst:.3g}"
        )
    return results


def _grid(num_coeff: int, max_cost: float, search_per_coeff: int) -> np.ndarray:
    """All starts in itertools.product order (the last coefficient varies fastest)."""
    axis = np.linspace(1.0, max_cost, search_per_coeff)
    mesh = np.meshgrid(*([axis] * num_coeff), indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=1)
