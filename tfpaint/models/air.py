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
With `z_pres="bernoulli"` z_pres is discrete and its gradient is the
score-function estimate with a data-dependent baseline (NVIL),
`AIR.loss_terms`. With `z_pres="concrete"` it is the relaxed (binary
Concrete) sample of the shared `ConcreteLatent`, reparameterised: a step
writes with weight z_pres_i * prod_{j<i} z_pres_j, and its prior is the
Concrete relaxation of the same per-step Bernoulli(q) (the geometric count
prior's factors); evaluation uses the hard code `rho > 0.5`. With
`z_pres="none"` every one of the N steps is present (a fixed number of
steps).

T-AIR (thesis section 4.2) is `decoder="template"`: z_what is the template
writer's stochastic h^what (the colour, and the template choice, are read
from it), z_where = (log s_x, log s_y, x, y) is the template's affine (the
window read is the window painted), and each step paints its template with
the "over" rule (`TemplateWriter.render` and `paint`). `window_range`
bounds the window's sides, the constraint the thesis needed for T-AIR to
find the rectangles of 2-Rectangles one by one.
"""

import math

import keras
import tensorflow as tf

from tfpaint import estimators
from tfpaint.layers import latents
from tfpaint.layers import spatial_transformer as st
from tfpaint.layers import template_writer as tw
from tfpaint.models import checks

_LOG_2PI = math.log(2.0 * math.pi)
Z_PRES = ("bernoulli", "concrete", "none")
DECODERS = ("glimpse", "template")


def check_window_range(window_range):
    """`window_range` as a tuple of two floats (or None).

    Raises:
        ValueError: unless it is None or `(low, high)` with 0 < low < high.
    """
    if window_range is None:
        return None
    values = tuple(float(v) for v in window_range)
    if len(values) != 2 or not 0.0 < values[0] < values[1]:
        raise ValueError("`window_range` must be (low, high) with 0 < low < high. "
                         f"Received: {values}")
    return values


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
        z_pres: "bernoulli" (discrete, score-function gradient with a
            learned baseline), "concrete" (relaxed, reparameterised) or
            "none" (every step present: N objects).
        presence_temperature: the Concrete temperature of `z_pres="concrete"`.
        decoder: "glimpse" (AIR: an MLP decodes z_what into a G x G glimpse,
            written back additively) or "template" (T-AIR: the template
            writer paints one template per step on the "over" canvas).
        templates, template_size: the template writer's (`decoder="template"`).
        window_range: optional `(low, high)`: each window side is
            `low + (high - low) * sigmoid(z)` of the image's, z the scale
            coordinate of z_where, whose prior is then N(0, 1) (the
            `where_prior` scale entries apply without it). None: `exp(z)`.
        seed: seed of the weights and the noise.

    Call arguments:
        images: `(batch, height, width, channels)` in [0, 1].
        training: whether to sample the latents (else their means; z_pres
            then is `rho > 0.5`).
        noise_seed: optional `(2,)` int seed: sample with this stateless seed
            whatever `training` (an evaluation's fixed noise).

    Returns:
        Dict: `canvas` `(B, H, W, C)` the reconstruction; `canvases` `(B, N,
        H, W, C)` after each step; `objects` `(B, N, H, W, C)` each step's
        own writing (zero where z_pres = 0; with the glimpse decoder they sum
        to `canvas`; with templates each is a move's coloured mask, which
        later moves may cover); `glimpses` `(B, N, G, G, C)`, and the glimpse
        decoder's `reconstructions` of them; T-AIR's `masks` `(B, N, H, W,
        1)` (each placed template) and `colors` `(B, N, C)`; `z_pres`,
        `presence_probs`, `mask` `(B, N)` (`mask`: the steps that count);
        `z_where` `(B, N, W)` (W = 3, or 4 with templates) and its
        posterior's `where_loc`, `where_scale`; `theta` `(B, N, 6)`; `boxes`
        `(B, N, 4)` `(x0, y0, x1, y1)` in pixels; `z_what` `(B, N,
        what_units)`; `count` `(B,)` present steps; per image `(B,)`:
        `log_likelihood`, `kl_what`, `kl_where`, `kl_pres` (the MC estimate
        log q(z_pres) - log p(z_pres)), `log_q_pres` and `elbo`; `baseline`
        `(B,)` the data-dependent baseline of the score-function gradient
        (`z_pres="bernoulli"` only). With `z_pres="concrete"`, `z_pres` is
        the relaxed weight each step writes with (0/1 at evaluation),
        `log_q_pres` the log-density of its logit samples and `kl_pres` the
        one-sample relaxed KL; with "none" they are 1, 0 and 0.

    Reference:
        Eslami et al., "Attend, Infer, Repeat: Fast Scene Understanding with
        Generative Models", NIPS 2016, sections 2-3; thesis sections 2.2.3
        and 4.2 (T-AIR).
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
        z_pres="bernoulli",
        presence_temperature=0.5,
        decoder="glimpse",
        templates=("square",),
        template_size=16,
        window_range=None,
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
        if z_pres not in Z_PRES:
            raise ValueError(f"`z_pres` must be one of {Z_PRES}. Received: {z_pres!r}")
        if not float(presence_temperature) > 0.0:
            raise ValueError("`presence_temperature` must be > 0. Received: "
                             f"{presence_temperature}")
        if not float(likelihood_scale) > 0.0:
            raise ValueError(f"`likelihood_scale` must be > 0. Received: {likelihood_scale}")
        if decoder not in DECODERS:
            raise ValueError(f"`decoder` must be one of {DECODERS}. Received: {decoder!r}")
        window_range = check_window_range(window_range)
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
        self.z_pres = z_pres
        self.presence_temperature = float(presence_temperature)
        self.decoder = decoder
        self.templates = (templates,) if isinstance(templates, str) else tuple(templates)
        self.template_size = int(template_size)
        self.window_range = window_range
        self.seed = seed
        # z_where: (log s, x, y), or (log s_x, log s_y, x, y) for templates.
        self.scales = 2 if decoder == "template" else 1
        init = lambda i: keras.initializers.GlorotUniform(
            seed=None if seed is None else seed + 31 * i)
        small = lambda i: keras.initializers.RandomNormal(
            stddev=0.01, seed=None if seed is None else seed + 31 * i)

        self.rnn = keras.layers.LSTMCell(self.rnn_units, kernel_initializer=init(1),
                                         recurrent_initializer=keras.initializers.Orthogonal(
                                             seed=None if seed is None else seed + 7),
                                         name="rnn")
        # z_pres: one logit; z_where: means and log-sds. They start near the
        # prior: a window of the prior's scale at the centre.
        self.pres_head = None
        if z_pres != "none":
            self.pres_head = keras.layers.Dense(1, kernel_initializer=small(2),
                                                bias_initializer="zeros", name="pres_head")
        where = self.scales + 2
        start = 0.0 if window_range else where_prior[0]
        self.where_head = keras.layers.Dense(
            2 * where, kernel_initializer=small(3),
            bias_initializer=keras.initializers.Constant(
                [start] * self.scales + [0.0, 0.0] + [-1.0] * where),
            name="where_head")
        height, width = image_shape[:2]
        self.reader = st.SpatialTransformer((self.glimpse_size,) * 2, allow_skew=False,
                                            name="reader")
        self.writer = st.SpatialTransformer((height, width), allow_skew=False, inverse=True,
                                            name="writer")
        self._make_what_layers(init)
        self.baseline_net = None
        if z_pres == "bernoulli":
            self.baseline_net = keras.Sequential(
                [keras.layers.Dense(self.hidden_units, activation="relu",
                                    kernel_initializer=init(7)),
                 keras.layers.Dense(1, kernel_initializer=small(8))], name="baseline")
        elif z_pres == "concrete":
            self.pres = latents.ConcreteLatent(
                "bernoulli", temperature=self.presence_temperature, inference="mode",
                kl="mc", seed=None if seed is None else seed + 5, name="pres")
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
            "z_pres": self.z_pres,
            "presence_temperature": self.presence_temperature,
            "decoder": self.decoder,
            "templates": self.templates,
            "template_size": self.template_size,
            "window_range": self.window_range,
            "seed": self.seed,
        }

    def _make_what_layers(self, init):
        """The layers that encode a glimpse and decode it (a subclass's hook:
        DM-VAE replaces z_what by a memory slot and a noise vector)."""
        seed = self.seed
        height, width, channels = self.image_shape
        self.encoder = keras.layers.Dense(self.hidden_units, activation="relu",
                                          kernel_initializer=init(4), name="what_encoder")
        self.what = latents.GaussianLatent(self.what_units, latent_cost="full", seed=seed,
                                           name="what")
        if self.decoder == "glimpse":
            self.decoder_hidden = keras.layers.Dense(self.hidden_units, activation="relu",
                                                     kernel_initializer=init(5),
                                                     name="decoder_hidden")
            self.decoder_out = keras.layers.Dense(
                self.glimpse_size ** 2 * channels, kernel_initializer=init(6),
                bias_initializer=keras.initializers.Constant(self.decoder_bias),
                name="decoder_out")
        else:
            # Only its colour and template-choice heads, its rendering and its
            # canvas are used: where it paints is z_where.
            self.template_writer = tw.TemplateWriter(
                num_moves=1, canvas_size=(height, width), channels=channels,
                templates=self.templates, template_size=self.template_size, canvas="over",
                seed=seed, name="template_writer")

    def _code_units(self):
        """The size of the step's code fed to the next step's LSTM."""
        return self.what_units

    def _build_what_layers(self):
        channels = self.image_shape[-1]
        self.encoder.build((None, self.glimpse_size ** 2 * channels))
        self.what.build((None, self.hidden_units))
        if self.decoder == "glimpse":
            self.decoder_hidden.build((None, self.what_units))
            self.decoder_out.build((None, self.hidden_units))
        else:
            self.template_writer.build((None, self.what_units))
            self.template_writer.where_dense.trainable = False  # z_where places templates

    def _infer_what(self, glimpse, training, noise_seed):
        """The step's code of its `(B, G, G, C)` glimpse.

        Returns:
            Dict with `z_what` `(B, code units)` (fed to the next step, and
            to `_decode_glimpse`), `kl_what` `(B,)` its KL; further keys are
            stacked over steps into the outputs (keys starting with "_" are
            kept for `_decode_glimpse` only).
        """
        batch = tf.shape(glimpse)[0]
        code = self.what(self.encoder(tf.reshape(glimpse, [batch, -1])), training=training,
                         noise_seed=noise_seed)
        return {"z_what": code["z"], "kl_what": code["latent_cost"]}

    def _decode_glimpse(self, code):
        """`(B, G * G * C)` logits of the glimpse reconstructed from `code`."""
        return self.decoder_out(self.decoder_hidden(code["z_what"]))

    def build(self, input_shape=None):
        height, width, channels = self.image_shape
        pixels = height * width * channels
        step_input = pixels + self.scales + 2 + self._code_units() + 1
        self.rnn.build((None, step_input))
        if self.pres_head is not None:
            self.pres_head.build((None, self.rnn_units))
        self.where_head.build((None, self.rnn_units))
        self._build_what_layers()
        if self.baseline_net is not None:
            self.baseline_net.build((None, pixels))
        if self.z_pres == "concrete":
            self.pres.build((None, 1))
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
        where_units = self.scales + 2  # W: 3, or 4 for templates
        z_where = tf.zeros([batch, where_units], dtype)
        z_what = tf.zeros([batch, self._code_units()], dtype)
        z_pres = tf.ones([batch, 1], dtype)  # the step before the first: present
        steps = {k: [] for k in ("canvases", "objects", "glimpses", "z_pres",
                                 "presence_probs", "z_where", "where_loc", "where_scale", "theta",
                                 "z_what", "kl_what", "mask",
                                 "kl_where", "log_q_pres_step", "kl_pres_step")}
        steps.update({k: [] for k in (("reconstructions",) if self.decoder == "glimpse"
                                      else ("masks", "colors"))})
        log_s_mean, log_s_sd, shift_sd = self.where_prior
        if self.window_range is not None:
            log_s_mean, log_s_sd = 0.0, 1.0  # the scale logits' prior
        prior_loc = tf.constant([log_s_mean] * self.scales + [0.0, 0.0], dtype)  # (W,)
        prior_scale = tf.constant([log_s_sd] * self.scales + [shift_sd] * 2, dtype)  # (W,)
        for i in range(self.max_steps):
            step_seed = (lambda k: seed + tf.stack([k, i])) if sample else None
            residual = flat_images - tf.reshape(canvas, [batch, -1])  # what is unexplained
            h, state = self.rnn(tf.concat([residual, z_where, z_what, z_pres], axis=-1),
                                state, training=training)  # (B, U)
            # z_pres: present only while the step before was.
            before = z_pres[:, 0]  # (B,) the mask: every earlier step present
            if self.z_pres == "none":
                rho = present = tf.ones([batch], dtype)  # (B,)
                log_q = kl_pres_step = tf.zeros([batch], dtype)  # (B,)
            elif self.z_pres == "concrete":
                code = self.pres(logits=self.pres_head(h), training=training,
                                 noise_seed=step_seed(0) if sample else None,
                                 prior_probs=self.presence_prob)  # (B, 1) each
                rho = code["probs"][:, 0]  # (B,)
                present = code["sample"][:, 0] * before  # (B,) relaxed in training
                log_q = code["log_prob"][:, 0]  # (B,) density of the logit sample
                kl_pres_step = code["kl"][:, 0]  # (B,)
            else:
                rho = tf.sigmoid(self.pres_head(h))[:, 0]  # (B,)
                rho = tf.clip_by_value(rho, 1e-6, 1.0 - 1e-6)
                if sample:
                    u = tf.random.stateless_uniform([batch], step_seed(0), dtype=dtype)
                    present = tf.cast(u < rho, dtype)  # (B,)
                else:
                    present = tf.cast(rho > 0.5, dtype)
                present = present * before  # (B,)
                log_q = present * tf.math.log(rho) + (1.0 - present) * tf.math.log1p(-rho)
                kl_pres_step = tf.zeros_like(log_q)  # scored as a sequence below
            # z_where = (log s, [log s_y,] x, y): theta maps glimpse to image
            # coordinates.
            where = self.where_head(h)  # (B, 2W)
            loc = where[:, :where_units]  # (B, W)
            scale = tf.nn.softplus(where[:, where_units:]) + 1e-4  # (B, W)
            if sample:
                eps = tf.random.stateless_normal([batch, where_units], step_seed(1), dtype=dtype)
                z_where = loc + scale * eps  # (B, W)
            else:
                z_where = loc
            kl_where = latents.gaussian_kl(loc, scale, prior_loc, prior_scale)  # (B,)
            theta = self._theta(z_where)  # (B, 6)
            glimpse = self.reader(images, theta)  # (B, G, G, C)
            code = self._infer_what(glimpse, training,
                                    step_seed(2) if sample else None)
            z_what = code["z_what"]  # (B, Z)
            values = {k: v for k, v in code.items()
                      if k not in ("z_what", "kl_what") and not k.startswith("_")}
            if self.decoder == "glimpse":
                logits = self._decode_glimpse(code)  # (B, GGC)
                reconstruction = tf.reshape(tf.sigmoid(logits), [batch, g, g, channels])
                written = self.writer(reconstruction, theta)  # (B, H, W, C)
                drawn = present[:, None, None, None] * written  # (B, H, W, C) this object
                canvas = canvas + drawn
                values["reconstructions"] = reconstruction
            else:
                # The template over the window read: canvas -> template is theta^-1.
                writer = self.template_writer
                color = writer.what_dense(z_what)  # (B, C)
                if writer.which_dense is None:
                    which = tf.ones([batch, 1, 1], dtype)  # (B, 1, K=1)
                else:
                    which = writer.bank.choice_weights(writer.which_dense(z_what)[:, None],
                                                       training=training)  # (B, 1, K)
                mask = writer.render(st.invert_affine(theta)[:, None], which)  # (B, 1, H, W, 1)
                mask = mask * present[:, None, None, None, None]
                canvas = writer.paint(mask, color[:, None], initial=canvas)[:, 0]  # (B, H, W, C)
                drawn = mask[:, 0] * color[:, None, None, :]  # (B, H, W, C) this move's paint
                values.update({"masks": mask[:, 0], "colors": color})
            z_pres = present[:, None]
            values.update({"canvases": canvas, "objects": drawn, "glimpses": glimpse,
                           "z_pres": present, "presence_probs": rho, "z_where": z_where,
                           "where_loc": loc, "where_scale": scale, "theta": theta,
                           "z_what": z_what, "kl_what": code["kl_what"],
                           "kl_where": kl_where, "mask": before, "log_q_pres_step": log_q,
                           "kl_pres_step": kl_pres_step})
            for key, value in values.items():
                steps.setdefault(key, []).append(value)

        out = {k: tf.stack(v, axis=1) for k, v in steps.items()}  # (B, N, ...)
        z_pres_all = out["z_pres"]  # (B, N)
        # The steps decided: every earlier one present (for discrete z_pres
        # `estimators.presence_mask(z_pres)`; for relaxed ones the product of
        # the earlier relaxed samples).
        mask = out["mask"]  # (B, N)
        # A step's what and where are scored where it drew an object; its
        # z_pres wherever it was decided.
        kl_what = tf.reduce_sum(z_pres_all * out.pop("kl_what"), axis=1)  # (B,)
        kl_where = tf.reduce_sum(z_pres_all * out.pop("kl_where"), axis=1)  # (B,)
        log_q_pres = tf.reduce_sum(mask * out.pop("log_q_pres_step"), axis=1)  # (B,)
        kl_pres_steps = out.pop("kl_pres_step")  # (B, N)
        canvas = out["canvases"][:, -1]
        residual = tf.reshape(images - canvas, [batch, -1])
        sigma = tf.cast(self.likelihood_scale, dtype)
        log_likelihood = -tf.reduce_sum(
            0.5 * tf.square(residual / sigma) + tf.math.log(sigma) + 0.5 * _LOG_2PI,
            axis=-1)  # (B,)
        if self.z_pres != "bernoulli":
            kl_pres = tf.reduce_sum(mask * kl_pres_steps, axis=1)  # (B,)
        else:
            kl_pres = log_q_pres - estimators.geometric_count_log_prob(
                z_pres_all, self.presence_prob)  # (B,)
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
        })
        if self.baseline_net is not None:
            out["baseline"] = self.baseline_net(flat_images)[:, 0]  # (B,)
        return out

    def _theta(self, z_where):
        """The window `[s_x, 0, x, 0, s_y, y]` (glimpse -> image) of z_where."""
        scales = z_where[:, :self.scales]  # (B, 1) or (B, 2)
        if self.window_range is None:
            sides = tf.exp(scales)
        else:
            low, high = self.window_range
            sides = low + (high - low) * tf.sigmoid(scales)
        s_x, s_y = sides[:, 0], sides[:, -1]  # (B,) each
        zeros = tf.zeros_like(s_x)
        return tf.stack([s_x, zeros, z_where[:, -2], zeros, s_y, z_where[:, -1]],
                        axis=-1)  # (B, 6)

    def loss_terms(self, outputs, normalize_signal=False):
        """The per-image loss to minimise, and its parts.

        `-elbo`, plus the score-function surrogate for z_pres with
        `baseline` as its control variate, and the baseline's own squared
        error. The surrogate's reward is the ELBO; z_pres' own
        log-probability enters the ELBO only through `kl_pres`, whose
        gradient reaches the presence logits through `log_q_pres`.

        With `z_pres="concrete"` (or "none") the ELBO is reparameterised
        throughout: the loss is `-elbo` alone.

        Args:
            outputs: the dict of `call`.
            normalize_signal: divide z_pres' centred learning signal by its
                standard deviation over the batch when above 1 (NVIL's
                variance normalisation; `estimators.score_function_loss`).

        Returns:
            `(loss, parts)`: `(B,)` and a dict of `(B,)` terms.
        """
        elbo = outputs["elbo"]
        if self.z_pres != "bernoulli":
            return -elbo, {"neg_elbo": -elbo}
        surrogate, baseline_loss = estimators.score_function_loss(
            outputs["log_q_pres"], elbo, outputs["baseline"], normalize=normalize_signal)
        parts = {"neg_elbo": -elbo, "score_function": surrogate,
                 "baseline_loss": baseline_loss}
        return -elbo + surrogate + baseline_loss, parts
