"""Converts an efficientnet_pytorch-style state dict (.pth) to a .weights.h5 file and its sidecar.

The .pth is read without torch and without running code (keras_efficientnets.torch_pickle).

Example:
    python weights/convert_efficientnet_pytorch.py efficientnet-lite0-57934424.pth lite0 \
        converted/lite0.weights.h5
"""

import argparse

from keras_efficientnets import convert
from keras_efficientnets.config import VARIANTS


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("state_dict", help="a .pth/.pt file saved with torch.save(model.state_dict())")
    parser.add_argument("variant", choices=sorted(VARIANTS), help="the model the weights belong to")
    parser.add_argument("output", help="output path ending in .weights.h5")
    parser.add_argument(
        "--normalization",
        choices=convert.NORMALIZATION_NAMES,
        default=None,
        help="input constants of the weights (default: the family's)",
    )
    parser.add_argument("--no-top", action="store_true", help="leave out the classifier")
    args = parser.parse_args(argv)
    convert.convert_efficientnet_pytorch(
        args.state_dict,
        args.variant,
        args.output,
        normalization=args.normalization,
        include_top=False if args.no_top else None,
    )
    print(f"wrote {args.output} and its sidecar")


if __name__ == "__main__":
    main()
