"""The Painter networks of thesis chapter 5: simple, recurrent, convolutional."""

import keras
import tensorflow as tf

from tfpaint.layers import latents
from tfpaint.layers import sorter as sorter_lib
from tfpaint.layers import template_writer as tw
from tfpaint.models import checks

ENCODERS = ("dense", "conv")
LATENTS = (None, "denoising", "variational", "custom")


def _writer_kwargs(model):
    return dict(
        canvas_size=model.image_shape[:2],
        channels=model.image_shape[2],
        templates=model.templates,
        template_size=model.template_size,
        allow_skew=model.allow_skew,
        canvas=model.canvas,
        sharpening=model.sharpening,
        exploration_noise=model.exploration_noise,
        learnable_templates=model.learnable_templates,
        what_activation="sigmoid" if model.canvas == "over" else "linear",
        initial_scale=model.initial_scale,
        seed=model.seed,
    )


def write_canvases_once(outputs):
    """Lets a function compiled with XLA write each per-move canvas once.

    Inside a function compiled with XLA that returns only the stacked
    `canvases`, XLA fuses the unrolled "over" loop into the stack and
    recomputes the earlier moves for every move it stacks: T (T + 1) / 2
    steps instead of T (see `OverCanvas`). Return `per_move` from the compiled
    function as well and drop it outside: each canvas is then an output
    written once, and the stack copies them.

    Args:
        outputs: a Painter's output dict (with `canvases` `(B, T, H, W, C)`).

    Returns:
        `(outputs, per_move)`: a copy of the dict whose `canvases` are stacked
        from `per_move`, the list of T canvases `(B, H, W, C)`.
    """
    outputs = dict(outputs)
    per_move = tf.unstack(outputs["canvases"], axis=1)
    outputs["canvases"] = tf.stack(per_move, axis=1)  # (B, T, H, W, C)
    return outputs, per_move


def check_sorters(sorter, depth_sorter, canvas):
    """Raises ValueError unless the sorter choice fits: at most one sorter, depth on "over"."""
    if sorter and depth_sorter:
        raise ValueError(
            "Choose one occlusion sorter: `sorter` (2 moves, thesis section 5.6) or "
            "`depth_sorter` (a learned depth per move). Received both."
        )
    if depth_sorter and canvas != "over":
        raise ValueError(
            "The depth sorter orders moves of the \"over\" canvas. "
            f"Received: canvas={canvas!r}"
        )


