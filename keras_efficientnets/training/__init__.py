"""Training on a folder of images, on one device or many.

- `data`: the folder of class subfolders, its reproducible split and its ``tf.data`` pipeline;
- `finetune`: `train` with the fine-tuning recipe, its classifier and learning rates;
- `distribution`: one device, ``tf.distribute`` strategies or JAX's ``DataParallel``;
- `backup`: a killed run's backup folder, resumed only by the run that wrote it.

Every name is importable from here, as from the ``keras_efficientnets.training`` module of
earlier releases. Keras and TensorFlow load inside the functions that need them.
"""

from keras_efficientnets.training.data import (
    ImageFolder,
    image_dataset,
    image_folder_datasets,
    split_image_folder,
)
from keras_efficientnets.training.distribution import DISTRIBUTIONS, check_distribution
from keras_efficientnets.training.finetune import (
    REFERENCE_BATCH,
    TrainingRun,
    default_learning_rate,
    fine_tuning_classifier,
    freeze_batch_norm,
    scaled_learning_rate,
    train,
)

__all__ = [
    "DISTRIBUTIONS",
    "REFERENCE_BATCH",
    "ImageFolder",
    "TrainingRun",
    "check_distribution",
    "default_learning_rate",
    "fine_tuning_classifier",
    "freeze_batch_norm",
    "image_dataset",
    "image_folder_datasets",
    "scaled_learning_rate",
    "split_image_folder",
    "train",
]
