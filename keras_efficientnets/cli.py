"""The `keras-efficientnets` command line."""

from __future__ import annotations

import argparse
import sys

from keras_efficientnets.config import VARIANTS


def _info(args) -> int:
    """Builds every variant and prints its resolution, parameters and output shape."""
    from keras_efficientnets import model as model_lib

    print(f"{'model':<18}{'resolution':>11}{'parameters':>15}  output shape")
    for variant in VARIANTS.values():
        model = getattr(model_lib, variant.constructor_name)(weights=None)
        print(
            f"{variant.constructor_name:<18}{variant.resolution:>11}{model.count_params():>15,}"
            f"  {model.output_shape}",
            flush=True,
        )
        del model
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keras-efficientnets", description="EfficientNets for Keras 3.")
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="list every variant with its size", description=_info.__doc__)
    info.set_defaults(run=_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return args.run(args)
