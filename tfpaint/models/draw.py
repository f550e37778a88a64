"""DRAW (Gregor et al. 2015) and T-DRAW (thesis section 4.1).

Per step t = 1..T, with the canvas c_0 and the LSTM states learned:

    x_hat_t = x - sigma(c_{t-1})                    (the error image)
    r_t     = read(x, x_hat_t, h_dec_{t-1})
    h_enc_t = LSTM_enc(h_enc_{t-1}, [r_t, h_dec_{t-1}])
    z_t     ~ Q(Z_t | h_enc_t) = N(mu_t, sigma_t)
    h_dec_t = LSTM_dec(h_dec_{t-1}, z_t)
    c_t     = c_{t-1} + write(h_dec_t)

T-DRAW replaces `write` by the Painter's template writer and the additive
canvas by the "over" canvas (its picture is the canvas itself, so
x_hat_t = x - c_{t-1}).
"""

import keras
import tensorflow as tf

from tfpaint.layers import canvas as canvas_lib
from tfpaint.layers import gaussian_attention as ga
from tfpaint.layers import latents
from tfpaint.layers import spatial_transformer as st
from tfpaint.layers import template_writer as tw
from tfpaint.models import checks

ATTENTIONS = ("gaussian", "stn", "none")
WRITERS = ("additive", "template")
# The identity map shrunk to a third of the image: where the spatial
# transformer's read and write windows start.
_STN_START = (1.0 / 3.0, 0.0, 0.0, 0.0, 1.0 / 3.0, 0.0)
# Keeps the over canvas' probabilities away from 0 and 1 where they become logits.
_EPSILON = 1e-6


