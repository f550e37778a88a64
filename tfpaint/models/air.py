"""AIR: Attend, Infer, Repeat (Eslami et al. 2016), on the shared layers.

At most N steps. Step i reads what is still unexplained, the image minus the
canvas so far, with the earlier step's latents, into an LSTM, and infers:

    z_pres_i  ~ Bernoulli(rho_i * z_pres_{i-1})     (is there one more object?)
    z_where_i ~ N(.)  (log scale, x, y): theta_i = [s, 0, x; 0, s, y]
    g_i       = ST(image, theta_i)                   (a G x G glimpse)
    z_what_i  ~ N(.)  from g_i (the shared Gaussian latent layer)
    y_i       = sigmoid(decoder(z_what_i))           (the glimpse, reconstructed)
    canvas_i  = canvas_{i-1} + z_pres_i ST^{-1}(y_i, theta_i)

The likelihood is Gaussian with a fixed scale. Steps after the first
z_pres = 0 are masked out of every term (`estimators.presence_mask`); the
count prior is the truncated geometric of `estimators.geometric_count_log_prob`.
z_pres is discrete; its gradient is the score-function estimate with a
data-dependent baseline (NVIL), `AIR.loss_terms`.
"""

import math

import keras
import tensorflow as tf

from tfpaint import estimators
from tfpaint.layers import latents
from tfpaint.layers import spatial_transformer as st
from tfpaint.models import checks

_LOG_2PI = math.log(2.0 * math.pi)


