"""``keras-efficientnets export``: a model to a LiteRT, ONNX, OpenVINO or SavedModel file."""

from __future__ import annotations

import os

import keras_efficientnets.cli.common as common


def register(subparsers) -> None:
    from keras_efficientnets.deploy.calibration import DEFAULT_CALIBRATION_IMAGES
    from keras_efficientnets.deploy.formats import FLOAT_GROUPS, FORMATS, QUANTIZATIONS

    parser = common.add_command(
        subparsers,
        "export",
        run,
        "export a model for LiteRT, ONNX Runtime, OpenVINO or TF Serving",
        common.examples(
            f"{common.PROG} export lite0.tflite                      # float32 Lite0, offline",
            f"{common.PROG} export lite0_int8.tflite --quantize int8 --calibration photos/",
            f"{common.PROG} export b0.onnx --model b0 --quantize float16",
            f"{common.PROG} export flowers.xml --weights flowers.keras --quantize int8 --calibration f/",
            f"{common.PROG} export served/ --model lite2             # a SavedModel folder",
            f"{common.PROG} predict cat.jpg --model-file lite0_int8.tflite",
        ),
    )
    parser.add_argument(
        "out", metavar="OUT", help="file to write: .tflite, .onnx, .xml (OpenVINO) or a folder (SavedModel)"
    )
    common.add_model_and_weights(
        parser, "lite0", "a weights file for --model, or a .keras model saved by `train`"
    )
    parser.add_argument(
        "--format",
        choices=tuple(FORMATS),
        help="default: from OUT's ending (none: saved_model)",
    )
    parser.add_argument(
        "--quantize", choices=[q for q in QUANTIZATIONS if q is not None], help="default: float32"
    )
    parser.add_argument(
        "--calibration", metavar="DIR", help="with --quantize int8: a folder of images like the ones to serve"
    )
    parser.add_argument(
        "--calibration-images",
        type=common.positive_int,
        default=DEFAULT_CALIBRATION_IMAGES,
        help=f"calibration images to use at most (default: {DEFAULT_CALIBRATION_IMAGES})",
    )
    parser.add_argument(
        "--keep-float",
        nargs="+",
        choices=tuple(FLOAT_GROUPS),
        default=(),
        help="with --quantize int8: layers to leave in float (squeeze-excite gates, stem, head)",
    )
    parser.add_argument(
        "--logits",
        action="store_true",
        help="export the logits, without the softmax (no ties among int8 scores)",
    )


def run(args) -> int:
    """Exports a pretrained or trained model for a deployment runtime."""
    from keras_efficientnets.deploy.formats import takes_calibration

    if takes_calibration(args.quantize) != (args.calibration is not None):
        raise common.CommandError(
            "--quantize int8 needs --calibration DIR (a folder of images), and --calibration needs it."
        )
    if args.calibration is not None and not os.path.isdir(args.calibration):
        raise common.CommandError(
            f"--calibration must be a folder of images. Received: --calibration {args.calibration}"
        )
    folder = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(folder):
        raise common.CommandError(f"The folder of OUT {args.out} does not exist: create {folder} first.")
    model, label = _model(args)
    from keras_efficientnets.deploy.exporter import export

    print(f"Exporting {label} to {args.out}", flush=True)
    path = export(
        model,
        args.out,
        format=args.format,
        quantize=args.quantize,
        calibration=args.calibration,
        calibration_limit=args.calibration_images,
        keep_float=args.keep_float,
    )
    print(f"Wrote {path} ({_size_mb(path):.1f} MB)")
    print(f"Run it: {common.PROG} predict IMAGE --model-file {path}")
    return 0


def _model(args):
    keras = common.import_keras()
    if args.weights.endswith(".keras"):
        if not os.path.isfile(args.weights):
            raise common.CommandError(
                f"No model file at {args.weights}. Pass a .keras file saved by `train`."
            )
        model = keras.saving.load_model(args.weights, compile=False)
        if args.logits:
            raise common.CommandError("--logits applies to --model's classifier, not to a .keras file.")
        return model, args.weights
    model_variant = common.variant(args.model)
    common.check_weights(args.weights)
    from keras_efficientnets.models import builder as model_lib

    constructor = getattr(model_lib, model_variant.constructor_name)
    model = constructor(weights=args.weights, classifier_activation=None if args.logits else "softmax")
    return (
        model,
        f"{model_variant.constructor_name} ({'ImageNet' if args.weights == 'imagenet' else args.weights})",
    )


def _size_mb(path) -> float:
    if os.path.isdir(path):
        return (
            sum(
                os.path.getsize(os.path.join(root, name))
                for root, _, names in os.walk(path)
                for name in names
            )
            / 1e6
        )
    size = os.path.getsize(path)
    if str(path).endswith(".xml"):
        size += os.path.getsize(os.path.splitext(path)[0] + ".bin")
    return size / 1e6