@keras.saving.register_keras_serializable(package="tfpaint")
class DRAW(keras.Model):
    """DRAW: a recurrent variational autoencoder that draws with attention.

    Args:
        image_shape: `(height, width, channels)`.
        num_steps: T.
        encoder_units, decoder_units: the LSTMs' widths (256 in the paper).
        latent_units: the size of each z_t (100 in the paper).
        attention: "gaussian" (the N x N filterbank of eqs 19-29), "stn" (the
            spatial transformer: read an N x N glimpse, write by the inverse
            map) or "none" (read the whole image and error image, write a
            whole image).
        read_size, write_size: N of the read and write windows (2 and 5 in
            the paper's MNIST model).
        writer: "additive" (DRAW: `c_t = c_{t-1} + write(h_dec_t)`, a
            Bernoulli likelihood on `sigmoid(c_T)`) or "template" (T-DRAW:
            one template-writer move per step on the "over" canvas).
        templates, template_size, initial_scale: the template writer's, for
            `writer="template"`.
        initial_logit: the learned blank canvas' starting logit ("additive").
        unroll: steps traced per iteration of the `tf.while_loop` over t (1:
            one traced step whatever T; T: no loop, every step traced, as
            Keras' `unroll=True`). The computation is the same; tracing time
            grows with `unroll`.
        seed: seed of the weights and the latent noise.

    Call arguments:
        images: `(batch, height, width, channels)` in [0, 1].
        training: passed to the layers.
        sample: draw z_t from Q (default: `training`); otherwise z_t = mu_t.
        noise_seed: optional `(2,)` int seed of the noise (stateless: the
            T steps' noise is one draw from this seed): an evaluation's fixed
            noise, which leaves the training noise stream as it was. Implies
            `sample`.
        intermediates: whether to collect each step's canvas, latents and
            windows (pictures, export, evaluation); False keeps only what the
            loss needs (`logits`, `kl`, `canvas`): a training step collects
            and computes less.

    The T steps' latent noise is drawn in one op before the loop over t,
    fresh for every step, with the Philox generator named (XLA's CPU lowering
    of TensorFlow's "auto_select" ran some 25x slower than Philox here).

    Returns:
        Dict: `canvases` `(B, T, H, W, C)` the picture after each step;
        `canvas` `(B, H, W, C)`; `logits` `(B, H, W, C)` the final canvas'
        Bernoulli logits; `z`, `mu`, `sigma` `(B, T, Z)`; `kl` `(B,)`, KL(Q ||
        N(0, I)) summed over steps and latent dimensions; `read_boxes` and
        `write_boxes` `(B, T, 4)`, each window's `(x0, y0, x1, y1)` in pixels;
        T-DRAW also `masks` `(B, T, H, W, 1)`, each step's placed template,
        and `colors` `(B, T, C)`, its colour. With `intermediates=False`,
        only `logits`, `kl` and `canvas`.

    Reference:
        Gregor et al., "DRAW: A Recurrent Neural Network For Image
        Generation", ICML 2015, eqs 3-11, 19-29; thesis section 4.1.
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_steps=64,
        encoder_units=256,
        decoder_units=256,
        latent_units=100,
        attention="gaussian",
        read_size=2,
        write_size=5,
        writer="additive",
        templates=("circle",),
        template_size=16,
        initial_scale=1.0,
        initial_logit=0.0,
        unroll=1,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        image_shape = checks.image_shape(image_shape)
        if attention not in ATTENTIONS:
            raise ValueError(f"`attention` must be one of {ATTENTIONS}. Received: {attention!r}")
        if writer not in WRITERS:
            raise ValueError(f"`writer` must be one of {WRITERS}. Received: {writer!r}")
        checks.positive_ints(num_steps=num_steps, encoder_units=encoder_units,
                             decoder_units=decoder_units, latent_units=latent_units,
                             read_size=read_size, write_size=write_size, unroll=unroll)
        self.image_shape = image_shape
        self.num_steps = int(num_steps)
        self.encoder_units = int(encoder_units)
        self.decoder_units = int(decoder_units)
        self.latent_units = int(latent_units)
        self.attention = attention
        self.read_size = int(read_size)
        self.write_size = int(write_size)
        self.writer = writer
        self.templates = (templates,) if isinstance(templates, str) else tuple(templates)
        self.template_size = int(template_size)
        self.initial_scale = float(initial_scale)
        self.initial_logit = float(initial_logit)
        self.unroll = int(unroll)
        self.seed = seed
        height, width, channels = image_shape
        init = lambda i: keras.initializers.GlorotUniform(
            seed=None if seed is None else seed + 17 * i)
        orthogonal = lambda i: keras.initializers.Orthogonal(
            seed=None if seed is None else seed + 17 * i + 5)

        self.encoder = keras.layers.LSTMCell(self.encoder_units, kernel_initializer=init(1),
                                             recurrent_initializer=orthogonal(1), name="encoder")
        self.decoder = keras.layers.LSTMCell(self.decoder_units, kernel_initializer=init(2),
                                             recurrent_initializer=orthogonal(2), name="decoder")
        self.latent = latents.GaussianLatent(self.latent_units, stochastic=True,
                                             latent_cost="full", seed=seed, name="latent")
        if attention == "gaussian":
            self.reader = ga.GaussianAttention((height, width), self.read_size, channels,
                                               seed=seed, name="read_attention")
        elif attention == "stn":
            self.read_pose = _pose_head("read_pose")
            self.reader = st.SpatialTransformer((self.read_size,) * 2, allow_skew=False,
                                                name="reader")
        if writer == "template":
            self.template_writer = tw.TemplateWriter(
                num_moves=1, canvas_size=(height, width), channels=channels,
                templates=self.templates, template_size=self.template_size, canvas="over",
                initial_scale=self.initial_scale, seed=seed, name="template_writer")
            self.canvas_layer = self.template_writer.canvas_layer
        else:
            patch = (width * height if attention == "none" else self.write_size ** 2) * channels
            self.patch = keras.layers.Dense(patch, kernel_initializer=init(3), name="patch")
            if attention == "gaussian":
                self.write_attention = ga.GaussianAttention(
                    (height, width), self.write_size, channels,
                    seed=None if seed is None else seed + 1, name="write_attention")
            elif attention == "stn":
                self.write_pose = _pose_head("write_pose")
                self.placer = st.SpatialTransformer((height, width), allow_skew=False,
                                                    inverse=True, name="placer")
            self.canvas_layer = canvas_lib.AdditiveCanvas(
                channels, initial_logit=self.initial_logit, name="canvas")

    def get_config(self):
        return {
            "name": self.name,
            "image_shape": self.image_shape,
            "num_steps": self.num_steps,
            "encoder_units": self.encoder_units,
            "decoder_units": self.decoder_units,
            "latent_units": self.latent_units,
            "attention": self.attention,
            "read_size": self.read_size,
            "write_size": self.write_size,
            "writer": self.writer,
            "templates": self.templates,
            "template_size": self.template_size,
            "initial_scale": self.initial_scale,
            "initial_logit": self.initial_logit,
            "unroll": self.unroll,
            "seed": self.seed,
        }

    def build(self, input_shape=None):
        height, width, channels = self.image_shape
        pixels = height * width * channels
        read = {"gaussian": 2 * self.read_size ** 2 * channels,
                "stn": 2 * self.read_size ** 2 * channels, "none": 2 * pixels}[self.attention]
        self.encoder.build((None, read + self.decoder_units))
        self.decoder.build((None, self.latent_units))
        self.latent.build((None, self.encoder_units))
        state = (None, self.decoder_units)
        if self.attention == "gaussian":
            self.reader.build(state)
        elif self.attention == "stn":
            self.read_pose.build(state)
        if self.writer == "template":
            self.template_writer.build(state)
        else:
            self.patch.build(state)
            if self.attention == "gaussian":
                self.write_attention.build(state)
            elif self.attention == "stn":
                self.write_pose.build(state)
            self.canvas_layer.build()
        # The learned first states (the paper's h_enc_0, h_dec_0 biases).
        self.encoder_start = self.add_weight(name="encoder_start", shape=(self.encoder_units,),
                                             initializer="zeros")
        self.decoder_start = self.add_weight(name="decoder_start", shape=(self.decoder_units,),
                                             initializer="zeros")
        self.built = True

    # One step's parts --------------------------------------------------------

    def _start(self, batch, dtype):
        """The first canvas state and LSTM states of a batch."""
        height, width, _ = self.image_shape
        canvas = self.canvas_layer.blank(batch, height, width, dtype)  # (B, H, W, C)
        states = []
        for start, units in ((self.encoder_start, self.encoder_units),
                             (self.decoder_start, self.decoder_units)):
            h = tf.tile(tf.cast(start, dtype)[None], [batch, 1])  # (B, U)
            states.append([h, tf.zeros([batch, units], dtype)])
        return canvas, states[0], states[1]

    def _read(self, images, errors, h_dec):
        """The read vector r_t, and a function that gives the read window's box
        (computed only where it is collected)."""
        batch = tf.shape(images)[0]
        if self.attention == "gaussian":
            glimpse, window = self.reader.read(images, errors, h_dec, flatten=True,
                                               return_attention=True)
            return glimpse, lambda: self.reader.boxes(window)
        if self.attention == "stn":
            theta = self.read_pose(h_dec)  # (B, 6)
            both = tf.concat([images, errors], axis=-1)  # (B, H, W, 2C)
            glimpse = self.reader(both, theta)  # (B, N, N, 2C)
            return (tf.reshape(glimpse, [batch, -1]),
                    lambda: st.affine_boxes(theta, self.image_shape[:2]))
        flat = tf.reshape(tf.concat([images, errors], axis=-1), [batch, -1])  # (B, 2HWC)
        return flat, lambda: _whole_image_box(batch, self.image_shape)

    def _write(self, canvas, h_dec, training):
        """The canvas after this step's write, a function that gives the write
        window's box, and (T-DRAW) the placed template mask and its colour."""
        height, width, channels = self.image_shape
        batch = tf.shape(h_dec)[0]
        if self.writer == "template":
            move = self.template_writer.moves(h_dec, training=training)
            mask = self.template_writer.render(move["where"], move["which"])[:, 0]
            canvas = self.canvas_layer.step(canvas, mask, move["what"][:, 0])  # eq 3.4
            place = st.invert_affine(move["where"][:, 0])  # template -> canvas
            return (canvas, lambda: st.affine_boxes(place, (height, width)), mask,
                    move["what"][:, 0])
        patch = self.patch(h_dec)
        if self.attention == "gaussian":
            patch = tf.reshape(patch, [batch, self.write_size, self.write_size, channels])
            update, window = self.write_attention.write(patch, h_dec,
                                                        return_attention=True)  # (B, H, W, C)
            box = lambda: self.write_attention.boxes(window)
        elif self.attention == "stn":
            theta = self.write_pose(h_dec)  # (B, 6), patch -> canvas
            patch = tf.reshape(patch, [batch, self.write_size, self.write_size, channels])
            update = self.placer(patch, theta)  # (B, H, W, C)
            box = lambda: st.affine_boxes(theta, (height, width))
        else:
            update = tf.reshape(patch, [batch, height, width, channels])
            box = lambda: _whole_image_box(batch, self.image_shape)
        ones = tf.ones([batch, channels], update.dtype)
        canvas = self.canvas_layer.step(canvas, update, ones)  # c_t = c_{t-1} + write
        return canvas, box, None, None

    def _logits(self, canvas):
        """The Bernoulli logits of a canvas state."""
        if self.writer == "template":
            p = tf.clip_by_value(canvas, _EPSILON, 1.0 - _EPSILON)
            return tf.math.log(p) - tf.math.log1p(-p)
        return canvas

    # The model ---------------------------------------------------------------

    def call(self, images, training=False, sample=None, noise_seed=None, intermediates=True):
        images = checks.float_images(images, self.image_shape, self.compute_dtype)
        sample = training if sample is None else sample
        batch = tf.shape(images)[0]
        canvas, enc_state, dec_state = self._start(batch, images.dtype)
        keys = ["canvases", "z", "mu", "sigma", "kl", "read_boxes", "write_boxes"]
        keys += ["masks", "colors"] if self.writer == "template" else []
        keys = keys if intermediates else ["kl"]
        noise = None
        if noise_seed is not None or sample:
            seed = (self.latent.seed_generator.next() if noise_seed is None
                    else noise_seed)
            noise = tf.random.stateless_normal(
                [self.num_steps, batch, self.latent_units], tf.cast(seed, tf.int32),
                dtype=images.dtype, alg="philox")  # (T, B, Z), eps_t of every step

        def body(t, canvas, enc_state, dec_state, steps):
            picture = self.canvas_layer.visible(canvas)  # sigma(c_{t-1}) or c_{t-1}
            h_dec = dec_state[0]
            read, read_box = self._read(images, images - picture, h_dec)  # x_hat_t
            h_enc, enc_state = self.encoder(tf.concat([read, h_dec], axis=-1), enc_state,
                                            training=training)  # (B, U_enc)
            code = self.latent(h_enc, noise=None if noise is None else noise[t])
            h_dec, dec_state = self.decoder(code["z"], dec_state, training=training)
            canvas, write_box, mask, color = self._write(canvas, h_dec, training)
            values = {"canvases": canvas, "z": code["z"],
                      "mu": code["mu"], "sigma": code["sigma"], "kl": code["latent_cost"],
                      "read_boxes": read_box, "write_boxes": write_box, "masks": mask,
                      "colors": color}
            # Boxes are computed only where they are collected.
            steps = {k: steps[k].write(t, values[k]() if callable(values[k]) else values[k])
                     for k in keys}
            return t + 1, canvas, enc_state, dec_state, steps

        canvas, steps = self._loop(body, canvas, enc_state, dec_state, keys)
        # TensorArrays stack time first: (T, B, ...) -> (B, T, ...).
        outputs = {k: _batch_major(v) for k, v in steps.items()}
        outputs["kl"] = tf.reduce_sum(outputs["kl"], axis=1)  # (B,) eq 11
        outputs["logits"] = self._logits(canvas)
        if intermediates:
            # The canvas states were collected; their pictures in one op, not T.
            outputs["canvases"] = self.canvas_layer.visible(outputs["canvases"])
            outputs["canvas"] = outputs["canvases"][:, -1]
        else:
            outputs["canvas"] = self.canvas_layer.visible(canvas)
        return outputs

    def _loop(self, body, canvas, enc_state, dec_state, keys):
        """Runs `body` for t = 0..T-1, collecting each step's values in
        TensorArrays: a `tf.while_loop` whose iteration runs `unroll` steps
        (traced once, whatever T), and the last `T % unroll` steps after it."""
        height, width, channels = self.image_shape
        shapes = {"canvases": (height, width, channels), "masks": (height, width, 1),
                  "colors": (channels,), "z": (self.latent_units,), "mu": (self.latent_units,),
                  "sigma": (self.latent_units,), "kl": (), "read_boxes": (4,),
                  "write_boxes": (4,)}
        unroll = min(self.unroll, self.num_steps)
        loops = self.num_steps // unroll
        if loops > 1:
            steps = {k: tf.TensorArray(self.compute_dtype, size=self.num_steps,
                                       element_shape=tf.TensorShape([None, *shapes[k]]))
                     for k in keys}
        else:
            # No loop: plain lists, stacked at the end (TFLite lowers a
            # TensorList only with a static batch size).
            steps = {k: _StepList() for k in keys}

        def chunk(*carry):
            for _ in range(unroll):
                carry = body(*carry)
            return carry

        carry = (tf.constant(0), canvas, enc_state, dec_state, steps)
        if loops > 1:
            carry = tf.while_loop(lambda t, *_: t < loops * unroll, chunk, carry,
                                  maximum_iterations=loops)
        elif loops == 1:
            carry = chunk(*carry)
        for _ in range(self.num_steps - loops * unroll):
            carry = body(*carry)
        _, canvas, _, _, steps = carry
        return canvas, {k: v.stack() for k, v in steps.items()}

    def generate(self, batch_size, seed=None, training=False):
        """Paints from the prior: z_t ~ N(0, I), the decoder and the writer alone.

        Args:
            batch_size: images to paint (an int or a scalar tensor).
            seed: `(2,)` int seed of the stateless noise (default `(0, 0)`).
            training: passed to the layers.

        Returns:
            Dict: `canvases` `(B, T, H, W, C)`, `canvas`, `logits` and
            `write_boxes` `(B, T, 4)`.
        """
        seed = tf.zeros([2], tf.int32) if seed is None else tf.cast(seed, tf.int32)
        batch = tf.cast(batch_size, tf.int32)
        canvas, enc_state, dec_state = self._start(batch, self.compute_dtype)
        keys = ["canvases", "write_boxes"]

        def body(t, canvas, enc_state, dec_state, steps):
            z = tf.random.stateless_normal([batch, self.latent_units],
                                           seed=seed + tf.stack([0, t]),
                                           dtype=self.compute_dtype)  # (B, Z)
            h_dec, dec_state = self.decoder(z, dec_state, training=training)
            canvas, box, _, _ = self._write(canvas, h_dec, training)
            steps = {"canvases": steps["canvases"].write(t, canvas),
                     "write_boxes": steps["write_boxes"].write(t, box())}
            return t + 1, canvas, enc_state, dec_state, steps

        canvas, steps = self._loop(body, canvas, enc_state, dec_state, keys)
        canvases = self.canvas_layer.visible(_batch_major(steps["canvases"]))
        return {"canvases": canvases, "canvas": canvases[:, -1], "logits": self._logits(canvas),
                "write_boxes": _batch_major(steps["write_boxes"])}


class _StepList:
    """Each step's values in a Python list, with the `write` and `stack` of a
    `tf.TensorArray`: what `DRAW._loop` collects in when every step is traced."""

    def __init__(self):
        self.values = []

    def write(self, index, value):
        del index  # Steps are written in order.
        self.values.append(value)
        return self

    def stack(self):
        return tf.stack(self.values)


def _batch_major(stacked):
    """(T, B, ...) -> (B, T, ...)."""
    rank = stacked.shape.rank
    return tf.transpose(stacked, [1, 0] + list(range(2, rank)))


def _pose_head(name):
    """A spatial-transformer pose from a state: zero weights, a third of the image."""
    return keras.layers.Dense(6, kernel_initializer="zeros",
                              bias_initializer=keras.initializers.Constant(_STN_START), name=name)


def _whole_image_box(batch, image_shape):
    height, width, _ = image_shape
    return tf.tile(tf.constant([[0.0, 0.0, float(width), float(height)]]), [batch, 1])
