"""``keras-efficientnets predict``: classify images with a pretrained model and print the top classes."""

from __future__ import annotations

import functools
import os

import keras_efficientnets.cli.common as common
from keras_efficientnets._common.optional import require

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
            f"{common.PROG} predict cat.jpg --model-file lite0_int8.tflite  # a file written by `export`",
        ),
    )
    parser.add_argument(
        "images", nargs="*", metavar="IMAGE", help="JPEG or PNG files (none: scikit-image's sample photos)"
    )
    common.add_model_and_weights(
        parser, "lite0", "a weights file for --model, or a .keras model saved by `train`"
    )
    parser.add_argument(
        "--model-file",
        metavar="FILE",
        help="run an exported .tflite, .onnx, OpenVINO .xml or SavedModel folder instead (--model gives "
        "its input size if the file leaves it open)",
    )
    parser.add_argument(
        "--top", type=common.positive_int, default=5, help="classes to print per image (default: 5)"
    )
    parser.add_argument("--plot", metavar="FILE", help="also draw each image beside its top classes to a PNG")


def run(args) -> int:
    """Classifies images with a pretrained EfficientNet and prints the top classes."""
    from keras_efficientnets._common import images

    plot = common.png_path(args.plot, "--plot")
    if not 1 <= args.top <= 1000:
        raise common.CommandError(f"--top must be between 1 and 1000. Received: --top {args.top}")
    paths = args.images
    shown_names = list(paths)
    if not paths:
        paths = _sample_photos()
        shown_names = list(SAMPLE_PHOTOS)
        print(f"No IMAGE given: classifying scikit-image's sample photos {', '.join(SAMPLE_PHOTOS)}.")
    require("PIL.Image", "Reading images")
    images.check_images(paths)  # before the model is built: a bad file fails at once

    if args.model_file:
        predict, names, size, crop, label = _exported_model(args.model_file, args.model)
    else:
        model, names, size, crop, label = _model(args.model, args.weights)  # imports Keras quietly
        from keras_efficientnets.models.fast_kernels import optimize_for_backend

        predict = functools.partial(optimize_for_backend(model).predict, verbose=0)

    import numpy as np

    batch = np.stack([images.load_image(path, size=size, **crop) for path in paths])
    scores = _probabilities(np.asarray(predict(batch)))
    top = min(args.top, scores.shape[-1])
    if names is None and scores.shape[-1] != 1000:
        names = [f"class {i}" for i in range(scores.shape[-1])]
    if names is None:
        from keras_efficientnets.arch.preprocessing import decode_predictions

        # Printed as words: "tiger cat", where the library returns keras.applications' "tiger_cat".
        results = [
            [(name.replace("_", " "), p) for _, name, p in row] for row in decode_predictions(scores, top=top)
        ]
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


def _model(model_name: str, weights: str):
    """The classifier, its class names (None: ImageNet's), input size, crop (`load_image`'s) and a label."""
    if weights.endswith(".keras"):
        if not os.path.isfile(weights):
            raise common.CommandError(f"No model file at {weights}. Pass a .keras file saved by `train`.")
        model, names, size = _load_trained_model(weights)
        # `train` resizes the whole centre square; crop the same way.
        return model, names, size, {}, weights
    model_variant = common.variant(model_name)
    if weights.lower() == "none":
        raise common.CommandError("predict needs trained weights: --weights imagenet or a weights file path.")
    common.check_weights(weights)
    common.import_keras()
    from keras_efficientnets.models import builder as model_lib
    from keras_efficientnets.weights.hub import checkpoint_config_of

    # A timm checkpoint is evaluated at its own size, crop and resampling (its config.json).
    checkpoint = checkpoint_config_of(weights, model_variant.name)
    size = checkpoint.input_size or model_variant.resolution
    crop = {"crop_padding": CROP_PADDING}
    if checkpoint.crop_fraction is not None:
        crop = {"crop_fraction": checkpoint.crop_fraction}
    if checkpoint.interpolation is not None:
        crop["interpolation"] = checkpoint.interpolation
    model = getattr(model_lib, model_variant.constructor_name)(weights=weights, input_shape=(size, size, 3))
    source = "ImageNet" if weights == "imagenet" else weights
    label = f"{model_variant.constructor_name} with {source} weights"
    return model, None, size, crop, label


def _exported_model(path: str, model_name: str):
    """An exported file's predict function, class names, input size, crop (`load_image`'s) and label."""
    from keras_efficientnets.deploy.predictors import load_predictor

    if not os.path.exists(path):
        raise common.CommandError(f"No exported model at {path}. Pass a file written by `export`.")
    predictor = load_predictor(path)
    size = predictor.input_shape[0] or common.variant(model_name).resolution
    if len(predictor.output_names) != 1:
        raise common.CommandError(
            f"{path} has {len(predictor.output_names)} outputs: predict needs a classifier."
        )
    crop = {"crop_padding": CROP_PADDING}
    return predictor.predict, None, int(size), crop, f"{path} ({type(predictor).__name__})"


def _probabilities(scores):
    """Class probabilities: the scores of a softmax model, or the softmax of logits (export --logits)."""
    import numpy as np

    if np.all(scores >= 0) and np.allclose(scores.sum(axis=-1), 1, atol=0.02):
        return scores
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


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


def _load_trained_model(path: str):
    """A `.keras` model saved by `train`, its class names (None: ImageNet's) and input size."""
    keras = common.import_keras()
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # a user's file: any failure to load it is theirs to fix
        raise common.CommandError(
            f"Cannot load {path} as a Keras model ({type(error).__name__}: {error}). Pass a .keras file "
            "saved by `train`."
        ) from None
    outputs = model.output_shape[-1]
    meta = _read_classes_file(common.classes_path(path), outputs)
    names = meta.get("class_names")
    if names is None and outputs != 1000:
        names = [f"class {i}" for i in range(outputs)]
    size = model.input_shape[1] or meta.get("image_size")
    if size is None:
        raise common.CommandError(
            f"{path} takes images of any size and has no {common.classes_path(path)}: retrain with `train`."
        )
    return model, names, int(size)


def _read_classes_file(classes_file: str, outputs: int) -> dict:
    """The class names and image size `train` saved beside a model; {} if there is no such file."""
    from keras_efficientnets._common.fileio import read_json_object
    from keras_efficientnets._common.images import MAX_IMAGE_SIZE

    if not os.path.isfile(classes_file):
        return {}
    try:
        meta = read_json_object(classes_file, "The class names file")
    except ValueError as error:
        raise common.CommandError(str(error)) from None
    names, size = meta.get("class_names"), meta.get("image_size")
    if (
        not isinstance(names, list)
        or len(names) != outputs
        or not all(isinstance(n, str) for n in names)
        or not (size is None or (isinstance(size, int) and 32 <= size <= MAX_IMAGE_SIZE))
    ):
        raise common.CommandError(
            f"{classes_file} does not hold {outputs} class names (and an image size of 32 to "
            f"{MAX_IMAGE_SIZE}), as `train` writes it: fix or delete it."
        )
    return meta


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
