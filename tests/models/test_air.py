"""Tests for tfpaint.models.air: AIR's steps, masking, bound and gradients."""

import math
import os
import tempfile

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from tests import testing
from tfpaint import estimators
from tfpaint.models import air

SHAPE = (16, 16, 1)


def make(**kwargs):
    settings = dict(image_shape=SHAPE, max_steps=3, glimpse_size=6, rnn_units=16,
                    hidden_units=12, what_units=4, presence_prob=0.3, seed=1)
    settings.update(kwargs)
    model = air.AIR(**settings)
    model(tf.zeros((1, *SHAPE)))
    return model


def scenes(num=4, seed=0):
    return np.random.default_rng(seed).uniform(size=(num, *SHAPE)).astype(np.float32)


def force_presence(model, present):
    """Sets the presence head so that every rho is about 1 (or 0)."""
    model.pres_head.kernel.assign(tf.zeros_like(model.pres_head.kernel))
    model.pres_head.bias.assign([20.0 if present else -20.0])


class AirTest(tf.test.TestCase, parameterized.TestCase):

    def test_outputs_and_shapes(self):
        model = make()
        out = model(scenes(), training=True)
        expected = {"canvas": (4, *SHAPE), "canvases": (4, 3, *SHAPE),
                    "glimpses": (4, 3, 6, 6, 1), "reconstructions": (4, 3, 6, 6, 1),
                    "z_pres": (4, 3), "presence_probs": (4, 3), "mask": (4, 3),
                    "z_where": (4, 3, 3), "where_loc": (4, 3, 3), "where_scale": (4, 3, 3),
                    "theta": (4, 3, 6), "boxes": (4, 3, 4),
                    "z_what": (4, 3, 4), "count": (4,), "log_likelihood": (4,),
                    "kl_what": (4,), "kl_where": (4,), "kl_pres": (4,), "log_q_pres": (4,),
                    "elbo": (4,), "baseline": (4,)}
        self.assertEqual({k: tuple(v.shape) for k, v in out.items()}, expected)
        self.assertAllClose(out["canvas"], out["canvases"][:, -1])
        self.assertAllClose(out["count"], out["z_pres"].numpy().sum(axis=1))

    def test_z_pres_stays_absent_after_the_first_absent_step(self):
        model = make(presence_prob=0.5)
        model.pres_head.bias.assign([0.0])  # rho about 1/2: every pattern occurs
        z = model(scenes(64), training=True)["z_pres"].numpy()
        self.assertTrue(np.all(np.diff(z, axis=1) <= 0.0))  # ones, then zeros
        self.assertGreater(len(np.unique(z.sum(axis=1))), 1)

    def test_absent_steps_contribute_nothing(self):
        model = make()
        force_presence(model, False)
        x = scenes()
        out = model(x, training=True)
        self.assertAllEqual(out["z_pres"], np.zeros((4, 3)))
        self.assertAllEqual(out["canvas"], np.zeros((4, *SHAPE)))
        for key in ("kl_what", "kl_where", "count"):
            self.assertAllEqual(out[key], np.zeros(4), msg=key)
        # Only the first step is decided: log q = log(1 - rho_0), log p = log(1 - q).
        rho = out["presence_probs"].numpy()[:, 0]
        self.assertAllClose(out["kl_pres"], np.log1p(-rho) - math.log(1 - 0.3), atol=1e-5)
        self.assertAllClose(out["mask"], [[1.0, 0.0, 0.0]] * 4)

    def test_present_steps_are_scored_and_written(self):
        model = make()
        force_presence(model, True)
        out = model(scenes(), training=True)
        self.assertAllEqual(out["count"], np.full(4, 3.0))
        # Each step adds its reconstruction, placed by the inverse map.
        steps = out["canvases"].numpy()
        placed = model.writer(out["reconstructions"][:, 1], out["theta"][:, 1]).numpy()
        self.assertAllClose(steps[:, 1] - steps[:, 0], placed, atol=1e-5)
        self.assertTrue(np.all(out["kl_what"].numpy() > 0.0))
        # All three present: log p = 3 log q.
        log_p = out["log_q_pres"] - out["kl_pres"]
        self.assertAllClose(log_p, np.full(4, 3 * math.log(0.3)), atol=1e-5)

    def test_elbo_is_the_gaussian_likelihood_minus_the_kls(self):
        model = make(likelihood_scale=0.5)
        x = scenes()
        out = model(x, noise_seed=tf.constant([3, 4]))
        sigma = 0.5
        residual = (x - out["canvas"].numpy()).reshape(4, -1)
        log_lik = np.sum(-0.5 * (residual / sigma) ** 2 - math.log(sigma)
                         - 0.5 * math.log(2 * math.pi), axis=1)
        self.assertAllClose(out["log_likelihood"], log_lik, rtol=1e-5)
        self.assertAllClose(out["elbo"], log_lik - out["kl_what"] - out["kl_where"]
                            - out["kl_pres"], rtol=1e-5)
        # The count prior is the geometric of the estimators module.
        log_p = estimators.geometric_count_log_prob(out["z_pres"], 0.3)
        self.assertAllClose(out["log_q_pres"] - out["kl_pres"], log_p, atol=1e-5)

    def test_kl_where_is_the_closed_form_over_present_steps(self):
        model = make(where_prior=(-1.0, 0.5, 2.0))
        model.pres_head.bias.assign([0.0])  # some steps present, some not
        out = model(scenes(16), training=True)
        loc, scale = out["where_loc"].numpy(), out["where_scale"].numpy()  # (B, N, 3)
        prior_loc, prior_scale = np.array([-1.0, 0.0, 0.0]), np.array([0.5, 2.0, 2.0])
        kl = np.sum(np.log(prior_scale / scale)
                    + (scale ** 2 + (loc - prior_loc) ** 2) / (2 * prior_scale ** 2) - 0.5,
                    axis=-1)  # (B, N)
        self.assertAllClose(out["kl_where"], np.sum(out["z_pres"].numpy() * kl, axis=1),
                            rtol=1e-5, atol=1e-5)
        # theta reads a window of side exp(log s) at (x, y).
        z = out["z_where"].numpy()
        theta = out["theta"].numpy()
        self.assertAllClose(theta[..., 0], np.exp(z[..., 0]), rtol=1e-5)
        self.assertAllClose(theta[..., [2, 5]], z[..., 1:])

    def test_noise_seed_is_repeatable(self):
        model = make()
        x = scenes()
        a = model(x, noise_seed=tf.constant([1, 2]))
        b = model(x, noise_seed=tf.constant([1, 2]))
        c = model(x, noise_seed=tf.constant([1, 3]))
        self.assertAllClose(a["elbo"], b["elbo"])
        self.assertNotAllClose(a["z_where"], c["z_where"])

    def test_inference_is_deterministic(self):
        model = make()
        x = scenes()
        self.assertAllClose(model(x)["canvas"], model(x)["canvas"])

    def test_gradients_reach_every_weight(self):
        model = make()
        model.pres_head.bias.assign([0.0])
        x = scenes(8)
        with tf.GradientTape() as tape:
            loss, _ = model.loss_terms(model(x, training=True))
            loss = tf.reduce_mean(loss)
        grads = tape.gradient(loss, model.trainable_weights)
        testing.assert_gradients_reach_weights(self, model.trainable_weights, grads)
        self.assertNotIn("presence_prob", [w.name for w in model.trainable_weights])

    def test_unknown_batch_in_tf_function(self):
        model = make()
        fn = tf.function(lambda x: model(x, training=True)["elbo"],
                         input_signature=[tf.TensorSpec([None, *SHAPE])])
        self.assertEqual(fn(scenes(5)).shape, (5,))
        self.assertEqual(fn(scenes(2)).shape, (2,))

    def test_save_and_load(self):
        model = make()
        x = scenes()
        path = os.path.join(tempfile.mkdtemp(), "air.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
        self.assertEqual(loaded.get_config(), model.get_config())
        self.assertAllClose(loaded(x)["canvas"], model(x)["canvas"], atol=1e-6)

    @parameterized.named_parameters(
        ("steps", dict(max_steps=0), "`max_steps` must be >= 1"),
        ("prior", dict(presence_prob=1.0), r"`presence_prob` must be in \(0, 1\)"),
        ("where", dict(where_prior=(0.0, 0.0, 1.0)), "`where_prior` must be"),
        ("scale", dict(likelihood_scale=0.0), "`likelihood_scale` must be > 0"),
        ("shape", dict(image_shape=(16, 16)), "`image_shape` must be"),
    )
    def test_bad_arguments(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            air.AIR(**kwargs)

    def test_wrong_images(self):
        model = make()
        with self.assertRaisesRegex(ValueError, r"Expected images of shape \(batch, 16, 16, 1\)"):
            model(tf.zeros((2, 8, 8, 1)))
        with self.assertRaisesRegex(ValueError, "Expected float images"):
            model(tf.zeros((2, *SHAPE), tf.uint8))


if __name__ == "__main__":
    tf.test.main()
