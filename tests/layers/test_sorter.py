"""Tests for tfpaint.layers.sorter: the two-move sorter (thesis 5.6) and the depth sorter."""

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


def soft_over_reference(masks, colors, depth, temperature, background):
    """NumPy loop of `DepthSorter`'s equation, pixel by pixel."""
    batch, moves, height, width, _ = masks.shape
    out = np.zeros((batch, height, width, colors.shape[-1]))
    for b in range(batch):
        above = 1.0 / (1.0 + np.exp(-(depth[b][None, :] - depth[b][:, None]) / temperature))
        for i in range(height):
            for j in range(width):
                m = masks[b, :, i, j, 0]
                weights = np.array([
                    m[t] * np.prod([1.0 - above[t, s] * m[s] for s in range(moves) if s != t])
                    for t in range(moves)
                ])
                coverage = 1.0 - np.prod(1.0 - m)
                mixed = weights @ colors[b] / weights.sum() if weights.sum() > 0 else 0.0
                out[b, i, j] = background * (1.0 - coverage) + coverage * mixed
    return out


class DepthSorterTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        testing.set_seeds()
        self.rng = np.random.default_rng(1)

    def inputs(self, batch, moves, channels, size=6, binary=False):
        masks = self.rng.uniform(size=(batch, moves, size, size, 1)).astype(np.float32)
        if binary:
            masks = (masks > 0.5).astype(np.float32)
        colors = self.rng.uniform(size=(batch, moves, channels)).astype(np.float32)
        h = self.rng.normal(size=(batch, 10)).astype(np.float32)
        return masks, colors, h

    @parameterized.named_parameters(("two_gray", 2, 1), ("four_rgb", 4, 3))
    def test_layer_harness(self, moves, channels):
        masks, colors, h = self.inputs(3, moves, channels)
        testing.run_layer_test(
            self,
            sorter.DepthSorter,
            dict(num_moves=moves, temperature=0.5, background=0.2, seed=4),
            (masks, colors, h),
            expected_output_shape={"canvas": (3, 6, 6, channels), "depth": (3, moves),
                                   "order": (3, moves)},
            expected_num_trainable_weights=2,
        )

    @parameterized.named_parameters(
        ("three_soft", 3, 1.0, 0.0), ("four_cold", 4, 0.3, 0.25), ("one", 1, 1.0, 0.5))
    def test_matches_numpy_loop(self, moves, temperature, background):
        masks, colors, h = self.inputs(2, moves, 2)
        layer = sorter.DepthSorter(moves, temperature=temperature, background=background,
                                   seed=2)
        out = layer(masks, colors, h)
        dense = layer.depth_dense
        depth = h @ dense.kernel.numpy() + dense.bias.numpy()
        self.assertAllClose(out["depth"], depth, atol=1e-5)
        self.assertAllEqual(out["order"], np.argsort(depth, axis=-1, kind="stable"))
        expected = soft_over_reference(masks, colors, depth, temperature, background)
        self.assertAllClose(out["canvas"], expected, atol=1e-5)

    @parameterized.named_parameters(("soft_masks", False), ("binary_masks", True))
    def test_far_apart_depths_paint_over_in_depth_order(self, binary):
        masks, colors, _ = self.inputs(3, 4, 3, binary=binary)
        depth = np.array([[30.0, -30.0, 90.0, 0.0], [0.0, 30.0, 60.0, 90.0],
                          [90.0, 60.0, 30.0, 0.0]], np.float32)
        layer = sorter.DepthSorter(4, temperature=1.0)
        out = layer.composite(masks, colors, depth).numpy()
        order = np.argsort(depth, axis=-1)
        for b in range(3):
            painted = canvas_lib.OverCanvas(3)(masks[b:b + 1, order[b]],
                                               colors[b:b + 1, order[b]])[:, -1]
            self.assertAllClose(out[b:b + 1], painted, atol=1e-5)

    def test_two_binary_moves_blend_as_the_two_move_sorter(self):
        # For T = 2 and binary masks the overlap takes softmax(d) of the colours, as the
        # blend of thesis 5.6; elsewhere each move shows its own colour.
        masks = two_rectangles(2)
        colors = self.rng.uniform(size=(2, 2, 1)).astype(np.float32)
        depth = np.array([[0.3, -0.4], [1.0, 2.0]], np.float32)
        out = sorter.DepthSorter(2).composite(masks, colors, depth).numpy()
        w = np.exp(depth) / np.exp(depth).sum(-1, keepdims=True)
        overlap = (masks[:, 0] * masks[:, 1])[..., 0] > 0
        for b in range(2):
            blend = w[b] @ colors[b]
            self.assertAllClose(out[b][overlap[b]], np.full((overlap[b].sum(), 1), blend),
                                atol=1e-6)
            only_first = (masks[b, 0, ..., 0] > 0) & ~overlap[b]
            self.assertAllClose(out[b][only_first], np.full((only_first.sum(), 1),
                                                            colors[b, 0]), atol=1e-6)

    def test_gradients_reach_depths_only_through_overlaps(self):
        masks, colors, h = self.inputs(3, 3, 1, binary=True)
        layer = sorter.DepthSorter(3, seed=1)
        with tf.GradientTape() as tape:
            out = layer(masks, colors, h)
            loss = tf.reduce_sum(tf.square(out["canvas"] - 1.0))
        grads = tape.gradient(loss, layer.trainable_weights)
        testing.assert_gradients_reach_weights(self, layer.trainable_weights, grads)
        # Moves that never overlap cannot be ordered: no gradient reaches the depths.
        apart = np.zeros((3, 3, 6, 6, 1), np.float32)
        apart[:, 0, :2], apart[:, 1, 2:4], apart[:, 2, 4:] = 1.0, 1.0, 1.0
        with tf.GradientTape() as tape:
            out = layer(apart, colors, h)
            loss = tf.reduce_sum(tf.square(out["canvas"] - 1.0))
        grads = tape.gradient(loss, layer.trainable_weights)
        self.assertAllClose(grads[0], np.zeros_like(grads[0]), atol=1e-7)

    @parameterized.named_parameters(
        ("moves", dict(num_moves=0), r"`num_moves` must be >= 1. Received: 0"),
        ("temperature", dict(num_moves=2, temperature=0.0),
         r"`temperature` must be > 0. Received: 0.0"),
    )
    def test_bad_arguments_raise(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            sorter.DepthSorter(**kwargs)

    def test_wrong_number_of_moves_raises(self):
        masks, colors, h = self.inputs(2, 3, 1)
        layer = sorter.DepthSorter(4)
        with self.assertRaisesRegex(ValueError, "built for 4 moves. Received masks for 3 moves"):
            layer(masks, colors, h)


if __name__ == "__main__":
    tf.test.main()
