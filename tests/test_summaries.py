"""Tests for tfpaint.summaries: progress grids and animations, move outlines, TensorBoard images."""

import os
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from tests import testing
from tfpaint import summaries


def read_summary_image(logdir, tag):
    """The last PNG written under `tag`, decoded: `(H, W, 3)` uint8 (TF_FACTS.md)."""
    acc = event_accumulator.EventAccumulator(
        logdir, size_guidance={event_accumulator.TENSORS: 0}
    )
    acc.Reload()
    events = acc.Tensors(tag)
    width, height, png = tf.make_ndarray(events[-1].tensor_proto)
    image = tf.io.decode_png(png).numpy()
    return int(width), int(height), image, events[-1].step


def fake_outputs(rng, n, moves, height, width, channels=1):
    return {
        "canvases": rng.uniform(size=(n, moves, height, width, channels)).astype(np.float32),
        "masks": rng.uniform(size=(n, moves, height, width, 1)).astype(np.float32),
    }


class ProgressGridTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        testing.set_seeds()
        self.rng = np.random.default_rng(0)

    @parameterized.named_parameters(
        ("one_image_scale_1", 1, 2, 5, 4, 1, 1),
        ("three_images_scale_2", 3, 4, 6, 5, 1, 2),
        ("rgb_scale_3", 2, 3, 4, 7, 3, 3),
    )
    def test_shape_and_last_column_is_target(self, n, moves, height, width, channels, scale):
        canvases = self.rng.uniform(size=(n, moves, height, width, channels)).astype(np.float32)
        targets = self.rng.uniform(size=(n, height, width, channels)).astype(np.float32)
        grid = summaries.progress_grid(canvases, targets, scale=scale)
        # One-pixel separators around every picture, then the upscaling.
        self.assertEqual(
            grid.shape,
            (scale * (n * (height + 1) + 1), scale * ((moves + 1) * (width + 1) + 1), 3),
        )
        self.assertEqual(grid.dtype, np.float32)
        up = lambda a: np.kron(a, np.ones((scale, scale, 1)))  # noqa: E731
        rgb = lambda a: np.repeat(a, 3, -1) if channels == 1 else a  # noqa: E731
        for row in range(n):
            y = scale * (1 + row * (height + 1))
            # Last column: the target.
            x = scale * (1 + moves * (width + 1))
            self.assertAllClose(
                grid[y:y + scale * height, x:x + scale * width], up(rgb(targets[row]))
            )
            # Column t: the canvas after move t.
            for t in range(moves):
                x = scale * (1 + t * (width + 1))
                self.assertAllClose(
                    grid[y:y + scale * height, x:x + scale * width],
                    up(rgb(canvases[row, t])),
                )
        # Separators are mid-gray.
        self.assertAllEqual(grid[:scale], np.full((scale, grid.shape[1], 3), 0.5))
        self.assertAllEqual(grid[:, :scale], np.full((grid.shape[0], scale, 3), 0.5))

    def test_values_are_clipped_to_unit_interval(self):
        canvases = np.full((1, 2, 3, 3, 1), 1.7, np.float32)
        targets = np.full((1, 3, 3, 1), -0.4, np.float32)
        grid = summaries.progress_grid(canvases, targets, scale=1)
        self.assertEqual(grid.max(), 1.0)
        self.assertEqual(grid.min(), 0.0)
        self.assertAllEqual(grid[1:4, 1 + 2 * 4:1 + 2 * 4 + 3], np.zeros((3, 3, 3)))


class DrawBoxTest(tf.test.TestCase):

    def test_a_box_is_outlined_and_a_nan_box_draws_nothing(self):
        picture = np.zeros((8, 8, 3), np.float32)
        summaries.draw_box(picture, (np.nan, 1.0, 4.0, 5.0), (1.0, 0.0, 0.0))
        self.assertEqual(picture.max(), 0.0)
        summaries.draw_box(picture, (1.0, 2.0, 4.0, 6.0), (1.0, 0.0, 0.0))
        outline = np.zeros((8, 8), bool)
        outline[2, 1:4] = outline[5, 1:4] = outline[2:6, 1] = outline[2:6, 3] = True
        self.assertAllEqual(picture[..., 0] > 0, outline)