class _PainterBase(keras.Model):
    """Arguments and config shared by every Painter."""

    def __init__(
        self,
        num_moves=20,
        image_shape=(28, 28, 1),
        templates=("square",),
        template_size=28,
        allow_skew=False,
        canvas="over",
        sharpening=1.0,
        exploration_noise=0.0,
        learnable_templates=False,
        initial_scale=1.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        image_shape = checks.image_shape(image_shape)
        if int(num_moves) < 1:
            raise ValueError(f"`num_moves` must be >= 1. Received: {num_moves}")
        self.num_moves = int(num_moves)
        self.image_shape = image_shape
        self.templates = (templates,) if isinstance(templates, str) else tuple(templates)
        self.template_size = int(template_size)
        self.allow_skew = bool(allow_skew)
        self.canvas = canvas
        self.sharpening = float(sharpening)
        self.exploration_noise = float(exploration_noise)
        self.learnable_templates = bool(learnable_templates)
        self.initial_scale = float(initial_scale)
        self.seed = seed

    def get_config(self):
        return {
            "name": self.name,
            "num_moves": self.num_moves,
            "image_shape": self.image_shape,
            "templates": self.templates,
            "template_size": self.template_size,
            "allow_skew": self.allow_skew,
            "canvas": self.canvas,
            "sharpening": self.sharpening,
            "exploration_noise": self.exploration_noise,
            "learnable_templates": self.learnable_templates,
            "initial_scale": self.initial_scale,
            "seed": self.seed,
        }

    def render(self, where, what, which):
        """Paints given moves on a blank canvas (for edited strokes, export).

        Args:
            where: `(B, T, 6)` affine maps, canvas to template coordinates.
            what: `(B, T, C)` colours.
            which: `(B, T, K)` template weights.

        Returns:
            `(B, T, H, W, C)` the canvas after each move.

        Raises:
            ValueError: if the shapes are not those above (T = `num_moves`, C
                = channels, K = number of templates) or the batch sizes
                differ; in eager mode also if a value is not finite, `which`
                is not in [0, 1], or (on the "over" canvas, whose colours are
                sigmoids) `what` is not in [0, 1]. Inside a `tf.function`
                sizes unknown when tracing fail when the graph runs, and
                values are not looked at (the SavedModel's `render`
                signature checks them).
        """
        channels = self.image_shape[2]
        num_templates = len(self.templates)
        moves = self.num_moves
        where, what, which = (
            tf.convert_to_tensor(t, self.compute_dtype) for t in (where, what, which)
        )
        where, what, which = tw.check_move_shapes(
            [
                ("where", where, ("batch", moves, 6)),
                ("what", what, ("batch", moves, channels)),
                ("which", which, ("batch", moves, num_templates)),
            ],
            note=(
                f"T = num_moves = {moves}, C = channels = {channels}, "
                f"K = {num_templates} templates"
            ),
        )
        if tf.executing_eagerly() and self.canvas == "over":
            # Additive-canvas colours are unbounded logits.
            tw.check_move_values("what", what, 0.0, 1.0)
        masks = self.writer.render(where, which)  # Checks where and which values.
        return self.writer.paint(masks, what)


@keras.saving.register_keras_serializable(package="tfpaint")
class SimplePainter(_PainterBase):
    """The simple (and convolutional) Painter: all T moves from one code h.

    `h = encoder(x)` (a 256-unit ReLU layer, or two convolutions for the
    convolutional Painter of section 5.7), optionally made a Gaussian code `z`
    (denoising and variational variants, section 5.3), and T template writers
    read it at once; the moves are painted in a fixed order on the canvas.
    With `sorter=True` (2 moves) the overlap is recoloured by the occlusion
    sorter of section 5.6. With `depth_sorter=True` (any number of moves) each
    move gets a learned depth and the moves are composited by a soft "over" in
    order of depth (`DepthSorter`); the moves are then returned bottom to top,
    so pictures, strokes and SVG show the learned order.

    Args:
        num_moves: T.
        image_shape: `(height, width, channels)`.
        encoder: "dense" or "conv".
        hidden_units: width of each dense encoder layer (256 in the thesis).
        hidden_layers: number of dense layers (after the convolutions for the
            conv encoder; the thesis' convolutional Painter has none).
        conv_filters: feature maps of the conv encoder's layers ((10, 5) in
            the thesis).
        conv_kernel_size: kernel side of the conv layers.
        conv_strides: stride of the conv layers.
        latent: None (deterministic), "denoising" (z = h + fixed-sigma noise
            in training, no latent cost), "variational" (learned sigma, KL) or
            "custom" (use `latent_stochastic`, `latent_sigma`, `latent_cost`).
        latent_units: size of z.
        latent_sigma: the fixed sigma (None to learn it).
        latent_stochastic: whether z is sampled, for "custom".
        latent_cost: "none", "mu" or "full", for "custom".
        input_noise: std of Gaussian noise added to the input in training.
        sorter: whether to add the 2-move occlusion sorter.
        depth_sorter: whether to order the moves by a learned depth (T moves).
        depth_temperature: the depth sorter's temperature.
        templates, template_size, allow_skew, canvas, sharpening,
        exploration_noise, learnable_templates, initial_scale, seed: as in
            `TemplateWriter`.

    Call arguments:
        images: `(batch, height, width, channels)` in [0, 1].
        training: noise on (exploration, latent, input) if True.

    Returns:
        Dict: `canvas` `(B, H, W, C)` the painting; `canvases` `(B, T, H, W, C)`
        after each move; `where` `(B, T, 6)`; `what` `(B, T, C)`; `which`
        `(B, T, K)`; `which_logits`; `masks` `(B, T, H, W, 1)`;
        `latent_cost` `(B,)` (zeros without a latent); with a latent `mu` and
        `sigma`; with the sorter `order` `(B, 2)` and `unsorted_canvas`; with
        the depth sorter the moves (`where` ... `masks`, `canvases`) sorted
        bottom to top, `depth` `(B, T)` their depths (ascending),
        `paint_order` `(B, T)` the index of each among the writer's moves, and
        `canvas` the soft composite (the loss' canvas; `canvases[:, -1]` is
        the same moves painted by the hard "over" rule).

    Reference:
        Thesis section 5.1 and fig 5.1 (left), 5.3, 5.6, 5.7.
    """

    def __init__(
        self,
        num_moves=20,
        image_shape=(28, 28, 1),
        encoder="dense",
        hidden_units=256,
        hidden_layers=1,
        conv_filters=(10, 5),
        conv_kernel_size=5,
        conv_strides=2,
        latent=None,
        latent_units=256,
        latent_sigma=None,
        latent_stochastic=True,
        latent_cost="none",
        input_noise=0.0,
        sorter=False,
        depth_sorter=False,
        depth_temperature=1.0,
        **kwargs,
    ):
        super().__init__(num_moves=num_moves, image_shape=image_shape, **kwargs)
        if encoder not in ENCODERS:
            raise ValueError(f"`encoder` must be one of {ENCODERS}. Received: {encoder!r}")
        if latent not in LATENTS:
            raise ValueError(f"`latent` must be one of {LATENTS}. Received: {latent!r}")
        if sorter and self.num_moves != 2:
            raise ValueError(
                "The occlusion sorter orders exactly 2 moves (thesis section 5.6). "
                f"Received: num_moves={self.num_moves}"
            )
        check_sorters(sorter, depth_sorter, self.canvas)
        self.encoder = encoder
        self.hidden_units = int(hidden_units)
        self.hidden_layers = int(hidden_layers)
        self.conv_filters = tuple(int(f) for f in conv_filters)
        self.conv_kernel_size = int(conv_kernel_size)
        self.conv_strides = int(conv_strides)
        self.latent = latent
        self.latent_units = int(latent_units)
        self.latent_sigma = latent_sigma
        self.latent_stochastic = bool(latent_stochastic)
        self.latent_cost = latent_cost
        self.input_noise = float(input_noise)
        self.use_sorter = bool(sorter)
        self.use_depth_sorter = bool(depth_sorter)
        self.depth_temperature = float(depth_temperature)

        init = tw.painter_initializer(self.seed)
        layers = []
        if encoder == "conv":
            for i, filters in enumerate(self.conv_filters):
                layers.append(
                    keras.layers.Conv2D(
                        filters,
                        self.conv_kernel_size,
                        strides=self.conv_strides,
                        padding="same",
                        activation="relu",
                        kernel_initializer=init,
                        name=f"conv{i}",
                    )
                )
        layers.append(keras.layers.Flatten(name="flatten"))
        for i in range(self.hidden_layers):
            layers.append(
                keras.layers.Dense(
                    self.hidden_units,
                    activation="relu",
                    kernel_initializer=init,
                    name=f"hidden{i}",
                )
            )
        self.encoder_net = keras.Sequential(layers, name="encoder")
        self.latent_layer = None
        if latent == "denoising":
            self.latent_layer = latents.GaussianLatent(
                self.latent_units,
                stochastic=True,
                sigma=0.1 if latent_sigma is None else latent_sigma,
                latent_cost="none",
                seed=self.seed,
                name="latent",
            )
        elif latent == "variational":
            self.latent_layer = latents.GaussianLatent(
                self.latent_units, stochastic=True, sigma=None, latent_cost="full",
                seed=self.seed, name="latent",
            )
        elif latent == "custom":
            self.latent_layer = latents.GaussianLatent(
                self.latent_units,
                stochastic=self.latent_stochastic,
                sigma=latent_sigma,
                latent_cost=latent_cost,
                seed=self.seed,
                name="latent",
            )
        self.writer = tw.TemplateWriter(
            num_moves=self.num_moves, name="writer", **_writer_kwargs(self)
        )
        self.sorter = sorter_lib.OcclusionSorter(seed=self.seed, name="sorter") if sorter else None
        self.depth_sorter = None
        if depth_sorter:
            self.depth_sorter = sorter_lib.DepthSorter(
                self.num_moves, temperature=self.depth_temperature, seed=self.seed,
                name="depth_sorter")
        self.noise_seed = keras.random.SeedGenerator(self.seed)
        self.build((None, *self.image_shape))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": self.encoder,
                "hidden_units": self.hidden_units,
                "hidden_layers": self.hidden_layers,
                "conv_filters": self.conv_filters,
                "conv_kernel_size": self.conv_kernel_size,
                "conv_strides": self.conv_strides,
                "latent": self.latent,
                "latent_units": self.latent_units,
                "latent_sigma": self.latent_sigma,
                "latent_stochastic": self.latent_stochastic,
                "latent_cost": self.latent_cost,
                "input_noise": self.input_noise,
                "sorter": self.use_sorter,
                "depth_sorter": self.use_depth_sorter,
                "depth_temperature": self.depth_temperature,
            }
        )
        return config

    def build(self, input_shape):
        self.encoder_net.build(input_shape)
        h_shape = self.encoder_net.compute_output_shape(input_shape)
        if self.latent_layer is not None:
            self.latent_layer.build(h_shape)
            h_shape = (h_shape[0], self.latent_units)
        self.writer.build(h_shape)
        if self.sorter is not None:
            self.sorter.build(None, None, None, h_shape)
        if self.depth_sorter is not None:
            self.depth_sorter.build(None, None, h_shape)
        self.built = True

    def encode(self, images, training=False):
        """Hidden features (or the latent code) of images, `(B, D)`."""
        images = tf.convert_to_tensor(images, self.compute_dtype)
        checks.image_batch(images, self.image_shape)
        if training and self.input_noise > 0:
            images = images + self.input_noise * keras.random.normal(
                tf.shape(images), seed=self.noise_seed, dtype=images.dtype
            )
        h = self.encoder_net(images)  # (B, D)
        extra = {}
        if self.latent_layer is not None:
            extra = self.latent_layer(h, training=training)
            h = extra.pop("z")  # (B, Z)
        else:
            extra["latent_cost"] = tf.zeros(tf.shape(h)[:1], h.dtype)  # (B,)
        return h, extra

    def call(self, images, training=False):
        h, outputs = self.encode(images, training=training)
        if self.depth_sorter is not None:
            return self._call_depth_sorted(h, outputs, training)
        outputs.update(self.writer(h, training=training))
        canvases = outputs["canvases"]  # (B, T, H, W, C)
        if self.sorter is not None:
            outputs["unsorted_canvas"] = canvases[:, -1]
            canvas, outputs["order"] = self.sorter(
                canvases[:, -1], outputs["masks"], outputs["what"], h
            )
            canvases = tf.concat([canvases[:, :-1], canvas[:, None]], axis=1)
            outputs["canvases"] = canvases
        outputs["canvas"] = canvases[:, -1]  # (B, H, W, C)
        return outputs

    def _call_depth_sorted(self, h, outputs, training):
        moves = self.writer.moves(h, training=training)
        moves["masks"] = self.writer.render(moves["where"], moves["which"])  # (B, T, H, W, 1)
        result = self.depth_sorter(moves["masks"], moves["what"], h)
        order = result["order"]  # (B, T): bottom first
        for key, value in moves.items():
            outputs[key] = tf.gather(value, order, axis=1, batch_dims=1)
        outputs["depth"] = tf.gather(result["depth"], order, axis=1, batch_dims=1)  # (B, T)
        outputs["paint_order"] = order
        outputs["canvases"] = self.writer.paint(outputs["masks"], outputs["what"])
        outputs["canvas"] = result["canvas"]  # (B, H, W, C)
        return outputs


