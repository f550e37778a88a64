"""Tests for tfpaint.layers.latents: the Gaussian code of the latent ablation (thesis 5.3)
and the Concrete (relaxed Bernoulli / one-hot categorical) code."""

import math

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tests import testing
from tfpaint.layers import latents

tfd = tfp.distributions

_SETTINGS = (
    ("vae", dict(stochastic=True, sigma=None, latent_cost="full")),
    ("denoising", dict(stochastic=True, sigma=0.5, latent_cost="none")),
    ("fixed_sigma_mu_cost", dict(stochastic=True, sigma=0.5, latent_cost="mu")),
    ("learned_sigma_mu_cost", dict(stochastic=True, sigma=None, latent_cost="mu")),
    ("deterministic_mu_cost", dict(stochastic=False, sigma=None, latent_cost="mu")),
    ("deterministic", dict(stochastic=False, sigma=None, latent_cost="none")),
)


class GaussianKlTest(tf.test.TestCase):

    def test_matches_tfp_and_is_zero_for_equal_gaussians(self):
        rng = np.random.default_rng(0)
        loc, prior_loc = rng.normal(size=(2, 4, 3))
        scale, prior_scale = rng.uniform(0.2, 2.0, size=(2, 4, 3))
        want = tfp.distributions.kl_divergence(
            tfp.distributions.Normal(loc, scale),
            tfp.distributions.Normal(prior_loc, prior_scale)).numpy().sum(-1)
        self.assertAllClose(latents.gaussian_kl(loc, scale, prior_loc, prior_scale), want)
        self.assertAllClose(latents.gaussian_kl(loc, scale, loc, scale), np.zeros(4), atol=1e-7)
        # A prior broadcast from one vector.
        self.assertAllClose(latents.gaussian_kl(loc, scale, prior_loc[0], prior_scale[0]),
                            tfp.distributions.kl_divergence(
                                tfp.distributions.Normal(loc, scale),
                                tfp.distributions.Normal(prior_loc[0], prior_scale[0])
                            ).numpy().sum(-1))


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

    @parameterized.named_parameters(("training", True), ("inference", False))
    def test_given_noise_is_scaled_by_sigma_and_shifted_by_mu(self, training):
        layer = latents.GaussianLatent(6, seed=2)
        noise = np.random.default_rng(3).normal(size=(self.h.shape[0], 6)).astype(np.float32)
        out = layer(self.h, training=training, noise=noise)
        self.assertAllClose(out["z"], out["mu"] + out["sigma"] * noise, atol=1e-6)
        with tf.GradientTape() as tape:
            z = layer(self.h, noise=noise)["z"]
        grads = tape.gradient(z, layer.trainable_weights)
        testing.assert_gradients_reach_weights(self, layer.trainable_weights, grads)

    def test_noise_with_a_seed_or_on_a_deterministic_latent_raises(self):
        noise = np.zeros((self.h.shape[0], 6), np.float32)
        with self.assertRaisesRegex(ValueError, "`noise` or `noise_seed`, not both"):
            latents.GaussianLatent(6)(self.h, noise=noise, noise_seed=tf.constant([1, 2]))
        with self.assertRaisesRegex(ValueError, "deterministic latent"):
            latents.GaussianLatent(6, stochastic=False, latent_cost="mu")(self.h, noise=noise)

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


_KINDS = (("bernoulli", "bernoulli"), ("categorical", "categorical"))


def _logsumexp(v, axis=-1):
    top = v.max(axis=axis, keepdims=True)
    return np.log(np.exp(v - top).sum(axis=axis)) + np.squeeze(top, axis)


