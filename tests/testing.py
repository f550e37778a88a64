"""The shared test harness of tfpaint layers (STYLE.md, "Tests").

`run_layer_test` puts a layer through the checks every layer must pass: it
builds and calls it eagerly, symbolically (`keras.Input`), inside a
`tf.function` with an unknown batch size and under XLA, round trips its config
through JSON, saves and loads it inside a small `.keras` model with identical
outputs, checks that a simple loss sends non-zero gradients to every trainable
weight, and takes one `fit` step.

Layers with several tensor inputs, or inputs without a batch axis (a template
bank shared by the batch), are wrapped in `LayerModel`, a registered subclassed
model, so one path serves them all.
"""

import inspect
import json
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

SEED = 1234


def random_scenes(shape, num=4, seed=0):
    """`(num, *shape)` float32 images of uniform noise (AIR-like models' input)."""
    return np.random.default_rng(seed).uniform(size=(num, *shape)).astype(np.float32)


def force_presence(model, present):
    """Sets an AIR-like model's presence head so that every step's rho is
    about 1 (`present`) or 0."""
    model.pres_head.kernel.assign(tf.zeros_like(model.pres_head.kernel))
    model.pres_head.bias.assign([20.0 if present else -20.0])


def set_seeds(seed=SEED):
    """Seeds Python, NumPy, TensorFlow and Keras, for repeatable tests."""
    keras.utils.set_random_seed(seed)


def constructor_arguments(cls):
    """Names of the arguments of `cls.__init__` and of its tfpaint base classes.

    `self`, `*args` and `**kwargs` are left out; base classes from Keras itself
    are not visited (their arguments, `name`, `dtype`, ..., are Keras' concern).
    """
    names = []
    for klass in cls.__mro__:
        if klass.__module__.startswith(("keras", "tensorflow", "builtins")):
            break
        if "__init__" not in vars(klass):
            continue
        for param in inspect.signature(klass.__init__).parameters.values():
            if param.name == "self" or param.kind in (
                inspect.Parameter.VAR_POSITIONAL,
                inspect.Parameter.VAR_KEYWORD,
            ):
                continue
            if param.name not in names:
                names.append(param.name)
    return names


def _json(value):
    return json.loads(json.dumps(value))


def assert_config_round_trip(test_case, obj):
    """`from_config(json(get_config()))` gives the same config, and the config
    names every constructor argument (keras-hub once shipped a layer whose
    config dropped one)."""
    config = obj.get_config()
    missing = [a for a in constructor_arguments(type(obj)) if a not in config]
    test_case.assertEqual(
        missing, [], f"{type(obj).__name__}.get_config() lacks constructor arguments"
    )
    revived = type(obj).from_config(_json(config))
    test_case.assertEqual(_json(revived.get_config()), _json(config))
    return revived


def _flatten(outputs):
    return [t for t in tf.nest.flatten(outputs) if tf.as_dtype(t.dtype).is_floating]


def _shapes(outputs):
    return tf.nest.map_structure(lambda t: tuple(t.shape), outputs)


def assert_nested_close(test_case, actual, expected, atol=1e-5, rtol=1e-5):
    tf.nest.assert_same_structure(actual, expected)
    for a, e in zip(tf.nest.flatten(actual), tf.nest.flatten(expected)):
        test_case.assertAllClose(a, e, atol=atol, rtol=rtol)


def projection_loss(outputs, seed=SEED):
    """`sum_i <out_i, r_i>` with fixed random `r_i`: a loss with no symmetry
    that could cancel a weight's gradient by accident."""
    rng = np.random.default_rng(seed)
    loss = 0.0
    for out in _flatten(outputs):
        r = rng.uniform(-1.0, 1.0, size=out.shape).astype(tf.as_dtype(out.dtype).as_numpy_dtype)
        loss += tf.reduce_sum(out * r)
    return loss


def assert_gradients_reach_weights(test_case, variables, grads):
    """Each trainable weight gets a finite, not all zero gradient."""
    test_case.assertNotEmpty(variables)
    for var, grad in zip(variables, grads):
        test_case.assertIsNotNone(grad, f"no gradient for {var.path}")
        grad = tf.convert_to_tensor(grad)
        test_case.assertTrue(np.all(np.isfinite(grad)), f"non-finite gradient: {var.path}")
        test_case.assertGreater(
            float(tf.reduce_max(tf.abs(grad))), 0.0, f"zero gradient for {var.path}"
        )


