"""``keras-efficientnets optimize``: the compound-coefficient search and each candidate's real cost."""

from __future__ import annotations

import csv
import dataclasses

from keras_efficientnets.cli.common import (
    PROG,
    CommandError,
    add_command,
    examples,
    finite_float,
    output_path,
    png_path,
    positive_int,
)

# Above this many candidates the cost table (one FLOPs count each) gets slow.
MAX_TABLE_ROWS = 20_000


def register(subparsers) -> None:
    from keras_efficientnets.optimize import SORT_KEYS

    parser = add_command(
        subparsers,
        "optimize",
        run,
        "search compound-scaling coefficients",
        examples(
            f"{PROG} optimize",
            f"{PROG} optimize --search-per-coeff 10 --sort flops_ratio --csv candidates.csv",
            f"{PROG} optimize --phi 1 --max-cost 2 --plot candidates.png",
        ),
    )
    parser.add_argument(
        "--phi", type=finite_float(above=0), default=1.0, help="compound coefficient (default: 1)"
    )
    parser.add_argument(
        "--max-cost",
        type=finite_float(above=1),
        default=2.0,
        help="FLOPs growth the constraint allows (default: 2)",
    )
    parser.add_argument(
        "--search-per-coeff", type=positive_int, default=4, help="grid values per coefficient (default: 4)"
    )
    parser.add_argument(
        "--tol", type=finite_float(minimum=0), default=None, help="keep rows with cost <= TOL"
    )
    parser.add_argument(
        "--sort",
        choices=("none", *SORT_KEYS),
        default="flops_error",
        help="row order (default: flops_error, the actual FLOPs ratio's distance from --max-cost)",
    )
    parser.add_argument("--top", type=int, default=10, help="rows to print; 0 for all (default: 10)")
    parser.add_argument("--csv", metavar="FILE", help="write every candidate to a CSV file")
    parser.add_argument("--plot", metavar="FILE", help="draw the candidates on the constraint to a PNG")


def run(args) -> int:
    """Searches (alpha, beta, gamma) on the compound-scaling constraint and counts each candidate's cost."""
    from keras_efficientnets.optimize import candidate_table, optimize_coefficients, plot_candidates

    plot = png_path(args.plot, "--plot")
    output_path(args.csv, "--csv", (".csv",))
    if args.top < 0:
        raise CommandError(f"--top must be 0 (all) or more. Received: --top {args.top}")
    starts = args.search_per_coeff**3
    if starts > MAX_TABLE_ROWS:
        raise CommandError(
            f"--search-per-coeff {args.search_per_coeff} gives {starts:,} candidates; the cost table "
            f"counts each one, so keep it to {MAX_TABLE_ROWS:,} (--search-per-coeff 27 or less). "
            "For bigger grids call keras_efficientnets.optimize.optimize_coefficients from Python."
        )
    rows = optimize_coefficients(
        phi=args.phi,
        max_cost=args.max_cost,
        search_per_coeff=args.search_per_coeff,
        tol=args.tol,
        unique=True,
    )
    print(
        f"{starts:,} grid starts -> {len(rows):,} distinct candidates on "
        f"alpha^phi * beta^(2 phi) * gamma^(2 phi) = {args.max_cost:g} (phi = {args.phi:g})"
    )
    if len(rows) == 0:
        raise CommandError(f"No candidate has a cost <= --tol {args.tol:g}: raise --tol or leave it out.")
    sort_by = None if args.sort == "none" else args.sort
    # The constraint fixes the ideal FLOPs ratio at max_cost: that is the target.
    table = candidate_table(rows, phi=args.phi, sort_by=sort_by, target_flops_ratio=args.max_cost)
    _print_table(table, args.top)
    if args.csv:
        write_csv(table, args.csv)
        print(f"Wrote {args.csv}")
    if plot:
        plot_candidates(table, path=plot, phi=args.phi, max_cost=args.max_cost)
        print(f"Wrote {plot}")
    return 0


def _print_table(table, top: int) -> None:
    print(
        f"{'alpha':>8}{'beta':>8}{'gamma':>8}{'width':>8}{'depth':>8}{'res':>6}"
        f"{'ideal cost':>12}{'FLOPs ratio':>13}{'params ratio':>14}"
    )
    shown = table if top == 0 else table[:top]
    for c in shown:
        print(
            f"{c.alpha:8.4f}{c.beta:8.4f}{c.gamma:8.4f}{c.width_coefficient:8.3f}{c.depth_coefficient:8.3f}"
            f"{c.resolution:6d}{c.ideal_cost:12.4f}{c.flops_ratio:13.4f}{c.params_ratio:14.4f}"
        )
    if len(shown) < len(table):
        print(f"... {len(table) - len(shown):,} more (--top 0 prints all, --csv FILE saves all)")
    print(
        "ideal cost: what alpha^phi * beta^(2 phi) * gamma^(2 phi) promises; FLOPs and params ratio: "
        "the model it builds against B0, after rounding channels, blocks and pixels."
    )


def write_csv(table, path: str) -> None:
    """Every candidate, one row each, with a header of the `Candidate` fields; atomically."""
    from keras_efficientnets._common.fileio import atomic_path

    fields = [field.name for field in dataclasses.fields(table[0])]
    with atomic_path(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(fields)
        for candidate in table:
            writer.writerow([getattr(candidate, name) for name in fields])
