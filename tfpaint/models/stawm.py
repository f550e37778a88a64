"""STAWM: the Short Term Attentive Working Memory model with its heads (paper fig 2-4).

One `STAWM` model holds the attention policy of fig 2 (context CNN, glimpse
CNN, two-layer LSTM, glimpse affine, what x where pathway into a
Hebb-Rosenblatt memory) and any of two heads reading the memory:
"classify" (fig 3, terminal memory) and "draw" (fig 4, intermediate
memories, additive or Bernoulli canvas, per-glimpse Gaussian latents). Both
heads together are the visual sketchpad (section 4.4); freezing everything
but the classifier's query, the classifier and the memory rates gives the
self-supervised classifier (section 4.2).
"""

import keras
import tensorflow as tf

from tfpaint.layers import canvas as canvas_lib
from tfpaint.layers import hebb_rosenblatt as hr
from tfpaint.layers import latents
from tfpaint.layers import spatial_transformer as st
from tfpaint.models import checks

HEADS = ("classify", "draw")
CANVASES = ("additive", "bernoulli")
# The name of the additive canvas in runs written before it was called
# "additive" everywhere; still read from their model.json.
_OLD_CANVAS_NAMES = {"addition": "additive"}
# Mask probabilities are kept this far from 0 and 1 so that the Concrete
# logits stay finite where the warped mask is exactly zero (outside a sketch).
_MASK_EPSILON = 1e-6


