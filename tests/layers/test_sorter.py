"""Tests for tfpaint.layers.sorter: the two-move occlusion sorter (thesis section 5.6)."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tests import testing
from tfpaint.layers import canvas as canvas_lib
from tfpaint.layers import sorter


def two_rectangles(batch, size=8):
    """Binary masks of two overlapping rectangles, `(batch, 2, size, size, 1)`."""
    masks = np.zeros((batch, 2, size, size, 1), np.float32)
    masks[:, 0, 1:5, 1:6] = 1.0
    masks[:, 1, 3:7, 4:8] = 1.0
    return masks


class OcclusionSorterTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        testing.set_seeds()
        self.rng = np.random.default_rng(0)

    def inputs(self, batch, channels, size=8):
        masks = two_rectangles(batch, size)
        colors = self.rng.uniform(size=(batch, 2, channels)).astype(np.float32)
        canvas = canvas_lib.OverCanvas(channels)(masks, colors)[:, -1].numpy()
        h = self.rng.normal(size=(batch, 10)).astype(np.float32)
        return canvas, masks, colors, h

    @parameterized.named_parameters(("grayscale", 1), ("rgb", 3))
    def test_layer_harness(self, channels):
        canvas, _, colors, h = self.inputs(3, channels)
        # Soft masks: every pixel takes part in the overlap.
        masks = self.rng.uniform(size=(3, 2, 8, 8, 1)).astype(np.float32)
        testing.run_layer_test(
            self,
            sorter.OcclusionSorter,
            dict(seed=4),
            (canvas, masks, colors, h),
            expected_output_shape=((3, 8, 8, channels), (3, 2)),
            expected_num_trainable_weights=2,
        )

    def force_order(self, layer, h, top):
        layer.order_dense.kernel.assign(np.zeros((h.shape[-1], 2), np.float32))
        bias = np.array([20.0, -20.0] if top == 0 else [-20.0, 20.0], np.float32)
        layer.order_dense.bias.assign(bias)

    @parameterized.named_parameters(
        ("move1_grayscale", 0, 1), ("move1_rgb", 0, 3), ("move2_rgb", 1, 3)
    )
    def test_forced_order_colours_intersection(self, top, channels):
        canvas, masks, colors, h = self.inputs(2, channels)
        layer = sorter.OcclusionSorter(seed=1)
        layer(canvas, masks, colors, h)
        self.force_order(layer, h, top)
        out, weights = layer(canvas, masks, colors, h)
        out = out.numpy()
        self.assertAllClose(weights, np.broadcast_to(np.eye(2)[top], (2, 2)), atol=1e-6)
        overlap = (masks[:, 0] * masks[:, 1])[..., 0] > 0  # (B, H, W)
        self.assertTrue(overlap.any())
        for b in range(2):
            # The intersection takes the colour of the move on top ...
            self.assertAllClose(
                out[b][overlap[b]],
                np.broadcast_to(colors[b, top], (overlap[b].sum(), channels)),
                atol=1e-6,
            )
            # ... and everything else is the canvas as painted.
            self.assertAllEqual(out[b][~overlap[b]], canvas[b][~overlap[b]])

    def test_matches_formula(self):
        canvas, _, colors, h = self.inputs(3, 3)
        masks = self.rng.uniform(size=(3, 2, 8, 8, 1)).astype(np.float32)
        layer = sorter.OcclusionSorter(seed=1)
        out, weights = layer(canvas, masks, colors, h)
        dense = layer.order_dense
        logits = h @ dense.kernel.numpy() + dense.bias.numpy()
        w = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        self.assertAllClose(weights, w, atol=1e-6)
        overlap = masks[:, 0] * masks[:, 1]
        blend = np.einsum("bt,btc->bc", w, colors)[:, None, None, :]
        self.assertAllClose(out, canvas * (1 - overlap) + blend * overlap, atol=1e-6)

    def test_gradients_reach_order_weights(self):
        canvas, masks, colors, h = self.inputs(3, 1)
        layer = sorter.OcclusionSorter(seed=1)
        with tf.GradientTape() as tape:
            out, _ = layer(canvas, masks, colors, h)
            loss = tf.reduce_sum(tf.square(out - 1.0))
        grads = tape.gradient(loss, layer.trainable_weights)
        testing.assert_gradients_reach_weights(self, layer.trainable_weights, grads)

    def test_unknown_batch_in_tf_function(self):
        canvas, masks, colors, h = self.inputs(3, 3)
        layer = sorter.OcclusionSorter(seed=1)
        expected = layer(canvas, masks, colors, h)

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 8, 8, 3], tf.float32),
                tf.TensorSpec([None, 2, 8, 8, 1], tf.float32),
                tf.TensorSpec([None, 2, 3], tf.float32),
                tf.TensorSpec([None, 10], tf.float32),
            ]
        )
        def sort(*args):
            return layer(*args)

        out = sort(canvas, masks, colors, h)
        self.assertAllClose(out[0], expected[0], atol=1e-6)
        self.assertAllClose(out[1], expected[1], atol=1e-6)

    @parameterized.named_parameters(("one", 1), ("three", 3))
    def test_wrong_number_of_moves_raises(self, moves):
        layer = sorter.OcclusionSorter()
        with self.assertRaisesRegex(ValueError, f"orders exactly 2 moves.*{moves} moves"):
            layer(
                np.zeros((2, 8, 8, 1), np.float32),
                np.zeros((2, moves, 8, 8, 1), np.float32),
                np.zeros((2, moves, 1), np.float32),
                np.zeros((2, 10), np.float32),
            )


if __name__ == "__main__":
    tf.test.main()
