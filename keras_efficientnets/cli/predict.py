"""``keras-efficientnets predict``: classify images with a pretrained model and print the top classes."""

from __future__ import annotations

import json
import os

import keras_efficientnets.cli.common as common

# The scikit-image photos `predict` classifies when given no image.
SAMPLE_PHOTOS = ("coffee.png", "chelsea.png", "rocket.jpg")
# The reference evaluation crops the centre res / (res + 32) of the shorter side
# (tensorflow/tpu efficientnet preprocessing.py, CROP_PADDING = 32).
CROP_PADDING = 32


def register(subparsers) -> None:
    parser = common.add_command(
        subparsers,
        "predict",
        run,
        "classify images with a pretrained model",
        common.examples(
            f"{common.PROG} predict                          # scikit-image's sample photos",
            f"{common.PROG} predict cat.jpg dog.png --top 3 --plot predictions.png",
            f"{common.PROG} predict cat.jpg --model b0       # downloads the B0 weights once",
            f"{common.PROG} predict cat.jpg --weights model.keras   # a model saved by `train`",
        ),
    )
    parser.add_argument(
        "images", nargs="*", metavar="IMAGE", help="JPEG or PNG files (none: scikit-image's sample photos)"
    )
    parser.add_argument("--model", default="lite0", help="variant name, e.g. b0, lite2 (default: lite0)")
    parser.add_argument(
        "--weights",
        default="imagenet",
        help="'imagenet' (default; Lite0-2 offline, B0-B7 downloaded once), a weights file for --model, "
        "or a .keras model saved by `train`",
    )
    parser.add_argument(
        "--top", type=common.positive_int, default=5, help="classes to print per image (default: 5)"
    )
    parser.add_argument("--plot", metavar="FILE", help="also draw each image beside its top classes to a PNG")


def run(args) -> int:
    """Classifies images with a pretrained EfficientNet and prints the top classes."""
    plot = common.png_path(args.plot, "--plot")
    if not 1 <= args.top <= 1000:
        raise common.CommandError(f"--top must be between 1 and 1000. Received: --top {args.top}")
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
            raise common.CommandError(f"No model file at {weights}. Pass a .keras file saved by `train`.")
        model, names, size, label = _load_trained_model(weights)
        # `train` resizes the whole centre square; crop the same way.
        padding = 0
    else:
        model_variant = common.variant(args.model)
        if weights.lower() == "none":
            raise common.CommandError(
                "predict needs trained weights: --weights imagenet or a weights file path."
            )
        if weights != "imagenet" and not os.path.isfile(weights):
            raise common.CommandError(
                f"No weights file at {weights}. Pass --weights imagenet or an existing file."
            )
        common.import_keras()
        from keras_efficientnets import model as model_lib

        model = getattr(model_lib, model_variant.constructor_name)(weights=weights)
        names, size, padding = None, model_variant.resolution, CROP_PADDING
        source = "ImageNet" if weights == "imagenet" else weights
        label = f"{model_variant.constructor_name} with {source} weights"
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
        for rank, (class_name, p) in enumerate(row, 1):
            print(f"  {rank}. {class_name:<32} {p:.3f}")
    if plot:
        plot_predictions(shown_names, batch, results, plot)
        print(f"Wrote {plot}")
    return 0


def _sample_photos() -> list[str]:
    import importlib.util

    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise common.CommandError(
            "No IMAGE given and scikit-image, whose sample photos would be used, is not installed: "
            "pass image files, or pip install scikit-image."
        )
    folder = os.path.join(list(spec.submodule_search_locations)[0], "data")
    return [os.path.join(folder, name) for name in SAMPLE_PHOTOS]


def _read_image(path: str):
    """The image as an RGB PIL image, or a one-line error."""
    image_lib = common.require("PIL.Image")
    if not os.path.isfile(path):
        raise common.CommandError(f"No such image file: {path}. Pass the path of a JPEG or PNG file.")
    try:
        with image_lib.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError) as error:
        raise common.CommandError(
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
    keras = common.import_keras()
    model = keras.saving.load_model(path, compile=False)
    meta = {}
    classes_file = common.classes_path(path)
    if os.path.isfile(classes_file):
        with open(classes_file, encoding="utf-8") as f:
            meta = json.load(f)
    outputs = model.output_shape[-1]
    names = meta.get("class_names")
    if names is None and outputs != 1000:
        names = [f"class {i}" for i in range(outputs)]
    # None and 1000 outputs: ImageNet classes, decoded by the caller.
    size = model.input_shape[1] or meta.get("image_size")
    if size is None:
        raise common.CommandError(
            f"{path} takes images of any size and has no {classes_file}: retrain with `train`."
        )
    return model, names, int(size), path


def plot_predictions(paths, batch, results, path: str) -> None:
    """Each image beside a bar chart of its top classes."""
    rows = len(paths)
    drawing = common.figure(figsize=(9, 2.8 * rows), layout="constrained")
    axes = drawing.subplots(rows, 2, squeeze=False, width_ratios=(1, 1.6))
    for (image_axis, bar_axis), name, image, row in zip(axes, paths, batch, results, strict=True):
        image_axis.imshow(image.astype("uint8"))
        image_axis.set_title(os.path.basename(name), fontsize=9)
        image_axis.axis("off")
        labels = [label for label, _ in row][::-1]
        bar_axis.barh(labels, [p for _, p in row][::-1], color="tab:blue")
        bar_axis.set_xlim(0, 1)
        bar_axis.set_xlabel("probability")
        bar_axis.tick_params(axis="y", labelsize=8)
    common.save_figure(drawing, path)