def save_and_load(model, directory=None):
    """Saves `model` to a `.keras` file and loads it back."""
    directory = directory or tempfile.mkdtemp()
    path = os.path.join(directory, "model.keras")
    model.save(path)
    return keras.saving.load_model(path)


@keras.saving.register_keras_serializable(package="tfpaint_tests")
class LayerModel(keras.Model):
    """A model that calls one layer, for saving layers of any call signature.

    Called on `{"args": [...], "kwargs": {...}}`: the tensors passed
    positionally and by keyword; `static_kwargs` (JSON values such as
    `training`) are stored in the config. Loading rebuilds the layer from its
    registered name and config, then calls the model once on zeros of the
    stored shapes so every weight exists before Keras restores it.
    """

    def __init__(self, layer, static_kwargs=None, input_shapes=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(layer, dict):
            layer_cls = keras.saving.get_registered_object(layer["registered_name"])
            layer = layer_cls.from_config(layer["config"])
        self.layer = layer
        self.static_kwargs = dict(static_kwargs or {})
        self.input_shapes = input_shapes

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "layer": {
                    "registered_name": keras.saving.get_registered_name(type(self.layer)),
                    "config": self.layer.get_config(),
                },
                "static_kwargs": self.static_kwargs,
                "input_shapes": self.input_shapes,
            }
        )
        return config

    def call(self, inputs):
        return self.layer(*inputs["args"], **inputs["kwargs"], **self.static_kwargs)

    def get_build_config(self):
        return {"input_shapes": self.input_shapes}

    def build_from_config(self, config):
        shapes = config["input_shapes"]
        self(
            {
                "args": [tf.zeros(s) for s in shapes["args"]],
                "kwargs": {k: tf.zeros(s) for k, s in shapes["kwargs"].items()},
            }
        )