class SlotColoursTest(tf.test.TestCase):

    def test_boxes_in_the_colour_of_their_slot(self):
        canvases = np.zeros((2, 2, 8, 8, 1), np.float32)
        boxes = np.tile(np.array([1.0, 1.0, 6.0, 6.0]), (2, 2, 1))
        slots = np.array([[3, 0], [9, 12]])
        grid = summaries.progress_grid(canvases, boxes=boxes, box_colours=slots, scale=1)
        for n in range(2):
            for t in range(2):
                y, x = 1 + n * 9 + 1, 1 + t * 9 + 1  # the box's top-left corner
                self.assertAllClose(grid[y, x], summaries._MOVE_COLOURS[slots[n, t]])

    def test_memory_grid_has_a_swatch_then_the_samples_of_each_slot(self):
        samples = np.random.default_rng(0).uniform(size=(3, 4, 5, 5, 1)).astype(np.float32)
        grid = summaries.memory_grid(samples, scale=1)
        self.assertEqual(grid.shape, (3 * 6 + 1, 5 * 6 + 1, 3))
        for k in range(3):
            y = 1 + k * 6
            self.assertAllClose(grid[y:y + 5, 1:6],
                                np.broadcast_to(summaries._MOVE_COLOURS[k], (5, 5, 3)))
            for s in range(4):
                x = 1 + (s + 1) * 6
                self.assertAllClose(grid[y:y + 5, x:x + 5, 0], samples[k, s, ..., 0])
        self.assertEqual(len(np.unique(summaries._MOVE_COLOURS, axis=0)), 16)


class MaskOutlinesTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(("3x3", 3), ("4x4", 4), ("6x6", 6))
    def test_filled_square_gives_its_border(self, side):
        masks = np.zeros((9, 10))
        masks[2:2 + side, 3:3 + side] = 1.0
        expected = np.zeros((9, 10), bool)
        expected[2:2 + side, 3:3 + side] = True
        expected[3:1 + side, 4:2 + side] = False  # the interior
        self.assertAllEqual(summaries.mask_outlines(masks), expected)

    def test_shape_touching_the_edge(self):
        # Outside the picture counts as outside the mask.
        masks = np.ones((4, 5))
        expected = np.ones((4, 5), bool)
        expected[1:3, 1:4] = False
        self.assertAllEqual(summaries.mask_outlines(masks), expected)

    def test_single_pixel_and_empty(self):
        masks = np.zeros((2, 5, 5))
        masks[0, 2, 2] = 0.9
        out = summaries.mask_outlines(masks)
        self.assertEqual(out.shape, (2, 5, 5))
        self.assertEqual(out.dtype, bool)
        self.assertAllEqual(np.argwhere(out), [[0, 2, 2]])

    def test_threshold(self):
        masks = np.zeros((1, 1, 5, 5))
        masks[0, 0, 1:4, 1:4] = 0.4
        self.assertFalse(summaries.mask_outlines(masks).any())
        self.assertEqual(summaries.mask_outlines(masks, threshold=0.3).sum(), 8)

    def test_leading_axes_are_independent(self):
        rng = np.random.default_rng(0)
        masks = rng.uniform(size=(2, 3, 6, 7))
        out = summaries.mask_outlines(masks)
        for i in range(2):
            for j in range(3):
                self.assertAllEqual(out[i, j], summaries.mask_outlines(masks[i, j]))


class OutlineOverlayTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(("grayscale", 1, 3), ("rgb_scale_2", 3, 2))
    def test_shape(self, channels, scale):
        rng = np.random.default_rng(0)
        n, moves, height, width = 3, 4, 6, 5
        targets = rng.uniform(size=(n, height, width, channels)).astype(np.float32)
        masks = rng.uniform(size=(n, moves, height, width, 1)).astype(np.float32)
        out = summaries.outline_overlay(targets, masks, scale=scale)
        self.assertEqual(out.shape, (scale * height + 2, n * (scale * width + 1) + 1, 3))
        self.assertTrue(np.all((out >= 0.0) & (out <= 1.0)))

    def test_outline_drawn_in_move_colour_over_dimmed_target(self):
        targets = np.ones((1, 6, 6, 1), np.float32)
        masks = np.zeros((1, 2, 6, 6, 1), np.float32)
        masks[0, 1, 1:5, 1:5] = 1.0  # move 0 is empty, move 1 a 4x4 square
        out = summaries.outline_overlay(targets, masks, scale=1)
        panel = out[1:7, 1:7]
        border = summaries.mask_outlines(masks[0, 1, ..., 0])
        self.assertAllClose(panel[border], np.tile(summaries._MOVE_COLOURS[1], (12, 1)))
        self.assertAllClose(panel[~border], np.full((24, 3), 0.35))


