"""Converts a tensorflow/tpu EfficientNet checkpoint to a .weights.h5 file and its JSON sidecar.

The same as `keras-efficientnets convert SOURCE --from tf-checkpoint ...`: it takes the
/ExponentialMovingAverage copy of every variable when the checkpoint has it. Needs TensorFlow.

Example:
    python weights/convert_tf_checkpoint.py efficientnet-b0-advprop/ --model b0 \
        --normalization advprop --out converted/b0-advprop.weights.h5
"""

import sys

from keras_efficientnets.cli import run_program

if __name__ == "__main__":
    sys.exit(run_program(["convert", "--from", "tf-checkpoint", *sys.argv[1:]]))
