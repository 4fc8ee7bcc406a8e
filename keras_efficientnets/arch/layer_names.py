"""Names of the layers that code outside the builder looks up (weights, conversion, fine-tuning).

They are keras.applications' names, which its published weight files carry, so files move
between the two by name.
"""

CLASSIFIER = "predictions"
CLASSIFIER_DROPOUT = "top_dropout"
GLOBAL_POOL = "avg_pool"
STEM_CONV = "stem_conv"
HEAD_CONV = "top_conv"
