"""Gaussian latents through tensorflow-probability distributions."""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

LATENT_COSTS = ("none", "mu", "full")


@keras.saving.register_keras_serializable(package="tfpaint")
class GaussianLatent(keras.layers.Layer):
    """A Gaussian code `z` with the variations of the thesis' ablation grid.

    `mu = W_mu h + b`; with `sigma=None` the scale is learned,
    `sigma = exp(W_s h + b_s)`, otherwise it is the fixed float given. Then:
    - `stochastic=True`: `z ~ N(mu, sigma)`, reparameterised, in training
      (the mean at inference); `stochastic=False`: `z = mu`.
    - `latent_cost="full"`: `KL(N(mu, sigma) || N(0, 1))` summed over units
      (VAE, eq 2.2); `"mu"`: only its `mu` part, `0.5 * sum mu^2` (fixed sigma,
      or a deterministic z); `"none"`: 0.
    A stochastic code with fixed sigma and no cost is the denoising Painter.
    These are the five latent settings of thesis fig 5.9 (each with MSE or
    cross-entropy reconstruction).

    Args:
        units: size of `z`.
        stochastic: whether `z` is sampled in training.
        sigma: fixed standard deviation, or None to learn it.
        latent_cost: "none", "mu" or "full".
        seed: seed of the noise.

    Call arguments:
        h: `(batch, features)`.
        training: whether to sample.

    Returns:
        Dict with `z`, `mu`, `sigma` `(batch, units)` and `latent_cost`
        `(batch,)`.

    Reference:
        Thesis section 5.3 and fig 5.9; Kingma and Welling 2014.
    """

    def __init__(
        self, units, stochastic=True, sigma=None, latent_cost="full", seed=None, **kwargs
    ):
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"`units` must be >= 1. Received: {units}")
        if latent_cost not in LATENT_COSTS:
            raise ValueError(
                f"`latent_cost` must be one of {LATENT_COSTS}. Received: {latent_cost!r}"
            )
        if sigma is not None and float(sigma) <= 0:
            raise ValueError(f"A fixed `sigma` must be positive. Received: {sigma}")
        if latent_cost == "full" and (sigma is not None or not stochastic):
            raise ValueError(
                "latent_cost='full' (the KL of a VAE) needs a stochastic latent with "
                "a learned sigma (sigma=None); use 'mu' for a fixed sigma or a "
                "deterministic latent."
            )
        self.units = int(units)
        self.stochastic = bool(stochastic)
        self.sigma = None if sigma is None else float(sigma)
        self.latent_cost = latent_cost
        self.seed = seed
        init = keras.initializers.RandomNormal(stddev=0.05, seed=seed)
        self.mu_dense = keras.layers.Dense(self.units, kernel_initializer=init, name="mu")
        self.log_sigma_dense = None
        # A deterministic code never uses its scale, so it gets no scale head.
        if self.sigma is None and self.stochastic:
            self.log_sigma_dense = keras.layers.Dense(
                self.units, kernel_initializer=init, name="log_sigma"
            )
        self.seed_generator = keras.random.SeedGenerator(seed)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "stochastic": self.stochastic,
                "sigma": self.sigma,
                "latent_cost": self.latent_cost,
                "seed": self.seed,
            }
        )
        return config

    def build(self, h_shape):
        self.mu_dense.build(h_shape)
        if self.log_sigma_dense is not None:
            self.log_sigma_dense.build(h_shape)

    def call(self, h, training=False):
        mu = self.mu_dense(h)  # (B, Z)
        if self.log_sigma_dense is None:
            fixed = 0.0 if self.sigma is None else self.sigma
            sigma = tf.fill(tf.shape(mu), tf.constant(fixed, mu.dtype))
        else:
            sigma = tf.exp(self.log_sigma_dense(h))  # (B, Z)
        q = tfd.Normal(loc=mu, scale=sigma)  # scale 0 only when deterministic
        if self.stochastic and training:
            seed = tf.cast(self.seed_generator.next(), tf.int32)
            z = q.sample(seed=seed)  # (B, Z)
        else:
            z = mu
        if self.latent_cost == "full":
            cost = tf.reduce_sum(tfd.kl_divergence(q, tfd.Normal(0.0, 1.0)), axis=-1)
        elif self.latent_cost == "mu":
            cost = 0.5 * tf.reduce_sum(tf.square(mu), axis=-1)
        else:
            cost = tf.zeros(tf.shape(mu)[:1], mu.dtype)
        return {"z": z, "mu": mu, "sigma": sigma, "latent_cost": cost}
