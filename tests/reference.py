"""Reference numbers the tests check the library against, with their public sources.

Numbers only: each comes from outside this package, so a test comparing the
package with them can fail.
"""

# Keras count_params of every variant with 1000 classes, BatchNorm moving statistics
# included: (total with top, trainable with top, total with include_top=False); None
# where no public figure exists.
# - Totals of B0-B7: keras.applications (Keras 3.15) EfficientNetB0..B7(weights=None)
#   .count_params(), less the 7 weights of its input Normalization layer, which ours
#   replaces with a weightless Rescaling.
# - Trainable counts: the reference implementations pin them: tensorflow/tpu
#   models/official/efficientnet/lite/efficientnet_lite_builder_test.py (Lite0-4, as
#   "efficientnet-edge-b0..b4"), and the efficientnet_pytorch-style ports' documented
#   parameter counts for B0-B8 ("efficientnet-b8": 87,413,142).
# - B8 and L2: the tensorflow/tpu configurations (efficientnet_builder.py efficientnet_params:
#   width 2.2 / 4.3, depth 3.6 / 5.3) counted in the Keras convention, as gathered from
#   tensorflow/tpu, Keras and timm for the project's reference sheet.
REFERENCE_PARAMS = {
    "b0": (5_330_564, 5_288_548, 4_049_564),
    "b1": (7_856_232, 7_794_184, 6_575_232),
    "b2": (9_177_562, 9_109_994, 7_768_562),
    "b3": (12_320_528, 12_233_232, 10_783_528),
    "b4": (19_466_816, 19_341_616, 17_673_816),
    "b5": (30_562_520, 30_389_784, 28_513_520),
    "b6": (43_265_136, 43_040_704, 40_960_136),
    "b7": (66_658_680, 66_347_960, 64_097_680),
    "b8": (87_793_174, 87_413_142, None),
    "l2": (481_399_996, 480_309_308, None),
    "lite0": (4_694_024, 4_652_008, None),
    "lite1": (5_470_344, 5_416_680, None),
    "lite2": (6_150_168, 6_092_072, None),
    "lite3": (None, 8_197_096, None),
    "lite4": (None, 13_006_568, None),
}

# Multiply-adds in billions at the native resolution: timm's results tables (tf_
# variants, B0-B7) and the tensorflow/tpu EfficientNet-Lite README (Lite0-2).
REFERENCE_GMACS = {
    "b0": 0.40,
    "b1": 0.71,
    "b2": 1.02,
    "b3": 1.87,
    "b4": 4.49,
    "b5": 10.46,
    "b6": 19.4,
    "b7": 38.33,
    "lite0": 0.407,
    "lite1": 0.631,
    "lite2": 0.899,
}
# The paper's FLOPs of B0 (Tan & Le 2019, Table 2), which count convolutions and the classifier.
PAPER_B0_GMACS = 0.39

# Input normalization of the published weight sets, RGB in [0, 255] (the ImageNet
# statistics that torchvision and keras.applications use).
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

# The families beyond V1, 1000 classes, Keras count_params (BatchNorm moving statistics
# included): (total with top, total with include_top=False).
# - V2 B0-L: keras.applications (Keras 3.15) EfficientNetV2*(weights=None).count_params(),
#   with and without top (its V2 preprocessing holds no weights); the tests also compare
#   against keras.applications directly.
# - V2-XL (google/automl effnetv2_configs.py), EdgeTPU S/M/L and CondConv B0-4e/B0-8e/B1-8e
#   (tensorflow/tpu edgetpu/ and condconv/ builders): timm 1.0's tf_efficientnetv2_xl,
#   tf_efficientnet_es/em/el and tf_efficientnet_cc_* (parameters plus BatchNorm running mean
#   and variance); without top: that less the 1000-class Dense layer (head width x 1000 + 1000;
#   head 1280, 1536 for EdgeTPU-L).
FAMILY_PARAMS = {
    "v2b0": (7_200_312, 5_919_312),
    "v2b1": (8_212_124, 6_931_124),
    "v2b2": (10_178_374, 8_769_374),
    "v2b3": (14_467_622, 12_930_622),
    "v2s": (21_612_360, 20_331_360),
    "v2m": (54_431_388, 53_150_388),
    "v2l": (119_027_848, 117_746_848),
    "v2xl": (208_896_832, 207_615_832),
    "edgetpus": (5_489_832, 4_208_832),
    "edgetpum": (6_967_304, 5_686_304),
    "edgetpul": (10_681_920, 9_144_920),
    "condconvb04e": (13_356_132, 12_075_132),
    "condconvb08e": (24_055_300, 22_774_300),
    "condconvb18e": (39_778_016, 38_497_016),
}
