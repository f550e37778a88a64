"""Tests for tfpaint.models.ws_ram: the attention policy, its log-probabilities and
the four training algorithms' losses."""

import os
import tempfile

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from tests import testing
from tfpaint.layers import spatial_transformer as st
from tfpaint.models import ws_ram

SHAPE = (20, 20, 1)
SCALES = (0.3, 0.6, 1.0)


def make(**kwargs):
    settings = dict(image_shape=SHAPE, num_classes=5, num_glimpses=3, glimpse_size=5,
                    scales=SCALES, low_res_size=5, units=12, samples=4, seed=1)
    settings.update(kwargs)
    model = ws_ram.WSRAM(**settings)
    model(tf.zeros((1, *SHAPE)))
    return model


def scenes(num=4, seed=0):
    return np.random.default_rng(seed).uniform(size=(num, *SHAPE)).astype(np.float32)


def labels(num=4):
    return np.arange(num, dtype=np.int32) % 5


def spread_policy(model, seed=5):
    """Heads with weights large enough that actions differ between images."""
    heads = [model.location_head, model.scale_head]
    if model.inference_location is not None:
        heads += [model.inference_location, model.inference_scale]
    for i, head in enumerate(heads):
        head.kernel.assign(tf.random.stateless_normal(head.kernel.shape, [seed, i], stddev=0.5))


def _normal_log_pdf(x, mean, sd):
    return -0.5 * ((x - mean) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2.0 * np.pi)


def _log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


