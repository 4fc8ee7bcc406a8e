"""``keras-efficientnets train``: fine-tune a named EfficientNet on a folder of class subfolders."""

from __future__ import annotations

import os

import keras_efficientnets.cli.common as common
from keras_efficientnets._common.optional import require


def register(subparsers) -> None:
    parser = common.add_command(
        subparsers,
        "train",
        run,
        "fine-tune on a folder of class subfolders",
        common.examples(
            f"{common.PROG} train flowers/ --model lite0 --freeze-backbone --epochs 5",
            f"{common.PROG} train flowers/ --model b0 --epochs 10 --out flowers.keras",
            f"{common.PROG} predict rose.jpg --weights flowers.keras",
        )
        + "\n\nDATA_DIR holds one subfolder of images per class (DATA_DIR/roses/*.jpg, ...).",
    )
    parser.add_argument("data_dir", metavar="DATA_DIR", help="folder with one subfolder of images per class")
    common.add_model_and_weights(parser, "b0", "'none' (random), or a weights file")
    parser.add_argument("--epochs", type=common.positive_int, default=5, help="default: 5")
    parser.add_argument(
        "--batch-size",
        type=common.positive_int,
        default=32,
        help="global batch, over all replicas (default: 32)",
    )
    parser.add_argument(
        "--image-size",
        type=common.positive_int,
        default=None,
        help="input side in pixels (default: the model's)",
    )
    parser.add_argument(
        "--validation-split",
        type=common.finite_float(minimum=0),
        default=0.2,
        help="share held out for validation (default: 0.2)",
    )
    parser.add_argument(
        "--freeze-backbone",
        action="store_true",
        help="train only the new classifier (fast, a good first step)",
    )
    parser.add_argument(
        "--learning-rate",
        type=common.finite_float(above=0),
        default=None,
        help="Adam's rate per 32 images, scaled linearly to --batch-size "
        "(default: 1e-3 frozen, 1e-4 otherwise)",
    )
    parser.add_argument("--out", default="model.keras", help="where to save the model (default: model.keras)")
    parser.add_argument("--plot", metavar="FILE", help="learning-curve PNG (default: <out>.history.png)")
    parser.add_argument("--no-plot", action="store_true", help="skip the learning-curve PNG")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the initialisation")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1, help="Keras fit verbosity")
    parser.add_argument(
        "--distribute",
        choices=("mirrored", "multiworker", "jax-data-parallel"),
        help="train on every local device (mirrored), the hosts of TF_CONFIG (multiworker) or every JAX "
        "device (jax-data-parallel, with KERAS_BACKEND=jax); default: one device",
    )
    parser.add_argument(
        "--sync-batch-norm", action="store_true", help="synchronized BatchNorm across replicas (TensorFlow)"
    )
    parser.add_argument(
        "--backup-dir",
        metavar="DIR",
        help="checkpoint each epoch here; a killed run started again with the same options resumes",
    )
    parser.add_argument(
        "--cpu-replicas",
        type=common.positive_int,
        default=None,
        help="split the CPU into N logical devices (to try --distribute mirrored without GPUs)",
    )


def run(args) -> int:
    """Fine-tunes a named EfficientNet on a folder of class subfolders."""
    from keras_efficientnets import training

    model_variant = common.variant(args.model)
    common.output_path(args.out, "--out", (".keras",))
    if not 0 <= args.validation_split < 1:
        raise common.CommandError(
            f"--validation-split must be in [0, 1). Received: --validation-split {args.validation_split}"
        )
    from keras_efficientnets._common.images import MAX_IMAGE_SIZE
    from keras_efficientnets.weights.hub import input_size_for

    weights = None if args.weights.lower() == "none" else args.weights
    if weights is not None:
        common.check_weights(weights, others=", none")
    size = args.image_size or input_size_for(weights, model_variant.name)
    if not 32 <= size <= MAX_IMAGE_SIZE:
        raise common.CommandError(
            f"--image-size must be 32 to {MAX_IMAGE_SIZE}. Received: --image-size {size}"
        )
    if os.path.isdir(common.classes_path(args.out)):
        raise common.CommandError(
            f"{common.classes_path(args.out)} is a folder: the class names are written there. Move it."
        )
    default_curve = os.path.splitext(args.out)[0] + ".history.png"
    curve = None if args.no_plot else common.png_path(args.plot or default_curve, "--plot")
    require("PIL.Image", "Reading images")
    folder = training.split_image_folder(args.data_dir, args.validation_split, seed=args.seed)
    print(folder.describe())

    common.import_keras()
    training.check_distribution(args.distribute)
    if args.cpu_replicas:
        _split_the_cpu(args.cpu_replicas)
    base_rate = args.learning_rate or training.default_learning_rate(args.freeze_backbone)
    scope = "frozen backbone" if args.freeze_backbone else "all layers"
    print(
        f"Training {model_variant.constructor_name} ({scope}, weights={args.weights}) on "
        f"{len(folder.class_names)} classes at {size}x{size}, global batch {args.batch_size}, learning rate "
        f"{training.scaled_learning_rate(base_rate, args.batch_size):g} ({base_rate:g} per "
        f"{training.REFERENCE_BATCH} images, scaled linearly)"
    )
    run_ = training.train(
        folder,
        model=model_variant.name,
        weights=weights,
        epochs=args.epochs,
        batch_size=args.batch_size,
        image_size=size,
        freeze_backbone=args.freeze_backbone,
        learning_rate=base_rate,
        distribute=args.distribute,
        sync_batch_norm=args.sync_batch_norm,
        backup_dir=args.backup_dir,
        seed=args.seed,
        verbose=args.verbose,
    )
    print(f"Trained on {run_.replicas} replica(s).")
    if not run_.is_chief:
        print("Not the chief worker: the chief saves the model.")
        return 0
    _save(run_.model, args.out, run_.class_names, size, model_variant.name)
    if curve:
        plot_history(run_.history, curve)
        print(f"Wrote {curve}")
    print(f"Classify with: {common.PROG} predict IMAGE --weights {args.out}")
    return 0


def _split_the_cpu(replicas: int):
    """Splits the CPU into logical devices, so that --distribute mirrored has replicas without GPUs."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    except RuntimeError:
        raise common.CommandError(
            "--cpu-replicas must be set before TensorFlow starts its devices."
        ) from None


def _save(model, path, classes, size, variant_name):
    """The model and its class names, replaced together or not at all (Ctrl-C keeps the old pair)."""
    from keras_efficientnets._common.fileio import folder_beside, replace_together, write_json

    classes_file = common.classes_path(path)
    with folder_beside(path) as folder:
        model_file, names_file = folder / "model.keras", folder / "classes.json"
        model.save(model_file)
        write_json(
            names_file,
            {
                "format": common.CLASSES_FORMAT,
                "class_names": classes,
                "image_size": size,
                "model": variant_name,
            },
        )
        replace_together([(model_file, path), (names_file, classes_file)], folder)
    print(f"Wrote {path} and {classes_file} (classes: {', '.join(classes)})")


def plot_history(history: dict, path: str) -> None:
    """Loss and accuracy per epoch, training and validation."""
    drawing = common.figure(figsize=(10, 4), layout="constrained")
    for axis, metric in zip(drawing.subplots(1, 2), ("loss", "accuracy"), strict=True):
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            if key in history:
                epochs = range(1, len(history[key]) + 1)
                axis.plot(epochs, history[key], marker="o", label=label)
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    drawing.suptitle("Learning curves")
    common.save_figure(drawing, path)
