"""Converts a tensorflow/tpu EfficientNet checkpoint to a .weights.h5 file and its JSON sidecar.

Takes the /ExponentialMovingAverage copy of every variable when the checkpoint
has it (the evaluation weights). Needs TensorFlow.

Example:
    python weights/convert_tf_checkpoint.py efficientnet-b0-advprop/ b0 \
        converted/b0-advprop.weights.h5 --normalization advprop
    python -c "from keras_efficientnets import EfficientNetB0; \
        EfficientNetB0(weights='converted/b0-advprop.weights.h5')"
"""

import argparse

from keras_efficientnets import convert
from keras_efficientnets.config import VARIANTS


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="checkpoint prefix (.../model.ckpt) or its folder")
    parser.add_argument("variant", choices=sorted(VARIANTS), help="the model the weights belong to")
    parser.add_argument("output", help="output path ending in .weights.h5")
    parser.add_argument(
        "--normalization",
        choices=convert.NORMALIZATION_NAMES,
        default=None,
        help="input constants of the weights (default: the family's; 'advprop' for AdvProp checkpoints)",
    )
    parser.add_argument("--no-top", action="store_true", help="leave out the classifier")
    args = parser.parse_args(argv)
    convert.convert_tf_checkpoint(
        args.checkpoint,
        args.variant,
        args.output,
        normalization=args.normalization,
        include_top=False if args.no_top else None,
    )
    print(f"wrote {args.output} and its sidecar")


if __name__ == "__main__":
    main()
