"""``keras-efficientnets convert``: an official checkpoint to a ``.weights.h5`` file and its sidecar."""

from __future__ import annotations

import os

from keras_efficientnets.cli.common import (
    PROG,
    Steps,
    add_command,
    examples,
    import_keras,
    output_path,
    variant,
)


def register(subparsers) -> None:
    from keras_efficientnets.arch.preprocessing import NORMALIZATIONS
    from keras_efficientnets.weights.checkpoints import SOURCE_FORMATS

    parser = add_command(
        subparsers,
        "convert",
        run,
        "convert an official checkpoint to a .weights.h5 file",
        examples(
            f"{PROG} convert efficientnet-lite3/ --from tf-checkpoint --model lite3 --out lite3.weights.h5",
            f"{PROG} convert efficientnet-b0-advprop/model.ckpt --from tf-checkpoint --model b0 "
            "--normalization advprop --out b0-advprop.weights.h5",
            f"{PROG} convert lite0.pth --from pytorch --model lite0 --out lite0.weights.h5",
            f"{PROG} convert efficientnetb0.h5 --from keras-applications --model b0 --out b0.weights.h5",
            f"{PROG} convert model.safetensors --from timm --model v2s --out v2s.weights.h5",
        ),
    )
    parser.add_argument(
        "source", metavar="SOURCE", help="checkpoint prefix or folder, .pth, .safetensors or .h5 file"
    )
    parser.add_argument(
        "--from",
        dest="source_format",
        required=True,
        choices=SOURCE_FORMATS,
        help="tensorflow/tpu checkpoint, efficientnet_pytorch state dict, keras.applications .h5, or timm "
        "state dict (.safetensors or .pth)",
    )
    parser.add_argument("--model", required=True, help="the variant the weights belong to, e.g. b0")
    parser.add_argument("--out", required=True, help="output path ending in .weights.h5")
    parser.add_argument(
        "--normalization",
        choices=tuple(NORMALIZATIONS),
        default=None,
        help="input constants of the weights (default: a timm checkpoint's config.json, else the family's; "
        "'advprop' for AdvProp checkpoints)",
    )
    parser.add_argument("--no-top", action="store_true", help="leave out the classifier")


def run(args) -> int:
    """Converts an official checkpoint into a .weights.h5 file with its JSON sidecar."""
    model_variant = variant(args.model)
    output_path(args.out, "--out", (".weights.h5",))
    import_keras()
    from keras_efficientnets.arch.layer_names import CLASSIFIER
    from keras_efficientnets.convert import convert_checkpoint
    from keras_efficientnets.weights.loading import sidecar_path

    steps = Steps(5)
    model = convert_checkpoint(
        args.source,
        args.source_format,
        model_variant.name,
        args.out,
        normalization=args.normalization,
        include_top=False if args.no_top else None,
        progress=steps,
    )
    steps.finish("done")
    with_top = any(layer.name == CLASSIFIER for layer in model.layers)
    print(
        f"Wrote {args.out} and {sidecar_path(args.out)} ({'with' if with_top else 'without'} the classifier)."
    )
    print(f"Load with: {model_variant.constructor_name}(weights={os.fspath(args.out)!r})")
    return 0
