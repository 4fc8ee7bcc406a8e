"""Fine-tunes a pretrained EfficientNet-Lite0 on a folder of images, one subfolder per class.

The usual two steps of transfer learning with the Python API: first train a new
classifier on the frozen ImageNet backbone, then unfreeze everything and train
on at a small learning rate. Without DATA_DIR it makes a tiny synthetic folder
(reddish and bluish noise), so the script runs anywhere, offline.

    python examples/finetune_folder.py                      # synthetic data
    python examples/finetune_folder.py flowers/ --epochs 5  # your folder: flowers/roses/*.jpg, ...

The `keras-efficientnets train` command does the same with more options.
"""

import argparse
import os
import tempfile

import keras
import numpy as np
from PIL import Image

from keras_efficientnets import EfficientNetLite0, freeze_batch_norm


def make_synthetic_folder(root: str, per_class: int = 8, size: int = 48) -> str:
    """Writes `per_class` noisy PNGs for a 'red' and a 'blue' class under `root`."""
    rng = np.random.default_rng(0)
    for name, colour in (("red", (200, 40, 40)), ("blue", (40, 40, 200))):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i in range(per_class):
            pixels = np.clip(rng.normal(0, 40, (size, size, 3)) + colour, 0, 255).astype("uint8")
            Image.fromarray(pixels).save(os.path.join(root, name, f"{i}.png"))
    return root


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", help="folder of class subfolders (default: synthetic)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of each of the two steps")
    parser.add_argument("--image-size", type=int, default=224, help="input side in pixels")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--weights", default="imagenet", help="'imagenet' (offline for Lite0) or 'none'")
    parser.add_argument("--out", default=None, help="where to save the .keras model (default: not saved)")
    args = parser.parse_args()

    data_dir = args.data_dir or make_synthetic_folder(tempfile.mkdtemp(prefix="finetune_"))
    size = args.image_size
    train_data, val_data = keras.utils.image_dataset_from_directory(
        data_dir,
        image_size=(size, size),
        batch_size=args.batch_size,
        crop_to_aspect_ratio=True,
        validation_split=0.25,
        subset="both",
        seed=0,
    )
    classes = train_data.class_names

    # Images stay RGB in [0, 255]: the model normalizes them inside.
    weights = None if args.weights == "none" else args.weights
    base = EfficientNetLite0(weights=weights, include_top=False, pooling="avg", input_shape=(size, size, 3))
    inputs = keras.Input((size, size, 3))
    x = base(inputs, training=False)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(len(classes), activation="softmax")(x)
    model = keras.Model(inputs, outputs)

    # Step 1: only the new classifier learns.
    base.trainable = False
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(train_data, validation_data=val_data, epochs=args.epochs, verbose=2)

    # Step 2: everything learns, slowly, so the pretrained features are not destroyed; BatchNorm
    # keeps its ImageNet statistics (Keras 3's fit overrides the training=False above).
    base.trainable = True
    freeze_batch_norm(base)
    model.compile(keras.optimizers.Adam(1e-5), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(train_data, validation_data=val_data, epochs=args.epochs, verbose=2)

    print(f"classes: {classes}; final validation accuracy {history.history['val_accuracy'][-1]:.3f}")
    if args.out:
        model.save(args.out)
        print(f"saved {args.out}")


if __name__ == "__main__":
    main()
