"""What the subcommands share: the user-error type, argument types, optional imports, progress, plots."""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import textwrap

from keras_efficientnets._common.optional import require

PROG = "keras-efficientnets"
EXIT_USAGE = 2
# `train` writes the folder's class names beside the model in this format; `predict` reads them.
CLASSES_FORMAT = "keras_efficientnets.classes/1"

# TensorFlow's C++ start-up lines that TF_CPP_MIN_LOG_LEVEL does not silence.
_STARTUP_NOISE = (
    "WARNING: All log messages before absl::InitializeLog()",
    "oneDNN custom operations are on",
    "Could not find cuda drivers",
    "This TensorFlow binary is optimized",
    "To enable the following instructions",
)


class CommandError(Exception):
    """A user error: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line instead of usage plus message."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}. See `{self.prog} --help`.\n")


def examples(*lines: str) -> str:
    """The ``examples:`` block of a command's help."""
    return "examples:\n" + textwrap.indent("\n".join(lines), "  ")


def add_command(subparsers, name: str, run, summary: str, epilog: str) -> argparse.ArgumentParser:
    """A subcommand whose description is `run`'s docstring and whose action is `run(args)`."""
    parser = subparsers.add_parser(
        name,
        help=summary,
        description=run.__doc__,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=run)
    return parser


# --------------------------------------------------------------------------- #
# Argument types
# --------------------------------------------------------------------------- #
def positive_int(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def finite_float(minimum: float | None = None, above: float | None = None):
    """A finite number, optionally >= `minimum` or > `above` (NaN and infinity are refused)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if minimum is not None and not value >= minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {text!r}")
        if above is not None and not value > above:
            raise argparse.ArgumentTypeError(f"expected a number > {above}, got {text!r}")
        return value

    return parse


def variant(name: str):
    """The `config.Variant` of a model name, or a one-line error listing the valid ones."""
    from keras_efficientnets.arch.variants import VARIANTS, get_variant

    try:
        return get_variant(name)
    except ValueError:
        raise CommandError(
            f"Unknown model {name!r}. Choose one of: {', '.join(VARIANTS)} (e.g. --model lite0)."
        ) from None


def add_model_and_weights(parser, default_model: str, other_weights: str) -> None:
    """The --model and --weights options, as predict, export and train take them.

    Args:
        parser: The subcommand's parser.
        default_model: The variant used without --model.
        other_weights: What else --weights takes in this command, for its help.
    """
    parser.add_argument(
        "--model", default=default_model, help=f"variant name, e.g. b0, lite2 (default: {default_model})"
    )
    parser.add_argument(
        "--weights",
        default="imagenet",
        help="'imagenet' (default), a Hugging Face Hub name such as noisy-student (`info` lists them), "
        f"{other_weights}",
    )


def check_weights(weights: str, others: str = "") -> None:
    """Refuses a --weights value that is neither a weights name nor an existing file.

    Args:
        weights: The value.
        others: What else the command takes, for the message (", none").
    """
    from keras_efficientnets.weights.hub import is_hub_name

    if weights == "imagenet" or is_hub_name(weights) or os.path.isfile(weights):
        return
    raise CommandError(
        f"No weights file at {weights}. Pass --weights imagenet{others}, a Hugging Face Hub name such as "
        f"noisy-student (`{PROG} info` lists each model's), or an existing file."
    )


def output_path(path: str | None, option: str, suffixes: tuple[str, ...]) -> str | None:
    """Checks an output path's ending and folder before any long work starts."""
    if path is None:
        return None
    if not path.lower().endswith(suffixes):
        raise CommandError(f"{option} must name a {' or '.join(suffixes)} file. Received: {option} {path}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CommandError(f"The folder of {option} {path} does not exist: create {folder} first.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CommandError(f"Cannot write in {folder}, the folder of {option} {path}.")
    return path


def classes_path(model_path: str) -> str:
    """``model.keras`` -> ``model.classes.json``: the class names `train` saves beside a model."""
    return os.path.splitext(model_path)[0] + ".classes.json"


def png_path(path: str | None, option: str) -> str | None:
    """An output PNG path, checked before any long work, with matplotlib present."""
    if path is None:
        return None
    output_path(path, option, (".png",))
    require("matplotlib", f"{option} (a plot)")
    return path


# --------------------------------------------------------------------------- #
# Imports, progress, plots
# --------------------------------------------------------------------------- #
def import_keras():
    """Imports Keras with TensorFlow's start-up chatter filtered from stderr.

    The chatter comes from C++ before Python's logging exists, so the file
    descriptor itself is captured; every other line is passed on.
    """
    if "keras" in sys.modules:
        return sys.modules["keras"]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", "replace").splitlines():
                if not any(noise in line for noise in _STARTUP_NOISE):
                    print(line, file=sys.stderr)
    return keras


def figure(**kwargs):
    """A matplotlib Figure; the Figure class needs no GUI backend, unlike pyplot."""
    require("matplotlib", "Plotting")
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def save_figure(figure_, path: str) -> None:
    """Writes a figure as PNG, atomically."""
    from keras_efficientnets._common.fileio import atomic_path

    with atomic_path(path) as temporary:
        figure_.savefig(temporary, dpi=100, format="png")


class Steps:
    """A progress bar over a few named steps: redrawn in place on a terminal, a line each otherwise."""

    def __init__(self, total: int, width: int = 24):
        self.total, self.width, self.done = total, width, 0
        self.tty = sys.stdout.isatty()
        self.started = False

    def __call__(self, label: str):
        """As a progress callback: the first call starts the bar, each later one is a step."""
        if self.started:
            self.step(label)
        else:
            self.start(label)

    def start(self, label: str):
        self.started = True
        filled = self.width * self.done // self.total
        bar = "=" * filled + ">" * (filled < self.width) + "." * max(0, self.width - filled - 1)
        line = f"[{bar}] {self.done}/{self.total} {label}"
        print(f"\r{line:<79}" if self.tty else line, end="" if self.tty else "\n", flush=True)

    def step(self, label: str):
        self.done += 1
        self.start(label)

    def finish(self, label: str):
        self.done = self.total
        self.start(label)
        if self.tty:
            print()
