"""What a candidate (alpha, beta, gamma) really costs once built: `candidate_table`. Keras-free.

The paper's cost alpha^phi * beta^(2 phi) * gamma^(2 phi) is an idealization;
the model a candidate builds rounds channels to multiples of 8, blocks to whole
blocks and the input to whole pixels. `candidate_table` counts that model's
multiply-adds and parameters with `flops.count_flops`.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import NamedTuple

import numpy as np

from keras_efficientnets._common.validation import check_choice, check_int, check_real
from keras_efficientnets.arch.flops import count_flops
from keras_efficientnets.arch.variants import FAMILIES, get_default_block_list

__all__ = ["SORT_KEYS", "Candidate", "CompoundScaling", "candidate_table", "compound_scaling"]

# The orders `candidate_table` (and `keras-efficientnets optimize --sort`) can sort by.
SORT_KEYS = ("flops_ratio", "params_ratio", "ideal_cost", "flops_error")


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
    phi = check_real("phi", phi, minimum=0)
    for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        check_real(name, value, minimum=1)
    base_resolution = check_int("base_resolution", base_resolution, minimum=1)
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


def _family_plan_options(family) -> dict:
    """The options of a family that decide its layout: those `count_flops` takes."""
    if family is None:
        return {}
    family = check_choice("family", family, tuple(FAMILIES))
    return {key: value for key, value in FAMILIES[family].options.items() if key in _COUNT_KEYWORDS}


_COUNT_KEYWORDS = frozenset(inspect.signature(count_flops).parameters)


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
    use_se: bool | None = None,
    fix_stem_and_head: bool | None = None,
    family: str | None = None,
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
            see `config.Variant.family_options`); None for the family's.
        family: A key of `config.FAMILIES` whose plan options apply (``"v2"``:
            V2's channel rounding; ``"edgetpu"``: its stem), to search a family
            of that kind; None for EfficientNet's (V1).
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
    phi = check_real("phi", phi, minimum=0)
    rows = np.asarray(coefficients, dtype=np.float64)
    if rows.ndim == 1 and rows.size == 3:
        rows = rows[None, :]
    if rows.ndim != 2 or rows.shape[1] != 3:
        raise ValueError(
            "`coefficients` must be rows of (alpha, beta, gamma), shape (N, 3). "
            f"Received: coefficients of shape {rows.shape}"
        )
    check_choice("sort_by", sort_by, (None, *SORT_KEYS))
    if target_flops_ratio is None:
        target_flops_ratio = 2.0**phi
    blocks = tuple(get_default_block_list() if block_args_list is None else block_args_list)
    options = {"include_top": include_top, "classes": classes, **_family_plan_options(family)}
    for name, value in (("use_se", use_se), ("fix_stem_and_head", fix_stem_and_head)):
        if value is not None:
            options[name] = value
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
        try:
            report = measure(width, depth, scaled.resolution)
        except ValueError as error:
            raise ValueError(
                f"The candidate (alpha={alpha:g}, beta={beta:g}, gamma={gamma:g}) at phi={phi:g} scales the "
                f"base beyond what can be built: {error}"
            ) from None
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
