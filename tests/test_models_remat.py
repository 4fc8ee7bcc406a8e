"""remat=True: same outputs, gradients and BatchNorm updates as the plain model; saves as .keras."""

import keras
import numpy as np
import pytest
from helpers import assert_same_network_outputs, infer, random_images, randomize_weights

import keras_efficientnets as ke
from keras_efficientnets import BlockArgs, EfficientNet
from keras_efficientnets.models.remat import leaf_layers

pytestmark = pytest.mark.backends

STAGES = [
    BlockArgs(32, 16, kernel_size=3, strides=1, num_repeat=1, se_ratio=0.25, expand_ratio=1),
    BlockArgs(16, 24, kernel_size=3, strides=2, num_repeat=2, se_ratio=0.25, expand_ratio=6),
    BlockArgs(24, 24, kernel_size=5, strides=1, num_repeat=2, se_ratio=0.25, expand_ratio=6),
]


def small_model(remat, **kwargs):
    return EfficientNet((64, 64, 3), STAGES, 1.0, 1.0, classes=10, remat=remat, **kwargs)


def plain_and_remat_twins(**kwargs):
    """Two models of the same config and weights, without and with remat."""
    plain = randomize_weights(small_model(False, **kwargs))
    remat = small_model(True, **kwargs)
    for layer in leaf_layers(remat):
        if layer.weights:
            layer.set_weights(plain.get_layer(layer.name).get_weights())
    return plain, remat


def tf_training_step(model, x):
    """Loss, gradients and updated BatchNorm statistics of one traced (graph-mode) training step."""
    import tensorflow as tf

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True)))
        return loss, tape.gradient(loss, model.trainable_variables)

    loss, gradients = step()
    statistics = {v.path: v.numpy() for v in model.non_trainable_variables}
    return float(loss), [g.numpy() for g in gradients], statistics


def test_remat_keeps_weights_and_layer_names():
    plain, remat = plain_and_remat_twins()
    assert remat.count_params() == plain.count_params()
    weighted = sorted(layer.name for layer in leaf_layers(remat) if layer.weights)
    assert weighted == sorted(layer.name for layer in plain.layers if layer.weights)
    assert remat.get_layer("block2a").get_layer("block2a_expand_conv").kernel.shape == (1, 1, 16, 96)
    assert [v.path for v in remat.trainable_variables] == [v.path for v in plain.trainable_variables]


def test_remat_computes_the_same_outputs():
    plain, remat = plain_and_remat_twins()
    x = random_images(2, 64, seed=1)
    np.testing.assert_allclose(infer(remat, x), infer(plain, x), atol=1e-6, rtol=0)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="uses tf.GradientTape")
def test_remat_gives_the_same_gradients_and_batch_norm_updates():
    # Dropout and drop connect at 0: the forward pass in training mode is deterministic.
    plain, remat = plain_and_remat_twins(dropout_rate=0.0, drop_connect_rate=0.0, classifier_activation=None)
    x = random_images(4, 64, seed=2)
    loss, gradients, statistics = tf_training_step(plain, x)
    remat_loss, remat_gradients, remat_statistics = tf_training_step(remat, x)
    assert remat_loss == pytest.approx(loss, rel=1e-6)
    assert max(np.abs(g).max() for g in gradients) > 1e-3
    for expected, actual in zip(gradients, remat_gradients, strict=True):
        assert_same_network_outputs(actual, expected, floor=1e-5)
    # The backward pass recomputes each block; the moving statistics must move once, not twice.
    assert remat_statistics.keys() == statistics.keys()
    for path, expected in statistics.items():
        np.testing.assert_allclose(remat_statistics[path], expected, atol=1e-6, rtol=0, err_msg=path)


def test_remat_training_step_updates_the_same_weights_on_every_backend():
    # train_on_batch is each backend's own training step (tf.function, jax.jit, torch autograd).
    plain, remat = plain_and_remat_twins(dropout_rate=0.0, drop_connect_rate=0.0, classifier_activation=None)
    x = random_images(4, 64, seed=6)
    y = np.random.default_rng(6).normal(size=(4, 10)).astype("float32")
    before = plain.get_weights()
    losses = []
    for model in (plain, remat):
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
        losses.append(float(model.train_on_batch(x, y)))
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    after = plain.get_weights()
    remat_by_path = {v.path: keras.ops.convert_to_numpy(v) for v in remat.weights}
    remat_after = [remat_by_path[v.path] for v in plain.weights]
    assert max(np.abs(a - b).max() for a, b in zip(after, before, strict=True)) > 1e-4
    # Weights and BatchNorm moving statistics (updated once, not once more in the recomputation).
    for path, expected, actual in zip([v.path for v in plain.weights], after, remat_after, strict=True):
        assert_same_network_outputs(actual, expected, floor=1e-5, err_msg=path)


def test_remat_model_saves_and_reloads_without_this_package(tmp_path):
    _, remat = plain_and_remat_twins()
    remat.save(tmp_path / "remat.keras")
    # No custom_objects: the file holds built-in layers and nested functional models only.
    reloaded = keras.saving.load_model(tmp_path / "remat.keras")
    x = random_images(2, 64, seed=3)
    np.testing.assert_allclose(infer(reloaded, x), infer(remat, x), atol=1e-7, rtol=0)


def test_remat_loads_weights_files(tmp_path):
    plain = randomize_weights(small_model(False))
    plain.save_weights(tmp_path / "small.weights.h5")
    remat = small_model(True, weights=str(tmp_path / "small.weights.h5"))
    x = random_images(2, 64, seed=5)
    np.testing.assert_allclose(infer(remat, x), infer(plain, x), atol=1e-6, rtol=0)


def test_named_constructors_accept_remat():
    model = ke.EfficientNetLite0(weights=None, input_shape=(64, 64, 3), remat=True)
    assert model.get_layer("block7a").get_layer("block7a_project_conv") is not None


def test_remat_must_be_a_bool():
    with pytest.raises(TypeError, match=r"remat=1"):
        small_model(1)