class WritePicturesTest(tf.test.TestCase):

    def test_pictures_and_animations_read_back_from_tensorboard(self):
        rng = np.random.default_rng(0)
        n, moves, height, width = 4, 3, 8, 7
        outputs = fake_outputs(rng, n, moves, height, width)
        images = rng.uniform(size=(n, height, width, 1)).astype(np.float32)
        grid = summaries.progress_grid(outputs["canvases"], images)
        frames = summaries.progress_frames(outputs["canvases"], images)
        logdir = tempfile.mkdtemp(dir=self.get_temp_dir())
        writer = tf.summary.create_file_writer(logdir)
        with writer.as_default():
            gifs = summaries.write_pictures(
                {"painting/progress": grid, "painting/progress_animation": frames}, step=7)
        writer.flush()

        width_px, height_px, png, step = read_summary_image(logdir, "painting/progress")
        self.assertEqual(step, 7)
        expected_shape = (2 * (4 * (height + 1) + 1), 2 * ((moves + 1) * (width + 1) + 1), 3)
        self.assertEqual(png.shape, expected_shape)
        self.assertEqual((height_px, width_px), expected_shape[:2])
        self.assertAllClose(png / 255.0, grid, atol=1.0 / 255.0)

        # The animation: GIF bytes under the images plugin, one frame per move.
        acc = event_accumulator.EventAccumulator(
            logdir, size_guidance={event_accumulator.TENSORS: 0})
        acc.Reload()
        event = acc.Tensors("painting/progress_animation")[-1]
        width_px, height_px, stored = tf.make_ndarray(event.tensor_proto)
        self.assertEqual(event.step, 7)
        self.assertEqual(list(gifs), ["painting/progress_animation"])
        self.assertEqual(stored, gifs["painting/progress_animation"])
        decoded = decode_gif(stored)
        self.assertLen(decoded, moves)
        self.assertEqual((int(height_px), int(width_px)), decoded.shape[1:3])
        self.assertAllClose(decoded / 255.0, frames, atol=1.0 / 255.0)

    def test_bad_rank_raises(self):
        with tf.summary.create_file_writer(self.get_temp_dir()).as_default():
            with self.assertRaisesRegex(ValueError, r"Picture 'x' must have shape \(H, W, 3\)"):
                summaries.write_pictures({"x": np.zeros((2, 3))}, step=0)


class GlimpseGridTest(tf.test.TestCase):

    def test_boxes_and_glimpses_of_a_classifier(self):
        images = np.zeros((2, 10, 10, 1), np.float32)
        # Glimpse 0 reads the whole image, glimpse 1 its top-left quarter.
        thetas = np.tile(np.array([[[1.0, 0, 0, 0, 1.0, 0], [0.5, 0, -0.5, 0, 0.5, -0.5]]],
                                  np.float32), (2, 1, 1))
        glimpses = np.ones((2, 2, 4, 4, 1), np.float32)
        grid = summaries.glimpse_grid({"thetas": thetas, "glimpses": glimpses}, images, scale=1)
        self.assertEqual(grid.shape, (2 * 11 + 1, 3 * 11 + 1, 3))
        first = grid[1:11, 1:11]  # the first image with its boxes
        colours = summaries._MOVE_COLOURS
        self.assertAllClose(first[0, 0], colours[1])  # the quarter box is drawn last
        self.assertAllClose(first[9, 9], colours[0])  # the whole-image box's corner
        self.assertAllClose(first[4, 2], colours[1])  # the quarter box's bottom edge
        self.assertAllClose(first[6, 6], [0, 0, 0])  # inside: the dark image
        self.assertAllClose(grid[1:11, 12:22], np.ones((10, 10, 3)))  # glimpse 0 resized

    def test_drawing_shows_the_canvas_after_each_glimpse(self):
        images = np.zeros((1, 8, 8, 1), np.float32)
        thetas = np.tile(np.array([1.0, 0, 0, 0, 1.0, 0], np.float32), (1, 3, 1))
        canvases = np.stack([np.full((8, 8, 1), v, np.float32) for v in (0.2, 0.5, 0.9)])[None]
        write = np.tile(np.array([0.5, 0, 0.5, 0, 0.5, 0.5], np.float32), (1, 3, 1))
        grid = summaries.glimpse_grid({"thetas": thetas, "canvases": canvases,
                                       "write_thetas": write}, images, scale=1)
        self.assertEqual(grid.shape, (10, 4 * 9 + 1, 3))
        for n, value in enumerate((0.2, 0.5, 0.9)):
            panel = grid[1:9, 1 + 9 * (n + 1):9 * (n + 2)]
            self.assertAllClose(panel[1, 1], [value] * 3)  # outside the write box
            self.assertAllClose(panel[4, 4], summaries._MOVE_COLOURS[n])  # its corner


def decode_gif(data):
    """All frames of a GIF as `(T, H, W, 3)` uint8."""
    import io

    from PIL import Image, ImageSequence

    with Image.open(io.BytesIO(data)) as gif:
        return np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(gif)])


