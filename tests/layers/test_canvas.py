"""Tests for tfpaint.layers.canvas: the "over" (eq 3.4) and additive (eq 3.3) canvases."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tests import testing
from tfpaint.layers import canvas as canvas_lib


def reference_over(masks, colors, initial):
    """A NumPy loop of thesis eq 3.4: c_{t+1} = c_t (1 - p_mask_t) + what_t p_mask_t."""
    batch, moves, height, width, _ = masks.shape
    channels = colors.shape[-1]
    out = np.zeros((batch, moves, height, width, channels))
    for b in range(batch):
        canvas = np.array(initial[b], np.float64)
        for t in range(moves):
            for i in range(height):
                for j in range(width):
                    p = masks[b, t, i, j, 0]
                    canvas[i, j] = canvas[i, j] * (1.0 - p) + colors[b, t] * p
            out[b, t] = canvas
    return out


def reference_additive(masks, colors, hidden):
    """Thesis eq 3.3, c^h_{t+1} = c^h_t + what_t p_mask_t, seen through a sigmoid."""
    out = []
    hidden = np.array(hidden, np.float64)
    for t in range(masks.shape[1]):
        hidden = hidden + colors[:, t, None, None, :] * masks[:, t]
        out.append(1.0 / (1.0 + np.exp(-hidden)))
    return np.stack(out, axis=1)


class OverCanvasTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        testing.set_seeds()
        self.rng = np.random.default_rng(0)

    def moves(self, batch, moves, height, width, channels):
        masks = self.rng.uniform(size=(batch, moves, height, width, 1)).astype(np.float32)
        colors = self.rng.uniform(size=(batch, moves, channels)).astype(np.float32)
        return masks, colors

    @parameterized.named_parameters(("grayscale", 1), ("rgb", 3))
    def test_layer_harness(self, channels):
        masks, colors = self.moves(3, 4, 6, 5, channels)
        testing.run_layer_test(
            self,
            canvas_lib.OverCanvas,
            dict(channels=channels, background=0.25),
            (masks, colors),
            expected_output_shape=(3, 4, 6, 5, channels),
            expected_num_trainable_weights=0,
        )

    def test_layer_harness_with_initial_canvas(self):
        masks, colors = self.moves(2, 3, 4, 4, 3)
        initial = self.rng.uniform(size=(2, 4, 4, 3)).astype(np.float32)
        out = testing.run_layer_test(
            self,
            canvas_lib.OverCanvas,
            dict(channels=3),
            (masks, colors),
            call_kwargs={"initial": initial},
            expected_output_shape=(2, 3, 4, 4, 3),
        )
        self.assertAllClose(out, reference_over(masks, colors, initial), atol=1e-6)

    @parameterized.named_parameters(("grayscale", 1), ("rgb", 3))
    def test_opaque_mask_replaces_canvas(self, channels):
        initial = self.rng.uniform(size=(2, 5, 5, channels)).astype(np.float32)
        colors = self.rng.uniform(size=(2, 1, channels)).astype(np.float32)
        masks = np.ones((2, 1, 5, 5, 1), np.float32)
        out = canvas_lib.OverCanvas(channels)(masks, colors, initial=initial)
        expected = np.broadcast_to(colors[:, :, None, None, :], (2, 1, 5, 5, channels))
        self.assertAllClose(out, expected, atol=1e-7, rtol=0)

    @parameterized.named_parameters(("grayscale", 1), ("rgb", 3))
    def test_empty_mask_keeps_canvas(self, channels):
        initial = self.rng.uniform(size=(2, 5, 5, channels)).astype(np.float32)
        colors = self.rng.uniform(size=(2, 3, channels)).astype(np.float32)
        masks = np.zeros((2, 3, 5, 5, 1), np.float32)
        out = canvas_lib.OverCanvas(channels)(masks, colors, initial=initial)
        self.assertAllEqual(out, np.broadcast_to(initial[:, None], (2, 3, 5, 5, channels)))

    def test_blank_canvas_is_background(self):
        layer = canvas_lib.OverCanvas(channels=3, background=0.3)
        out = layer(np.zeros((2, 2, 4, 4, 1), np.float32), np.ones((2, 2, 3), np.float32))
        self.assertAllClose(out, np.full((2, 2, 4, 4, 3), 0.3), atol=1e-7)
        self.assertAllClose(layer.blank(2, 4, 4), np.full((2, 4, 4, 3), 0.3), atol=1e-7)

    def test_later_move_paints_over_earlier(self):
        # Two opaque squares; the second one wins where they overlap.
        masks = np.zeros((1, 2, 6, 6, 1), np.float32)
        masks[0, 0, 0:4, 0:4] = 1.0
        masks[0, 1, 2:6, 2:6] = 1.0
        colors = np.array([[[0.2], [0.9]]], np.float32)
        out = canvas_lib.OverCanvas()(masks, colors).numpy()
        self.assertAllClose(out[0, 0, 1, 1, 0], 0.2)
        self.assertAllClose(out[0, 1, 1, 1, 0], 0.2)
        self.assertAllClose(out[0, 1, 3, 3, 0], 0.9)
        self.assertAllClose(out[0, 1, 5, 5, 0], 0.9)
        self.assertAllClose(out[0, 1, 0, 5, 0], 0.0)

    @parameterized.named_parameters(
        ("grayscale", 1, 0.0), ("rgb", 3, 0.0), ("rgb_background", 3, 0.4)
    )
    def test_matches_eq_3_4(self, channels, background):
        masks, colors = self.moves(3, 4, 5, 6, channels)
        out = canvas_lib.OverCanvas(channels, background=background)(masks, colors)
        self.assertEqual(out.shape, (3, 4, 5, 6, channels))
        initial = np.full((3, 5, 6, channels), background)
        self.assertAllClose(out, reference_over(masks, colors, initial), atol=1e-6)

    @parameterized.named_parameters(("grayscale", 1), ("rgb", 3))
    def test_step_and_visible_match_call(self, channels):
        masks, colors = self.moves(2, 3, 4, 4, channels)
        layer = canvas_lib.OverCanvas(channels, background=0.1)
        out = layer(masks, colors)
        state = layer.blank(2, 4, 4)
        for t in range(3):
            state = layer.step(state, masks[:, t], colors[:, t])
            self.assertAllClose(layer.visible(state), out[:, t], atol=1e-6)

    def test_unknown_batch_in_tf_function(self):
        layer = canvas_lib.OverCanvas(channels=3)

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 2, 4, 4, 1], tf.float32),
                tf.TensorSpec([None, 2, 3], tf.float32),
            ]
        )
        def paint(masks, colors):
            return layer(masks, colors)

        masks, colors = self.moves(3, 2, 4, 4, 3)
        self.assertAllClose(
            paint(masks, colors),
            reference_over(masks, colors, np.zeros((3, 4, 4, 3))),
            atol=1e-6,
        )

    @parameterized.named_parameters(
        (
            "mask_rank",
            (2, 4, 4, 1),
            (2, 1, 1),
            r"`masks` must have shape \(batch, moves, height, width, 1\)",
        ),
        ("mask_channels", (2, 1, 4, 4, 3), (2, 1, 1), r"`masks` must have shape"),
        (
            "color_channels",
            (2, 1, 4, 4, 1),
            (2, 1, 3),
            r"`colors` must have shape \(batch, moves, 1\)",
        ),
        ("color_rank", (2, 1, 4, 4, 1), (2, 1), r"`colors` must have shape \(batch, moves, 1\)"),
    )
    def test_bad_shapes_raise(self, mask_shape, color_shape, message):
        for layer in (canvas_lib.OverCanvas(1), canvas_lib.AdditiveCanvas(1)):
            with self.assertRaisesRegex(ValueError, message):
                layer(np.zeros(mask_shape, np.float32), np.zeros(color_shape, np.float32))

    def test_bad_channels_raise(self):
        with self.assertRaisesRegex(ValueError, "`channels` must be >= 1"):
            canvas_lib.OverCanvas(channels=0)
        with self.assertRaisesRegex(ValueError, "`channels` must be >= 1"):
            canvas_lib.AdditiveCanvas(channels=0)


class AdditiveCanvasTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        testing.set_seeds()
        self.rng = np.random.default_rng(1)

    def moves(self, batch, moves, height, width, channels):
        masks = self.rng.uniform(size=(batch, moves, height, width, 1)).astype(np.float32)
        colors = self.rng.normal(scale=3.0, size=(batch, moves, channels)).astype(np.float32)
        return masks, colors

    @parameterized.named_parameters(("grayscale", 1), ("rgb", 3))
    def test_layer_harness(self, channels):
        masks, colors = self.moves(3, 4, 6, 5, channels)
        testing.run_layer_test(
            self,
            canvas_lib.AdditiveCanvas,
            dict(channels=channels, initial_logit=-2.0),
            (masks, colors),
            expected_output_shape=(3, 4, 6, 5, channels),
            expected_num_trainable_weights=1,
        )

    @parameterized.named_parameters(("grayscale", 1), ("rgb", 3))
    def test_matches_eq_3_3(self, channels):
        masks, colors = self.moves(3, 4, 5, 6, channels)
        layer = canvas_lib.AdditiveCanvas(channels)
        out = layer(masks, colors)
        hidden = np.full((3, 5, 6, channels), -6.0)
        self.assertAllClose(out, reference_additive(masks, colors, hidden), atol=1e-6)

    def test_learned_blank_logit(self):
        masks, colors = self.moves(2, 2, 4, 4, 1)
        layer = canvas_lib.AdditiveCanvas(1)
        layer(masks, colors)
        layer.blank_logit.assign(1.5)
        out = layer(masks, colors)
        self.assertAllClose(
            out, reference_additive(masks, colors, np.full((2, 4, 4, 1), 1.5)), atol=1e-6
        )
        self.assertAllClose(layer.blank(2, 4, 4), np.full((2, 4, 4, 1), 1.5))

    def test_empty_painting_starts_dark(self):
        layer = canvas_lib.AdditiveCanvas(1)
        out = layer(np.zeros((1, 1, 3, 3, 1), np.float32), np.ones((1, 1, 1), np.float32))
        self.assertAllClose(out, np.full((1, 1, 3, 3, 1), 1.0 / (1.0 + np.exp(6.0))), atol=1e-7)

    @parameterized.named_parameters(("grayscale", 1), ("rgb", 3))
    def test_initial_hidden_canvas(self, channels):
        masks, colors = self.moves(2, 3, 4, 4, channels)
        initial = self.rng.normal(size=(2, 4, 4, channels)).astype(np.float32)
        out = testing.run_layer_test(
            self,
            canvas_lib.AdditiveCanvas,
            dict(channels=channels),
            (masks, colors),
            call_kwargs={"initial": initial},
            # The blank logit is unused when an initial canvas is given.
            run_gradients=False,
            run_fit=False,
        )
        self.assertAllClose(out, reference_additive(masks, colors, initial), atol=1e-6)

    @parameterized.named_parameters(("grayscale", 1), ("rgb", 3))
    def test_step_and_visible_match_call(self, channels):
        masks, colors = self.moves(2, 3, 4, 4, channels)
        layer = canvas_lib.AdditiveCanvas(channels, initial_logit=-1.0)
        out = layer(masks, colors)
        state = layer.blank(2, 4, 4)
        for t in range(3):
            state = layer.step(state, masks[:, t], colors[:, t])
            self.assertAllClose(layer.visible(state), out[:, t], atol=1e-6)

    def test_blank_logit_gradient(self):
        masks, colors = self.moves(2, 2, 4, 4, 1)
        layer = canvas_lib.AdditiveCanvas(1)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(masks, colors))
        grad = tape.gradient(loss, layer.blank_logit)
        hidden = -6.0 + np.cumsum(colors[:, :, None, None, :] * masks, axis=1)
        sig = 1.0 / (1.0 + np.exp(-hidden))
        self.assertAllClose(grad, np.sum(sig * (1.0 - sig)), rtol=1e-4)

    def test_unknown_batch_in_tf_function(self):
        layer = canvas_lib.AdditiveCanvas(channels=3)

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 2, 4, 4, 1], tf.float32),
                tf.TensorSpec([None, 2, 3], tf.float32),
            ]
        )
        def paint(masks, colors):
            return layer(masks, colors)

        masks, colors = self.moves(3, 2, 4, 4, 3)
        self.assertAllClose(
            paint(masks, colors),
            reference_additive(masks, colors, np.full((3, 4, 4, 3), -6.0)),
            atol=1e-6,
        )


if __name__ == "__main__":
    tf.test.main()
