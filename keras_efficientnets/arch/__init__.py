"""The architectures as data, Keras-free (NumPy at most): `BlockArgs` and block strings
(`block_args`), the families and named variants (`variants`), compound scaling into the exact
layout the builder makes (`scaling`), multiply-adds and parameters counted from that layout
(`flops`), the feature pyramid's levels (`feature_levels`), input normalization and ImageNet
labels (`preprocessing`)."""