class AnimationTest(tf.test.TestCase):

    def test_frame_t_is_the_grid_after_move_t(self):
        rng = np.random.default_rng(3)
        canvases = rng.uniform(size=(3, 4, 5, 6, 1)).astype(np.float32)
        targets = rng.uniform(size=(3, 5, 6, 1)).astype(np.float32)
        frames = summaries.progress_frames(canvases, targets, scale=2)
        self.assertEqual(frames.shape, (4, 2 * (3 * 6 + 1), 2 * (2 * 7 + 1), 3))
        width = frames.shape[2]  # 30
        for t in range(4):
            grid = summaries.progress_grid(canvases[:, t:t + 1], targets, scale=2)
            # Below the top margin the frame is the grid of move t ...
            self.assertAllClose(frames[t, 2:], grid[2:])
            # ... and the margin holds a white bar (t + 1) / 4 of the width long.
            filled = round(width * (t + 1) / 4)
            self.assertAllEqual(frames[t, :2, :filled], np.ones((2, filled, 3)))
            self.assertAllClose(frames[t, :2, filled:], grid[:2, filled:])
        # The first column holds the canvas after move t, the second the target.
        self.assertAllClose(frames[2, 2:12:2, 2:14:2, 0], canvases[0, 2, ..., 0])
        self.assertAllClose(frames[2, 2:12:2, 16:28:2, 0], targets[0, ..., 0])

    def test_gif_decodes_to_the_frames(self):
        # Gray levels: a GIF palette of 256 colours holds them exactly.
        levels = np.linspace(0.0, 1.0, 6, dtype=np.float32)
        frames = np.stack([np.full((4, 5, 3), v, np.float32) for v in levels])
        frames[:, 0, 0] = 0.5
        decoded = decode_gif(summaries.encode_gif(frames))
        self.assertEqual(decoded.shape, (6, 4, 5, 3))
        self.assertAllClose(decoded / 255.0, frames, atol=1.0 / 255.0)

    def test_a_move_that_changes_nothing_keeps_its_frame(self):
        # Moves 2 and 3 paint nothing (the transparency template): the GIF
        # still has one frame per move, which Pillow would merge if equal.
        canvases = np.zeros((2, 4, 5, 5, 1), np.float32)
        canvases[:, 1:] = 0.5
        frames = summaries.progress_frames(canvases, np.ones((2, 5, 5, 1), np.float32))
        decoded = decode_gif(summaries.encode_gif(frames))
        self.assertLen(decoded, 4)
        self.assertAllClose(decoded / 255.0, frames, atol=1.0 / 255.0)

    def test_bad_shapes_raise(self):
        with self.assertRaisesRegex(ValueError, r"`canvases` must have shape \(N, T, H, W, C\)"):
            summaries.progress_frames(np.zeros((2, 5, 5, 1)), np.zeros((2, 5, 5, 1)))
        with self.assertRaisesRegex(ValueError, r"`frames` must have shape \(T, H, W, 3\)"):
            summaries.encode_gif(np.zeros((2, 5, 5)))

    def test_save_bytes(self):
        path = os.path.join(self.get_temp_dir(), "progress.gif")
        summaries.save_bytes(b"GIF89a-data", path)
        summaries.save_bytes(b"GIF89a-new", path)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"GIF89a-new")
        self.assertEqual(os.listdir(self.get_temp_dir()).count("progress.gif.tmp"), 0)


class SavePngTest(tf.test.TestCase):

    def test_round_trip(self):
        rng = np.random.default_rng(0)
        picture = rng.uniform(-0.2, 1.2, size=(9, 13, 3)).astype(np.float32)
        path = os.path.join(self.get_temp_dir(), "picture.png")
        summaries.save_png(picture, path)
        decoded = tf.io.decode_png(tf.io.read_file(path)).numpy()
        self.assertEqual(decoded.shape, (9, 13, 3))
        self.assertEqual(decoded.dtype, np.uint8)
        self.assertAllEqual(decoded, np.round(np.clip(picture, 0.0, 1.0) * 255.0))

    def test_progress_grid_round_trip(self):
        rng = np.random.default_rng(1)
        grid = summaries.progress_grid(
            rng.uniform(size=(2, 3, 4, 4, 1)), rng.uniform(size=(2, 4, 4, 1)), scale=2
        )
        path = os.path.join(self.get_temp_dir(), "progress.png")
        summaries.save_png(grid, path)
        decoded = tf.io.decode_png(tf.io.read_file(path)).numpy()
        self.assertAllClose(decoded / 255.0, grid, atol=0.5 / 255.0 + 1e-6)


if __name__ == "__main__":
    tf.test.main()
