"""Tests for tfpaint.data.shapes: the synthetic datasets of the thesis, Appendix A."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tfpaint.data import shapes

_ALL = tuple((name, name) for name in shapes.SHAPE_DATASETS)
_SEPARATED = tuple(
    (name, name)
    for name in ("2_rectangles_separated", "4_rectangles_separated", "2_shapes_separated",
                 "0to2_rectangles", "2_rectangles_mixed")
)
_TONED = (("two", "2_rectangles_occlusion", 2), ("three", "3_rectangles_occlusion", 3),
          ("four", "4_rectangles_occlusion", 4))
_NUM = 400


class MakeShapesTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(*_ALL)
    def test_same_seed_same_data(self, name):
        a = shapes.make_shapes(name, 50, seed=3)
        b = shapes.make_shapes(name, 50, seed=3)
        for field in ("images", "boxes", "kinds", "colors", "valid", "masks", "background"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)

    @parameterized.named_parameters(*_ALL)
    def test_different_seed_different_data(self, name):
        a = shapes.make_shapes(name, 50, seed=3)
        b = shapes.make_shapes(name, 50, seed=4)
        self.assertFalse(np.array_equal(a.images, b.images))

    @parameterized.named_parameters(*_ALL)
    def test_shapes_dtypes_and_ranges(self, name):
        data = shapes.make_shapes(name, _NUM, seed=0)
        k = int(name[0]) if name[0] in "34" else 2
        self.assertLen(data, _NUM)
        self.assertEqual(data.max_shapes, k)
        self.assertEqual(data.image_size, 28)
        expected = {
            "images": ((_NUM, 28, 28, 1), np.float32),
            "boxes": ((_NUM, k, 4), np.float32),
            "kinds": ((_NUM, k), np.int32),
            "colors": ((_NUM, k), np.float32),
            "valid": ((_NUM, k), np.bool_),
            "masks": ((_NUM, k, 28, 28), np.float32),
            "background": ((_NUM,), np.float32),
        }
        for field, (shape, dtype) in expected.items():
            array = getattr(data, field)
            self.assertEqual(array.shape, shape, field)
            self.assertEqual(array.dtype, dtype, field)
        self.assertBetween(data.images.min(), 0.0, 1.0)
        self.assertBetween(data.images.max(), 0.0, 1.0)
        self.assertSetEqual(set(np.unique(data.masks)) - {0.0, 1.0}, set())

        boxes = data.boxes[data.valid]
        self.assertTrue(np.all(boxes[:, :2] >= 0))
        self.assertTrue(np.all(boxes[:, 2:] <= 28))
        sides = data.sizes[data.valid]
        lo = 6 if name.startswith("2_shapes") else 5
        self.assertTrue(np.all((sides >= lo) & (sides <= 14)), (sides.min(), sides.max()))
        # Every side in the range is drawn.
        self.assertSetEqual(set(sides[:, 0].astype(int)), set(range(lo, 15)))

        # Padding slots are empty.
        pad = ~data.valid
        self.assertTrue(np.all(data.kinds[pad] == -1))
        self.assertTrue(np.all(data.boxes[pad] == 0))
        self.assertTrue(np.all(data.masks[pad] == 0))
        self.assertTrue(np.all(data.kinds[data.valid] >= 0))

    @parameterized.named_parameters(*_ALL)
    def test_image_is_masks_painted_in_order(self, name):
        data = shapes.make_shapes(name, 100, seed=1)
        for n in range(len(data)):
            canvas = np.full((28, 28), data.background[n], np.float32)
            for k in range(data.max_shapes):
                if data.valid[n, k]:
                    canvas[data.masks[n, k] > 0] = data.colors[n, k]
            np.testing.assert_array_equal(data.images[n, ..., 0], canvas)

    @parameterized.named_parameters(*_ALL)
    def test_masks_match_boxes(self, name):
        data = shapes.make_shapes(name, 100, seed=2)
        centres = np.arange(28) + 0.5
        for n, k in zip(*np.nonzero(data.valid)):
            y0, x0, y1, x1 = data.boxes[n, k].astype(int)
            expected = np.zeros((28, 28), np.float32)
            if data.kinds[n, k] == shapes.CIRCLE:
                cy, cx, r = (y0 + y1) / 2, (x0 + x1) / 2, (y1 - y0) / 2
                for i in range(28):
                    for j in range(28):
                        if (centres[i] - cy) ** 2 + (centres[j] - cx) ** 2 <= r**2:
                            expected[i, j] = 1.0
                # A circle's box is tight: the mask touches all four sides.
                rows, cols = np.nonzero(expected)
                self.assertEqual((rows.min(), cols.min()), (y0, x0))
                self.assertEqual((rows.max() + 1, cols.max() + 1), (y1, x1))
            else:
                expected[y0:y1, x0:x1] = 1.0
            np.testing.assert_array_equal(data.masks[n, k], expected)

    def test_known_rectangles(self):
        data = shapes.make_shapes("2_rectangles_separated", 1, seed=0)
        (y0, x0, y1, x1), (v0, u0, v1, u1) = data.boxes[0].astype(int)
        expected = np.zeros((28, 28), np.float32)
        expected[y0:y1, x0:x1] = 1.0
        expected[v0:v1, u0:u1] = 1.0
        np.testing.assert_array_equal(data.images[0, ..., 0], expected)
        self.assertEqual(data.images[0].sum(), (y1 - y0) * (x1 - x0) + (v1 - v0) * (u1 - u0))
        np.testing.assert_array_equal(data.colors, [[1.0, 1.0]])
        np.testing.assert_array_equal(data.background, [0.0])

    @parameterized.named_parameters(*_SEPARATED)
    def test_no_overlap_and_gap(self, name):
        data = shapes.make_shapes(name, _NUM, seed=5)
        self.assertLessEqual(data.masks.sum(axis=1).max(), 1.0)
        for n in range(len(data)):
            boxes = data.boxes[n][data.valid[n]]
            for i in range(len(boxes)):
                for j in range(i + 1, len(boxes)):
                    a, b = boxes[i], boxes[j]
                    gap_y = max(b[0] - a[2], a[0] - b[2])
                    gap_x = max(b[1] - a[3], a[1] - b[3])
                    self.assertGreaterEqual(max(gap_y, gap_x), 1, (n, a, b))

    @parameterized.named_parameters(
        ("rectangles", "2_rectangles", "rectangles"),
        ("four_rectangles", "4_rectangles", "rectangles"),
        ("shapes", "2_shapes", "shapes"),
    )
    def test_appendix_a_sets_overlap(self, name, kind):
        data = shapes.make_shapes(name, 2000, seed=0)
        masks = data.masks > 0
        overlap = masks.sum(axis=1).max(axis=(1, 2)) > 1
        # Placed independently: overlaps are common but not the rule for two shapes.
        self.assertBetween(overlap.mean(), 0.3 if data.max_shapes == 2 else 0.9, 1.0)
        self.assertLess(overlap.mean(), 0.75 if data.max_shapes == 2 else 1.0)
        # The same colour everywhere: the image is the union of the masks.
        np.testing.assert_array_equal(data.images[..., 0], masks.any(axis=1).astype(np.float32))
        # Nothing is rejected, so sides are uniform: mean (5 + 14) / 2, or (6 + 14) / 2.
        self.assertAllClose(data.sizes.mean(), 10.0 if kind == "shapes" else 9.5, atol=0.1)

    @parameterized.named_parameters(*_TONED)
    def test_toned_rectangles(self, name, k):
        data = shapes.make_shapes(name, 2000, seed=0)
        self.assertTrue(np.all(data.valid))
        tones = np.arange(1, k + 1) / k
        np.testing.assert_allclose(np.sort(data.colors, axis=1), np.tile(tones, (2000, 1)))
        # Every tone is equally likely in every paint position.
        for position in range(k):
            self.assertAllClose(data.colors[:, position].mean(), tones.mean(), atol=0.03)
        np.testing.assert_array_equal(data.background, 0.0)
        # No visibility floor: somewhere a rectangle is hidden entirely, and the top one is
        # always whole.
        visible = data.visible_masks()
        shown = visible.sum(axis=(2, 3)) / data.masks.sum(axis=(2, 3))
        self.assertEqual(shown.min(), 0.0)
        np.testing.assert_array_equal(visible[:, -1], data.masks[:, -1])

    def test_occlusion_visible(self):
        data = shapes.make_shapes("2_rectangles_occlusion_visible", 2000, seed=0)
        self.assertTrue(np.all(data.valid))
        # One rectangle 1 ("black"), one 0.5 ("gray"), either painted first.
        np.testing.assert_array_equal(np.sort(data.colors, axis=1), np.tile([0.5, 1.0], (2000, 1)))
        self.assertBetween(np.mean(data.colors[:, 0] == 1.0), 0.4, 0.6)
        np.testing.assert_array_equal(data.background, 0.0)

        overlap = (data.masks[:, 0] * data.masks[:, 1]).sum(axis=(1, 2)) > 0
        self.assertBetween(overlap.mean(), 0.5, 0.85)
        # The top rectangle is fully visible, in its own colour.
        top = data.masks[:, 1] > 0
        top_colors = np.broadcast_to(data.colors[:, 1, None, None], top.shape)
        np.testing.assert_array_equal(data.images[..., 0][top], top_colors[top])
        visible = data.visible_masks()
        np.testing.assert_array_equal(visible[:, 1], data.masks[:, 1])
        # The bottom one keeps at least 30% of its area.
        fraction = visible[:, 0].sum(axis=(1, 2)) / data.masks[:, 0].sum(axis=(1, 2))
        self.assertGreaterEqual(fraction.min(), 0.3)
        self.assertLess(fraction[overlap].mean(), 0.9)

    def test_two_shapes_has_both_kinds(self):
        data = shapes.make_shapes("2_shapes", _NUM, seed=0)
        circles = (data.kinds == shapes.CIRCLE).sum(axis=1)
        self.assertSetEqual(set(circles), {0, 1, 2})
        self.assertBetween(np.mean(data.kinds == shapes.CIRCLE), 0.4, 0.6)
        sizes = data.sizes.reshape(-1, 2)
        np.testing.assert_array_equal(sizes[:, 0], sizes[:, 1])  # isotropic scale only

    def test_zero_to_two_counts(self):
        data = shapes.make_shapes("0to2_rectangles", 900, seed=0)
        counts = np.bincount(data.num_shapes, minlength=3)
        self.assertLen(counts, 3)
        for count in counts:
            self.assertBetween(count, 240, 360)
        # Valid slots come first, and an image without shapes is all background.
        np.testing.assert_array_equal(data.valid, np.arange(2) < data.num_shapes[:, None])
        np.testing.assert_array_equal(data.images[data.num_shapes == 0], 0.0)

    def test_mixed_backgrounds(self):
        data = shapes.make_shapes("2_rectangles_mixed", _NUM, seed=0)
        self.assertSetEqual(set(data.background), {0.0, 1.0})
        self.assertBetween(data.background.mean(), 0.4, 0.6)
        np.testing.assert_array_equal(data.colors, 1.0 - data.background[:, None] * [1, 1])
        # Black on white: the background covers most of the image.
        white = data.background == 1.0
        self.assertGreater(data.images[white].mean(), 0.5)
        self.assertLess(data.images[~white].mean(), 0.5)

    @parameterized.named_parameters(("small", 8), ("nine", 9), ("large", 64))
    def test_image_size(self, size):
        for name in shapes.SHAPE_DATASETS:
            data = shapes.make_shapes(name, 50, seed=0, image_size=size)
            self.assertEqual(data.images.shape, (50, size, size, 1))
            boxes = data.boxes[data.valid]
            self.assertTrue(np.all(boxes[:, 2:] <= size))
            self.assertLessEqual(data.sizes.max(), size / 2)

    def test_helpers(self):
        data = shapes.make_shapes("4_rectangles_separated", 20, seed=0)
        np.testing.assert_allclose(
            data.centers[..., 0], (data.boxes[..., 0] + data.boxes[..., 2]) / 2
        )
        np.testing.assert_allclose(data.sizes[..., 1], data.boxes[..., 3] - data.boxes[..., 1])
        part = data.take([3, 1])
        self.assertLen(part, 2)
        np.testing.assert_array_equal(part.images[0], data.images[3])
        np.testing.assert_array_equal(part.masks[1], data.masks[1])
        self.assertLen(data.take(slice(0, 5)), 5)
        self.assertLen(data.take(7), 1)
        # Without overlap, every mask is fully visible.
        np.testing.assert_array_equal(data.visible_masks(), data.masks)

    def test_inconsistent_shape_data_raises(self):
        data = shapes.make_shapes("2_rectangles", 3, seed=0)
        with self.assertRaisesRegex(ValueError, r"ShapeData.colors has shape \(2, 2\)"):
            shapes.ShapeData(
                images=data.images,
                boxes=data.boxes,
                kinds=data.kinds,
                colors=data.colors[:2],
                valid=data.valid,
                masks=data.masks,
                background=data.background,
            )

    def test_bad_name(self):
        with self.assertRaisesRegex(ValueError, r"Unknown shape dataset '3_rectangles'.*2_shapes"):
            shapes.make_shapes("3_rectangles", 10)

    @parameterized.named_parameters(("zero", 0), ("negative", -1))
    def test_bad_num_images(self, num):
        with self.assertRaisesRegex(ValueError, "num_images must be at least 1"):
            shapes.make_shapes("2_rectangles", num)

    def test_bad_image_size(self):
        with self.assertRaisesRegex(ValueError, "image_size must be at least 8, got 7"):
            shapes.make_shapes("2_rectangles", 10, image_size=7)


if __name__ == "__main__":
    tf.test.main()