class WsRamTest(tf.test.TestCase, parameterized.TestCase):

    def test_outputs_and_shapes(self):
        model = make(proposal="q")
        out = model(scenes(), labels=labels(), training=True)
        expected = {"logits": (4, 4, 5), "probabilities": (4, 5), "locations": (4, 4, 3, 2),
                    "scale_index": (4, 4, 3), "thetas": (4, 4, 3, 6), "boxes": (4, 4, 3, 4),
                    "glimpses": (4, 4, 3, 5, 5, 1), "log_prior": (4, 4),
                    "log_proposal": (4, 4), "proposal_locations": (4, 4, 3, 2),
                    "log_likelihood": (4, 4)}
        self.assertEqual({k: tuple(v.shape) for k, v in out.items()}, expected)
        self.assertAllClose(tf.reduce_sum(out["probabilities"], -1), np.ones(4))

    def test_first_action_log_prob_is_the_papers_policy(self):
        # One glimpse: a_1 ~ N(tanh(W_l h2_0), sd^2) Cat(softmax(W_k h2_0)),
        # h2_0 = relu(W_low lowres(I)), recomputed here in NumPy.
        model = make(num_glimpses=1, location_sd=0.2)
        spread_policy(model)
        x = scenes(6)
        out = model(x, noise_seed=tf.constant([3, 4]), samples=2)
        low = model.low_resolution(tf.constant(x)).numpy().reshape(6, -1)
        h2 = np.maximum(low @ model.low_res.kernel.numpy() + model.low_res.bias.numpy(), 0.0)
        mean = np.tanh(h2 @ model.location_head.kernel.numpy() + model.location_head.bias.numpy())
        logits = h2 @ model.scale_head.kernel.numpy() + model.scale_head.bias.numpy()
        loc = out["locations"].numpy()[:, :, 0]  # (B, M, 2)
        scale = out["scale_index"].numpy()[:, :, 0]  # (B, M)
        want = (_normal_log_pdf(loc, mean[:, None], 0.2).sum(-1)
                + np.take_along_axis(_log_softmax(logits), scale, axis=1))
        self.assertAllClose(out["log_prior"], want, atol=1e-4)

    def test_mode_policy_is_the_mean_location_and_likeliest_scale(self):
        model = make(num_glimpses=1)
        spread_policy(model)
        x = scenes(6)
        out = model(x)
        low = model.low_resolution(tf.constant(x)).numpy().reshape(6, -1)
        h2 = np.maximum(low @ model.low_res.kernel.numpy() + model.low_res.bias.numpy(), 0.0)
        mean = np.tanh(h2 @ model.location_head.kernel.numpy() + model.location_head.bias.numpy())
        logits = h2 @ model.scale_head.kernel.numpy() + model.scale_head.bias.numpy()
        self.assertAllClose(out["locations"][:, 0, 0], mean, atol=1e-5)
        self.assertAllEqual(out["scale_index"][:, 0, 0], logits.argmax(-1))
        again = model(x)
        self.assertAllEqual(out["logits"], again["logits"])

    def test_glimpse_is_the_spatial_transformer_read_of_its_box(self):
        model = make()
        spread_policy(model)
        x = scenes(3)
        out = model(x, noise_seed=tf.constant([1, 1]), samples=2)
        loc = out["locations"].numpy()
        window = np.asarray(SCALES)[out["scale_index"].numpy()]  # (B, M, N)
        centre = np.clip(loc, -1.0, 1.0)
        boxes = out["boxes"].numpy()
        # The box is the window of side `scale` of the image around the centre.
        self.assertAllClose((boxes[..., 0] + boxes[..., 2]) / 2, (centre[..., 0] + 1) * 10,
                            atol=1e-4)
        self.assertAllClose(boxes[..., 2] - boxes[..., 0], window * 20, atol=1e-4)
        reader = st.SpatialTransformer((5, 5), allow_skew=False)
        theta = out["thetas"].numpy()[1, 1]  # (N, 6)
        want = reader(np.repeat(x[1:2], 3, axis=0), theta)
        self.assertAllClose(out["glimpses"][1, 1], want, atol=1e-5)

    def test_log_likelihood_is_the_label_log_softmax(self):
        model = make()
        out = model(scenes(), labels=labels(), training=True)
        want = np.take_along_axis(_log_softmax(out["logits"].numpy()),
                                  labels()[:, None, None], axis=2)[..., 0]
        self.assertAllClose(out["log_likelihood"], want, atol=1e-5)

    def test_inference_network_reads_the_label_and_the_prior_does_not(self):
        model = make(proposal="q")
        spread_policy(model)
        x = np.repeat(scenes(1), 2, axis=0)
        out = model(x, labels=np.array([0, 3], np.int32))  # q's mode
        self.assertGreater(np.abs(out["locations"][0] - out["locations"][1]).max(), 1e-3)
        prior = model(x, labels=np.array([0, 3], np.int32), use_proposal=False)
        self.assertAllClose(prior["locations"][0], prior["locations"][1])
        self.assertNotIn("log_proposal", prior)

    def test_samples_are_fresh_per_sequence_and_repeat_with_a_seed(self):
        model = make()
        x = scenes(2)
        a = model(x, noise_seed=tf.constant([7, 7]))
        b = model(x, noise_seed=tf.constant([7, 7]))
        self.assertAllEqual(a["locations"], b["locations"])
        loc = a["locations"].numpy()
        self.assertGreater(np.abs(loc[:, 0] - loc[:, 1]).max(), 1e-3)

    @parameterized.named_parameters(
        ("var", dict(algorithm="var", proposal="prior", control_variates=False),
         {"surrogate", "baseline_loss"}),
        ("ws_ram", dict(proposal="prior", control_variates=False),
         {"prediction_surrogate", "inference_surrogate"}),
        ("ws_ram_q_c", dict(proposal="q", control_variates=True),
         {"prediction_surrogate", "inference_surrogate"}))
    def test_gradients_reach_every_weight(self, settings, keys):
        model = make(**settings)
        spread_policy(model)
        with tf.GradientTape() as tape:
            out = model(scenes(6), labels=labels(6), training=True)
            loss, parts = model.loss_terms(out)
            total = tf.reduce_mean(loss)
        self.assertEqual(set(parts), keys | {"nll_bound", "ess", "mean_nll"})
        testing.assert_gradients_reach_weights(
            self, model.trainable_variables, tape.gradient(total, model.trainable_variables))

    def test_each_network_learns_from_its_own_surrogate(self):
        # The prediction network follows eq 8 alone and the inference network
        # eq 14 alone: q's input carries no gradient into h2.
        model = make(proposal="q")
        inference = (model.inference_hidden.trainable_variables
                     + model.inference_location.trainable_variables
                     + model.inference_scale.trainable_variables)
        prediction = [v for v in model.trainable_variables
                      if not any(v is w for w in inference)]
        with tf.GradientTape(persistent=True) as tape:
            out = model(scenes(6), labels=labels(6), training=True)
            _, parts = model.loss_terms(out)
            q_loss = tf.reduce_sum(parts["inference_surrogate"])
            p_loss = tf.reduce_sum(parts["prediction_surrogate"])
        self.assertTrue(all(g is None for g in tape.gradient(q_loss, prediction)))
        self.assertTrue(all(g is None for g in tape.gradient(p_loss, inference)))

    def test_loss_terms_match_the_estimator(self):
        model = make(proposal="q", control_variates=True)
        out = model(scenes(), labels=labels(), training=True)
        _, parts = model.loss_terms(out)
        log_w = (out["log_likelihood"] + out["log_prior"] - out["log_proposal"]).numpy()
        w = np.exp(log_w - log_w.max(-1, keepdims=True))
        w /= w.sum(-1, keepdims=True)
        self.assertAllClose(parts["ess"], 1.0 / np.sum(w ** 2, -1), rtol=1e-5)
        bound = np.log(np.mean(np.exp(log_w), -1))
        self.assertAllClose(parts["nll_bound"], -bound, rtol=1e-5)

    def test_unknown_batch_in_tf_function(self):
        model = make(proposal="q")
        fn = tf.function(lambda x, y: model.loss_terms(model(x, labels=y, training=True))[0],
                         input_signature=[tf.TensorSpec([None, *SHAPE]),
                                          tf.TensorSpec([None], tf.int32)])
        self.assertEqual(fn(scenes(5), labels(5)).shape, (5,))
        self.assertEqual(fn(scenes(2), labels(2)).shape, (2,))

    @parameterized.named_parameters(("mode", False), ("sampled", True))
    def test_xla_and_no_xla_agree(self, sampled):
        # The seed is a constant of the traced function: XLA's stateless
        # Philox draws other numbers than TensorFlow's kernel from a seed fed
        # in at run time (a captured or variable seed), so sampled runs
        # agree only from a compile-time seed.
        model = make(proposal="q")
        spread_policy(model)
        fn = lambda x, y: model(x, labels=y, noise_seed=tf.constant([2, 9]) if sampled else None)
        plain = tf.function(fn)(scenes(), labels())
        compiled = tf.function(fn, jit_compile=True)(scenes(), labels())
        for key in ("log_likelihood", "log_prior", "log_proposal", "boxes"):
            self.assertAllClose(plain[key], compiled[key], atol=1e-4, msg=key)

    def test_config_round_trip_and_save_load(self):
        model = make(algorithm="var", proposal="prior", control_variates=False, location_sd=0.3)
        testing.assert_config_round_trip(self, model)
        x = scenes()
        path = os.path.join(tempfile.mkdtemp(), "ws_ram.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
        self.assertEqual(loaded.get_config(), model.get_config())
        self.assertAllClose(loaded(x)["logits"], model(x)["logits"], atol=1e-6)

    @parameterized.named_parameters(
        ("algorithm", dict(algorithm="reinforce"), "`algorithm` must be one of"),
        ("proposal", dict(proposal="posterior"), "`proposal` must be one of"),
        ("var_q", dict(algorithm="var", proposal="q"), "samples from the prior"),
        ("var_c", dict(algorithm="var", proposal="prior", control_variates=True),
         "control_variates=False"),
        ("scales", dict(scales=(0.5, 0.0)), "`scales` must be"),
        ("sd", dict(location_sd=0.0), "`location_sd` must be > 0"),
        ("glimpses", dict(num_glimpses=0), "`num_glimpses` must be >= 1"),
        ("shape", dict(image_shape=(20, 20)), "`image_shape` must be"))
    def test_bad_arguments_are_named(self, settings, message):
        with self.assertRaisesRegex(ValueError, message):
            make(**settings)

    def test_bad_calls_are_named(self):
        model = make()
        with self.assertRaisesRegex(ValueError, "needs sampling"):
            model(scenes(), samples=3)
        with self.assertRaisesRegex(ValueError, "Expected images of shape"):
            model(np.zeros((2, 8, 8, 1), np.float32))
        with self.assertRaisesRegex(ValueError, r"`labels` must be classes in \[0, 5\)"):
            model(scenes(), labels=np.array([0, 1, 5, 2], np.int32))
        with self.assertRaisesRegex(ValueError, "`labels` must be a \\(batch,\\) vector"):
            model(scenes(), labels=np.zeros((4, 1), np.int32))
        with self.assertRaisesRegex(ValueError, "`labels` must be a \\(batch,\\) vector"):
            model(scenes(), labels=np.zeros(4, np.float32))
        with self.assertRaisesRegex(ValueError, "needs the outputs of a call with labels"):
            model.loss_terms(model(scenes(), training=True))


if __name__ == "__main__":
    tf.test.main()
