"""The two-move occlusion sorter of thesis section 5.6."""

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