def binary_concrete_log_density(x, logits, tau):
    """Log density of `x = logit(y)` for `y ~ BinConcrete(alpha = exp(logits), tau)`.

    Maddison et al. 2017: `p(y) = tau alpha y^(-tau-1) (1-y)^(-tau-1) /
    (alpha y^(-tau) + (1-y)^(-tau))^2`, and `dy/dx = y (1 - y)`; float64, in logs.
    """
    x, logits = np.float64(x), np.float64(logits)
    log_y, log_1my = -np.logaddexp(0.0, -x), -np.logaddexp(0.0, x)
    log_py = (np.log(tau) + logits - (tau + 1.0) * (log_y + log_1my)
              - 2.0 * np.logaddexp(logits - tau * log_y, -tau * log_1my))
    return log_py + log_y + log_1my


def concrete_log_density(log_y, logits, tau):
    """Log density of the Concrete `y` (Maddison et al. 2017, definition 1) given `log y`:
    `(K-1)! tau^(K-1) prod_k(alpha_k y_k^(-tau-1)) / (sum_k alpha_k y_k^(-tau))^K`."""
    log_y, logits = np.float64(log_y), np.float64(logits)
    k = log_y.shape[-1]
    return (math.lgamma(k) + (k - 1) * np.log(tau)
            + np.sum(logits - (tau + 1.0) * log_y, axis=-1)
            - k * _logsumexp(logits - tau * log_y))


def exp_concrete_log_density(x, logits, tau):
    """Log density of the ExpConcrete `x = log y` (Maddison et al. 2017, appendix):
    the Concrete density of `y = exp(x)` times `prod_k y_k`."""
    return concrete_log_density(x, logits, tau) + np.sum(np.float64(x), axis=-1)