def _conv_output_size(size, kernel, stride, padding):
    if padding == "same":
        return -(-size // stride)
    return (size - kernel) // stride + 1


@keras.saving.register_keras_serializable(package="tfpaint")
class STAWM(keras.Model):
    """Short Term Attentive Working Memory model (fig 2) with classification and drawing heads.

    For glimpse `n = 0..N-1`: the emission LSTM's output `h_n` gives the
    glimpse pose `A_n` (two dense layers, the last starting at zero weights and
    identity bias, as in STNs); the spatial transformer reads an `S_g x S_g`
    glimpse; the glimpse CNN's features `f_n` go to the aggregator LSTM (whose
    output drives the emission LSTM) and, multiplied with the `where`
    projection of `h_n`, form the memory input `e_n = what(f_n) * where(h_n)`
    (what: dense + layer norm, where: dense + sigmoid; the paper's are linear)
    that updates the Hebb-Rosenblatt memory (eq 2). The emission LSTM starts
    from the context CNN's features: they are its first input and initial
    hidden state; the aggregator starts at zero (section 3.2).

    Queries are `ReLU6(Dense(stop_gradient(context)))` (section 3.3, appendix
    D), one per head. "classify" projects its query through the terminal
    memory and classifies the latent with one dense layer (fig 3). "draw"
    projects its query through every intermediate memory, models the result
    as a Gaussian latent `g_n` (K units, KL to N(0, I) summed over glimpses,
    eq 6 / eq 25), decodes a sketch `U_n` with a transpose CNN mirroring the
    glimpse CNN and places it with the inverse of a second pose the emission
    LSTM emits (`t_{A^-1}`, the spatial transformer with `inverse=True`). The
    canvas is built by the addition method (eq 3, an `AdditiveCanvas` whose
    blank logit starts at -6) or the Bernoulli method (eq 4, a Concrete mask of
    temperature `tau` over the sketch's alpha channel).

    Args:
        image_shape: `(height, width, channels)`.
        num_glimpses: N.
        glimpse_size: S_g.
        memory_size: M.
        rnn_units: hidden size of both LSTM layers (appendix D: 2M).
        context_filters, context_kernel, context_strides: context CNN layers.
        glimpse_filters, glimpse_kernel, glimpse_strides: glimpse CNN layers
            (the transpose CNN mirrors them).
        padding: "valid" (PyTorch's default padding 0) or "same".
        affine_hidden: width of the first dense layer of each pose head.
        heads: tuple from `HEADS`.
        num_classes: classes of the "classify" head.
        canvas: "additive" (eq 3) or "bernoulli" (eq 4), for the "draw" head.
        latent_units: K, the size of each glimpse's Gaussian latent.
        temperature: tau of the Concrete mask ("bernoulli").
        dropout: rate on glimpse features and on the classifier's latent.
        eta, delta, theta, learnable_rates: the memory's rates (section 4:
            0.4, 0.2, 0.5).
        kernel_initializer: of the conv layers ("he_uniform" is PyTorch's
            Kaiming uniform of appendix D.2/D.3).
        what_gain: initial gain of the layer-normalised what pathway (sets the
            scale of the memory input, see below).
        seed: seed of weights, dropout and latent noise.

    Call arguments:
        images: `(batch, height, width, channels)` in [0, 1].
        training: dropout and latent / mask sampling on if True.

    Returns:
        A dict. Always: `context` `(B, F)`, `thetas` `(B, N, 6)` glimpse poses
        (output-to-input maps), `glimpses` `(B, N, S_g, S_g, C)`,
        `memory_inputs` `(B, N, M)` (the signal `x` before ReLU6) and `memory`
        `(B, M, M)` (terminal). "classify": `class_latent` `(B, M)`, `logits`
        `(B, classes)`. "draw": `write_thetas` `(B, N, 6)` (where each sketch
        is placed), `draw_latents` `(B, N, M)`, `z`, `mu`, `sigma`
        `(B, N, K)`, `kl` `(B,)` (summed over glimpses), `sketches`
        `(B, N, S_g, S_g, C)`, `canvases` `(B, N, H, W, C)` (the picture after
        each glimpse), `canvas` `(B, H, W, C)`, and for "bernoulli" `masks`
        `(B, N, H, W, 1)`.

    Reference:
        "A biologically inspired visual working memory for deep networks"
        (STAWM): section 3, eqs 2-6, figs 2-4, appendices A, B, D.
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_glimpses=8,
        glimpse_size=8,
        memory_size=256,
        rnn_units=512,
        context_filters=(64, 128, 256),
        context_kernel=3,
        context_strides=(2, 2, 2),
        glimpse_filters=(64, 128),
        glimpse_kernel=3,
        glimpse_strides=(1, 2),
        padding="valid",
        affine_hidden=64,
        heads=("classify",),
        num_classes=10,
        canvas="additive",
        latent_units=4,
        temperature=0.5,
        dropout=0.5,
        eta=0.4,
        delta=0.2,
        theta=0.5,
        learnable_rates=False,
        kernel_initializer="glorot_uniform",
        what_gain=0.3,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        image_shape = checks.image_shape(image_shape)
        heads = (heads,) if isinstance(heads, str) else tuple(heads)
        if not heads or any(h not in HEADS for h in heads):
            raise ValueError(f"`heads` must be a non-empty subset of {HEADS}. Received: {heads}")
        canvas = _OLD_CANVAS_NAMES.get(canvas, canvas)
        if canvas not in CANVASES:
            raise ValueError(f"`canvas` must be one of {CANVASES}. Received: {canvas!r}")
        if padding not in ("valid", "same"):
            raise ValueError(f"`padding` must be 'valid' or 'same'. Received: {padding!r}")
        context_filters, glimpse_filters = tuple(context_filters), tuple(glimpse_filters)
        context_strides, glimpse_strides = tuple(context_strides), tuple(glimpse_strides)
        if len(context_filters) != len(context_strides) or not context_filters:
            raise ValueError(
                "`context_filters` and `context_strides` must be non-empty and of equal "
                f"length. Received: {context_filters}, {context_strides}"
            )
        if len(glimpse_filters) != len(glimpse_strides) or not glimpse_filters:
            raise ValueError(
                "`glimpse_filters` and `glimpse_strides` must be non-empty and of equal "
                f"length. Received: {glimpse_filters}, {glimpse_strides}"
            )
        checks.positive_ints(num_glimpses=num_glimpses, glimpse_size=glimpse_size,
                             memory_size=memory_size, rnn_units=rnn_units,
                             latent_units=latent_units, num_classes=num_classes)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        if float(temperature) <= 0.0:
            raise ValueError(f"`temperature` must be > 0. Received: temperature={temperature}")
        # The glimpse CNN must leave at least one pixel, or the sketch has no
        # shape to grow back from.
        sizes = [int(glimpse_size)]
        for stride in glimpse_strides:
            sizes.append(_conv_output_size(sizes[-1], glimpse_kernel, stride, padding))
        if sizes[-1] < 1:
            raise ValueError(
                f"The glimpse CNN reduces a {glimpse_size}x{glimpse_size} glimpse to nothing "
                f"(sizes {sizes}): use a larger glimpse_size or fewer strided layers."
            )
        self.image_shape = image_shape
        self.num_glimpses = int(num_glimpses)
        self.glimpse_size = int(glimpse_size)
        self.memory_size = int(memory_size)
        self.rnn_units = int(rnn_units)
        self.context_filters = context_filters
        self.context_kernel = int(context_kernel)
        self.context_strides = context_strides
        self.glimpse_filters = glimpse_filters
        self.glimpse_kernel = int(glimpse_kernel)
        self.glimpse_strides = glimpse_strides
        self.padding = padding
        self.affine_hidden = int(affine_hidden)
        self.heads = heads
        self.num_classes = int(num_classes)
        self.canvas = canvas
        self.latent_units = int(latent_units)
        self.temperature = float(temperature)
        self.dropout = float(dropout)
        self.eta, self.delta, self.theta = float(eta), float(delta), float(theta)
        self.learnable_rates = bool(learnable_rates)
        self.kernel_initializer = kernel_initializer
        self.what_gain = float(what_gain)
        self.seed = seed
        self._glimpse_sizes = sizes
        channels = image_shape[2]
        m, r = self.memory_size, self.rnn_units

        def conv_stack(filters, strides, name):
            return keras.Sequential(
                [keras.layers.Conv2D(f, self.context_kernel if name == "context_cnn"
                                     else self.glimpse_kernel, strides=s, padding=padding,
                                     activation="relu",
                                     kernel_initializer=self._init(kernel_initializer, i))
                 for i, (f, s) in enumerate(zip(filters, strides))]
                + [keras.layers.Flatten()],
                name=name,
            )

        self.context_cnn = conv_stack(context_filters, context_strides, "context_cnn")
        self.glimpse_cnn = conv_stack(glimpse_filters, glimpse_strides, "glimpse_cnn")
        self.context_to_rnn = keras.layers.Dense(r, activation="tanh", name="context_to_rnn")
        self.aggregator = keras.layers.LSTMCell(r, name="aggregator")
        self.emission = keras.layers.LSTMCell(r, name="emission")
        self.pose_hidden = keras.layers.Dense(self.affine_hidden, activation="tanh",
                                              name="pose_hidden")
        # The last dense layer starts at the identity affine, as in STNs.
        self.pose = keras.layers.Dense(
            6, kernel_initializer="zeros",
            bias_initializer=keras.initializers.Constant(st.IDENTITY_THETA), name="pose",
        )
        self.reader = st.SpatialTransformer(
            (self.glimpse_size, self.glimpse_size), allow_skew=False, name="reader"
        )
        # Scale of the memory input (a departure from the paper, measured):
        # plain linear what and where layers give e of about 1e-4 at
        # initialisation, a memory of 1e-8 and no learning. A layer-normalised
        # what (gain 0.3) gated by a sigmoid where gives e of about 0.15, for
        # which the Hebbian self-excitation `eta * M * E[e^2]` is near 1 at
        # M=256, so neither vanishes nor saturates ReLU6.
        self.what = keras.Sequential(
            [keras.layers.Dense(m),
             keras.layers.LayerNormalization(gamma_initializer=keras.initializers.Constant(
                 what_gain))],
            name="what",
        )
        self.where = keras.layers.Dense(m, activation="sigmoid", name="where")
        self.feature_dropout = keras.layers.Dropout(self.dropout, seed=seed)
        draw = "draw" in heads
        self.memory_cell = hr.HebbRosenblattCell(
            m, eta=eta, delta=delta, theta=theta, learnable_rates=learnable_rates,
            with_query=draw, name="memory",
        )
        # The glimpse loop is unrolled (N is small): so is the memory's RNN.
        self.memory = keras.layers.RNN(
            self.memory_cell, return_sequences=draw, return_state=True, unroll=True,
            name="memory_rnn",
        )
        if "classify" in heads:
            self.class_query = keras.layers.Dense(m, activation="relu6", name="class_query")
            self.latent_dropout = keras.layers.Dropout(self.dropout, seed=seed)
            self.classifier = keras.layers.Dense(self.num_classes, name="classifier")
        if draw:
            self.draw_query = keras.layers.Dense(m, activation="relu6", name="draw_query")
            self.write_pose_hidden = keras.layers.Dense(
                self.affine_hidden, activation="tanh", name="write_pose_hidden"
            )
            self.write_pose = keras.layers.Dense(
                6, kernel_initializer="zeros",
                bias_initializer=keras.initializers.Constant(st.IDENTITY_THETA),
                name="write_pose",
            )
            self.latent = latents.GaussianLatent(
                self.latent_units, stochastic=True, latent_cost="full", seed=seed,
                name="glimpse_latent",
            )
            self.decoder = self._transpose_cnn(channels + (canvas == "bernoulli"))
            self.writer = st.SpatialTransformer(
                image_shape[:2], allow_skew=False, inverse=True, name="writer"
            )
            if canvas == "additive":
                self.additive_canvas = canvas_lib.AdditiveCanvas(
                    channels, initial_logit=-6.0, name="additive_canvas"
                )
                # Only its blank logit and `step` are used, never its call.
                self.additive_canvas.build()
            else:
                # The relaxed mask in training, its probabilities (the expected
                # mask) at inference.
                self.mask_latent = latents.ConcreteLatent(
                    "bernoulli", temperature=self.temperature, inference="mean",
                    epsilon=_MASK_EPSILON, seed=seed, name="mask_latent",
                )

    def _init(self, name, index):
        seed = None if self.seed is None else self.seed + 101 * (index + 1)
        config = {"class_name": name, "config": {"seed": seed}}
        return keras.initializers.get(config)

    def _transpose_cnn(self, out_channels):
        """The glimpse CNN in reverse: dense to its last map, then transposed convs."""
        sizes, filters = self._glimpse_sizes, self.glimpse_filters
        layers = [
            keras.layers.Dense(sizes[-1] * sizes[-1] * filters[-1], activation="relu"),
            keras.layers.Reshape((sizes[-1], sizes[-1], filters[-1])),
        ]
        for i in reversed(range(len(filters))):
            size_in, target, stride = sizes[i + 1], sizes[i], self.glimpse_strides[i]
            if self.padding == "valid":
                natural = (size_in - 1) * stride + self.glimpse_kernel
            else:
                natural = size_in * stride
            last = i == 0
            layers.append(keras.layers.Conv2DTranspose(
                out_channels if last else filters[i - 1], self.glimpse_kernel, strides=stride,
                padding=self.padding, output_padding=(target - natural) or None,
                activation=None if last else "relu",
                kernel_initializer=self._init(self.kernel_initializer, 10 + i),
            ))
        return keras.Sequential(layers, name="transpose_cnn")

    def get_config(self):
        return {
            "name": self.name,
            "image_shape": self.image_shape,
            "num_glimpses": self.num_glimpses,
            "glimpse_size": self.glimpse_size,
            "memory_size": self.memory_size,
            "rnn_units": self.rnn_units,
            "context_filters": self.context_filters,
            "context_kernel": self.context_kernel,
            "context_strides": self.context_strides,
            "glimpse_filters": self.glimpse_filters,
            "glimpse_kernel": self.glimpse_kernel,
            "glimpse_strides": self.glimpse_strides,
            "padding": self.padding,
            "affine_hidden": self.affine_hidden,
            "heads": self.heads,
            "num_classes": self.num_classes,
            "canvas": self.canvas,
            "latent_units": self.latent_units,
            "temperature": self.temperature,
            "dropout": self.dropout,
            "eta": self.eta,
            "delta": self.delta,
            "theta": self.theta,
            "learnable_rates": self.learnable_rates,
            "kernel_initializer": self.kernel_initializer,
            "what_gain": self.what_gain,
            "seed": self.seed,
        }

    def freeze_for_self_supervision(self):
        """Freezes all but the classifier's query, the classifier and the memory
        rates (section 4.2): classification from frozen drawing features."""
        if "classify" not in self.heads:
            raise ValueError("Self-supervised classification needs the 'classify' head.")
        keep = {"class_query", "classifier", "memory_rnn", "memory"}
        for layer in self._flatten_layers(include_self=False, recursive=False):
            layer.trainable = layer.name in keep

    def call(self, images, training=False):
        images = tf.convert_to_tensor(images, self.compute_dtype)
        checks.image_batch(images, self.image_shape)
        draw = "draw" in self.heads
        batch = tf.shape(images)[0]
        context = self.context_cnn(images)  # (B, F)
        start = self.context_to_rnn(context)  # (B, R)
        zeros = tf.zeros_like(start)
        agg_state = [zeros, zeros]
        # The context is the emission LSTM's first input and initial hidden state.
        emitted, emit_state = self.emission(start, [start, zeros])  # (B, R)
        thetas, write_thetas, glimpses, memory_inputs = [], [], [], []
        for _ in range(self.num_glimpses):
            theta = self.pose(self.pose_hidden(emitted))  # (B, 6)
            glimpse = self.reader(images, theta)  # (B, S, S, C)
            features = self.glimpse_cnn(glimpse)  # (B, G)
            features = self.feature_dropout(features, training=training)
            # The multiplicative what x where pathway (Larochelle and Hinton 2010).
            memory_inputs.append(self.what(features) * self.where(emitted))  # (B, M)
            thetas.append(theta)
            glimpses.append(glimpse)
            if draw:
                write_thetas.append(self.write_pose(self.write_pose_hidden(emitted)))  # (B, 6)
            aggregated, agg_state = self.aggregator(features, agg_state)  # (B, R)
            emitted, emit_state = self.emission(aggregated, emit_state)  # (B, R)
        memory_inputs = tf.stack(memory_inputs, axis=1)  # (B, N, M)
        outputs = {
            "context": context,
            "thetas": tf.stack(thetas, axis=1),  # (B, N, 6)
            "glimpses": tf.stack(glimpses, axis=1),  # (B, N, S, S, C)
            "memory_inputs": memory_inputs,
        }
        # Queries read a detached context, so divergent head updates do not
        # pollute the context network (section 3.3).
        base = tf.stop_gradient(context)
        if draw:
            query = self.draw_query(base)  # (B, M)
            queries = tf.repeat(query[:, None], self.num_glimpses, axis=1)  # (B, N, M)
            draw_latents, terminal = self.memory(
                tf.concat([memory_inputs, queries], axis=-1), training=training
            )  # (B, N, M), (B, M*M)
            outputs.update(self._draw(draw_latents, tf.stack(write_thetas, axis=1), batch,
                                      training))
        else:
            _, terminal = self.memory(memory_inputs, training=training)  # (B, M*M)
        memory = tf.reshape(terminal, [-1, self.memory_size, self.memory_size])  # (B, M, M)
        outputs["memory"] = memory
        if "classify" in self.heads:
            latent = self.memory_cell.project(memory, self.class_query(base))  # (B, M)
            outputs["class_latent"] = latent
            outputs["logits"] = self.classifier(
                self.latent_dropout(latent, training=training)
            )  # (B, classes)
        return outputs

    def _draw(self, draw_latents, write_thetas, batch, training):
        """The drawing head of fig 4 on the intermediate memories' latents."""
        n, k = self.num_glimpses, self.latent_units
        height, width, channels = self.image_shape
        s = self.glimpse_size
        flat = tf.reshape(draw_latents, [-1, self.memory_size])  # (B*N, M)
        code = self.latent(flat, training=training)
        kl = tf.reduce_sum(tf.reshape(code["latent_cost"], [-1, n]), axis=1)  # (B,) eq 6
        sketches = self.decoder(code["z"])  # (B*N, S, S, C[+1])
        thetas = tf.reshape(write_thetas, [-1, 6])  # (B*N, 6)
        out = {
            "write_thetas": write_thetas,
            "draw_latents": draw_latents,
            "z": tf.reshape(code["z"], [-1, n, k]),
            "mu": tf.reshape(code["mu"], [-1, n, k]),
            "sigma": tf.reshape(code["sigma"], [-1, n, k]),
            "kl": kl,
        }
        if self.canvas == "additive":
            placed = self.writer(sketches, thetas)  # (B*N, H, W, C)
            placed = tf.reshape(placed, [-1, n, height, width, channels])
            hidden = self.additive_canvas.blank(batch, height, width, placed.dtype)
            ones = tf.ones([batch, channels], placed.dtype)
            canvases = []
            for update in tf.unstack(placed, axis=1):
                hidden = self.additive_canvas.step(hidden, update, ones)  # eq 3
                canvases.append(self.additive_canvas.visible(hidden))
            out["sketches"] = tf.reshape(sketches, [-1, n, s, s, channels])
        else:
            # Sigmoid before warping (eq 4): outside the sketch both colour and
            # mask are zero, so the canvas there is left as it was.
            placed = self.writer(tf.sigmoid(sketches), thetas)  # (B*N, H, W, C+1)
            placed = tf.reshape(placed, [-1, n, height, width, channels + 1])
            masks = self.mask_latent(probs=placed[..., channels:],
                                     training=training)["sample"]  # (B, N, H, W, 1)
            picture = tf.zeros([batch, height, width, channels], placed.dtype)
            canvases = []
            for color, mask in zip(tf.unstack(placed[..., :channels], axis=1),
                                   tf.unstack(masks, axis=1)):
                picture = picture * (1.0 - mask) + color * mask  # eq 4
                canvases.append(picture)
            out["masks"] = masks
            out["sketches"] = tf.reshape(tf.sigmoid(sketches), [-1, n, s, s, channels + 1])
        out["canvases"] = tf.stack(canvases, axis=1)  # (B, N, H, W, C)
        out["canvas"] = canvases[-1]
        return out

