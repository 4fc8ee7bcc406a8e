"""``keras-efficientnets train``: fine-tune a named EfficientNet on a folder of class subfolders."""

from __future__ import annotations

import os

import keras_efficientnets.cli.common as common


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
    parser.add_argument("--model", default="b0", help="variant name (default: b0)")
    parser.add_argument(
        "--weights", default="imagenet", help="'imagenet' (default), 'none' (random) or a weights file"
    )
    parser.add_argument("--epochs", type=common.positive_int, default=5, help="default: 5")
    parser.add_argument("--batch-size", type=common.positive_int, default=32, help="default: 32")
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
        help="default: 1e-3 frozen, 1e-4 otherwise",
    )
    parser.add_argument("--out", default="model.keras", help="where to save the model (default: model.keras)")
    parser.add_argument("--plot", metavar="FILE", help="learning-curve PNG (default: <out>.history.png)")
    parser.add_argument("--no-plot", action="store_true", help="skip the learning-curve PNG")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the initialisation")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1, help="Keras fit verbosity")


def run(args) -> int:
    """Fine-tunes a named EfficientNet on a folder of class subfolders."""
    from keras_efficientnets import images, training

    model_variant = common.variant(args.model)
    common.output_path(args.out, "--out", (".keras",))
    if not 0 <= args.validation_split < 1:
        raise common.CommandError(
            f"--validation-split must be in [0, 1). Received: --validation-split {args.validation_split}"
        )
    size = args.image_size or model_variant.resolution
    if size < 32:
        raise common.CommandError(f"--image-size must be at least 32. Received: --image-size {size}")
    weights = None if args.weights.lower() == "none" else args.weights
    if weights not in (None, "imagenet") and not os.path.isfile(weights):
        raise common.CommandError(
            f"No weights file at {weights}. Pass --weights imagenet, none or an existing file."
        )
    default_curve = os.path.splitext(args.out)[0] + ".history.png"
    curve = None if args.no_plot else common.png_path(args.plot or default_curve, "--plot")
    common.require("PIL.Image")
    folder = training.split_image_folder(args.data_dir, args.validation_split, seed=args.seed)
    print(folder.describe())
    # Every image is decoded once now: a bad file fails here, by name, not an epoch in.
    images.check_images(folder.train_paths + folder.validation_paths)

    keras = common.import_keras()
    keras.utils.set_random_seed(args.seed)
    train_data, val_data = training.image_folder_datasets(folder, size, args.batch_size, seed=args.seed)
    augment = keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal"),
            keras.layers.RandomRotation(0.05),
            keras.layers.RandomZoom(0.1),
        ],
        name="augmentation",
    )
    # Augment in the input pipeline, so that the saved model holds only the network.
    train_data = train_data.map(lambda x, y: (augment(x, training=True), y))
    classes = folder.class_names
    model = _classifier(keras, model_variant, weights, size, len(classes), args.freeze_backbone)
    learning_rate = args.learning_rate or (1e-3 if args.freeze_backbone else 1e-4)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    scope = "frozen backbone" if args.freeze_backbone else "all layers"
    print(
        f"Training {model_variant.constructor_name} ({scope}, weights={args.weights}) on "
        f"{len(classes)} classes at {size}x{size}, learning rate {learning_rate:g}"
    )
    history = model.fit(train_data, validation_data=val_data, epochs=args.epochs, verbose=args.verbose)
    _save(model, args.out, classes, size, model_variant.name)
    if curve:
        plot_history(history.history, curve)
        print(f"Wrote {curve}")
    print(f"Classify with: {common.PROG} predict IMAGE --weights {args.out}")
    return 0


def _classifier(keras, model_variant, weights, size, classes, freeze_backbone):
    """The backbone with its ImageNet head replaced by one for `classes`."""
    from keras_efficientnets import model as model_lib

    base = getattr(model_lib, model_variant.constructor_name)(
        weights=weights, include_top=False, pooling="avg", input_shape=(size, size, 3)
    )
    base.trainable = not freeze_backbone
    inputs = keras.Input((size, size, 3), name="image")
    # BatchNorm stays in inference mode, as the Keras fine-tuning guide advises: small
    # batches of a new dataset would otherwise overwrite the pretrained statistics.
    x = base(inputs, training=False)
    x = keras.layers.Dropout(model_variant.dropout_rate, name="top_dropout")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"{base.name}_finetuned")


def _save(model, path, classes, size, variant_name):
    """The model and its class names, each written atomically (Ctrl-C keeps the old files)."""
    from keras_efficientnets.fileio import atomic_path, write_json

    with atomic_path(path, suffix=".keras") as temporary:
        model.save(temporary)
    classes_file = common.classes_path(path)
    write_json(
        classes_file,
        {"format": common.CLASSES_FORMAT, "class_names": classes, "image_size": size, "model": variant_name},
    )
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