@keras.saving.register_keras_serializable(package="tfpaint")
class ConvPainter(SimplePainter):
    """The convolutional Painter of thesis section 5.7 (two conv layers).

    A `SimplePainter` with `encoder="conv"`; see its arguments.
    """

    def __init__(self, encoder="conv", **kwargs):
        super().__init__(encoder=encoder, **kwargs)


@keras.saving.register_keras_serializable(package="tfpaint")
class RecurrentPainter(_PainterBase):
    """The recurrent and canvas-recurrent Painters (thesis fig 5.1, right).

    An LSTM reads the image at every step, `h_t = LSTM(h_{t-1}, x)`, and a
    one-move template writer paints from `h_t`. With `canvas_feedback=True`
    (the canvas-recurrent Painter, the dashed connections of fig 5.1) the LSTM
    also reads the canvas painted so far: `h_t = LSTM(h_{t-1}, [x, c_{t-1}])`.

    Args:
        num_moves: T.
        image_shape: `(height, width, channels)`.
        lstm_units: LSTM width (256 in the thesis).
        canvas_feedback: whether the LSTM sees the canvas so far.
        templates, template_size, allow_skew, canvas, sharpening,
        exploration_noise, learnable_templates, initial_scale, seed: as in
            `TemplateWriter`.

    Call arguments:
        images: `(batch, height, width, channels)` in [0, 1].
        training: exploration noise on if True.

    Returns:
        The dict of `SimplePainter` (without latent or sorter entries).

    Reference:
        Thesis section 5.1, fig 5.1 (right), section 5.2.
    """

    def __init__(self, num_moves=20, image_shape=(28, 28, 1), lstm_units=256,
                 canvas_feedback=False, **kwargs):
        super().__init__(num_moves=num_moves, image_shape=image_shape, **kwargs)
        self.lstm_units = int(lstm_units)
        self.canvas_feedback = bool(canvas_feedback)
        init = tw.painter_initializer(self.seed)
        self.cell = keras.layers.LSTMCell(
            self.lstm_units,
            kernel_initializer=init,
            recurrent_initializer=init,
            name="lstm",
        )
        self.writer = tw.TemplateWriter(num_moves=1, name="writer", **_writer_kwargs(self))
        self.build((None, *self.image_shape))

    def get_config(self):
        config = super().get_config()
        config.update(
            {"lstm_units": self.lstm_units, "canvas_feedback": self.canvas_feedback}
        )
        return config

    def build(self, input_shape):
        pixels = self.image_shape[0] * self.image_shape[1] * self.image_shape[2]
        inputs = pixels * (2 if self.canvas_feedback else 1)
        self.cell.build((None, inputs))
        self.writer.build((None, self.lstm_units))
        self.built = True

    def call(self, images, training=False):
        images = tf.convert_to_tensor(images, self.compute_dtype)
        checks.image_batch(images, self.image_shape)
        if images.shape[0] == 0:
            # With a batch known to be 0, Keras' TF `ops.add` mistakes the
            # LSTM cell's (0, 4U) recurrent term for a bias and `bias_add`
            # fails. Paint one blank image instead and keep none of it: the
            # keys, shapes and dtypes of any batch, and zero (not missing)
            # gradients, as the SimplePainter gives.
            blank = tf.zeros([1, *self.image_shape], images.dtype)
            outputs = self.call(blank, training=training)
            return {k: v[:0] for k, v in outputs.items()}
        batch = tf.shape(images)[0]
        height, width, _ = self.image_shape
        x = tf.reshape(images, [batch, -1])  # (B, H*W*C)
        state = [tf.zeros([batch, self.lstm_units], x.dtype)] * 2
        canvas_layer = self.writer.canvas_layer
        canvas_state = canvas_layer.blank(batch, height, width, x.dtype)
        keys = ("where", "what", "which", "which_logits", "masks")
        steps = {k: [] for k in keys + ("canvases",)}
        for _ in range(self.num_moves):
            inputs = x
            if self.canvas_feedback:
                seen = canvas_layer.visible(canvas_state)
                inputs = tf.concat([x, tf.reshape(seen, [batch, -1])], axis=-1)
            h, state = self.cell(inputs, state, training=training)  # (B, U)
            move = self.writer.moves(h, training=training)
            move["masks"] = self.writer.render(move["where"], move["which"])
            canvas_state = canvas_layer.step(
                canvas_state, move["masks"][:, 0], move["what"][:, 0]
            )  # (B, H, W, C)
            move["canvases"] = canvas_layer.visible(canvas_state)[:, None]
            for k in steps:
                steps[k].append(move[k])
        outputs = {k: tf.concat(v, axis=1) for k, v in steps.items()}
        outputs["canvas"] = outputs["canvases"][:, -1]
        outputs["latent_cost"] = tf.zeros([batch], x.dtype)
        return outputs