def reference_log_density(kind, x, logits, tau):
    if kind == "bernoulli":
        return binary_concrete_log_density(x, logits, tau)
    return exp_concrete_log_density(x, logits, tau)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class ConcreteLatentTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        testing.set_seeds()
        self.rng = np.random.default_rng(0)
        self.logits = self.rng.normal(size=(5, 3, 4)).astype(np.float32)  # (B, steps, D or K)

    def layer(self, kind, **kwargs):
        return latents.ConcreteLatent(kind, **{"seed": 3, **kwargs})

    @parameterized.named_parameters(
        ("bernoulli_mean_mc", dict(kind="bernoulli", kl="mc", prior_probs=0.3,
                                   prior_temperature=0.8)),
        ("bernoulli_mode_straight_through_discrete",
         dict(kind="bernoulli", inference="mode", straight_through=True, kl="discrete",
              prior_probs=0.2)),
        ("categorical_mean_mc", dict(kind="categorical", kl="mc",
                                     prior_probs=[0.1, 0.2, 0.3, 0.4], prior_temperature=1.5)),
        ("categorical_mode_straight_through_discrete",
         dict(kind="categorical", inference="mode", straight_through=True, kl="discrete")),
    )
    def test_layer_harness(self, settings):
        event = (5, 3, 4) if settings["kind"] == "bernoulli" else (5, 3)
        out = testing.run_layer_test(
            self,
            latents.ConcreteLatent,
            dict(temperature=0.7, epsilon=1e-5, seed=2, **settings),
            (self.logits,),
            call_kwargs={"training": False},
            expected_output_shape={
                "kl": event,
                "log_prob": event,
                "logit_sample": (5, 3, 4),
                "logits": (5, 3, 4),
                "probs": (5, 3, 4),
                "sample": (5, 3, 4),
            },
            expected_num_trainable_weights=0,
        )
        self.assertGreater(np.abs(out["kl"]).max(), 0.0)

    @parameterized.named_parameters(*_KINDS)
    def test_layer_harness_with_probs(self, kind):
        probs = self.rng.uniform(size=(5, 3, 4)).astype(np.float32)
        probs[0, 0] = [0.0, 1.0, 0.0, 0.0]  # exact 0s and 1s stay finite
        if kind == "categorical":
            probs /= probs.sum(-1, keepdims=True)
        testing.run_layer_test(
            self,
            latents.ConcreteLatent,
            dict(kind=kind, kl="mc", seed=2),
            (),
            call_kwargs={"probs": probs, "training": False},
            batch_size=5,
            expected_num_trainable_weights=0,
        )

    @parameterized.named_parameters(*_KINDS)
    def test_log_prob_is_concrete_density_of_logit_sample(self, kind):
        tau = 0.6
        out = self.layer(kind, temperature=tau)(self.logits, training=True)
        x = out["logit_sample"].numpy().astype(np.float64)
        if kind == "bernoulli":
            self.assertAllClose(out["sample"], sigmoid(x), atol=1e-6)
        else:
            self.assertAllClose(out["sample"], np.exp(x), atol=1e-6)
            self.assertAllClose(_logsumexp(x), np.zeros((5, 3)), atol=1e-5)  # log-simplex
        expected = reference_log_density(kind, x, self.logits, tau)
        self.assertEqual(out["log_prob"].shape, expected.shape)
        self.assertAllClose(out["log_prob"], expected, rtol=1e-4, atol=1e-4)

    @parameterized.named_parameters(*_KINDS)
    def test_log_prob_is_finite_at_exact_vertices(self, kind):
        # At a low temperature many samples round to exactly 0 and 1 (or a
        # one-hot vertex), where the density of y itself is not finite.
        tau = 0.02
        logits = 3.0 * self.rng.normal(size=(500, 4)).astype(np.float32)
        out = self.layer(kind, temperature=tau, kl="mc")(logits, training=True)
        y = out["sample"].numpy()
        if kind == "bernoulli":
            self.assertGreater(np.sum(y == 0.0), 100)
            self.assertGreater(np.sum(y == 1.0), 100)
            naive = tfd.RelaxedBernoulli(tau, logits=logits).log_prob(y)
        else:
            vertex = np.all((y == 0.0) | (y == 1.0), axis=-1)
            self.assertGreater(vertex.sum(), 100)
            naive = tfd.RelaxedOneHotCategorical(tau, logits=logits).log_prob(y)
        self.assertFalse(np.all(np.isfinite(naive)))
        self.assertTrue(np.all(np.isfinite(out["log_prob"])))
        self.assertTrue(np.all(np.isfinite(out["kl"])))
        expected = reference_log_density(kind, out["logit_sample"].numpy(), logits, tau)
        self.assertAllClose(out["log_prob"], expected, rtol=1e-4, atol=1e-3)

    @parameterized.named_parameters(*_KINDS)
    def test_probs_at_zero_and_one_are_clipped_and_finite(self, kind):
        eps = 1e-4
        if kind == "bernoulli":
            probs = np.array([[0.0, 1.0, 0.5, 0.3]], np.float32)
            clipped = np.clip(probs, eps, 1.0 - eps)
            logits = np.log(clipped) - np.log1p(-clipped)
            expected_probs = clipped
        else:
            probs = np.array([[1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]], np.float32)
            clipped = np.clip(probs, eps, 1.0)
            logits = np.log(clipped)
            expected_probs = clipped / clipped.sum(-1, keepdims=True)
        layer = self.layer(kind, epsilon=eps, kl="mc")
        for training in (False, True):
            probs_var = tf.constant(probs)
            with tf.GradientTape() as tape:
                tape.watch(probs_var)
                out = layer(probs=probs_var, training=training)
                loss = testing.projection_loss([out["sample"], out["kl"], out["log_prob"]])
            for value in out.values():
                self.assertTrue(np.all(np.isfinite(value)))
            self.assertTrue(np.all(np.isfinite(tape.gradient(loss, probs_var))))
            self.assertAllClose(out["logits"], logits, rtol=1e-4)
        self.assertAllClose(layer(probs=probs)["probs"], expected_probs, atol=1e-6)

    @parameterized.named_parameters(*_KINDS)
    def test_samples_approach_vertices_as_temperature_falls(self, kind):
        logits = self.rng.normal(size=(2000, 4)).astype(np.float32)
        distances = []
        for tau in (2.0, 1.0, 0.5, 0.1, 0.01):
            y = self.layer(kind, temperature=tau)(logits, training=True)["sample"].numpy()
            if kind == "bernoulli":
                distances.append(np.mean(np.minimum(y, 1.0 - y)))
            else:
                distances.append(np.mean(1.0 - y.max(axis=-1)))  # L-inf to the nearest vertex
        self.assertTrue(np.all(np.diff(distances) < 0.0), distances)
        self.assertGreater(distances[0], 0.2)
        self.assertLess(distances[-1], 0.01)

    @parameterized.named_parameters(*_KINDS)
    def test_hard_sample_frequencies_match_probs(self, kind):
        n = 20000
        row = np.array([-1.2, 0.0, 0.4, 1.5], np.float32)
        logits = np.tile(row, (n, 1))
        out = self.layer(kind, temperature=0.5, straight_through=True)(logits, training=True)
        hard = out["sample"].numpy()
        self.assertTrue(np.all((hard == 0.0) | (hard == 1.0)))
        if kind == "bernoulli":
            p = sigmoid(row.astype(np.float64))
        else:
            self.assertAllEqual(hard.sum(-1), np.ones(n))
            p = np.exp(row - _logsumexp(row.astype(np.float64)))
        self.assertAllClose(out["probs"][0], p, atol=1e-6)
        tolerance = 4.5 * np.sqrt(p * (1.0 - p) / n)
        self.assertTrue(np.all(np.abs(hard.mean(0) - p) < tolerance), (hard.mean(0), p))

    @parameterized.named_parameters(*_KINDS)
    def test_straight_through_is_hard_with_relaxed_gradient(self, kind):
        logits = tf.constant(self.logits)
        r = self.rng.uniform(-1.0, 1.0, size=self.logits.shape).astype(np.float32)
        outs, grads = [], []
        for straight_through in (True, False):
            layer = self.layer(kind, straight_through=straight_through, seed=5)
            with tf.GradientTape() as tape:
                tape.watch(logits)
                out = layer(logits, training=True)
                loss = tf.reduce_sum(out["sample"] * r)
            outs.append(out)
            grads.append(tape.gradient(loss, logits).numpy())
        hard, relaxed = outs[0]["sample"].numpy(), outs[1]["sample"].numpy()
        if kind == "bernoulli":
            self.assertAllEqual(hard, (relaxed > 0.5).astype(np.float32))
        else:
            self.assertAllEqual(hard, np.eye(4, dtype=np.float32)[relaxed.argmax(-1)])
        self.assertFalse(np.all((relaxed == 0.0) | (relaxed == 1.0)))
        # The density is the relaxed sample's, whatever the forward value.
        self.assertAllEqual(outs[0]["logit_sample"], outs[1]["logit_sample"])
        self.assertAllEqual(outs[0]["log_prob"], outs[1]["log_prob"])
        self.assertGreater(np.abs(grads[0]).max(), 1e-3)
        self.assertAllClose(grads[0], grads[1], rtol=1e-6, atol=1e-7)

    @parameterized.named_parameters(
        ("bernoulli_default", "bernoulli", None),
        ("bernoulli", "bernoulli", 0.2),
        ("categorical_uniform", "categorical", None),
        ("categorical", "categorical", [0.1, 0.2, 0.3, 0.4]),
    )
    def test_discrete_kl_is_closed_form(self, kind, prior_probs):
        layer = self.layer(kind, kl="discrete", prior_probs=prior_probs)
        logits = 2.0 * self.logits.astype(np.float64)
        if kind == "bernoulli":
            q, p = sigmoid(logits), 0.5 if prior_probs is None else prior_probs
            expected = q * np.log(q / p) + (1 - q) * np.log((1 - q) / (1 - p))
        else:
            q = np.exp(logits - _logsumexp(logits)[..., None])
            p = np.full(4, 0.25) if prior_probs is None else np.array(prior_probs)
            expected = np.sum(q * np.log(q / p), axis=-1)
        for training in (False, True):
            out = layer(logits.astype(np.float32), training=training)
            self.assertAllClose(out["kl"], expected, rtol=1e-4, atol=1e-5)
        self.assertGreater(expected.mean(), 0.1)

    def test_bernoulli_mc_kl_matches_numerical_integration(self):
        tau, prior_tau, prior = 0.5, 0.8, 0.3
        row = np.array([-1.5, 0.3, 2.0])
        # KL(q || p) = int q(y) log(q(y) / p(y)) dy with y = sigmoid(x), in float64.
        x = np.linspace(-200.0, 200.0, 400001)[:, None]
        log_q = binary_concrete_log_density(x, row, tau)
        log_p = binary_concrete_log_density(x, np.log(prior / (1 - prior)), prior_tau)
        self.assertAllClose(np.trapezoid(np.exp(log_q), x, axis=0), np.ones(3), atol=1e-8)
        expected = np.trapezoid(np.exp(log_q) * (log_q - log_p), x, axis=0)
        n = 40000
        layer = self.layer("bernoulli", temperature=tau, kl="mc", prior_probs=prior,
                           prior_temperature=prior_tau)
        kl = layer(np.tile(row.astype(np.float32), (n, 1)), training=True)["kl"].numpy()
        tolerance = 4.5 * kl.std(0) / np.sqrt(n)
        self.assertTrue(np.all(np.abs(kl.mean(0) - expected) < tolerance),
                        (kl.mean(0), expected, tolerance))
        self.assertGreater(expected.min(), 0.05)

    def test_categorical_mc_kl_matches_large_sample_reference(self):
        tau, prior_tau = 0.7, 1.2
        row = np.array([1.0, -0.5, 0.2])
        prior = np.array([0.2, 0.3, 0.5])
        # A NumPy reference of 10^6 Gumbel-softmax draws, scored by the
        # Concrete density of y (the log-space Jacobian cancels in the ratio).
        rng = np.random.default_rng(7)
        gumbel = -np.log(-np.log(rng.uniform(size=(1000000, 3))))
        noisy = (row + gumbel) / tau
        log_y = noisy - _logsumexp(noisy)[:, None]
        ratios = (concrete_log_density(log_y, row, tau)
                  - concrete_log_density(log_y, np.log(prior), prior_tau))
        expected, reference_error = ratios.mean(), ratios.std() / 1000.0
        n = 40000
        layer = self.layer("categorical", temperature=tau, kl="mc", prior_probs=list(prior),
                           prior_temperature=prior_tau)
        kl = layer(np.tile(row.astype(np.float32), (n, 1)), training=True)["kl"].numpy()
        tolerance = 4.5 * np.hypot(kl.std() / np.sqrt(n), reference_error)
        self.assertLess(abs(kl.mean() - expected), tolerance, (kl.mean(), expected))
        self.assertGreater(expected, 0.05)

    @parameterized.named_parameters(*_KINDS)
    def test_mc_kl_is_zero_when_posterior_is_prior(self, kind):
        if kind == "bernoulli":
            prior, logits = 0.3, np.full((64, 4), np.log(0.3 / 0.7), np.float32)
        else:
            # Logits are unnormalised: a constant shift is the same distribution.
            prior = [0.1, 0.2, 0.3, 0.4]
            logits = np.tile(np.log(prior) + 2.0, (64, 1)).astype(np.float32)
        layer = self.layer(kind, kl="mc", prior_probs=prior)
        out = layer(logits, training=True)
        self.assertAllClose(out["kl"], np.zeros(out["kl"].shape), atol=1e-5)
        other = self.layer(kind, kl="mc", prior_probs=prior, prior_temperature=0.2)
        self.assertGreater(np.mean(other(logits, training=True)["kl"]), 0.1)

    @parameterized.named_parameters(*_KINDS)
    def test_kl_none_is_zero(self, kind):
        out = self.layer(kind, kl="none")(self.logits, training=True)
        self.assertAllEqual(out["kl"], np.zeros(out["log_prob"].shape))

    @parameterized.named_parameters(
        ("bernoulli_mean", "bernoulli", "mean"),
        ("bernoulli_mode", "bernoulli", "mode"),
        ("categorical_mean", "categorical", "mean"),
        ("categorical_mode", "categorical", "mode"),
    )
    def test_inference_is_deterministic(self, kind, inference):
        layer = self.layer(kind, inference=inference, kl="mc")
        state = layer.seed_generator.state.numpy()
        a, b = layer(self.logits), layer(self.logits, training=False)
        self.assertAllEqual(layer.seed_generator.state, state)  # no noise drawn
        for key in a:
            self.assertAllEqual(a[key], b[key])
        logits = self.logits.astype(np.float64)
        if kind == "bernoulli":
            probs = sigmoid(logits)
            mode = (logits > 0).astype(np.float64)
        else:
            probs = np.exp(logits - _logsumexp(logits)[..., None])
            mode = np.eye(4)[logits.argmax(-1)]
        self.assertAllClose(a["probs"], probs, atol=1e-6)
        self.assertAllClose(a["sample"], probs if inference == "mean" else mode, atol=1e-6)
        self.assertTrue(np.all(np.isfinite(a["log_prob"])))

    @parameterized.named_parameters(*_KINDS)
    def test_sampling_is_seeded(self, kind):
        a = self.layer(kind, seed=9)(self.logits, training=True)["sample"]
        b = self.layer(kind, seed=9)(self.logits, training=True)["sample"]
        c = self.layer(kind, seed=10)(self.logits, training=True)["sample"]
        self.assertAllEqual(a, b)
        self.assertGreater(np.abs(a - c).max(), 0.0)
        layer = self.layer(kind, seed=9)
        first, second = layer(self.logits, training=True), layer(self.logits, training=True)
        self.assertGreater(np.abs(first["sample"] - second["sample"]).max(), 0.0)

    @parameterized.named_parameters(*_KINDS)
    def test_noise_seed_samples_repeatably_whatever_training(self, kind):
        layer = self.layer(kind, seed=9)
        seed = tf.constant([3, 4])
        a = layer(self.logits, training=False, noise_seed=seed)
        b = layer(self.logits, training=True, noise_seed=seed)
        c = layer(self.logits, training=False, noise_seed=seed + 1)
        self.assertAllEqual(a["sample"], b["sample"])
        self.assertGreater(np.abs(a["sample"] - c["sample"]).max(), 0.0)
        # A sample, not the inference value.
        self.assertGreater(np.abs(a["sample"] - a["probs"]).max(), 1e-3)

    @parameterized.named_parameters(
        ("bernoulli_mc", "bernoulli", "mc", 0.2), ("bernoulli_discrete", "bernoulli", "discrete", 0.2),
        ("categorical_mc", "categorical", "mc", [0.1, 0.2, 0.3, 0.4]),
        ("categorical_discrete", "categorical", "discrete", [0.1, 0.2, 0.3, 0.4]))
    def test_prior_probs_call_argument_equals_the_constructor_prior(self, kind, kl, prior):
        seed = tf.constant([5, 6])
        fixed = self.layer(kind, kl=kl, prior_probs=prior)(self.logits, noise_seed=seed)
        given = self.layer(kind, kl=kl)(self.logits, noise_seed=seed,
                                        prior_probs=tf.constant(prior, tf.float32))
        self.assertAllClose(given["kl"], fixed["kl"], rtol=1e-5, atol=1e-6)
        default = self.layer(kind, kl=kl)(self.logits, noise_seed=seed)
        self.assertGreater(np.abs(default["kl"] - fixed["kl"]).max(), 1e-3)

    @parameterized.named_parameters(*_KINDS)
    def test_training_with_unknown_batch_in_tf_function_and_xla(self, kind):
        tau = 0.6
        expected = self.layer(kind, temperature=tau, kl="mc", seed=4)(self.logits, training=True)
        layer = self.layer(kind, temperature=tau, kl="mc", seed=4)

        @tf.function(input_signature=[tf.TensorSpec([None, 3, 4], tf.float32)])
        def sample(logits):
            return layer(logits, training=True)

        out = sample(self.logits)
        for key in expected:
            self.assertAllClose(out[key], expected[key], atol=1e-5)
        event = (1, 3, 4) if kind == "bernoulli" else (1, 3)
        self.assertEqual(sample(self.logits[:1])["kl"].shape, event)

        @tf.function(jit_compile=True)
        def sample_and_grad(logits):
            with tf.GradientTape() as tape:
                tape.watch(logits)
                out = layer(logits, training=True)
                loss = tf.reduce_sum(out["sample"] * tf.range(4, dtype=tf.float32))
            return out, tape.gradient(loss, logits)

        out, grad = sample_and_grad(tf.constant(self.logits))
        self.assertAllClose(
            out["log_prob"],
            reference_log_density(kind, out["logit_sample"].numpy(), self.logits, tau),
            rtol=1e-4, atol=1e-4,
        )
        self.assertTrue(np.all(np.isfinite(grad)))
        self.assertGreater(np.abs(grad).max(), 1e-3)

    @parameterized.named_parameters(
        ("kind", dict(kind="gaussian"), "`kind` must be one of"),
        ("temperature_zero", dict(temperature=0.0), "`temperature` must be > 0"),
        ("temperature_negative", dict(temperature=-1.0), "`temperature` must be > 0"),
        ("prior_temperature", dict(kl="mc", prior_temperature=0.0),
         "`prior_temperature` must be > 0"),
        ("inference", dict(inference="sample"), "`inference` must be one of"),
        ("kl", dict(kl="analytic"), "`kl` must be one of"),
        ("epsilon", dict(epsilon=0.0), "`epsilon` must be in \\(0, 0.5\\)"),
        ("bernoulli_prior_list", dict(prior_probs=[0.5, 0.5]),
         "A bernoulli `prior_probs` must be a float in \\(0, 1\\)"),
        ("bernoulli_prior_one", dict(prior_probs=1.0), "must be a float in \\(0, 1\\)"),
        ("categorical_prior_scalar", dict(kind="categorical", prior_probs=0.5),
         "A categorical `prior_probs` must be a list of K probabilities"),
        ("categorical_prior_sum", dict(kind="categorical", prior_probs=[0.5, 0.6]),
         "positive probabilities summing to 1"),
        ("categorical_prior_zero", dict(kind="categorical", prior_probs=[1.0, 0.0]),
         "positive probabilities summing to 1"),
    )
    def test_invalid_settings_raise(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            latents.ConcreteLatent(**kwargs)

    @parameterized.named_parameters(
        ("both", dict(logits=np.zeros((2, 4), np.float32), probs=np.zeros((2, 4), np.float32)),
         "Pass exactly one of `logits` and `probs`"),
        ("neither", dict(), "Pass exactly one of `logits` and `probs`"),
    )
    def test_logits_xor_probs(self, inputs, message):
        with self.assertRaisesRegex(ValueError, message):
            latents.ConcreteLatent()(**inputs)

    def test_prior_length_must_match_classes(self):
        layer = latents.ConcreteLatent("categorical", prior_probs=[0.5, 0.5])
        with self.assertRaisesRegex(
            ValueError, "`prior_probs` has 2 probabilities but the input has K=4 classes"
        ):
            layer(self.logits)
        with self.assertRaisesRegex(ValueError, "needs K >= 2 classes on the last axis"):
            latents.ConcreteLatent("categorical")(np.zeros((2, 1), np.float32))


if __name__ == "__main__":
    tf.test.main()
