"""Canvases: where moves are painted, one after another."""

import keras
import tensorflow as tf


def _check_moves(masks, colors, channels):
    if masks.shape.rank != 5 or (masks.shape[-1] not in (None, 1)):
        raise ValueError(
            "`masks` must have shape (batch, moves, height, width, 1). "
            f"Received: masks.shape={masks.shape}"
        )
    if colors.shape.rank != 3 or (colors.shape[-1] not in (None, channels)):
        raise ValueError(
            f"`colors` must have shape (batch, moves, {channels}). "
            f"Received: colors.shape={colors.shape}"
        )


@keras.saving.register_keras_serializable(package="tfpaint")
class OverCanvas(keras.layers.Layer):
    """Superpositional canvas: each move is painted over the ones before it.

    `c_{t+1} = c_t * (1 - p_mask_t) + what_t * p_mask_t` (thesis eqs 3.4-3.5),
    the "over" operator of alpha compositing with the mask as opacity: an
    opaque move replaces what is under it, an empty one keeps it.

    Args:
        channels: 1 for grayscale, 3 for RGB.
        background: value of the blank canvas in every channel.

    Call arguments:
        masks: `(batch, moves, height, width, 1)` transformed template masks in
            [0, 1].
        colors: `(batch, moves, channels)` colours `h_what`.
        initial: optional `(batch, height, width, channels)` starting canvas.

    Returns:
        `(batch, moves, height, width, channels)`: the canvas after each move;
        the last one is the painting.

    Note:
        Inside a function compiled with XLA that returns only the stacked
        canvases, XLA fuses this unrolled loop into the stack and recomputes
        the earlier moves for every move it stacks: T (T + 1) / 2 steps.
        Return the per-move canvases as outputs too and each is written once
        (`tfpaint.models.painter.write_canvases_once`).

    Reference:
        Thesis section 3.4, eqs 3.4-3.5; Porter and Duff 1984.
    """

    def __init__(self, channels=1, background=0.0, **kwargs):
        super().__init__(**kwargs)
        if int(channels) < 1:
            raise ValueError(f"`channels` must be >= 1. Received: {channels}")
        self.channels = int(channels)
        self.background = float(background)

    def get_config(self):
        config = super().get_config()
        config.update({"channels": self.channels, "background": self.background})
        return config

    def blank(self, batch, height, width, dtype=None):
        return tf.fill(
            [batch, height, width, self.channels],
            tf.constant(self.background, dtype or self.compute_dtype),
        )

    def visible(self, state):
        """The picture a canvas state shows (the state itself for "over")."""
        return state

    def step(self, canvas, mask, color):
        """One "over" update (eq 3.4) with `mask` (B, H, W, 1), `color` (B, C)."""
        color = color[:, None, None, :]  # (B, 1, 1, C)
        return canvas * (1.0 - mask) + color * mask  # (B, H, W, C)

    def call(self, masks, colors, initial=None):
        masks = tf.convert_to_tensor(masks, self.compute_dtype)
        colors = tf.convert_to_tensor(colors, self.compute_dtype)
        _check_moves(masks, colors, self.channels)
        if initial is None:
            shape = tf.shape(masks)
            initial = self.blank(shape[0], shape[2], shape[3], masks.dtype)
        canvas = initial
        canvases = []
        # Unstack rather than index masks[:, t]: the gradient of T slices is T
        # full-size tensors, that of one unstack is a single stack.
        for mask, color in zip(tf.unstack(masks, axis=1), tf.unstack(colors, axis=1)):
            canvas = self.step(canvas, mask, color)
            canvases.append(canvas)
        return tf.stack(canvases, axis=1)  # (B, T, H, W, C)


@keras.saving.register_keras_serializable(package="tfpaint")
class AdditiveCanvas(keras.layers.Layer):
    """Additive canvas: moves are summed on a hidden canvas read through a sigmoid.

    `c^h_{t+1} = c^h_t + h_what_t * p_mask_t` (thesis eq 3.3) and the visible
    canvas is `sigmoid(c^h_t)`, as in DRAW. The blank hidden canvas is a
    learned scalar starting at `initial_logit`, so an empty painting starts
    dark (`sigmoid(-6)` is about 0.0025) rather than mid-gray.

    Args:
        channels: 1 for grayscale, 3 for RGB.
        initial_logit: starting value of the learned blank hidden canvas.

    Call arguments:
        masks: `(batch, moves, height, width, 1)`.
        colors: `(batch, moves, channels)`, unbounded.
        initial: optional `(batch, height, width, channels)` hidden canvas.

    Returns:
        `(batch, moves, height, width, channels)`: `sigmoid` of the hidden
        canvas after each move.

    Reference:
        Thesis section 3.4, eq 3.3; Gregor et al. 2015 (DRAW).
    """

    def __init__(self, channels=1, initial_logit=-6.0, **kwargs):
        super().__init__(**kwargs)
        if int(channels) < 1:
            raise ValueError(f"`channels` must be >= 1. Received: {channels}")
        self.channels = int(channels)
        self.initial_logit = float(initial_logit)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"channels": self.channels, "initial_logit": self.initial_logit}
        )
        return config

    def build(self, masks_shape=None, colors_shape=None, initial_shape=None):
        self.blank_logit = self.add_weight(
            name="blank_logit",
            shape=(),
            initializer=keras.initializers.Constant(self.initial_logit),
        )

    def blank(self, batch, height, width, dtype=None):
        """The blank hidden canvas (logits), `(B, H, W, C)`."""
        return tf.fill(
            [batch, height, width, self.channels],
            tf.cast(self.blank_logit, dtype or self.compute_dtype),
        )

    def visible(self, state):
        """The picture a hidden canvas shows, `sigmoid(c^h)`."""
        return tf.sigmoid(state)

    def step(self, hidden, mask, color):
        """One additive update (eq 3.3) of the hidden canvas."""
        return hidden + color[:, None, None, :] * mask  # (B, H, W, C)

    def call(self, masks, colors, initial=None):
        masks = tf.convert_to_tensor(masks, self.compute_dtype)
        colors = tf.convert_to_tensor(colors, self.compute_dtype)
        _check_moves(masks, colors, self.channels)
        if initial is None:
            initial = tf.cast(self.blank_logit, masks.dtype)
        patches = colors[:, :, None, None, :] * masks  # (B, T, H, W, C)
        hidden = initial[:, None] if initial.shape.rank == 4 else initial
        hidden = hidden + tf.cumsum(patches, axis=1)  # (B, T, H, W, C)
        return tf.sigmoid(hidden)
