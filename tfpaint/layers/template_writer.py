"""The template writer: what, where and which of a move, and its painting."""

import keras
import numpy as np
import tensorflow as tf

from tfpaint.layers import canvas as canvas_lib
from tfpaint.layers import spatial_transformer as st
from tfpaint.layers import template_bank as tb

CANVASES = ("over", "additive")


def painter_initializer(seed=None):
    """N(0, 0.05) weights, which the thesis found best (section 5.2)."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.05, seed=seed)


def make_canvas(kind, channels, name="canvas"):
    """Builds the canvas layer named `kind` ("over" or "additive")."""
    if kind == "over":
        return canvas_lib.OverCanvas(channels=channels, name=name)
    if kind == "additive":
        return canvas_lib.AdditiveCanvas(channels=channels, name=name)
    raise ValueError(f"`canvas` must be one of {CANVASES}. Received: {kind!r}")


# How errors name the sizes that move tensors share.
_SHARED_SIZES = {"batch": "batch size", "moves": "number of moves"}


def _names(names):
    quoted = [f"`{n}`" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _static_size(tensor, axis):
    return None if tensor.shape.rank is None else tensor.shape[axis]


def _shape_text(shape):
    return "(" + ", ".join(str(d) for d in shape) + ")"


def check_move_shapes(named, note=""):
    """Checks the shapes of move tensors and that they agree with each other.

    Static checks raise at once wherever shapes are known. Sizes known only
    when the graph runs (an unknown batch inside a `tf.function`) get scalar
    asserts on `tf.shape`, which cost nothing next to the painting and which
    XLA drops; element values are never looked at here (see
    `check_move_values`).

    Args:
        named: a list of `(name, tensor, shape)`. `shape` holds ints (sizes
            the axis must have) and strings (sizes every tensor must share,
            such as "batch" and "moves").
        note: appended to shape errors, e.g. "T = num_moves = 20".

    Returns:
        The tensors, in graph mode behind the asserts their unknown sizes need.

    Raises:
        ValueError: on a rank, a size or a shared size that is wrong statically.
    """
    note = f" ({note})" if note else ""
    shared = {}  # symbol -> [(name, tensor, axis)]
    asserts = []
    for name, tensor, shape in named:
        rank = tensor.shape.rank
        wrong = rank is not None and rank != len(shape)
        if not wrong and rank is not None:
            wrong = any(
                isinstance(size, int) and tensor.shape[axis] not in (None, size)
                for axis, size in enumerate(shape)
            )
        if wrong:
            raise ValueError(
                f"`{name}` must have shape {_shape_text(shape)}{note}. "
                f"Received: {name}.shape={_shape_text(tensor.shape.as_list())}"
            )
        message = f"`{name}` must have shape {_shape_text(shape)}{note}"
        if rank is None:
            asserts.append(tf.debugging.assert_rank(tensor, len(shape), message=message))
        for axis, size in enumerate(shape):
            if isinstance(size, str):
                shared.setdefault(size, []).append((name, tensor, axis))
            elif _static_size(tensor, axis) is None:
                asserts.append(
                    tf.debugging.assert_equal(tf.shape(tensor)[axis], size, message=message)
                )
    for symbol, members in shared.items():
        if len(members) < 2:
            continue
        message = (
            f"{_names([m[0] for m in members])} must have the same "
            f"{_SHARED_SIZES.get(symbol, symbol)}"
        )
        sizes = [_static_size(t, axis) for _, t, axis in members]
        if len(set(sizes) - {None}) > 1:
            received = ", ".join(
                f"{n}.shape={_shape_text(t.shape.as_list())}" for n, t, _ in members
            )
            raise ValueError(f"{message}. Received: {received}")
        if None not in sizes:
            continue
        # Each size unknown until the graph runs is compared with a known one
        # (or with the first).
        ref = next((i for i, size in enumerate(sizes) if size is not None), 0)
        ref_name, ref_tensor, ref_axis = members[ref]
        ref_size = tf.shape(ref_tensor)[ref_axis]
        for i, ((name, tensor, axis), size) in enumerate(zip(members, sizes)):
            if size is None and i != ref:
                asserts.append(
                    tf.debugging.assert_equal(
                        tf.shape(tensor)[axis], ref_size,
                        message=f"{message}: `{name}` differs from `{ref_name}`",
                    )
                )
    tensors = [t for _, t, _ in named]
    if not asserts or tf.executing_eagerly():
        return tensors
    with tf.control_dependencies(asserts):
        checked = [tf.identity(t) for t in tensors]
    # What the asserts guarantee becomes static, for the layers downstream.
    known = {}
    for symbol, members in shared.items():
        sizes = {_static_size(t, axis) for _, t, axis in members} - {None}
        known[symbol] = sizes.pop() if sizes else None
    for tensor, (_, _, shape) in zip(checked, named):
        tensor.set_shape([known.get(d) if isinstance(d, str) else d for d in shape])
    return checked


def check_move_values(name, tensor, low=None, high=None):
    """Raises a ValueError if `tensor` is not finite (or not in [low, high]).

    Looks at every value, so call it in eager mode only: inside a training
    step a per-element assert would cost a pass over the tensor and a sync.
    """
    tensor = tf.convert_to_tensor(tensor)
    ok = tf.math.is_finite(tensor)
    if low is not None:
        ok = tf.logical_and(ok, tensor >= tf.cast(low, tensor.dtype))
    if high is not None:
        ok = tf.logical_and(ok, tensor <= tf.cast(high, tensor.dtype))
    if bool(tf.reduce_all(ok)):
        return
    ok, values = ok.numpy(), tensor.numpy()
    bad = np.argwhere(~ok)
    first = tuple(int(i) for i in bad[0])
    where = "[" + ", ".join(map(str, first)) + "]"
    bounds = f" and in [{low:g}, {high:g}]" if low is not None and high is not None else ""
    raise ValueError(
        f"`{name}` values must be finite{bounds}. Received: {len(bad)} of {ok.size} "
        f"values are not, e.g. {name}{where}={float(values[first])}"
    )


@keras.saving.register_keras_serializable(package="tfpaint")
class TemplateWriter(keras.layers.Layer):
    """Turns hidden features into painting moves and paints them (Algorithm 1).

    From `h`, dense heads give for each of `num_moves` moves:
    - `what`: the colour, `sigmoid` by default (section 3.2);
    - `where`: the affine `theta` (section 3.1), 4 numbers without skew or 6
      with it, starting at `initial_scale` times the identity;
    - `which`: logits over the template bank, sharpened and noised by the bank
      (section 3.3); absent with a single template.
    Then CHOOSE_TEMPLATE mixes the bank, TRANSFORM_MASK places the mix with the
    spatial transformer (theta maps canvas to template coordinates, eq 2.20),
    COLORIZE_MASK multiplies by `what`, and UPDATE_CANVAS paints with the canvas
    rule, move after move.

    Args:
        num_moves: moves written per call (T for the simple Painter, 1 per step
            in recurrent ones).
        canvas_size: `(height, width)` of the canvas.
        channels: 1 (grayscale) or 3 (RGB).
        templates: template names (see `TEMPLATE_NAMES`).
        template_size: side S of the template masks.
        allow_skew: if False, theta12 = theta21 = 0 (section 5.2).
        canvas: "over" (eq 3.4) or "additive" (eq 3.3).
        sharpening: gamma of eq 3.1.
        exploration_noise: std of the logit noise in training (section 3.3).
        learnable_templates: whether the masks are trained.
        what_activation: activation of the colour head; "sigmoid" keeps colours
            in [0, 1]; additive canvases want "linear".
        initial_scale: starting diagonal of theta; > 1 starts templates smaller
            than the canvas (1 covers it exactly).
        seed: seed of the weight initialisers and noise.

    Call arguments:
        h: `(batch, features)` hidden features.
        initial: optional canvas state `(batch, height, width, channels)` to
            paint over (for "additive", the hidden canvas).
        training: whether exploration noise is on.

    Returns:
        A dict with `where` `(B, T, 6)`, `what` `(B, T, C)`, `which` `(B, T, K)`
        (convex weights), `which_logits` `(B, T, K)`, `masks`
        `(B, T, H, W, 1)` and `canvases` `(B, T, H, W, C)`: the picture after
        each move.

    Reference:
        Thesis chapter 3, Algorithm 1, fig 3.6.
    """

    def __init__(
        self,
        num_moves=1,
        canvas_size=(28, 28),
        channels=1,
        templates=("square",),
        template_size=28,
        allow_skew=False,
        canvas="over",
        sharpening=1.0,
        exploration_noise=0.0,
        learnable_templates=False,
        what_activation="sigmoid",
        initial_scale=1.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(num_moves) < 1:
            raise ValueError(f"`num_moves` must be >= 1. Received: {num_moves}")
        if canvas not in CANVASES:
            raise ValueError(f"`canvas` must be one of {CANVASES}. Received: {canvas!r}")
        self.num_moves = int(num_moves)
        self.canvas_size = tuple(int(s) for s in canvas_size)
        self.channels = int(channels)
        self.templates = (templates,) if isinstance(templates, str) else tuple(templates)
        self.template_size = int(template_size)
        self.allow_skew = bool(allow_skew)
        self.canvas = canvas
        self.sharpening = float(sharpening)
        self.exploration_noise = float(exploration_noise)
        self.learnable_templates = bool(learnable_templates)
        self.what_activation = what_activation
        self.initial_scale = float(initial_scale)
        self.seed = seed

        self.num_templates = len(self.templates)
        where_units = 6 if self.allow_skew else 4
        s = self.initial_scale
        where_bias = [s, 0.0, 0.0, 0.0, s, 0.0] if self.allow_skew else [s, 0.0, s, 0.0]
        kernel_init = painter_initializer(seed)
        self.where_dense = keras.layers.Dense(
            self.num_moves * where_units,
            kernel_initializer=kernel_init,
            bias_initializer=keras.initializers.Constant(where_bias * self.num_moves),
            name="where",
        )
        self.what_dense = keras.layers.Dense(
            self.num_moves * self.channels,
            activation=what_activation,
            kernel_initializer=kernel_init,
            name="what",
        )
        self.which_dense = None
        if self.num_templates > 1:
            self.which_dense = keras.layers.Dense(
                self.num_moves * self.num_templates,
                kernel_initializer=kernel_init,
                name="which",
            )
        self.bank = tb.TemplateBank(
            self.templates,
            size=self.template_size,
            learnable=self.learnable_templates,
            sharpening=self.sharpening,
            exploration_noise=self.exploration_noise,
            seed=seed,
            name="template_bank",
        )
        self.transformer = st.SpatialTransformer(
            self.canvas_size, allow_skew=self.allow_skew, name="spatial_transformer"
        )
        self.canvas_layer = make_canvas(canvas, self.channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_moves": self.num_moves,
                "canvas_size": self.canvas_size,
                "channels": self.channels,
                "templates": self.templates,
                "template_size": self.template_size,
                "allow_skew": self.allow_skew,
                "canvas": self.canvas,
                "sharpening": self.sharpening,
                "exploration_noise": self.exploration_noise,
                "learnable_templates": self.learnable_templates,
                "what_activation": self.what_activation,
                "initial_scale": self.initial_scale,
                "seed": self.seed,
            }
        )
        return config

    def build(self, h_shape, initial_shape=None):
        self.where_dense.build(h_shape)
        self.what_dense.build(h_shape)
        if self.which_dense is not None:
            self.which_dense.build(h_shape)
        self.bank.build(None)
        self.canvas_layer.build(None)

    def moves(self, h, training=False):
        """The moves `where` (B, T, 6), `what` (B, T, C), `which` (B, T, K)."""
        h = tf.convert_to_tensor(h, self.compute_dtype)
        if h.shape.rank != 2:
            raise ValueError(
                f"`h` must have shape (batch, features). Received: h.shape={h.shape}"
            )
        batch = tf.shape(h)[0]
        where = self.where_dense(h)
        if self.allow_skew:
            where = tf.reshape(where, [batch, self.num_moves, 6])  # (B, T, 6)
        else:
            a, c, e, f = tf.unstack(
                tf.reshape(where, [batch, self.num_moves, 4]), axis=-1
            )
            zero = tf.zeros_like(a)
            where = tf.stack([a, zero, c, zero, e, f], axis=-1)  # (B, T, 6)
        what = tf.reshape(self.what_dense(h), [batch, self.num_moves, self.channels])
        if self.which_dense is None:
            logits = tf.zeros([batch, self.num_moves, 1], h.dtype)  # (B, T, 1)
            # The only template's weight is 1 exactly (a softmax of one logit
            # rounds to 0.99999994 on some CPUs).
            which = tf.ones_like(logits)  # (B, T, 1)
        else:
            logits = tf.reshape(
                self.which_dense(h), [batch, self.num_moves, self.num_templates]
            )  # (B, T, K)
            which = self.bank.choice_weights(logits, training=training)  # (B, T, K)
        return {"where": where, "what": what, "which": which, "which_logits": logits}

    def render(self, where, which):
        """Template masks placed on the canvas: CHOOSE_ and TRANSFORM_MASK.

        Args:
            where: `(B, T, 6)` affine maps (canvas to template coordinates).
            which: `(B, T, K)` convex template weights.

        Returns:
            `(B, T, H, W, 1)` masks in [0, 1].

        Raises:
            ValueError: if the shapes are not `(B, T, 6)` and `(B, T, K)` with
                the same B and T (inside a `tf.function`, sizes unknown when
                tracing fail when it runs); in eager mode also if `where` is
                not finite or `which` not in [0, 1].
        """
        where = tf.convert_to_tensor(where, self.compute_dtype)
        which = tf.convert_to_tensor(which, self.compute_dtype)
        where, which = check_move_shapes(
            [
                ("where", where, ("batch", "moves", 6)),
                ("which", which, ("batch", "moves", self.num_templates)),
            ],
            note=f"{self.num_templates} templates",
        )
        if tf.executing_eagerly():
            check_move_values("where", where)
            check_move_values("which", which, 0.0, 1.0)
        batch, moves = tf.shape(where)[0], tf.shape(where)[1]
        flat = self.transformer(
            self.bank.bank()[..., None],  # (K, S, S, 1)
            tf.reshape(where, [-1, 6]),
            weights=tf.reshape(which, [-1, self.num_templates]),
        )  # (B*T, H, W, 1)
        return tf.reshape(flat, [batch, moves, *self.canvas_size, 1])

    def paint(self, masks, what, initial=None):
        """UPDATE_CANVAS for every move: the canvas after each, `(B, T, H, W, C)`.

        Args:
            masks: `(B, T, H, W, 1)` placed templates (from `render`).
            what: `(B, T, C)` colours.
            initial: optional canvas state `(B, H, W, C)` to paint over.

        Raises:
            ValueError: if `masks` and `what` disagree on B or T or have the
                wrong shape; in eager mode also if `what` is not finite.
        """
        masks = tf.convert_to_tensor(masks, self.compute_dtype)
        what = tf.convert_to_tensor(what, self.compute_dtype)
        height, width = self.canvas_size
        masks, what = check_move_shapes(
            [
                ("masks", masks, ("batch", "moves", height, width, 1)),
                ("what", what, ("batch", "moves", self.channels)),
            ],
            note=f"{self.channels} channels",
        )
        if tf.executing_eagerly():
            check_move_values("what", what)
        return self.canvas_layer(masks, what, initial=initial)

    def call(self, h, initial=None, training=False):
        outputs = self.moves(h, training=training)
        outputs["masks"] = self.render(outputs["where"], outputs["which"])
        outputs["canvases"] = self.paint(outputs["masks"], outputs["what"], initial)
        return outputs