def run_layer_test(
    test_case,
    layer_cls,
    init_kwargs,
    call_args,
    call_kwargs=None,
    expected_output_shape=None,
    expected_num_trainable_weights=None,
    batch_size=None,
    run_symbolic=True,
    run_xla=True,
    run_saving=True,
    run_gradients=None,
    run_fit=None,
    atol=1e-5,
):
    """Runs the checks every tfpaint layer must pass; returns the eager output.

    Args:
        test_case: the `tf.test.TestCase`.
        layer_cls: the layer class.
        init_kwargs: constructor arguments.
        call_args: tuple of NumPy arrays passed positionally.
        call_kwargs: dict passed by keyword; NumPy arrays are tensor inputs,
            other values (`training`) are passed as they are.
        expected_output_shape: the output's shape, or a structure (dict,
            tuple) of shapes matching the output's.
        expected_num_trainable_weights: checked if given.
        batch_size: the batch size; inputs whose first axis has this size get
            an unknown batch axis in the symbolic and `tf.function` checks.
            Defaults to the first axis of the first argument.
        run_symbolic: build on `keras.Input`s and compare output shapes.
        run_xla: also call inside `tf.function(jit_compile=True)`.
        run_saving: `.keras` save/load round trip.
        run_gradients: gradient check (default: if there are trainable weights).
        run_fit: one `fit` step (default: if there are trainable weights and
            every input is batched).
        atol: tolerance of the traced/XLA/loaded outputs against eager ones.
    """
    call_args = tuple(np.asarray(a) for a in call_args)
    call_kwargs = dict(call_kwargs or {})
    tensor_kwargs = {k: v for k, v in call_kwargs.items() if isinstance(v, np.ndarray)}
    static_kwargs = {k: v for k, v in call_kwargs.items() if k not in tensor_kwargs}
    if batch_size is None:
        batch_size = call_args[0].shape[0]
    arrays = list(call_args) + list(tensor_kwargs.values())
    batched = [a.ndim > 0 and a.shape[0] == batch_size for a in arrays]

    def call(layer, args, kwargs):
        return layer(*args, **kwargs, **static_kwargs)

    # Config round trip first: a layer that cannot be rebuilt fails early.
    layer = layer_cls(**init_kwargs)
    assert_config_round_trip(test_case, layer)

    # Eager build and call.
    outputs = call(layer, call_args, tensor_kwargs)
    if expected_output_shape is not None:
        test_case.assertEqual(_shapes(outputs), expected_output_shape)
    if expected_num_trainable_weights is not None:
        test_case.assertLen(layer.trainable_weights, expected_num_trainable_weights)
    for out in _flatten(outputs):
        test_case.assertTrue(np.all(np.isfinite(out)), "non-finite output")
    # A second call reuses the weights and gives the same answer.
    assert_nested_close(test_case, call(layer, call_args, tensor_kwargs), outputs, atol=atol)

    # Symbolic build on keras.Input: a fresh layer, batch axes unknown.
    if run_symbolic:
        inputs = [
            keras.Input(batch_shape=(None,) + a.shape[1:] if b else a.shape)
            for a, b in zip(arrays, batched)
        ]
        sym_args = inputs[: len(call_args)]
        sym_kwargs = dict(zip(tensor_kwargs, inputs[len(call_args):]))
        symbolic = call(layer_cls(**init_kwargs), sym_args, sym_kwargs)
        expected_symbolic = tf.nest.map_structure(
            lambda t: (None,) + tuple(t.shape[1:]) if t.shape[0] == batch_size else tuple(t.shape),
            outputs,
        )
        test_case.assertEqual(
            tf.nest.map_structure(lambda t: tuple(t.shape), symbolic), expected_symbolic
        )

    # tf.function with an unknown batch axis, then XLA.
    signature = [
        tf.TensorSpec((None,) + a.shape[1:] if b else a.shape, tf.as_dtype(a.dtype))
        for a, b in zip(arrays, batched)
    ]
    num_args = len(call_args)
    kwarg_names = list(tensor_kwargs)

    def flat_call(*flat):
        return call(layer, flat[:num_args], dict(zip(kwarg_names, flat[num_args:])))

    traced = tf.function(flat_call, input_signature=signature)
    assert_nested_close(test_case, traced(*arrays), outputs, atol=atol)
    if run_xla:
        compiled = tf.function(flat_call, jit_compile=True)
        assert_nested_close(test_case, compiled(*arrays), outputs, atol=atol)

    # .keras save/load inside a model, identical outputs.
    model_inputs = {"args": list(call_args), "kwargs": dict(tensor_kwargs)}
    if run_saving:
        model = LayerModel(
            layer,
            static_kwargs=static_kwargs,
            input_shapes={
                "args": [list(a.shape) for a in call_args],
                "kwargs": {k: list(v.shape) for k, v in tensor_kwargs.items()},
            },
        )
        before = model(model_inputs)
        with tempfile.TemporaryDirectory() as directory:
            loaded = save_and_load(model, directory)
        test_case.assertIsInstance(loaded.layer, layer_cls)
        assert_nested_close(test_case, loaded(model_inputs), before, atol=0.0, rtol=0.0)

    has_weights = bool(layer.trainable_weights)
    if run_gradients is None:
        run_gradients = has_weights
    if run_gradients:
        with tf.GradientTape() as tape:
            loss = projection_loss(call(layer, call_args, tensor_kwargs))
        grads = tape.gradient(loss, layer.trainable_weights)
        assert_gradients_reach_weights(test_case, layer.trainable_weights, grads)

    if run_fit is None:
        run_fit = has_weights and all(batched)
    if run_fit:
        _fit_one_step(test_case, layer_cls(**init_kwargs), call_args, tensor_kwargs, static_kwargs)
    return outputs


def _fit_one_step(test_case, layer, call_args, tensor_kwargs, static_kwargs):
    """One `Model.fit` step on the layer's outputs moves its weights."""
    args = [keras.Input(batch_shape=(None,) + a.shape[1:]) for a in call_args]
    kwargs = {k: keras.Input(batch_shape=(None,) + v.shape[1:]) for k, v in tensor_kwargs.items()}
    outputs = _flatten(layer(*args, **kwargs, **static_kwargs))
    # Every output, flattened and concatenated, fits a constant target.
    flat = [keras.layers.Flatten()(o) for o in outputs]
    joined = flat[0] if len(flat) == 1 else keras.layers.Concatenate()(flat)
    model = keras.Model(args + list(kwargs.values()), joined)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    layer_weights = layer.trainable_weights
    before = [w.numpy() for w in layer_weights]
    target = np.full((call_args[0].shape[0], joined.shape[1]), 0.5, np.float32)
    history = model.fit(
        list(call_args) + list(tensor_kwargs.values()),
        target,
        batch_size=call_args[0].shape[0],
        epochs=1,
        verbose=0,
    )
    test_case.assertTrue(np.isfinite(history.history["loss"][0]))
    changed = [not np.allclose(b, w.numpy()) for b, w in zip(before, layer_weights)]
    test_case.assertTrue(any(changed), "one fit step changed no weight")
