"""Builds a family of your own from BlockArgs and searches its compound-scaling coefficients.

A small four-stage base network, written as BlockArgs, is scaled the way the
EfficientNet paper scales B0: search (alpha, beta, gamma) on the constraint
alpha * beta^2 * gamma^2 = 2, count what each candidate really costs once
channels, blocks and pixels are rounded, pick the one closest to doubling the
FLOPs, and build the family at phi = 0, 1, 2. Counting needs no model; only the
last step builds any.

    python examples/custom_family.py
    python examples/custom_family.py --search-per-coeff 10 --max-phi 3
"""

import argparse

from keras_efficientnets import BlockArgs, EfficientNet, count_flops
from keras_efficientnets.optimize import candidate_table, compound_scaling, optimize_coefficients

BASE_RESOLUTION = 96
BASE_STAGES = [
    # input_filters, output_filters, then the block settings (see BlockArgs).
    # The stem makes the first stage's input_filters; each stage takes the last one's output.
    BlockArgs(32, 16, kernel_size=3, strides=(1, 1), num_repeat=1, se_ratio=0.25, expand_ratio=1),
    BlockArgs(16, 24, kernel_size=3, strides=(2, 2), num_repeat=2, se_ratio=0.25, expand_ratio=4),
    BlockArgs(24, 40, kernel_size=5, strides=(2, 2), num_repeat=2, se_ratio=0.25, expand_ratio=4),
    BlockArgs.from_block_string("r2_k3_s22_e4_i40_o80_se0.25"),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--search-per-coeff", type=int, default=6, help="grid values per coefficient")
    parser.add_argument("--max-phi", type=int, default=2, help="largest family member to build")
    parser.add_argument("--classes", type=int, default=10)
    args = parser.parse_args()

    base = count_flops(BASE_STAGES, 1.0, 1.0, BASE_RESOLUTION, classes=args.classes)
    print(f"base: {base.params:,} parameters, {base.macs / 1e6:.1f} M MACs at {BASE_RESOLUTION}px")

    rows = optimize_coefficients(phi=1.0, max_cost=2.0, search_per_coeff=args.search_per_coeff, unique=True)
    table = candidate_table(
        rows,
        block_args_list=BASE_STAGES,
        base_resolution=BASE_RESOLUTION,
        classes=args.classes,
        sort_by="flops_error",
    )
    best = table[0]
    print(f"{len(table)} candidates; closest to 2x FLOPs once built:")
    print(
        f"  alpha={best.alpha:.3f} beta={best.beta:.3f} gamma={best.gamma:.3f}: "
        f"ideal cost {best.ideal_cost:.3f}, actual FLOPs ratio {best.flops_ratio:.3f}"
    )

    for phi in range(args.max_phi + 1):
        scaled = compound_scaling(phi, best.alpha, best.beta, best.gamma, base_resolution=BASE_RESOLUTION)
        model = EfficientNet(
            (scaled.resolution, scaled.resolution, 3),
            BASE_STAGES,
            width_coefficient=scaled.width_coefficient,
            depth_coefficient=scaled.depth_coefficient,
            classes=args.classes,
            name=f"custom_phi{phi}",
        )
        counted = count_flops(
            BASE_STAGES,
            scaled.width_coefficient,
            scaled.depth_coefficient,
            scaled.resolution,
            classes=args.classes,
        )
        print(
            f"phi={phi}: {scaled.resolution}px, width x{scaled.width_coefficient:.3f}, "
            f"depth x{scaled.depth_coefficient:.3f}: {model.count_params():,} parameters "
            f"(counted without building: {counted.params:,}), {counted.macs / base.macs:.2f}x the base's MACs"
        )


if __name__ == "__main__":
    main()