@keras.saving.register_keras_serializable(package="tfpaint")
class AIR(keras.Model):
    """AIR: a variable number of objects, each attended, encoded and written back.

    Args:
        image_shape: `(height, width, channels)`.
        max_steps: N, the most objects a scene is explained with.
        glimpse_size: G, the side of the glimpse read and written.
        rnn_units: the inference LSTM's width (256 in the paper).
        hidden_units: the width of the z_what encoder's and decoder's hidden
            layer (and the baseline network's).
        what_units: the size of z_what (50 in the paper).
        presence_prob: the count prior's presence probability q (each
            counted step is present with probability q; 0.01 in pyro's
            tutorial). A non-trainable weight, so a trainer may anneal it.
        where_prior: `(log-scale mean, log-scale sd, shift sd)` of the
            z_where prior, the shifts centred on 0.
        likelihood_scale: sigma of the Gaussian likelihood of each pixel.
        decoder_bias: the starting bias of the decoder's logits (pyro's
            tutorial uses -2, so an unexplained glimpse starts nearly blank).
        seed: seed of the weights and the noise.

    Call arguments:
        images: `(batch, height, width, channels)` in [0, 1].
        training: whether to sample the latents (else their means; z_pres
            then is `rho > 0.5`).
        noise_seed: optional `(2,)` int seed: sample with this stateless seed
            whatever `training` (an evaluation's fixed noise).

    Returns:
        Dict: `canvas` `(B, H, W, C)` the reconstruction; `canvases` `(B, N,
        H, W, C)` after each step; `glimpses` and `reconstructions` `(B, N,
        G, G, C)`; `z_pres`, `presence_probs`, `mask` `(B, N)` (`mask`: the
        steps that count); `z_where` `(B, N, 3)` and its posterior's
        `where_loc`, `where_scale`; `theta` `(B, N, 6)`;
        `boxes` `(B, N, 4)` `(x0, y0, x1, y1)` in pixels; `z_what` `(B, N,
        what_units)`; `count` `(B,)` present steps; per image `(B,)`:
        `log_likelihood`, `kl_what`, `kl_where`, `kl_pres` (the MC estimate
        log q(z_pres) - log p(z_pres)), `log_q_pres` and `elbo`; `baseline`
        `(B,)` the data-dependent baseline of the score-function gradient.

    Reference:
        Eslami et al., "Attend, Infer, Repeat: Fast Scene Understanding with
        Generative Models", NIPS 2016, sections 2-3; thesis section 2.2.3.
    """

    def __init__(
        self,
        image_shape=(50, 50, 1),
        max_steps=3,
        glimpse_size=20,
        rnn_units=256,
        hidden_units=200,
        what_units=50,
        presence_prob=0.01,
        where_prior=(math.log(0.4), 0.5, 1.0),
        likelihood_scale=0.3,
        decoder_bias=-2.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        image_shape = checks.image_shape(image_shape)
        checks.positive_ints(max_steps=max_steps, glimpse_size=glimpse_size,
                             rnn_units=rnn_units, hidden_units=hidden_units,
                             what_units=what_units)
        if not 0.0 < float(presence_prob) < 1.0:
            raise ValueError(f"`presence_prob` must be in (0, 1). Received: {presence_prob}")
        where_prior = tuple(float(v) for v in where_prior)
        if len(where_prior) != 3 or min(where_prior[1:]) <= 0.0:
            raise ValueError("`where_prior` must be (log-scale mean, log-scale sd > 0, shift "
                             f"sd > 0). Received: {where_prior}")
        if not float(likelihood_scale) > 0.0:
            raise ValueError(f"`likelihood_scale` must be > 0. Received: {likelihood_scale}")
        self.image_shape = image_shape
        self.max_steps = int(max_steps)
        self.glimpse_size = int(glimpse_size)
        self.rnn_units = int(rnn_units)
        self.hidden_units = int(hidden_units)
        self.what_units = int(what_units)
        self.initial_presence_prob = float(presence_prob)
        self.where_prior = where_prior
        self.likelihood_scale = float(likelihood_scale)
        self.decoder_bias = float(decoder_bias)
        self.seed = seed
        height, width, channels = image_shape
        glimpse = self.glimpse_size ** 2 * channels
        init = lambda i: keras.initializers.GlorotUniform(
            seed=None if seed is None else seed + 31 * i)
        small = lambda i: keras.initializers.RandomNormal(
            stddev=0.01, seed=None if seed is None else seed + 31 * i)

        self.rnn = keras.layers.LSTMCell(self.rnn_units, kernel_initializer=init(1),
                                         recurrent_initializer=keras.initializers.Orthogonal(
                                             seed=None if seed is None else seed + 7),
                                         name="rnn")
        # z_pres: one logit; z_where: (log s, x, y) means and log-sds. They
        # start near the prior: a window of 0.4 of the image at the centre.
        self.pres_head = keras.layers.Dense(1, kernel_initializer=small(2),
                                            bias_initializer="zeros", name="pres_head")
        self.where_head = keras.layers.Dense(
            6, kernel_initializer=small(3),
            bias_initializer=keras.initializers.Constant(
                [where_prior[0], 0.0, 0.0, -1.0, -1.0, -1.0]),
            name="where_head")
        self.reader = st.SpatialTransformer((self.glimpse_size,) * 2, allow_skew=False,
                                            name="reader")
        self.writer = st.SpatialTransformer((height, width), allow_skew=False, inverse=True,
                                            name="writer")
        self.encoder = keras.layers.Dense(self.hidden_units, activation="relu",
                                          kernel_initializer=init(4), name="what_encoder")
        self.what = latents.GaussianLatent(self.what_units, latent_cost="full", seed=seed,
                                           name="what")
        self.decoder_hidden = keras.layers.Dense(self.hidden_units, activation="relu",
                                                 kernel_initializer=init(5),
                                                 name="decoder_hidden")
        self.decoder_out = keras.layers.Dense(
            glimpse, kernel_initializer=init(6),
            bias_initializer=keras.initializers.Constant(self.decoder_bias), name="decoder_out")
        self.baseline_net = keras.Sequential(
            [keras.layers.Dense(self.hidden_units, activation="relu",
                                kernel_initializer=init(7)),
             keras.layers.Dense(1, kernel_initializer=small(8))], name="baseline")
        self.seed_generator = keras.random.SeedGenerator(seed)

    def get_config(self):
        return {
            "name": self.name,
            "image_shape": self.image_shape,
            "max_steps": self.max_steps,
            "glimpse_size": self.glimpse_size,
            "rnn_units": self.rnn_units,
            "hidden_units": self.hidden_units,
            "what_units": self.what_units,
            "presence_prob": self.initial_presence_prob,
            "where_prior": self.where_prior,
            "likelihood_scale": self.likelihood_scale,
            "decoder_bias": self.decoder_bias,
            "seed": self.seed,
        }

    def build(self, input_shape=None):
        height, width, channels = self.image_shape
        pixels = height * width * channels
        step_input = pixels + 3 + self.what_units + 1
        self.rnn.build((None, step_input))
        self.pres_head.build((None, self.rnn_units))
        self.where_head.build((None, self.rnn_units))
        self.encoder.build((None, self.glimpse_size ** 2 * channels))
        self.what.build((None, self.hidden_units))
        self.decoder_hidden.build((None, self.what_units))
        self.decoder_out.build((None, self.hidden_units))
        self.baseline_net.build((None, pixels))
        # Assigned inside a distributed training step when annealed: every
        # replica computes the same value, the first one's is kept.
        self.presence_prob = self.add_weight(
            name="presence_prob", shape=(), trainable=False,
            initializer=keras.initializers.Constant(self.initial_presence_prob),
            aggregation="only_first_replica")
        self.built = True

    def call(self, images, training=False, noise_seed=None):
        images = checks.float_images(images, self.image_shape, self.compute_dtype)
        dtype = images.dtype
        batch = tf.shape(images)[0]
        height, width, channels = self.image_shape
        g = self.glimpse_size
        sample = bool(training) or noise_seed is not None
        if sample:
            seed = self.seed_generator.next() if noise_seed is None else noise_seed
            seed = tf.cast(seed, tf.int32)
        flat_images = tf.reshape(images, [batch, -1])  # (B, HWC)

        canvas = tf.zeros_like(images)  # (B, H, W, C)
        state = [tf.zeros([batch, self.rnn_units], dtype)] * 2
        z_where = tf.zeros([batch, 3], dtype)
        z_what = tf.zeros([batch, self.what_units], dtype)
        z_pres = tf.ones([batch, 1], dtype)  # the step before the first: present
        steps = {k: [] for k in ("canvases", "glimpses", "reconstructions", "z_pres",
                                 "presence_probs", "z_where", "where_loc", "where_scale", "theta",
                                 "z_what", "kl_what",
                                 "kl_where", "log_q_pres_step")}
        log_s_mean, log_s_sd, shift_sd = self.where_prior
        prior_loc = tf.constant([log_s_mean, 0.0, 0.0], dtype)  # (3,)
        prior_scale = tf.constant([log_s_sd, shift_sd, shift_sd], dtype)  # (3,)
        for i in range(self.max_steps):
            step_seed = (lambda k: seed + tf.stack([k, i])) if sample else None
            residual = flat_images - tf.reshape(canvas, [batch, -1])  # what is unexplained
            h, state = self.rnn(tf.concat([residual, z_where, z_what, z_pres], axis=-1),
                                state, training=training)  # (B, U)
            # z_pres: present only while the step before was.
            rho = tf.sigmoid(self.pres_head(h))[:, 0]  # (B,)
            rho = tf.clip_by_value(rho, 1e-6, 1.0 - 1e-6)
            before = z_pres[:, 0]  # (B,)
            if sample:
                u = tf.random.stateless_uniform([batch], step_seed(0), dtype=dtype)
                present = tf.cast(u < rho, dtype)  # (B,)
            else:
                present = tf.cast(rho > 0.5, dtype)
            present = present * before  # (B,)
            log_q = present * tf.math.log(rho) + (1.0 - present) * tf.math.log1p(-rho)  # (B,)
            # z_where = (log s, x, y): theta maps glimpse to image coordinates.
            where = self.where_head(h)  # (B, 6)
            loc, scale = where[:, :3], tf.nn.softplus(where[:, 3:]) + 1e-4  # (B, 3)
            if sample:
                eps = tf.random.stateless_normal([batch, 3], step_seed(1), dtype=dtype)
                z_where = loc + scale * eps  # (B, 3)
            else:
                z_where = loc
            kl_where = tf.reduce_sum(
                tf.math.log(prior_scale / scale)
                + (tf.square(scale) + tf.square(loc - prior_loc)) / (2.0 * tf.square(prior_scale))
                - 0.5, axis=-1)  # (B,) KL(N(loc, scale) || prior)
            s = tf.exp(z_where[:, 0])  # (B,)
            zeros = tf.zeros_like(s)
            theta = tf.stack([s, zeros, z_where[:, 1], zeros, s, z_where[:, 2]], axis=-1)
            glimpse = self.reader(images, theta)  # (B, G, G, C)
            code = self.what(self.encoder(tf.reshape(glimpse, [batch, -1])),
                             training=training,
                             noise_seed=step_seed(2) if sample else None)
            z_what = code["z"]  # (B, Z)
            logits = self.decoder_out(self.decoder_hidden(z_what))  # (B, GGC)
            reconstruction = tf.reshape(tf.sigmoid(logits), [batch, g, g, channels])
            written = self.writer(reconstruction, theta)  # (B, H, W, C)
            canvas = canvas + present[:, None, None, None] * written
            z_pres = present[:, None]
            values = {"canvases": canvas, "glimpses": glimpse,
                      "reconstructions": reconstruction, "z_pres": present,
                      "presence_probs": rho, "z_where": z_where, "where_loc": loc,
                      "where_scale": scale, "theta": theta,
                      "z_what": z_what, "kl_what": code["latent_cost"], "kl_where": kl_where,
                      "log_q_pres_step": log_q}
            for key, value in values.items():
                steps[key].append(value)

        out = {k: tf.stack(v, axis=1) for k, v in steps.items()}  # (B, N, ...)
        z_pres_all = out["z_pres"]  # (B, N)
        mask = estimators.presence_mask(z_pres_all)  # (B, N): the steps decided
        # A step's what and where are scored where it drew an object; its
        # z_pres wherever it was decided.
        kl_what = tf.reduce_sum(z_pres_all * out.pop("kl_what"), axis=1)  # (B,)
        kl_where = tf.reduce_sum(z_pres_all * out.pop("kl_where"), axis=1)  # (B,)
        log_q_pres = tf.reduce_sum(mask * out.pop("log_q_pres_step"), axis=1)  # (B,)
        log_p_pres = estimators.geometric_count_log_prob(
            z_pres_all, self.presence_prob)  # (B,)
        canvas = out["canvases"][:, -1]
        residual = tf.reshape(images - canvas, [batch, -1])
        sigma = tf.cast(self.likelihood_scale, dtype)
        log_likelihood = -tf.reduce_sum(
            0.5 * tf.square(residual / sigma) + tf.math.log(sigma) + 0.5 * _LOG_2PI,
            axis=-1)  # (B,)
        kl_pres = log_q_pres - log_p_pres
        out.update({
            "canvas": canvas,
            "mask": mask,
            "count": tf.reduce_sum(z_pres_all, axis=1),
            "boxes": st.affine_boxes(out["theta"], (height, width)),
            "log_likelihood": log_likelihood,
            "kl_what": kl_what,
            "kl_where": kl_where,
            "kl_pres": kl_pres,
            "log_q_pres": log_q_pres,
            "elbo": log_likelihood - kl_what - kl_where - kl_pres,
            "baseline": self.baseline_net(flat_images)[:, 0],
        })
        return out

    def loss_terms(self, outputs):
        """The per-image loss to minimise, and its parts.

        `-elbo`, plus the score-function surrogate for z_pres with
        `baseline` as its control variate, and the baseline's own squared
        error. The surrogate's reward is the ELBO; z_pres' own
        log-probability enters the ELBO only through `kl_pres`, whose
        gradient reaches the presence logits through `log_q_pres`.

        Returns:
            `(loss, parts)`: `(B,)` and a dict of `(B,)` terms.
        """
        elbo = outputs["elbo"]
        surrogate, baseline_loss = estimators.score_function_loss(
            outputs["log_q_pres"], elbo, outputs["baseline"])
        parts = {"neg_elbo": -elbo, "score_function": surrogate,
                 "baseline_loss": baseline_loss}
        return -elbo + surrogate + baseline_loss, parts
