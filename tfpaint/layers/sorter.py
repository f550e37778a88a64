"""Occlusion sorters: the two-move blend of thesis section 5.6 and a learned depth for T moves."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfpaint")
class OcclusionSorter(keras.layers.Layer):
    """Recolours the overlap of two moves with a learned blend of their colours.

    After the two moves are painted in their fixed order, the intersection of
    their masks `I = p_mask_1 * p_mask_2` takes the colour `w_1 what_1 +
    w_2 what_2`, with `w = softmax(W h + b)` chosen per image. `w_1 -> 1` puts
    move 1 on top, `w_2 -> 1` move 2: the order is picked after the moves.

    Args:
        seed: seed of the weight initialiser.

    Call arguments:
        canvas: `(batch, height, width, channels)` canvas after both moves.
        masks: `(batch, 2, height, width, 1)` the two moves' masks.
        colors: `(batch, 2, channels)` their colours.
        h: `(batch, features)` features the order is read from.

    Returns:
        Tuple of the sorted canvas `(batch, height, width, channels)` and the
        blend weights `(batch, 2)`.

    Reference:
        Thesis section 5.6, figs 5.15-5.17.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.order_dense = keras.layers.Dense(
            2,
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.05, seed=seed),
            name="order",
        )

    def get_config(self):
        config = super().get_config()
        config.update({"seed": self.seed})
        return config

    def build(self, canvas_shape, masks_shape=None, colors_shape=None, h_shape=None):
        if masks_shape is not None and masks_shape[1] not in (None, 2):
            raise ValueError(
                "The occlusion sorter orders exactly 2 moves (thesis section 5.6). "
                f"Received masks for {masks_shape[1]} moves."
            )
        self.order_dense.build(h_shape)

    def call(self, canvas, masks, colors, h):
        if masks.shape[1] not in (None, 2) or colors.shape[1] not in (None, 2):
            raise ValueError(
                "The occlusion sorter orders exactly 2 moves (thesis section 5.6). "
                f"Received masks for {masks.shape[1]} moves."
            )
        weights = tf.nn.softmax(self.order_dense(h), axis=-1)  # (B, 2)
        overlap = masks[:, 0] * masks[:, 1]  # (B, H, W, 1)
        blend = tf.einsum("bt,btc->bc", weights, colors)  # (B, C)
        sorted_canvas = canvas * (1.0 - overlap) + blend[:, None, None, :] * overlap
        return sorted_canvas, weights


@keras.saving.register_keras_serializable(package="tfpaint")
class DepthSorter(keras.layers.Layer):
    """Paints T moves in a learned order: a depth per move and a soft "over".

    Each move gets a depth `d = W h + b` `(B, T)`, read from the features `h`. The
    probability that move s lies above move t is `a_ts = sigmoid((d_s - d_t) / tau)`. A
    move's weight at a pixel is its mask times the light that passes the moves above it,

        w_t(x) = m_t(x) prod_{s != t} (1 - a_ts m_s(x)),

    and the canvas is

        c(x) = b prod_t (1 - m_t(x)) + (1 - prod_t (1 - m_t(x))) sum_t w_t(x) what_t / sum_t w_t(x)

    with b the background. When the depths are far apart (`a_ts` 0 or 1) this is exactly the
    "over" rule (eq 3.4) applied in order of increasing depth, for any mask values: then
    `sum_t w_t = 1 - prod_t (1 - m_t)`. In between it is a smooth blend, so the order is
    learned by gradient descent. For T = 2 and binary masks the overlap takes
    `a_21 what_1 + a_12 what_2`: the blend of the two-move sorter (`OcclusionSorter`, thesis
    section 5.6) with `softmax(d)` as its weights.

    Args:
        num_moves: T.
        temperature: tau, the depth difference that makes an order 73% sure.
        background: value of the blank canvas.
        seed: seed of the weight initialiser.

    Call arguments:
        masks: `(batch, T, height, width, 1)` the moves' masks, in [0, 1].
        colors: `(batch, T, channels)` their colours.
        h: `(batch, features)` features the depths are read from.

    Returns:
        Dict: `canvas` `(batch, height, width, channels)` the painting; `depth` `(batch, T)`
        each move's depth (larger is nearer the viewer); `order` `(batch, T)` int32, the moves
        from bottom to top (`argsort` of `depth`).

    Reference:
        Thesis section 5.6 (the two-move sorter, which this extends to T moves; the thesis
        leaves T > 2 open); eq 3.4 (the "over" rule).
    """

    def __init__(self, num_moves, temperature=1.0, background=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if int(num_moves) < 1:
            raise ValueError(f"`num_moves` must be >= 1. Received: {num_moves}")
        if not float(temperature) > 0:
            raise ValueError(f"`temperature` must be > 0. Received: {temperature}")
        self.num_moves = int(num_moves)
        self.temperature = float(temperature)
        self.background = float(background)
        self.seed = seed
        self.depth_dense = keras.layers.Dense(
            self.num_moves,
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.05, seed=seed),
            name="depth",
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_moves": self.num_moves,
                "temperature": self.temperature,
                "background": self.background,
                "seed": self.seed,
            }
        )
        return config

    def build(self, masks_shape=None, colors_shape=None, h_shape=None):
        self.depth_dense.build(h_shape)

    def composite(self, masks, colors, depth):
        """The soft "over" painting of moves at given depths.

        Args:
            masks: `(B, T, H, W, 1)` in [0, 1].
            colors: `(B, T, C)`.
            depth: `(B, T)`.

        Returns:
            `(B, H, W, C)` the canvas.
        """
        if masks.shape[1] is not None and masks.shape[1] != self.num_moves:
            raise ValueError(
                f"The depth sorter was built for {self.num_moves} moves. "
                f"Received masks for {masks.shape[1]} moves."
            )
        m = masks[..., 0]  # (B, T, H, W)
        above = tf.sigmoid((depth[:, None, :] - depth[:, :, None]) / self.temperature)
        above *= 1.0 - tf.eye(self.num_moves, dtype=above.dtype)  # (B, T, T): s above t
        blocked = above[:, :, :, None, None] * m[:, None]  # (B, T, T, H, W)
        weights = m * tf.reduce_prod(1.0 - blocked, axis=2)  # (B, T, H, W)
        coverage = 1.0 - tf.reduce_prod(1.0 - m, axis=1)  # (B, H, W)
        mixed = tf.einsum("bthw,btc->bhwc", weights, colors)  # (B, H, W, C)
        total = tf.reduce_sum(weights, axis=1)[..., None]  # (B, H, W, 1)
        color = tf.math.divide_no_nan(mixed, total)
        coverage = coverage[..., None]
        return self.background * (1.0 - coverage) + coverage * color  # (B, H, W, C)

    def call(self, masks, colors, h):
        depth = self.depth_dense(h)  # (B, T)
        canvas = self.composite(masks, colors, depth)
        order = tf.argsort(depth, axis=-1, stable=True)  # (B, T): bottom first
        return {"canvas": canvas, "depth": depth, "order": order}
