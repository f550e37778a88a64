"""Tests for tfpaint.models.painter: the simple, convolutional and recurrent Painters."""

import tempfile

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from tests import testing
from tfpaint.models import painter

_GRAY = (12, 12, 1)
_RGB = (12, 12, 3)
_COMMON = dict(template_size=8, initial_scale=1.5, seed=1)

# name, class, constructor arguments.
_VARIANTS = (
    ("simple", painter.SimplePainter, dict(num_moves=3, image_shape=_GRAY, hidden_units=16)),
    (
        "conv",
        painter.ConvPainter,
        dict(num_moves=3, image_shape=_GRAY, conv_filters=(4, 2), conv_kernel_size=3),
    ),
    ("recurrent", painter.RecurrentPainter, dict(num_moves=3, image_shape=_GRAY, lstm_units=16)),
    (
        "canvas_recurrent",
        painter.RecurrentPainter,
        dict(num_moves=3, image_shape=_GRAY, lstm_units=16, canvas_feedback=True),
    ),
    (
        "sorter",
        painter.SimplePainter,
        dict(num_moves=2, image_shape=_GRAY, hidden_units=16, sorter=True),
    ),
    (
        "depth_sorter",
        painter.SimplePainter,
        dict(num_moves=3, image_shape=_GRAY, hidden_units=16, depth_sorter=True,
             depth_temperature=0.5),
    ),
    (
        "variational",
        painter.SimplePainter,
        dict(num_moves=3, image_shape=_GRAY, hidden_units=16, latent="variational", latent_units=8),
    ),
    (
        "denoising",
        painter.SimplePainter,
        dict(num_moves=3, image_shape=_GRAY, hidden_units=16, latent="denoising", latent_units=8),
    ),
    (
        "custom_latent",
        painter.SimplePainter,
        dict(
            num_moves=2,
            image_shape=_GRAY,
            hidden_units=16,
            latent="custom",
            latent_units=8,
            latent_stochastic=False,
            latent_sigma=0.2,
            latent_cost="mu",
            input_noise=0.1,
        ),
    ),
    (
        "additive",
        painter.SimplePainter,
        dict(num_moves=3, image_shape=_GRAY, hidden_units=16, canvas="additive"),
    ),
    (
        "rgb",
        painter.SimplePainter,
        dict(
            num_moves=3,
            image_shape=_RGB,
            hidden_units=16,
            templates=("circle", "square"),
            allow_skew=True,
            learnable_templates=True,
            exploration_noise=0.1,
        ),
    ),
    (
        "recurrent_additive_rgb",
        painter.RecurrentPainter,
        dict(
            num_moves=3,
            image_shape=_RGB,
            lstm_units=16,
            canvas_feedback=True,
            canvas="additive",
            templates=("circle", "square", "line"),
        ),
    ),
)

_BASE_KEYS = {
    "canvas", "canvases", "where", "what", "which", "which_logits", "masks", "latent_cost"
}


def make(cls, kwargs):
    return cls(**_COMMON, **kwargs)


def expected_keys(kwargs):
    keys = set(_BASE_KEYS)
    if kwargs.get("latent"):
        keys |= {"mu", "sigma"}
    if kwargs.get("sorter"):
        keys |= {"order", "unsorted_canvas"}
    if kwargs.get("depth_sorter"):
        keys |= {"depth", "paint_order"}
    return keys


