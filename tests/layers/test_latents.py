"""Tests for tfpaint.layers.latents: the Gaussian code of the latent ablation (thesis 5.3)."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tests import testing
from tfpaint.layers import latents

_SETTINGS = (
    ("vae", dict(stochastic=True, sigma=None, latent_cost="full")),
    ("denoising", dict(stochastic=True, sigma=0.5, latent_cost="none")),
    ("fixed_sigma_mu_cost", dict(stochastic=True, sigma=0.5, latent_cost="mu")),
    ("learned_sigma_mu_cost", dict(stochastic=True, sigma=None, latent_cost="mu")),
    ("deterministic_mu_cost", dict(stochastic=False, sigma=None, latent_cost="mu")),
    ("deterministic", dict(stochastic=False, sigma=None, latent_cost="none")),
)


class GaussianLatentTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        testing.set_seeds()
        self.rng = np.random.default_rng(0)
        self.h = self.rng.normal(size=(5, 12)).astype(np.float32)

    @parameterized.named_parameters(*_SETTINGS)
    def test_layer_harness(self, settings):
        learned = settings["sigma"] is None and settings["stochastic"]
        testing.run_layer_test(
            self,
            latents.GaussianLatent,
            dict(units=6, seed=2, **settings),
            (self.h,),
            call_kwargs={"training": False},
            expected_output_shape={
                "latent_cost": (5,),
                "mu": (5, 6),
                "sigma": (5, 6),
                "z": (5, 6),
            },
            expected_num_trainable_weights=4 if learned else 2,
            # A learned sigma with no cost on it only matters when z is sampled.
            run_gradients=settings["latent_cost"] == "full" or not learned,
            run_fit=settings["latent_cost"] == "full" or not learned,
        )

    @parameterized.named_parameters(*[s for s in _SETTINGS if not s[1]["stochastic"]])
    def test_deterministic_z_is_mu(self, settings):
        layer = latents.GaussianLatent(6, seed=2, **settings)
        for training in (False, True):
            out = layer(self.h, training=training)
            self.assertAllEqual(out["z"], out["mu"])

    @parameterized.named_parameters(*[s for s in _SETTINGS if s[1]["stochastic"]])
    def test_stochastic_z_is_sampled_in_training_only(self, settings):
        layer = latents.GaussianLatent(6, seed=2, **settings)
        out = layer(self.h, training=True)
        self.assertGreater(np.abs(out["z"] - out["mu"]).min(), 0.0)
        again = layer(self.h, training=True)
        self.assertAllEqual(again["mu"], out["mu"])
        self.assertGreater(np.abs(again["z"] - out["z"]).max(), 0.0)
        inference = layer(self.h, training=False)
        self.assertAllEqual(inference["z"], inference["mu"])

    @parameterized.named_parameters(("learned", None), ("fixed", 0.3))
    def test_noise_has_scale_sigma(self, sigma):
        layer = latents.GaussianLatent(
            256, sigma=sigma, latent_cost="full" if sigma is None else "none", seed=4
        )
        h = self.rng.normal(size=(64, 12)).astype(np.float32)
        out = layer(h, training=True)
        eps = ((out["z"] - out["mu"]) / out["sigma"]).numpy()
        self.assertAllClose(eps.mean(), 0.0, atol=0.02)
        self.assertAllClose(eps.std(), 1.0, atol=0.02)

    def test_sampling_is_seeded(self):
        a = latents.GaussianLatent(6, seed=9)(self.h, training=True)["z"]
        b = latents.GaussianLatent(6, seed=9)(self.h, training=True)["z"]
        c = latents.GaussianLatent(6, seed=10)(self.h, training=True)["z"]
        self.assertAllEqual(a, b)
        self.assertGreater(np.abs(a - c).max(), 0.0)

    def test_sigma_is_exp_of_a_dense_layer(self):
        layer = latents.GaussianLatent(6, seed=2)
        out = layer(self.h)
        dense = layer.log_sigma_dense
        expected = np.exp(self.h @ dense.kernel.numpy() + dense.bias.numpy())
        self.assertAllClose(out["sigma"], expected, rtol=1e-5)
        mu = self.h @ layer.mu_dense.kernel.numpy() + layer.mu_dense.bias.numpy()
        self.assertAllClose(out["mu"], mu, atol=1e-6)

    def test_fixed_sigma(self):
        layer = latents.GaussianLatent(6, sigma=0.25, latent_cost="none")
        out = layer(self.h)
        self.assertIsNone(layer.log_sigma_dense)
        self.assertAllClose(out["sigma"], np.full((5, 6), 0.25))

    def test_full_cost_is_closed_form_kl(self):
        layer = latents.GaussianLatent(6, seed=2)
        layer(self.h)
        # Larger weights give sigmas away from 1, for a telling check.
        layer.log_sigma_dense.kernel.assign(
            self.rng.normal(scale=0.3, size=(12, 6)).astype(np.float32)
        )
        layer.mu_dense.bias.assign(self.rng.normal(size=6).astype(np.float32))
        out = layer(self.h)
        mu, sigma = out["mu"].numpy(), out["sigma"].numpy()
        expected = 0.5 * np.sum(mu**2 + sigma**2 - 2.0 * np.log(sigma) - 1.0, axis=-1)
        self.assertAllClose(out["latent_cost"], expected, rtol=1e-5, atol=1e-5)
        self.assertGreater(expected.min(), 0.1)

    @parameterized.named_parameters(
        ("fixed_sigma", dict(sigma=0.5)),
        ("learned_sigma", dict(sigma=None)),
        ("deterministic", dict(stochastic=False)),
    )
    def test_mu_cost_is_half_sum_of_squares(self, kwargs):
        layer = latents.GaussianLatent(6, latent_cost="mu", seed=2, **kwargs)
        layer(self.h)
        layer.mu_dense.bias.assign(self.rng.normal(size=6).astype(np.float32))
        out = layer(self.h, training=True)
        self.assertAllClose(
            out["latent_cost"], 0.5 * np.sum(out["mu"].numpy() ** 2, axis=-1), rtol=1e-6
        )

    def test_no_cost_is_zero(self):
        out = latents.GaussianLatent(6, sigma=0.5, latent_cost="none")(self.h, training=True)
        self.assertAllEqual(out["latent_cost"], np.zeros(5))

    def test_full_cost_gradient_reaches_sigma(self):
        layer = latents.GaussianLatent(6, seed=2)
        with tf.GradientTape() as tape:
            cost = tf.reduce_sum(layer(self.h)["latent_cost"])
        grads = tape.gradient(cost, layer.trainable_weights)
        testing.assert_gradients_reach_weights(self, layer.trainable_weights, grads)

    def test_reparameterised_sample_gradient(self):
        # In training, a loss on z alone reaches both mu and sigma heads.
        layer = latents.GaussianLatent(6, latent_cost="mu", seed=2)
        with tf.GradientTape() as tape:
            z = layer(self.h, training=True)["z"]
            loss = tf.reduce_sum(tf.square(z - 1.0))
        grads = tape.gradient(loss, layer.trainable_weights)
        testing.assert_gradients_reach_weights(self, layer.trainable_weights, grads)

    def test_deterministic_latent_has_no_unused_weights(self):
        # The "deterministic z, mu cost" setting of fig 5.9: z = mu and the cost
        # reads mu only, so a sigma head is trained by nothing (and Keras warns
        # about missing gradients at every step).
        layer = latents.GaussianLatent(6, stochastic=False, sigma=None, latent_cost="mu", seed=2)
        with tf.GradientTape() as tape:
            out = layer(self.h, training=True)
            loss = tf.reduce_sum(tf.square(out["z"] - 1.0)) + tf.reduce_sum(out["latent_cost"])
        grads = tape.gradient(loss, layer.trainable_weights)
        unused = [w.path for w, g in zip(layer.trainable_weights, grads) if g is None]
        self.assertEqual(
            unused,
            [],
            "GaussianLatent(stochastic=False, sigma=None) creates a log_sigma head "
            "that neither z nor the latent cost depends on",
        )

    def test_unknown_batch_in_tf_function(self):
        layer = latents.GaussianLatent(6, seed=2)
        expected = layer(self.h)

        @tf.function(input_signature=[tf.TensorSpec([None, 12], tf.float32)])
        def encode(h):
            return layer(h, training=True)

        out = encode(self.h)
        self.assertAllClose(out["mu"], expected["mu"], atol=1e-6)
        self.assertAllClose(out["latent_cost"], expected["latent_cost"], atol=1e-5)
        self.assertEqual(out["z"].shape, (5, 6))
        self.assertGreater(np.abs(out["z"] - out["mu"]).min(), 0.0)

    @parameterized.named_parameters(
        ("units", dict(units=0), "`units` must be >= 1"),
        ("cost", dict(units=2, latent_cost="kl"), "`latent_cost` must be one of"),
        ("sigma_zero", dict(units=2, sigma=0.0, latent_cost="none"), "`sigma` must be positive"),
        ("sigma_negative", dict(units=2, sigma=-1.0, latent_cost="mu"), "`sigma` must be positive"),
        (
            "full_with_fixed_sigma",
            dict(units=2, sigma=0.5, latent_cost="full"),
            "latent_cost='full' \\(the KL of a VAE\\) needs a stochastic latent",
        ),
        (
            "full_deterministic",
            dict(units=2, stochastic=False, latent_cost="full"),
            "needs a stochastic latent with a learned sigma",
        ),
    )
    def test_invalid_settings_raise(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            latents.GaussianLatent(**kwargs)


if __name__ == "__main__":
    tf.test.main()
