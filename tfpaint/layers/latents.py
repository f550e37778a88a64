"""Gaussian and Concrete latents through tensorflow-probability distributions."""

import math

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

LATENT_COSTS = ("none", "mu", "full")
CONCRETE_KINDS = ("bernoulli", "categorical")
CONCRETE_KLS = ("none", "mc", "discrete")
CONCRETE_INFERENCE = ("mean", "mode")


def gaussian_kl(loc, scale, prior_loc, prior_scale):
    """`KL(N(loc, scale) || N(prior_loc, prior_scale))` of diagonal Gaussians,
    summed over the last axis.

    `sum_d log(s_p / s) + (s^2 + (mu - mu_p)^2) / (2 s_p^2) - 1/2`: the
    closed form both AIR's z_where (against a fixed prior) and DM-VAE's
    epsilon (against a prior computed from the chosen memory slot) are scored
    with. Arguments broadcast against each other.

    Args:
        loc, scale: the posterior's `(..., D)` means and standard deviations.
        prior_loc, prior_scale: the prior's, broadcastable to them.

    Returns:
        `(...)` KL in nats.
    """
    return tf.reduce_sum(
        tf.math.log(prior_scale / scale)
        + (tf.square(scale) + tf.square(loc - prior_loc)) / (2.0 * tf.square(prior_scale))
        - 0.5, axis=-1)


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
        training: whether to sample (with the layer's own noise stream).
        noise_seed: optional `(2,)` int seed: sample with this stateless
            seed instead, whatever `training` (an evaluation's fixed noise,
            which leaves the training stream untouched).
        noise: optional `(batch, units)` standard normal draws, drawn by the
            caller: `z = mu + sigma * noise`, whatever `training` (a
            recurrent model draws every step's noise in one op).

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

    def call(self, h, training=False, noise_seed=None, noise=None):
        if noise is not None and noise_seed is not None:
            raise ValueError("Pass `noise` or `noise_seed`, not both.")
        if noise is not None and not self.stochastic:
            raise ValueError("`noise` was given to a deterministic latent (stochastic=False).")
        mu = self.mu_dense(h)  # (B, Z)
        if self.log_sigma_dense is None:
            fixed = 0.0 if self.sigma is None else self.sigma
            sigma = tf.fill(tf.shape(mu), tf.constant(fixed, mu.dtype))
        else:
            sigma = tf.exp(self.log_sigma_dense(h))  # (B, Z)
        q = tfd.Normal(loc=mu, scale=sigma)  # scale 0 only when deterministic
        if noise is not None:
            z = mu + sigma * tf.cast(noise, mu.dtype)  # (B, Z), reparameterised
        elif self.stochastic and (training or noise_seed is not None):
            if noise_seed is None:
                noise_seed = self.seed_generator.next()
            z = q.sample(seed=tf.cast(noise_seed, tf.int32))  # (B, Z)
        else:
            z = mu
        if self.latent_cost == "full":
            cost = tf.reduce_sum(tfd.kl_divergence(q, tfd.Normal(0.0, 1.0)), axis=-1)
        elif self.latent_cost == "mu":
            cost = 0.5 * tf.reduce_sum(tf.square(mu), axis=-1)
        else:
            cost = tf.zeros(tf.shape(mu)[:1], mu.dtype)
        return {"z": z, "mu": mu, "sigma": sigma, "latent_cost": cost}


@keras.saving.register_keras_serializable(package="tfpaint")
class ConcreteLatent(keras.layers.Layer):
    """A relaxed Bernoulli or relaxed one-hot categorical code (Concrete, Gumbel-softmax).

    With logits `l` and temperature `tau`, training draws, reparameterised:
    - `kind="bernoulli"`: `x = (l + L) / tau`, `L ~ Logistic(0, 1)`, and
      `y = sigmoid(x)` in (0, 1) per unit (the binary Concrete).
    - `kind="categorical"`: `x = log_softmax((l + G) / tau)`, `G ~ Gumbel(0, 1)`
      per class, and `y = exp(x)` on the simplex of the last axis (Concrete).
    `x`, the logit sample, is where densities are evaluated:
    `x ~ Logistic(l / tau, 1 / tau)` or `ExpConcrete(l, tau)`, finite even
    where `y` rounds to exactly 0, 1 or a one-hot vertex. The map `x -> y` is
    the same for posterior and prior, so `log q(x) - log p(x)` is also the
    log-ratio of the relaxed `y`s, and the KL is the same in both spaces.
    `straight_through=True` returns the hard `y > 0.5` (`x > 0`) or one-hot
    `argmax(y)` in the forward pass, with the relaxed sample's gradient. At
    inference the code is deterministic: the probabilities
    (`inference="mean"`, the expected hard code) or the most likely hard code
    (`"mode"`). `kl` against a prior with probabilities `prior_probs`:
    `"mc"`, `log q(x) - log p(x)` with the prior Concrete at
    `prior_temperature` (in training a one-sample unbiased estimate of the
    relaxed KL); `"discrete"`, the closed-form KL of the underlying
    Bernoulli / categorical distributions (independent of `x`); or `"none"`.

    Args:
        kind: "bernoulli" or "categorical".
        temperature: tau > 0; the code tends to the discrete one as tau -> 0.
        straight_through: whether training returns the hard sample, with the
            relaxed sample's gradient.
        inference: "mean" or "mode": the value returned when not training.
        kl: "none", "mc" or "discrete".
        prior_probs: the prior's probabilities: a float in (0, 1) for
            "bernoulli" (default 0.5), a list of K positive floats summing to
            1 for "categorical" (default uniform).
        prior_temperature: the prior's temperature for `kl="mc"` (default:
            `temperature`).
        epsilon: `probs` are clipped to `[epsilon, 1 - epsilon]` before their
            logit, so exact 0s and 1s give finite logits and gradients (and
            the "mode" code is scored at the clipped value). Logits are used
            as given.
        seed: seed of the noise.

    Call arguments:
        logits: `(batch, ..., D)`: D units for "bernoulli", D = K classes
            (the last axis) for "categorical".
        probs: the same, as probabilities; give exactly one of the two.
        training: whether to sample.
        noise_seed: optional `(2,)` int seed: sample with this stateless
            seed, whatever `training` (an evaluation's fixed noise).
        prior_probs: optional, for this call, the prior's probabilities as
            a tensor broadcastable to the input (instead of the constructor's
            `prior_probs`; an annealed prior, a prior per unit).

    Returns:
        Dict with, of the input's shape `(batch, ..., D)`: `sample`, `probs`,
        `logits` (from `probs` if given; not normalised for "categorical")
        and `logit_sample` (`x`; with straight-through still the relaxed one;
        at inference the logit (log for "categorical") of `sample`:
        `logits` or `log_softmax(logits)` for "mean", the clipped hard value
        for "mode"); and, one value per event, `log_prob` (the density of
        `logit_sample`) and `kl`: `(batch, ..., D)` for "bernoulli" (each
        unit is an event), `(batch, ...)` for "categorical" (each one-hot
        vector is). Nothing is summed across units, steps or pixels: reduce
        the axes that make one latent yourself (AIR's z_pres `(batch, steps,
        1)` gives a per-step KL `(batch, steps, 1)`). At inference `log_prob`
        and an "mc" `kl` are deterministic plug-in values at `sample`, not
        estimates: score samples with `training=True`.

    Reference:
        Maddison, Mnih and Teh 2017, "The Concrete distribution: a continuous
        relaxation of discrete random variables" (the Concrete, binary
        Concrete and log-space ExpConcrete densities); Jang, Gu and Poole
        2017, "Categorical reparameterization with Gumbel-softmax"
        (straight-through); STAWM eq 4 (the Bernoulli canvas's mask).
    """

    def __init__(
        self,
        kind="bernoulli",
        temperature=0.5,
        straight_through=False,
        inference="mean",
        kl="none",
        prior_probs=None,
        prior_temperature=None,
        epsilon=1e-6,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if kind not in CONCRETE_KINDS:
            raise ValueError(f"`kind` must be one of {CONCRETE_KINDS}. Received: {kind!r}")
        if inference not in CONCRETE_INFERENCE:
            raise ValueError(
                f"`inference` must be one of {CONCRETE_INFERENCE}. Received: {inference!r}"
            )
        if kl not in CONCRETE_KLS:
            raise ValueError(f"`kl` must be one of {CONCRETE_KLS}. Received: {kl!r}")
        if not float(temperature) > 0.0:
            raise ValueError(f"`temperature` must be > 0. Received: temperature={temperature}")
        if prior_temperature is not None and not float(prior_temperature) > 0.0:
            raise ValueError(
                f"`prior_temperature` must be > 0. Received: prior_temperature={prior_temperature}"
            )
        if not 0.0 < float(epsilon) < 0.5:
            raise ValueError(f"`epsilon` must be in (0, 0.5). Received: epsilon={epsilon}")
        if prior_probs is not None:
            if kind == "bernoulli":
                if np.ndim(prior_probs) != 0 or not 0.0 < float(prior_probs) < 1.0:
                    raise ValueError(
                        "A bernoulli `prior_probs` must be a float in (0, 1). "
                        f"Received: prior_probs={prior_probs!r}"
                    )
                prior_probs = float(prior_probs)
            else:
                if np.ndim(prior_probs) != 1:
                    raise ValueError(
                        "A categorical `prior_probs` must be a list of K probabilities. "
                        f"Received: prior_probs={prior_probs!r}"
                    )
                prior_probs = [float(p) for p in prior_probs]
                if (len(prior_probs) < 2 or min(prior_probs) <= 0.0
                        or abs(sum(prior_probs) - 1.0) > 1e-5):
                    raise ValueError(
                        "A categorical `prior_probs` must hold K >= 2 positive "
                        f"probabilities summing to 1. Received: prior_probs={prior_probs}"
                    )
        self.kind = kind
        self.temperature = float(temperature)
        self.straight_through = bool(straight_through)
        self.inference = inference
        self.kl = kl
        self.prior_probs = prior_probs
        self.prior_temperature = None if prior_temperature is None else float(prior_temperature)
        self.epsilon = float(epsilon)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kind": self.kind,
                "temperature": self.temperature,
                "straight_through": self.straight_through,
                "inference": self.inference,
                "kl": self.kl,
                "prior_probs": self.prior_probs,
                "prior_temperature": self.prior_temperature,
                "epsilon": self.epsilon,
                "seed": self.seed,
            }
        )
        return config

    def build(self, input_shape):
        # The classes of a categorical prior must match the last axis.
        classes = input_shape[-1] if input_shape else None
        if self.kind == "categorical":
            if classes is not None and classes < 2:
                raise ValueError(
                    "A categorical latent needs K >= 2 classes on the last axis. "
                    f"Received: shape={tuple(input_shape)}"
                )
            if (self.prior_probs is not None and classes is not None
                    and len(self.prior_probs) != classes):
                raise ValueError(
                    f"`prior_probs` has {len(self.prior_probs)} probabilities but the "
                    f"input has K={classes} classes on its last axis."
                )

    def _prior_logits(self, classes, dtype):
        if self.kind == "bernoulli":
            p = 0.5 if self.prior_probs is None else self.prior_probs
            return tf.constant(math.log(p) - math.log1p(-p), dtype)
        if self.prior_probs is None:
            return tf.zeros([classes], dtype)  # uniform
        return tf.constant([math.log(p) for p in self.prior_probs], dtype)  # (K,)

    def _relaxed(self, logits, temperature):
        """The distribution of the logit sample `x`."""
        tau = tf.constant(temperature, logits.dtype)
        if self.kind == "bernoulli":
            return tfd.Logistic(loc=logits / tau, scale=1.0 / tau)
        return tfd.ExpRelaxedOneHotCategorical(tau, logits=logits)

    def _hard(self, x):
        """The hard code of logits or of a logit sample: `x > 0` or one-hot argmax."""
        if self.kind == "bernoulli":
            return tf.cast(x > 0.0, x.dtype)
        return tf.one_hot(tf.argmax(x, axis=-1), tf.shape(x)[-1], dtype=x.dtype)

    def call(self, logits=None, probs=None, training=False, noise_seed=None, prior_probs=None):
        # Shapes: `(B, ..., D)`, D units ("bernoulli") or K classes
        # ("categorical"); `(B, ..., E)` per event: D units, or nothing for K.
        if (logits is None) == (probs is None):
            raise ValueError("Pass exactly one of `logits` and `probs`.")
        eps = self.epsilon
        if probs is not None:
            # Clip before the log: a clip after it passes NaN gradients at 0 and 1.
            probs = tf.cast(probs, self.compute_dtype)
            if self.kind == "bernoulli":
                probs = tf.clip_by_value(probs, eps, 1.0 - eps)
                logits = tf.math.log(probs) - tf.math.log1p(-probs)  # (B, ..., D)
            else:
                logits = tf.math.log(tf.clip_by_value(probs, eps, 1.0))  # (B, ..., D)
        logits = tf.cast(logits, self.compute_dtype)  # (B, ..., D)
        if self.kind == "bernoulli":
            probs = tf.sigmoid(logits)  # (B, ..., D)
        else:
            probs = tf.nn.softmax(logits, axis=-1)  # (B, ..., D)
        q = self._relaxed(logits, self.temperature)
        if training or noise_seed is not None:
            seed = tf.cast(self.seed_generator.next() if noise_seed is None else noise_seed,
                           tf.int32)
            x = q.sample(seed=seed)  # (B, ..., D) the logit sample
            relaxed = tf.sigmoid(x) if self.kind == "bernoulli" else tf.exp(x)  # (B, ..., D)
            if self.straight_through:
                # Exactly hard forward (h + 0); the relaxed sample's gradient backward.
                sample = self._hard(x) + (relaxed - tf.stop_gradient(relaxed))  # (B, ..., D)
            else:
                sample = relaxed
        elif self.inference == "mean":
            sample = probs
            # The logit of `probs`, without a round trip through the sigmoid.
            x = logits if self.kind == "bernoulli" else tf.nn.log_softmax(logits)  # (B, ..., D)
        else:
            sample = self._hard(logits)  # (B, ..., D)
            # The logit (log) of the hard value clipped to [eps, 1 - eps].
            if self.kind == "bernoulli":
                x = (2.0 * sample - 1.0) * (math.log1p(-eps) - math.log(eps))  # (B, ..., D)
            else:
                x = (1.0 - sample) * math.log(eps)  # (B, ..., D)
        log_prob = q.log_prob(x)  # (B, ..., E)
        if prior_probs is None:
            prior_logits = self._prior_logits(tf.shape(logits)[-1], logits.dtype)  # () or (K,)
        else:
            prior_probs = tf.cast(prior_probs, logits.dtype)
            if self.kind == "bernoulli":
                prior_probs = tf.clip_by_value(prior_probs, eps, 1.0 - eps)
                prior_logits = tf.math.log(prior_probs) - tf.math.log1p(-prior_probs)
            else:
                prior_logits = tf.math.log(tf.clip_by_value(prior_probs, eps, 1.0))
        if self.kl == "mc":
            prior_tau = self.prior_temperature or self.temperature
            prior = self._relaxed(tf.ones_like(logits) * prior_logits, prior_tau)
            kl = log_prob - prior.log_prob(x)  # (B, ..., E)
        elif self.kl == "discrete":
            if self.kind == "bernoulli":
                q_discrete = tfd.Bernoulli(logits=logits)
                p_discrete = tfd.Bernoulli(logits=prior_logits)
            else:
                q_discrete = tfd.Categorical(logits=logits)
                p_discrete = tfd.Categorical(logits=prior_logits)
            kl = tfd.kl_divergence(q_discrete, p_discrete)  # (B, ..., E)
        else:
            kl = tf.zeros_like(log_prob)  # (B, ..., E)
        return {
            "sample": sample,
            "probs": probs,
            "logits": logits,
            "logit_sample": x,
            "log_prob": log_prob,
            "kl": kl,
        }