def two_rectangles(num, size, seed):
    """Two rectangles (gray 0.5, then white over it) on black, `(num, size, size, 1)`."""
    rng = np.random.default_rng(seed)
    images = np.zeros((num, size, size, 1), np.float32)
    for image in images:
        for color in (0.5, 1.0):
            h, w = rng.integers(3, size // 2 + 1, size=2)
            y, x = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
            image[y : y + h, x : x + w] = color
    return images


class PainterTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        testing.set_seeds()
        self.rng = np.random.default_rng(0)

    def images(self, shape, batch=4):
        return self.rng.uniform(size=(batch, *shape)).astype(np.float32)

    @parameterized.named_parameters(*_VARIANTS)
    def test_output_keys_and_shapes(self, cls, kwargs):
        model = make(cls, kwargs)
        h, w, c = kwargs["image_shape"]
        t = kwargs["num_moves"]
        k = len(kwargs.get("templates", ("square",)))
        out = model(self.images((h, w, c)))
        self.assertEqual(set(out), expected_keys(kwargs))
        shapes = {key: tuple(value.shape) for key, value in out.items()}
        self.assertEqual(shapes["canvas"], (4, h, w, c))
        self.assertEqual(shapes["canvases"], (4, t, h, w, c))
        self.assertEqual(shapes["where"], (4, t, 6))
        self.assertEqual(shapes["what"], (4, t, c))
        self.assertEqual(shapes["which"], (4, t, k))
        self.assertEqual(shapes["which_logits"], (4, t, k))
        self.assertEqual(shapes["masks"], (4, t, h, w, 1))
        self.assertEqual(shapes["latent_cost"], (4,))
        if kwargs.get("latent"):
            units = kwargs["latent_units"]
            self.assertEqual(shapes["mu"], (4, units))
            self.assertEqual(shapes["sigma"], (4, units))
        if kwargs.get("sorter"):
            self.assertEqual(shapes["order"], (4, 2))
            self.assertEqual(shapes["unsorted_canvas"], (4, h, w, c))
        if kwargs.get("depth_sorter"):
            # Moves come bottom to top; the loss' canvas is the soft composite of them.
            self.assertEqual(shapes["depth"], (4, t))
            self.assertAllEqual(np.sort(out["paint_order"], -1), np.tile(np.arange(t), (4, 1)))
            self.assertTrue(np.all(np.diff(out["depth"], axis=-1) >= 0))
            composite = model.depth_sorter.composite(out["masks"], out["what"], out["depth"])
            self.assertAllClose(out["canvas"], composite, atol=1e-6)
        else:
            self.assertAllEqual(out["canvas"], out["canvases"][:, -1])
        self.assertAllClose(tf.reduce_sum(out["which"], -1), np.ones((4, t)), atol=1e-6)
        for value in out.values():
            self.assertTrue(np.all(np.isfinite(value)))
        if not kwargs.get("allow_skew"):
            self.assertAllEqual(out["where"][..., 1], np.zeros((4, t)))
            self.assertAllEqual(out["where"][..., 3], np.zeros((4, t)))

    @parameterized.named_parameters(*_VARIANTS)
    def test_config_round_trip(self, cls, kwargs):
        model = make(cls, kwargs)
        revived = testing.assert_config_round_trip(self, model)
        self.assertIsInstance(revived, cls)
        self.assertEqual(
            [tuple(w.shape) for w in revived.weights], [tuple(w.shape) for w in model.weights]
        )

    @parameterized.named_parameters(*_VARIANTS)
    def test_gradients_reach_every_weight(self, cls, kwargs):
        model = make(cls, kwargs)
        images = self.images(kwargs["image_shape"])
        with tf.GradientTape() as tape:
            out = model(images, training=True)
            loss = tf.reduce_mean(tf.square(out["canvas"] - images))
            loss += tf.reduce_mean(out["latent_cost"])
        grads = tape.gradient(loss, model.trainable_weights)
        testing.assert_gradients_reach_weights(self, model.trainable_weights, grads)

    @parameterized.named_parameters(*_VARIANTS)
    def test_save_load_round_trip(self, cls, kwargs):
        model = make(cls, kwargs)
        images = self.images(kwargs["image_shape"])
        # One training step first, so the loaded weights are not the seeded ones.
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(images, training=True)["canvas"] - images))
        grads = tape.gradient(loss, model.trainable_weights)
        keras.optimizers.Adam(0.01).apply_gradients(zip(grads, model.trainable_weights))
        before = model(images)
        with tempfile.TemporaryDirectory() as directory:
            loaded = testing.save_and_load(model, directory)
        self.assertIsInstance(loaded, cls)
        after = loaded(images)
        self.assertEqual(set(after), set(before))
        for key in before:
            self.assertAllEqual(after[key], before[key], msg=key)

    @parameterized.named_parameters(*_VARIANTS)
    def test_unknown_batch_in_tf_function(self, cls, kwargs):
        model = make(cls, kwargs)
        shape = kwargs["image_shape"]

        @tf.function(input_signature=[tf.TensorSpec([None, *shape], tf.float32)])
        def paint(images):
            out = model(images)
            self.assertEqual(out["canvases"].shape.as_list(), [None, kwargs["num_moves"], *shape])
            return out

        for batch in (1, 3):
            images = self.images(shape, batch)
            expected = model(images)
            out = paint(images)
            for key in expected:
                self.assertAllClose(out[key], expected[key], atol=1e-5, msg=key)

    @parameterized.named_parameters(*_VARIANTS)
    def test_render_reproduces_canvases(self, cls, kwargs):
        model = make(cls, kwargs)
        out = model(self.images(kwargs["image_shape"]))
        canvases = model.render(out["where"], out["what"], out["which"])
        if kwargs.get("sorter"):
            # The sorter recolours the last canvas after the moves are painted.
            self.assertAllClose(canvases[:, :-1], out["canvases"][:, :-1], atol=1e-5)
            self.assertAllClose(canvases[:, -1], out["unsorted_canvas"], atol=1e-5)
        else:
            self.assertAllClose(canvases, out["canvases"], atol=1e-5)

    # Checked inputs of render ------------------------------------------------

    def model_and_moves(self, cls=painter.SimplePainter, canvas="over"):
        kwargs = dict(num_moves=3, image_shape=_GRAY, templates=("circle", "square"),
                      canvas=canvas)
        if cls is painter.RecurrentPainter:
            kwargs["lstm_units"] = 16
        else:
            kwargs["hidden_units"] = 16
        model = make(cls, kwargs)
        out = model(self.images(_GRAY, batch=2))
        return model, {k: out[k].numpy() for k in ("where", "what", "which", "canvases")}

    @parameterized.named_parameters(
        ("where_batch_of_one", painter.SimplePainter,
         lambda m: (m["where"][:1], m["what"], m["which"]),
         r"`where`, `what` and `which` must have the same batch size. Received: "
         r"where.shape=\(1, 3, 6\), what.shape=\(2, 3, 1\), which.shape=\(2, 3, 2\)"),
        ("what_batch_of_one", painter.SimplePainter,
         lambda m: (m["where"], m["what"][:1], m["which"]),
         r"`where`, `what` and `which` must have the same batch size.*what.shape=\(1, 3, 1\)"),
        ("which_batch_of_one", painter.RecurrentPainter,
         lambda m: (m["where"], m["what"], m["which"][:1]),
         "`where`, `what` and `which` must have the same batch size"),
        ("moves", painter.SimplePainter,
         lambda m: (m["where"][:, :2], m["what"][:, :2], m["which"][:, :2]),
         r"`where` must have shape \(batch, 3, 6\) \(T = num_moves = 3, C = channels = 1, "
         r"K = 2 templates\). Received: where.shape=\(2, 2, 6\)"),
        ("recurrent_moves", painter.RecurrentPainter,
         lambda m: (m["where"][:, :1], m["what"][:, :1], m["which"][:, :1]),
         r"`where` must have shape \(batch, 3, 6\) \(T = num_moves = 3"),
        ("channels", painter.SimplePainter,
         lambda m: (m["where"], np.tile(m["what"], (1, 1, 3)), m["which"]),
         r"`what` must have shape \(batch, 3, 1\).*what.shape=\(2, 3, 3\)"),
        ("templates", painter.SimplePainter,
         lambda m: (m["where"], m["what"], m["which"][..., :1]),
         r"`which` must have shape \(batch, 3, 2\).*which.shape=\(2, 3, 1\)"),
        ("where_rank", painter.SimplePainter,
         lambda m: (m["where"][0], m["what"], m["which"]),
         r"`where` must have shape \(batch, 3, 6\).*where.shape=\(3, 6\)"),
    )
    def test_render_rejects_bad_shapes(self, cls, corrupt, message):
        model, moves = self.model_and_moves(cls)
        with self.assertRaisesRegex(ValueError, message):
            model.render(*corrupt(moves))

    @parameterized.named_parameters(
        ("negative_which", "over", "which", -0.5,
         r"`which` values must be finite and in \[0, 1\]. Received: 1 of 12 values are not, "
         r"e.g. which\[1, 2, 0\]=-0.5"),
        ("which_above_one", "over", "which", 1.25,
         r"`which` values must be finite and in \[0, 1\]"),
        ("nan_which", "additive", "which", np.nan, r"`which` values must be finite and in"),
        ("what_above_one", "over", "what", 1.5,
         r"`what` values must be finite and in \[0, 1\].*what\[1, 2, 0\]=1.5"),
        ("negative_what", "over", "what", -0.1, r"`what` values must be finite and in \[0, 1\]"),
        ("nan_what_additive", "additive", "what", np.nan, r"`what` values must be finite\."),
        ("inf_what_additive", "additive", "what", np.inf, r"`what` values must be finite\."),
        ("nan_where", "over", "where", np.nan, r"`where` values must be finite\..*1 of 36"),
    )
    def test_render_rejects_bad_values_eagerly(self, canvas, name, value, message):
        model, moves = self.model_and_moves(canvas=canvas)
        moves[name][1, 2, 0] = value
        with self.assertRaisesRegex(ValueError, message):
            model.render(moves["where"], moves["what"], moves["which"])

    def test_render_takes_unbounded_colours_on_additive_canvas(self):
        # Additive-canvas colours are logits: any finite value is a colour.
        model, moves = self.model_and_moves(canvas="additive")
        strong = model.render(moves["where"], moves["what"] * 0.0 + 8.0, moves["which"])
        weak = model.render(moves["where"], moves["what"] * 0.0 - 8.0, moves["which"])
        self.assertTrue(np.all(np.isfinite(strong)))
        self.assertGreater(float(tf.reduce_max(strong - weak)), 0.5)

    @parameterized.named_parameters(
        ("simple", painter.SimplePainter, False),
        ("recurrent", painter.RecurrentPainter, False),
        ("simple_xla", painter.SimplePainter, True),
    )
    def test_render_in_tf_function_checks_batch(self, cls, jit):
        model, moves = self.model_and_moves(cls)
        render = tf.function(
            model.render,
            input_signature=[
                tf.TensorSpec([None, 3, 6], tf.float32),
                tf.TensorSpec([None, 3, 1], tf.float32),
                tf.TensorSpec([None, 3, 2], tf.float32),
            ],
            jit_compile=jit,
        )
        canvases = render(moves["where"], moves["what"], moves["which"])
        self.assertAllClose(canvases, moves["canvases"], atol=1e-5)
        if jit:
            return  # XLA drops asserts; the SavedModel checks before compiling.
        with self.assertRaisesRegex(
            tf.errors.InvalidArgumentError,
            "`where`, `what` and `which` must have the same batch size: `what` differs",
        ):
            render(moves["where"], moves["what"][:1], moves["which"])

    def test_render_in_tf_function_checks_unknown_moves(self):
        model, moves = self.model_and_moves()
        render = tf.function(
            model.render,
            input_signature=[tf.TensorSpec([None, None, None], tf.float32)] * 2
            + [tf.TensorSpec([None, None, 2], tf.float32)],
        )
        self.assertAllClose(
            render(moves["where"], moves["what"], moves["which"]), moves["canvases"], atol=1e-5
        )
        with self.assertRaisesRegex(
            tf.errors.InvalidArgumentError, r"`where` must have shape \(batch, 3, 6\)"
        ):
            render(moves["where"][:, :2], moves["what"], moves["which"])

    def test_render_graph_has_no_value_checks(self):
        model, _ = self.model_and_moves()
        render = tf.function(model.render).get_concrete_function(
            tf.TensorSpec([None, 3, 6], tf.float32),
            tf.TensorSpec([None, 3, 1], tf.float32),
            tf.TensorSpec([None, 3, 2], tf.float32),
        )
        types = {op.type for op in render.graph.get_operations()}
        self.assertNotIn("IsFinite", types)
        self.assertNotIn("GreaterEqual", types)

    # Empty batches -----------------------------------------------------------

    # Not "conv": TF's Conv2D kernel returns its input unchanged for a batch of
    # 0 ((0, 12, 12, 1) for (0, 6, 6, 4)), so the conv encoder's bias add fails.
    @parameterized.named_parameters(*(v for v in _VARIANTS if v[0] != "conv"))
    def test_empty_batch(self, cls, kwargs):
        model = make(cls, kwargs)
        shape = kwargs["image_shape"]
        expected = model(self.images(shape, batch=2))
        empty = np.zeros((0, *shape), np.float32)
        traced = tf.function(model, input_signature=[tf.TensorSpec([None, *shape], tf.float32)])
        for mode, out in (("eager", model(empty)), ("tf.function", traced(empty))):
            self.assertEqual(set(out), set(expected), mode)
            for key, value in expected.items():
                self.assertEqual(tuple(out[key].shape), (0, *value.shape[1:]), f"{mode}: {key}")
                self.assertEqual(out[key].dtype, value.dtype, f"{mode}: {key}")
        canvases = model.render(*(out[k] for k in ("where", "what", "which")))
        self.assertEqual(tuple(canvases.shape), (0, kwargs["num_moves"], *shape))

    @parameterized.named_parameters(
        ("simple", painter.SimplePainter, dict(hidden_units=16)),
        ("recurrent", painter.RecurrentPainter, dict(lstm_units=16)),
        ("canvas_recurrent", painter.RecurrentPainter, dict(lstm_units=16, canvas_feedback=True)),
    )
    def test_empty_batch_training_step_and_xla(self, cls, kwargs):
        model = make(cls, dict(num_moves=2, image_shape=_GRAY, **kwargs))
        empty = np.zeros((0, *_GRAY), np.float32)
        with tf.GradientTape() as tape:
            out = model(empty, training=True)
            loss = tf.reduce_sum(out["canvas"]) + tf.reduce_sum(out["latent_cost"])
        grads = tape.gradient(loss, model.trainable_weights)
        # Zero gradients, not missing ones: an optimizer step is a no-op.
        for weight, grad in zip(model.trainable_weights, grads):
            self.assertIsNotNone(grad, weight.path)
            self.assertAllEqual(tf.convert_to_tensor(grad), np.zeros(weight.shape), weight.path)
        compiled = tf.function(model, jit_compile=True)(empty)
        self.assertEqual(tuple(compiled["canvases"].shape), (0, 2, *_GRAY))

    @parameterized.named_parameters(*_VARIANTS)
    def test_bad_image_shape_raises(self, cls, kwargs):
        model = make(cls, kwargs)
        h, w, c = kwargs["image_shape"]
        message = rf"Expected images of shape \(batch, {h}, {w}, {c}\).*\(2, 10, 12, {c}\)"
        with self.assertRaisesRegex(ValueError, message):
            model(np.zeros((2, 10, 12, c), np.float32))
        with self.assertRaisesRegex(ValueError, "Expected images of shape"):
            model(np.zeros((2, h, w), np.float32))

    def test_inference_is_deterministic_and_training_noisy(self):
        model = make(
            painter.SimplePainter,
            dict(
                num_moves=2,
                image_shape=_GRAY,
                hidden_units=16,
                latent="denoising",
                latent_units=8,
                templates=("circle", "square"),
                exploration_noise=0.5,
            ),
        )
        images = self.images(_GRAY)
        first, second = model(images), model(images)
        for key in first:
            self.assertAllEqual(first[key], second[key], msg=key)
        noisy = model(images, training=True)
        self.assertGreater(np.abs(noisy["which"] - first["which"]).max(), 1e-3)
        self.assertGreater(np.abs(noisy["where"] - first["where"]).max(), 1e-4)

    def test_variational_cost_is_kl(self):
        kwargs = {name: kwargs for name, _, kwargs in _VARIANTS}["variational"]
        model = make(painter.SimplePainter, dict(kwargs))
        out = model(self.images(_GRAY))
        mu, sigma = out["mu"].numpy(), out["sigma"].numpy()
        kl = 0.5 * np.sum(mu**2 + sigma**2 - 2.0 * np.log(sigma) - 1.0, axis=-1)
        self.assertAllClose(out["latent_cost"], kl, rtol=1e-5, atol=1e-5)

    def test_xla_matches_eager(self):
        model = make(painter.SimplePainter, dict(num_moves=3, image_shape=_GRAY, hidden_units=16))
        images = self.images(_GRAY)
        expected = model(images)
        out = tf.function(model, jit_compile=True)(images)
        for key in expected:
            self.assertAllClose(out[key], expected[key], atol=1e-5, msg=key)

    def test_write_canvases_once_under_xla(self):
        model = make(painter.SimplePainter, dict(num_moves=3, image_shape=_GRAY, hidden_units=16))
        images = self.images(_GRAY)
        expected = model(images)
        compiled = tf.function(lambda x: painter.write_canvases_once(model(x)), jit_compile=True)
        out, per_move = compiled(images)
        self.assertCountEqual(out.keys(), expected.keys())
        self.assertLen(per_move, 3)
        for t, canvas in enumerate(per_move):
            self.assertAllClose(canvas, expected["canvases"][:, t], atol=1e-5)
        for key in expected:
            self.assertAllClose(out[key], expected[key], atol=1e-5, msg=key)

    @parameterized.named_parameters(
        ("channels", painter.SimplePainter, dict(image_shape=(8, 8, 2)), "`image_shape` must be"),
        ("rank", painter.RecurrentPainter, dict(image_shape=(8, 8)), "`image_shape` must be"),
        ("moves", painter.SimplePainter, dict(num_moves=0), "`num_moves` must be >= 1"),
        ("encoder", painter.SimplePainter, dict(encoder="rnn"), "`encoder` must be one of"),
        ("latent", painter.SimplePainter, dict(latent="gan"), "`latent` must be one of"),
        (
            "sorter_moves",
            painter.SimplePainter,
            dict(num_moves=3, sorter=True),
            "The occlusion sorter orders exactly 2 moves",
        ),
        (
            "both_sorters",
            painter.SimplePainter,
            dict(num_moves=2, sorter=True, depth_sorter=True),
            "Choose one occlusion sorter",
        ),
        (
            "depth_sorter_additive",
            painter.SimplePainter,
            dict(depth_sorter=True, canvas="additive"),
            "The depth sorter orders moves of the \"over\" canvas",
        ),
        (
            "full_cost_fixed_sigma",
            painter.SimplePainter,
            dict(latent="custom", latent_sigma=0.5, latent_cost="full"),
            "latent_cost='full'",
        ),
        ("canvas", painter.SimplePainter, dict(canvas="oil"), "`canvas` must be one of"),
        ("recurrent_canvas", painter.RecurrentPainter, dict(canvas="oil"), "`canvas` must be"),
    )
    def test_bad_arguments_raise(self, cls, kwargs, message):
        kwargs = dict(dict(num_moves=2, image_shape=(8, 8, 1), template_size=8), **kwargs)
        with self.assertRaisesRegex(ValueError, message):
            cls(**kwargs)

    def test_short_training_run_loss_falls(self):
        """Slow end-to-end check: 60 seeded Adam steps on two-rectangle images."""
        testing.set_seeds(0)
        images = two_rectangles(16, 12, seed=0)
        model = painter.SimplePainter(
            num_moves=2,
            image_shape=(12, 12, 1),
            hidden_units=64,
            templates=("square",),
            template_size=8,
            initial_scale=1.5,
            seed=0,
        )
        optimizer = keras.optimizers.Adam(1e-3)

        @tf.function
        def train_step(x):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(model(x, training=True)["canvas"] - x))
            grads = tape.gradient(loss, model.trainable_weights)
            optimizer.apply_gradients(zip(grads, model.trainable_weights))
            return loss

        losses = [float(train_step(images)) for _ in range(60)]
        self.assertTrue(np.all(np.isfinite(losses)))
        first, last = np.mean(losses[:3]), np.mean(losses[-3:])
        self.assertLess(last, 0.6 * first, f"loss fell only from {first:.4f} to {last:.4f}")


if __name__ == "__main__":
    tf.test.main()
