"""Converts an efficientnet_pytorch-style state dict (.pth) to a .weights.h5 file and its sidecar.

The same as `keras-efficientnets convert SOURCE --from pytorch ...`: the .pth is read without
torch and without running code (keras_efficientnets.weights.torch_pickle).

Example:
    python weights/convert_efficientnet_pytorch.py efficientnet-lite0-57934424.pth --model lite0 \
        --out converted/lite0.weights.h5
"""

import sys

from keras_efficientnets.cli import run_program

if __name__ == "__main__":
    sys.exit(run_program(["convert", "--from", "pytorch", *sys.argv[1:]]))
