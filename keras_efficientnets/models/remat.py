"""Rematerialization: recompute each block's activations in the backward pass instead of storing them.

With ``remat=True`` each block's branch (expansion, depthwise, squeeze-excite,
projection) becomes a nested functional model that Keras rematerializes: only
the block's input is kept for the backward pass, and the expanded activations
inside (6x wider) are recomputed. The nested model is named after the block
(``block2a``) and holds the usual layers (``block2a_expand_conv``...), so
`model.get_layer` finds the blocks and a saved model is still made of built-in
Keras layers only. Drop connect and the residual add stay outside: a
recomputed Dropout would draw a different mask from the forward pass.
"""

from __future__ import annotations

import keras
from keras import layers

__all__ = ["copy_weights_from_twin", "leaf_layers", "rematerialized_branch"]


def rematerialized_branch(build_branch, inputs, block):
    """``build_branch(inputs, block)``'s layers as a nested model that Keras rematerializes."""
    branch_input = layers.Input(shape=inputs.shape[1:], name=f"{block.name}input")
    branch_output = build_branch(branch_input, block)
    # Only the nested model is created in the scope: its layers must not be
    # rematerialized one by one as well.
    with keras.RematScope(mode="full"):
        branch = keras.Model(branch_input, branch_output, name=block.name.rstrip("_"))
    branch.rematerialized_call = _remat_with_bound_keywords
    return branch(inputs)


def leaf_layers(model):
    """Every layer of `model`, with nested models replaced by their own layers."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from leaf_layers(layer)
        else:
            yield layer


def copy_weights_from_twin(plain, model) -> None:
    """Copies every weight of a model without remat into its rematerialized twin, by layer name.

    The weight loaders match top-level layer names, which the nested blocks of
    a remat model hide; loading goes into the plain twin, then across.
    """
    for layer in leaf_layers(model):
        if layer.weights:
            layer.set_weights(plain.get_layer(layer.name).get_weights())


def _remat_with_bound_keywords(call, *args, **kwargs):
    """`keras.remat` of a nested model's call, with its keyword arguments bound in a closure.

    Keras's own `RematScope(mode="full")` hands ``training=...`` to
    `keras.remat` as a keyword, which TensorFlow's graph-mode
    ``recompute_grad`` rejects and JAX's ``checkpoint`` turns into a traced
    value that BatchNormalization cannot branch on. Only tensors go through.

    Variable updates (BatchNormalization's moving statistics) are collected
    inside the rematerialized function and returned as outputs, then assigned
    outside it: once per step, although the backward pass runs the function
    again, and without a JAX tracer escaping ``checkpoint``.
    """

    def rematerialized(*call_args, **call_kwargs):
        variables = call.__self__.non_trainable_variables

        def run(*tensors):
            with _UpdateCollector() as collector:
                outputs = call(*tensors, **call_kwargs)
            return outputs, collector.updates(variables)

        outputs, updates = keras.remat(run)(*call_args)
        for variable in variables:
            if id(variable) in updates:
                variable.assign(updates[id(variable)])
        return outputs

    return rematerialized


class _UpdateCollector(keras.StatelessScope):
    """A StatelessScope that reads variables through the scope around it, if any.

    JAX's training step runs the whole model in a StatelessScope of traced
    values; a block must read those, not the variables' stored values.
    """

    def get_current_value(self, variable):
        value = super().get_current_value(variable)
        if value is None and self.original_scope is not None:
            return self.original_scope.get_current_value(variable)
        return value

    def updates(self, variables) -> dict:
        """The values assigned in this scope, by variable id."""
        return {id(v): self.state_mapping[id(v)] for v in variables if id(v) in self.state_mapping}
