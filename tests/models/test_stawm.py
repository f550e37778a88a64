"""Tests for tfpaint.models.stawm: the STAWM model and its heads (paper section 3)."""

import json

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from tests import testing
from tfpaint.layers import spatial_transformer as st
from tfpaint.models import stawm

B = 3
SMALL = dict(
    image_shape=(16, 16, 1), num_glimpses=3, glimpse_size=6, memory_size=8, rnn_units=16,
    context_filters=(4, 8), context_strides=(2, 2), glimpse_filters=(4, 8),
    glimpse_strides=(1, 2), affine_hidden=8, num_classes=5, seed=3,
)
_VARIANTS = (
    ("classify", dict(heads=("classify",))),
    ("draw_additive", dict(heads=("draw",), canvas="additive")),
    ("draw_bernoulli", dict(heads=("draw",), canvas="bernoulli")),
    ("sketchpad", dict(heads=("classify", "draw"), canvas="bernoulli", learnable_rates=True)),
)


def relu6(x):
    return np.clip(x, 0.0, 6.0)


def numpy_memory(xs, eta=0.4, delta=0.2, theta=0.5):
    """Eq 2 over `xs` `(B, N, M)`: the terminal memory `(B, M, M)`."""
    out = []
    for seq in xs.astype(np.float64):
        w = np.zeros((seq.shape[1],) * 2)
        for x in seq:
            e = relu6(x)
            w = w + eta * np.outer(e, relu6(e @ w + theta * e)) - delta * w
        out.append(w)
    return np.array(out)


def make(**kwargs):
    return stawm.STAWM(**{**SMALL, **kwargs})


class STAWMTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        testing.set_seeds()
        self.images = np.random.default_rng(0).uniform(size=(B, 16, 16, 1)).astype(np.float32)

    @parameterized.named_parameters(*_VARIANTS)
    def test_output_keys_and_shapes(self, kwargs):
        out = make(**kwargs)(self.images, training=True)
        expected = {"context": (B, 72), "thetas": (B, 3, 6), "glimpses": (B, 3, 6, 6, 1),
                    "memory_inputs": (B, 3, 8), "memory": (B, 8, 8)}
        if "classify" in kwargs["heads"]:
            expected.update(class_latent=(B, 8), logits=(B, 5))
        if "draw" in kwargs["heads"]:
            alpha = kwargs["canvas"] == "bernoulli"
            expected.update(write_thetas=(B, 3, 6), draw_latents=(B, 3, 8), z=(B, 3, 4),
                            mu=(B, 3, 4), sigma=(B, 3, 4), kl=(B,),
                            sketches=(B, 3, 6, 6, 1 + alpha), canvases=(B, 3, 16, 16, 1),
                            canvas=(B, 16, 16, 1))
            if alpha:
                expected["masks"] = (B, 3, 16, 16, 1)
        self.assertEqual({k: tuple(v.shape) for k, v in out.items()}, expected)
        for v in out.values():
            self.assertTrue(np.all(np.isfinite(v)))

    def test_terminal_memory_is_eq2_over_memory_inputs(self):
        out = make(heads=("classify", "draw"))(self.images)
        self.assertAllClose(out["memory"], numpy_memory(out["memory_inputs"].numpy()),
                            atol=1e-5, rtol=1e-5)

    def test_classifier_reads_terminal_memory_without_theta(self):
        model = make()
        out = model(self.images)
        query = model.class_query(out["context"])
        expected = relu6(np.einsum("bm,bmn->bn", query, out["memory"]))
        self.assertAllClose(out["class_latent"], expected, atol=1e-5)
        self.assertAllClose(out["logits"], model.classifier(expected), atol=1e-5)

    def test_glimpse_poses_start_at_identity(self):
        out = make(heads=("classify", "draw"))(self.images)
        identity = np.tile(np.array(st.IDENTITY_THETA, np.float32), (B, 3, 1))
        self.assertAllClose(out["thetas"], identity)
        self.assertAllClose(out["write_thetas"], identity)

    def test_additive_canvas_is_eq3(self):
        model = make(heads=("draw",), canvas="additive")
        out = model(self.images)
        sketches = tf.reshape(out["sketches"], (-1, 6, 6, 1))
        placed = model.writer(sketches, tf.reshape(out["write_thetas"], (-1, 6)))
        placed = tf.reshape(placed, (B, 3, 16, 16, 1)).numpy()
        logits = -6.0 + np.cumsum(placed, axis=1)
        self.assertAllClose(out["canvases"], 1 / (1 + np.exp(-logits)), atol=1e-5)
        self.assertAllClose(out["canvas"], out["canvases"][:, -1])

    def test_bernoulli_canvas_is_eq4(self):
        model = make(heads=("draw",), canvas="bernoulli")
        out = model(self.images, training=True)
        sketches = tf.reshape(out["sketches"], (-1, 6, 6, 2))  # already sigmoid
        placed = model.writer(sketches, tf.reshape(out["write_thetas"], (-1, 6)))
        colours = tf.reshape(placed, (B, 3, 16, 16, 2)).numpy()[..., :1]
        masks = out["masks"].numpy()
        self.assertGreaterEqual(masks.min(), 0.0)
        self.assertLessEqual(masks.max(), 1.0)
        canvas = np.zeros((B, 16, 16, 1))
        for n in range(3):
            canvas = canvas * (1 - masks[:, n]) + colours[:, n] * masks[:, n]
            self.assertAllClose(out["canvases"][:, n], canvas, atol=1e-5)

    def test_bernoulli_masks_sampled_in_training_only(self):
        model = make(heads=("draw",), canvas="bernoulli")
        a, b = model(self.images), model(self.images)
        self.assertAllClose(a["masks"], b["masks"])
        c, d = model(self.images, training=True), model(self.images, training=True)
        self.assertGreater(np.abs(c["masks"] - d["masks"]).max(), 1e-3)

    def _warped_alpha(self, model, out):
        sketches = tf.reshape(out["sketches"], (-1, 6, 6, 2))  # already sigmoid
        placed = model.writer(sketches, tf.reshape(out["write_thetas"], (-1, 6)))
        return tf.reshape(placed, (B, 3, 16, 16, 2)).numpy()[..., 1:].astype(np.float64)

    def test_bernoulli_inference_mask_is_expected_mask(self):
        model = make(heads=("draw",), canvas="bernoulli")
        out = model(self.images)
        # The probabilities of eq 4's Bernoulli, kept off 0 and 1.
        expected = np.clip(self._warped_alpha(model, out), 1e-6, 1 - 1e-6)
        self.assertAllClose(out["masks"], expected, atol=1e-6)
        self.assertGreater(np.ptp(expected), 0.1)

    def test_bernoulli_training_masks_are_concrete_at_temperature(self):
        # tau * logit(B) - logit(P) is the Concrete's Logistic(0, 1) noise;
        # its quartiles are -log 3, 0, log 3 (robust to masks that round to 1).
        model = make(heads=("draw",), canvas="bernoulli", temperature=0.3)
        out = model(self.images, training=True)
        alpha = np.clip(self._warped_alpha(model, out), 1e-6, 1 - 1e-6)
        masks = out["masks"].numpy().astype(np.float64)
        self.assertTrue(np.all((masks >= 0.0) & (masks <= 1.0)))
        with np.errstate(divide="ignore"):
            noise = 0.3 * (np.log(masks) - np.log1p(-masks)) - np.log(alpha / (1 - alpha))
        quartiles = np.quantile(noise, [0.25, 0.5, 0.75])
        self.assertAllClose(quartiles, [-np.log(3.0), 0.0, np.log(3.0)], atol=0.15)

    def test_kl_is_joint_kl_of_eq25(self):
        out = make(heads=("draw",))(self.images, training=True)
        mu, sigma = out["mu"].numpy(), out["sigma"].numpy()
        expected = -0.5 * np.sum(1 + np.log(sigma**2) - mu**2 - sigma**2, axis=(1, 2))
        self.assertAllClose(out["kl"], expected, atol=1e-4, rtol=1e-4)

    @parameterized.named_parameters(*_VARIANTS)
    def test_gradients_reach_every_weight(self, kwargs):
        model = make(**kwargs)
        model(self.images)
        # The pose layers start at zero weights (identity affine), which
        # blocks the gradient of the layer below them until they have moved.
        rng = np.random.default_rng(1)
        for layer in (getattr(model, "pose"), getattr(model, "write_pose", None)):
            if layer is not None:
                layer.kernel.assign(rng.normal(0, 0.01, layer.kernel.shape))
        with tf.GradientTape() as tape:
            out = model(self.images, training=True)
            keys = [k for k in ("logits", "canvas", "kl") if k in out]
            loss = testing.projection_loss([out[k] for k in keys])
        grads = tape.gradient(loss, model.trainable_weights)
        testing.assert_gradients_reach_weights(self, model.trainable_weights, grads)

    @parameterized.named_parameters(*_VARIANTS)
    def test_config_round_trip(self, kwargs):
        model = make(**kwargs)
        config = json.loads(json.dumps(model.get_config()))
        self.assertEqual(stawm.STAWM.from_config(config).get_config(), model.get_config())
        missing = [a for a in testing.constructor_arguments(stawm.STAWM) if a not in config]
        self.assertEqual(missing, [])

    @parameterized.named_parameters(_VARIANTS[0], _VARIANTS[3])
    def test_save_load_round_trip(self, kwargs):
        model = make(**kwargs)
        before = model(self.images)
        loaded = testing.save_and_load(model, self.get_temp_dir())
        self.assertIsInstance(loaded, stawm.STAWM)
        testing.assert_nested_close(self, loaded(self.images), before, atol=0.0, rtol=0.0)

    def test_unknown_batch_in_tf_function_and_xla(self):
        model = make(heads=("classify", "draw"))
        eager = model(self.images)

        @tf.function(input_signature=[tf.TensorSpec([None, 16, 16, 1], tf.float32)])
        def traced(x):
            return model(x)

        testing.assert_nested_close(self, traced(self.images), eager, atol=1e-5)
        self.assertEqual(traced(self.images[:1])["canvas"].shape, (1, 16, 16, 1))
        compiled = tf.function(lambda x: model(x), jit_compile=True)
        testing.assert_nested_close(self, compiled(self.images), eager, atol=1e-4)

    def test_self_supervised_freezes_all_but_classifier_and_rates(self):
        model = make(heads=("classify", "draw"), learnable_rates=True)
        model(self.images)
        model.freeze_for_self_supervision()
        names = sorted(v.path.split("/")[1] for v in model.trainable_variables)
        self.assertEqual(
            names, ["class_query", "class_query", "classifier", "classifier",
                    "memory_rnn", "memory_rnn", "memory_rnn"])
        with self.assertRaisesRegex(ValueError, "needs the 'classify' head"):
            make(heads=("draw",)).freeze_for_self_supervision()

    def test_fit_step_trains_classifier(self):
        model = make()
        model.compile(keras.optimizers.Adam(1e-2),
                      loss={"logits": keras.losses.SparseCategoricalCrossentropy(
                          from_logits=True)})
        before = [w.numpy() for w in model.trainable_weights]
        model.fit(self.images, {"logits": np.arange(B) % 5}, batch_size=B, verbose=0)
        changed = [not np.allclose(b, w.numpy()) for b, w in zip(before, model.trainable_weights)]
        self.assertTrue(all(changed))

    def test_old_runs_canvas_name_reads_as_additive(self):
        # Runs written before the canvas was called "additive" everywhere
        # store canvas="addition" in their model.json.
        self.assertEqual(stawm.STAWM(heads=("draw",), canvas="addition").canvas, "additive")

    @parameterized.named_parameters(
        ("heads", dict(heads=("segment",)), "`heads` must be a non-empty subset"),
        ("canvas", dict(canvas="over"), "`canvas` must be one of"),
        ("channels", dict(image_shape=(16, 16, 2)), "1 or 3 channels"),
        ("glimpse_too_small", dict(glimpse_size=2), "reduces a 2x2 glimpse to nothing"),
        ("strides", dict(glimpse_strides=(1,)), "`glimpse_filters` and `glimpse_strides`"),
        ("temperature", dict(temperature=0.0), "`temperature` must be > 0"),
        ("unstable_memory", dict(eta=0.1, delta=0.2), "stability conditions"),
    )
    def test_bad_arguments_raise(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            make(**kwargs)

    def test_bad_image_shape_raises(self):
        with self.assertRaisesRegex(ValueError, r"Expected images of shape \(batch, 16, 16, 1\)"):
            make()(np.zeros((2, 28, 28, 1), np.float32))


if __name__ == "__main__":
    tf.test.main()
