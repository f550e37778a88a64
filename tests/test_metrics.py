"""Tests for tfpaint.metrics: moves against the ground truth of synthetic scenes.

Moves are built by hand from the ground truth (`ShapeData`): move masks equal to
shape masks, and affine maps `where = [s, 0, tx, 0, s, ty]` that put a template
centre at a chosen pixel. `where` maps canvas to template coordinates, so the
template centre (0, 0) lies at the normalised canvas point `p = -t / s`, i.e. at
pixel `(p + 1) * W / 2` with the canvas edges at 0 and W (as `ShapeData.boxes`).
"""

import dataclasses

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tests import testing
from tfpaint import metrics
from tfpaint.data import shapes as shapes_lib
from tfpaint.layers import template_writer


def where_at(centres, canvas_size, scale=2.0):
    """Axis-aligned maps whose template centre sits at pixel `centres` `(..., 2)` (y, x)."""
    centres = np.asarray(centres, np.float64)
    height, width = canvas_size
    p_y = 2.0 * centres[..., 0] / height - 1.0
    p_x = 2.0 * centres[..., 1] / width - 1.0
    s = np.full(p_x.shape, scale)
    zero = np.zeros_like(p_x)
    return np.stack([s, zero, -s * p_x, zero, s, -s * p_y], axis=-1).astype(np.float32)


def one_hot(indices, depth):
    return np.eye(depth, dtype=np.float32)[np.asarray(indices)]


def reference_iou(move_masks, shape_masks, threshold=0.5):
    """IoU by NumPy loops over images, shapes and moves."""
    batch, num_shapes = shape_masks.shape[:2]
    num_moves = move_masks.shape[1]
    out = np.zeros((batch, num_shapes, num_moves))
    for b in range(batch):
        for k in range(num_shapes):
            for t in range(num_moves):
                a = shape_masks[b, k] > 0.5
                m = move_masks[b, t] > threshold
                union = np.logical_or(a, m).sum()
                out[b, k, t] = np.logical_and(a, m).sum() / union if union else 0.0
    return out


def composite(masks, colors, background, order):
    """Paints full shape masks `(N, K, S, S)` in the given order: `(N, S, S, 1)`."""
    images = np.broadcast_to(background[:, None, None], masks.shape[:1] + masks.shape[2:]).copy()
    for k in order:
        images = np.where(masks[:, k] > 0.5, colors[:, k, None, None], images)
    return images[..., None].astype(np.float32)


class MsePerPixelTest(tf.test.TestCase):

    def test_matches_numpy(self):
        rng = np.random.default_rng(0)
        canvas = rng.uniform(size=(3, 4, 5, 1))
        images = rng.uniform(size=(3, 4, 5, 1))
        self.assertAllClose(
            metrics.mse_per_pixel(canvas, images), np.mean((canvas - images) ** 2)
        )
        self.assertIsInstance(metrics.mse_per_pixel(canvas, images), float)

    def test_golden_value(self):
        # Errors 1, 0, 0.5, 0 over four pixels: (1 + 0.25) / 4.
        canvas = np.array([[[[1.0], [0.0]], [[0.5], [0.0]]]])
        self.assertAllClose(metrics.mse_per_pixel(canvas, np.zeros_like(canvas)), 0.3125)


class MoveCentresTest(tf.test.TestCase, parameterized.TestCase):

    def test_identity_is_canvas_centre(self):
        where = np.array([[[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]]])
        self.assertAllClose(metrics.move_centres(where, (20, 30)), [[[10.0, 15.0]]])

    def test_golden_axis_aligned(self):
        # s = 2, t = (-1, 1): the centre is at p = (x, y) = (0.5, -0.5), i.e. pixel
        # x = 1.5 * 30 / 2 = 22.5 and y = 0.5 * 20 / 2 = 5.
        where = np.array([[[2.0, 0.0, -1.0, 0.0, 2.0, 1.0]]])
        self.assertAllClose(metrics.move_centres(where, (20, 30)), [[[5.0, 22.5]]])

    @parameterized.named_parameters(("square", (28, 28)), ("wide", (20, 36)), ("tall", (36, 12)))
    def test_axis_aligned_maps(self, canvas_size):
        rng = np.random.default_rng(0)
        height, width = canvas_size
        s = rng.uniform(0.5, 4.0, size=(3, 5))
        tx, ty = rng.uniform(-3.0, 3.0, size=(2, 3, 5))
        zero = np.zeros_like(s)
        where = np.stack([s, zero, tx, zero, s, ty], axis=-1)
        centres = metrics.move_centres(where, canvas_size)
        self.assertEqual(centres.shape, (3, 5, 2))
        self.assertAllClose(centres[..., 0], (-ty / s + 1.0) * height / 2.0)
        self.assertAllClose(centres[..., 1], (-tx / s + 1.0) * width / 2.0)

    def test_where_at_round_trip(self):
        rng = np.random.default_rng(1)
        centres = rng.uniform(0.0, 28.0, size=(4, 3, 2))
        where = where_at(centres, (28, 28), scale=3.0)
        self.assertAllClose(metrics.move_centres(where, (28, 28)), centres, atol=1e-4)

    def test_skewed_maps_match_linear_solve(self):
        rng = np.random.default_rng(2)
        where = rng.uniform(-1.0, 1.0, size=(4, 6, 6))
        where[..., 0] += 2.5  # keep A well away from singular
        where[..., 4] += 2.5
        height, width = 24, 32
        expected = np.zeros((4, 6, 2))
        for b in range(4):
            for t in range(6):
                a, bb, c, d, e, f = where[b, t]
                x, y = np.linalg.solve([[a, bb], [d, e]], [-c, -f])
                expected[b, t] = [(y + 1.0) * height / 2.0, (x + 1.0) * width / 2.0]
        self.assertAllClose(metrics.move_centres(where, (height, width)), expected)

    def test_singular_map_is_finite(self):
        where = np.zeros((1, 1, 6))
        self.assertTrue(np.all(np.isfinite(metrics.move_centres(where, (28, 28)))))

    @parameterized.named_parameters(("axis_aligned", False), ("skewed", True))
    def test_agrees_with_rendered_template(self, allow_skew):
        # The centroid of a circle placed by the template writer is the centre
        # move_centres reports: both use pixel edges at 0 and W. (A convention with
        # pixel centres at -1 and 1 would be 0.2 px off at these points; sampling a
        # hard-edged template quantises the centroid by a few hundredths.)
        size = (24, 32)
        writer = template_writer.TemplateWriter(
            num_moves=3, canvas_size=size, templates=("circle",), template_size=32,
            allow_skew=allow_skew,
        )
        writer.build((None, 4))
        where = where_at([[[7.5, 9.5], [12.0, 16.0], [16.5, 22.75]]], size, scale=2.0)
        if allow_skew:
            where[..., 1] = [0.3, -0.2, 0.25]  # theta12
            where[..., 3] = [-0.2, 0.3, 0.2]  # theta21
        masks = writer.render(where, np.ones((1, 3, 1), np.float32)).numpy()[0, ..., 0]
        # The circles lie inside the canvas, so clipping cannot move their centroids.
        self.assertAllEqual(masks[:, [0, -1], :], np.zeros((3, 2, size[1])))
        self.assertAllEqual(masks[:, :, [0, -1]], np.zeros((3, size[0], 2)))
        rows = np.arange(size[0])[:, None] + 0.5
        cols = np.arange(size[1])[None, :] + 0.5
        centroids = np.stack(
            [(masks * rows).sum((1, 2)) / masks.sum((1, 2)),
             (masks * cols).sum((1, 2)) / masks.sum((1, 2))], axis=-1
        )
        self.assertAllClose(metrics.move_centres(where, size)[0], centroids, atol=0.1)


class MaskIouTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(("rank_4", False), ("rank_5", True))
    def test_matches_numpy_loops(self, channel_axis):
        rng = np.random.default_rng(0)
        moves = rng.uniform(size=(3, 4, 6, 6))
        shape_masks = (rng.uniform(size=(3, 2, 6, 6)) > 0.6).astype(np.float32)
        shape_masks[0, 1] = 0.0  # an empty (padding) shape
        out = metrics.mask_iou(moves[..., None] if channel_axis else moves, shape_masks)
        self.assertEqual(out.shape, (3, 2, 4))
        self.assertAllClose(out, reference_iou(moves, shape_masks))
        self.assertAllEqual(out[0, 1], np.zeros(4))

    def test_golden_value(self):
        shape = np.zeros((1, 1, 4, 4))
        shape[0, 0, :2, :] = 1.0  # 8 pixels
        move = np.zeros((1, 1, 4, 4))
        move[0, 0, 1:3, :] = 0.9  # 8 pixels, 4 shared
        self.assertAllClose(metrics.mask_iou(move, shape), [[[4.0 / 12.0]]])
        # Below the threshold a move covers nothing.
        self.assertAllClose(metrics.mask_iou(move * 0.5, shape), [[[0.0]]])


class CoveringMoveTest(tf.test.TestCase, parameterized.TestCase):

    def _data(self, seed=11):
        return shapes_lib.make_shapes("2_rectangles_separated", 12, seed=seed)

    @parameterized.named_parameters(("first", 0), ("second", 1))
    def test_one_move_over_both_shapes(self, index):
        data = self._data()
        box = np.zeros_like(data.masks[:, 0])
        # The bounding box of both rectangles, in the rectangles' colour.
        y0 = data.boxes[:, :, 0].min(1).astype(int)
        x0 = data.boxes[:, :, 1].min(1).astype(int)
        y1 = data.boxes[:, :, 2].max(1).astype(int)
        x1 = data.boxes[:, :, 3].max(1).astype(int)
        for b in range(len(box)):
            box[b, y0[b]:y1[b], x0[b]:x1[b]] = 1.0
        moves = np.zeros_like(data.masks)
        moves[:, index] = box
        colors = np.zeros((12, 2))
        colors[:, index] = data.colors[:, 0]
        self.assertAllEqual(metrics.covering_move(moves, colors, data), np.ones(12, bool))
        # Own moves (each shape its own move) do not cover both.
        self.assertAllEqual(metrics.covering_move(data.masks, data.colors, data),
                            np.zeros(12, bool))

    def test_background_over_the_whole_canvas_does_not_count(self):
        data = self._data()
        moves = np.ones_like(data.masks)
        colors = np.stack([data.background, data.background], 1)
        self.assertAllEqual(metrics.covering_move(moves, colors, data), np.zeros(12, bool))
        # The same move in a gray nearer the shapes' colour counts; nearer the background not.
        for gray, expected in ((0.6, True), (0.4, False)):
            colors[:, 1] = data.background + gray * (data.colors[:, 0] - data.background)
            self.assertAllEqual(metrics.covering_move(moves, colors, data),
                                np.full(12, expected), gray)

    def test_min_cover_and_fewer_than_two_shapes(self):
        data = self._data()
        moves = data.masks.copy()
        moves[:, 0] = np.maximum(moves[:, 0], moves[:, 1])
        colors = np.stack([data.colors[:, 0]] * 2, 1)
        self.assertAllEqual(metrics.covering_move(moves, colors, data), np.ones(12, bool))
        # Drop the last rows of the second shape from the covering move: under 90% covered.
        for b in range(12):
            y0, x0, y1, x1 = data.boxes[b, 1].astype(int)
            rows = max(1, int(np.ceil(0.2 * (y1 - y0))))
            moves[b, 0, y1 - rows:y1, x0:x1] = data.masks[b, 0, y1 - rows:y1, x0:x1]
        got = metrics.covering_move(moves, colors, data)
        self.assertAllEqual(got, np.zeros(12, bool))
        one = shapes_lib.make_shapes("0to2_rectangles", 30, seed=2)
        got = metrics.covering_move(np.ones_like(one.masks), np.ones((30, 2)), one)
        self.assertAllEqual(got, one.num_shapes >= 2)


class OwnMoveAssignmentTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        testing.set_seeds()

    @parameterized.named_parameters(
        ("2_rectangles", "2_rectangles"),
        ("4_rectangles", "4_rectangles"),
        ("2_shapes", "2_shapes"),
    )
    def test_moves_equal_to_shapes_pass(self, name):
        data = shapes_lib.make_shapes(name, 16, seed=3)
        passed, assignment = metrics.own_move_assignment(data.masks, data)
        self.assertAllEqual(passed, np.ones(16, bool))
        self.assertAllEqual(assignment, np.tile(np.arange(data.max_shapes), (16, 1)))

    def test_channel_axis_and_soft_masks(self):
        data = shapes_lib.make_shapes("2_rectangles_separated", 8, seed=4)
        soft = 0.2 + 0.6 * data.masks  # 0.8 inside, 0.2 outside
        passed, _ = metrics.own_move_assignment(soft[..., None], data)
        self.assertAllEqual(passed, np.ones(8, bool))

    def test_swapped_moves_pass_with_permuted_assignment(self):
        data = shapes_lib.make_shapes("2_rectangles_separated", 16, seed=5)
        passed, assignment = metrics.own_move_assignment(data.masks[:, ::-1], data)
        self.assertAllEqual(passed, np.ones(16, bool))
        self.assertAllEqual(assignment, np.tile([1, 0], (16, 1)))

    def test_random_permutation_of_four_moves(self):
        data = shapes_lib.make_shapes("4_rectangles_separated", 10, seed=6)
        rng = np.random.default_rng(0)
        perms = np.stack([rng.permutation(4) for _ in range(10)])
        moves = np.take_along_axis(data.masks, perms[:, :, None, None], axis=1)
        passed, assignment = metrics.own_move_assignment(moves, data)
        self.assertAllEqual(passed, np.ones(10, bool))
        # Shape k is painted by the move t with perms[t] == k.
        self.assertAllEqual(assignment, np.argsort(perms, axis=1))

    def test_extra_moves_are_allowed(self):
        data = shapes_lib.make_shapes("2_rectangles_separated", 6, seed=7)
        empty = np.zeros_like(data.masks[:, :1])
        moves = np.concatenate([empty, data.masks[:, 1:], empty, data.masks[:, :1]], axis=1)
        passed, assignment = metrics.own_move_assignment(moves, data)
        self.assertAllEqual(passed, np.ones(6, bool))
        self.assertAllEqual(assignment, np.tile([3, 1], (6, 1)))

    def test_one_move_covering_both_shapes_fails(self):
        # The chapter 4 local minimum: one move paints both shapes, the other nothing.
        data = shapes_lib.make_shapes("2_rectangles_separated", 16, seed=8)
        both = np.maximum(data.masks[:, 0], data.masks[:, 1])
        for moves in (np.stack([both, np.zeros_like(both)], 1),
                      np.stack([np.zeros_like(both), both], 1)):
            passed, assignment = metrics.own_move_assignment(moves, data)
            self.assertAllEqual(passed, np.zeros(16, bool))
            self.assertAllEqual(assignment, np.full((16, 2), -1))

    def test_both_moves_on_the_same_shape_fail(self):
        data = shapes_lib.make_shapes("2_rectangles_separated", 8, seed=9)
        moves = np.stack([data.masks[:, 0], data.masks[:, 0]], 1)
        passed, _ = metrics.own_move_assignment(moves, data)
        self.assertAllEqual(passed, np.zeros(8, bool))

    def test_min_iou_threshold(self):
        # A move covering the top rows of a 10x10 square: IoU = rows / 10.
        size = 28
        masks = np.zeros((1, 1, size, size), np.float32)
        masks[0, 0, 5:15, 5:15] = 1.0
        data = shapes_lib.ShapeData(
            images=masks[:, 0, ..., None], boxes=np.array([[[5, 5, 15, 15]]], np.float32),
            kinds=np.zeros((1, 1), np.int32), colors=np.ones((1, 1), np.float32),
            valid=np.ones((1, 1), bool), masks=masks, background=np.zeros(1, np.float32),
        )
        for rows, min_iou, expected in ((5, 0.5, True), (4, 0.5, False), (4, 0.4, True)):
            move = np.zeros_like(masks)
            move[0, 0, 5:5 + rows, 5:15] = 1.0
            passed, _ = metrics.own_move_assignment(move, data, min_iou=min_iou)
            self.assertEqual(bool(passed[0]), expected, (rows, min_iou))

    def test_padding_shapes_of_0to2_rectangles(self):
        data = shapes_lib.make_shapes("0to2_rectangles", 60, seed=10)
        counts = data.num_shapes
        self.assertAllEqual(sorted(set(counts)), [0, 1, 2])  # all cases present
        expected_assignment = np.where(data.valid, np.arange(2), -1)
        # Moves equal to the (zero for padding) masks.
        passed, assignment = metrics.own_move_assignment(data.masks, data)
        self.assertAllEqual(passed, np.ones(60, bool))
        self.assertAllEqual(assignment, expected_assignment)
        # Swapped: an image with one shape paints it with its second move.
        passed, assignment = metrics.own_move_assignment(data.masks[:, ::-1], data)
        self.assertAllEqual(passed, np.ones(60, bool))
        self.assertAllEqual(assignment[counts == 1, 0], np.ones((counts == 1).sum()))
        self.assertAllEqual(assignment[:, 1][counts < 2], np.full((counts < 2).sum(), -1))
        # All moves empty: only images without shapes pass.
        passed, _ = metrics.own_move_assignment(np.zeros_like(data.masks), data)
        self.assertAllEqual(passed, counts == 0)

    def test_more_shapes_than_moves_fails(self):
        data = shapes_lib.make_shapes("4_rectangles_separated", 8, seed=11)
        passed, assignment = metrics.own_move_assignment(data.masks[:, :2], data)
        self.assertAllEqual(passed, np.zeros(8, bool))
        self.assertAllEqual(assignment, np.full((8, 4), -1))

    def test_one_move_suffices_for_one_shape(self):
        data = shapes_lib.make_shapes("0to2_rectangles", 60, seed=12)
        passed, _ = metrics.own_move_assignment(data.masks[:, :1], data)
        self.assertAllEqual(passed, data.num_shapes <= 1)


def _ceiling_by_brute_force(data, sides):
    """own_move_ceiling the slow way: every pair of support boxes, own_move_assignment as judge."""
    size, (lo, hi) = data.image_size, sides
    boxes, prior = [], []
    for h in range(lo, hi + 1):
        for w in range(lo, hi + 1):
            for y0 in range(size - h + 1):
                for x0 in range(size - w + 1):
                    boxes.append((y0, x0, y0 + h, x0 + w))
                    prior.append(1.0 / ((size - h + 1) * (size - w + 1)))
    boxes, prior = np.array(boxes, np.float32), np.array(prior)
    masks = np.zeros((len(boxes), size, size), bool)
    for m, (y0, x0, y1, x1) in enumerate(boxes.astype(int)):
        masks[m, y0:y1, x0:x1] = True
    result = []
    for image in range(len(data)):
        union = (data.masks[image] > 0.5).any(0)
        same = ((masks[:, None] | masks[None, :]) == union).all((2, 3))  # (M, M)
        first, second = np.nonzero(same)
        weight = prior[first] * prior[second]
        weight /= weight.sum()
        pair_masks = np.stack([masks[first], masks[second]], 1).astype(np.float32)  # (P, 2, S, S)
        truths = shapes_lib.ShapeData(
            images=np.repeat(data.images[image:image + 1], len(first), 0),
            boxes=np.stack([boxes[first], boxes[second]], 1),
            kinds=np.zeros((len(first), 2), np.int32),
            colors=np.ones((len(first), 2), np.float32),
            valid=np.ones((len(first), 2), bool),
            masks=pair_masks,
            background=np.zeros(len(first), np.float32))
        best = 0.0
        for guess in range(len(first)):
            moves = np.repeat(pair_masks[guess:guess + 1], len(first), 0)
            passed, _ = metrics.own_move_assignment(moves, truths)
            best = max(best, float(passed @ weight))
        result.append(best)
    return np.array(result)


class OwnMoveCeilingTest(tf.test.TestCase):

    def _pair(self, first, second, size=8):
        """A one-image ShapeData of two value-1 rectangles `(y0, x0, y1, x1)`."""
        boxes = np.array([[first, second]], np.float32)
        masks = np.zeros((1, 2, size, size), np.float32)
        for k, (y0, x0, y1, x1) in enumerate((first, second)):
            masks[0, k, y0:y1, x0:x1] = 1.0
        return shapes_lib.ShapeData(
            images=masks.max(1)[..., None], boxes=boxes, kinds=np.zeros((1, 2), np.int32),
            colors=np.ones((1, 2), np.float32), valid=np.ones((1, 2), bool), masks=masks,
            background=np.zeros(1, np.float32))

    def test_equals_brute_force_on_appendix_a_images(self):
        data = shapes_lib.make_shapes("2_rectangles", 12, seed=7, image_size=8)
        sides = shapes_lib.rectangle_sides(8)
        self.assertEqual(sides, (2, 4))
        got = metrics.own_move_ceiling(data, sides)
        self.assertAllClose(got, _ceiling_by_brute_force(data, sides), atol=1e-12)
        self.assertLess(got.min(), 1.0)  # these seeds hold ambiguous images

    def test_nested_rectangle_is_a_guess(self):
        # A 2x2 inside a 4x4: the image is the 4x4 square alone, so the painter can only guess
        # where the small one was; the brute force weighs every guess.
        data = self._pair((2, 2, 6, 6), (3, 3, 5, 5))
        got = metrics.own_move_ceiling(data, (2, 4))
        self.assertAllClose(got, _ceiling_by_brute_force(data, (2, 4)), atol=1e-12)
        self.assertBetween(got[0], 0.01, 0.99)

    def test_rectangles_apart_are_found_for_sure(self):
        data = self._pair((0, 0, 2, 3), (4, 4, 7, 8))
        self.assertAllClose(metrics.own_move_ceiling(data, (2, 4)), [1.0])

    def test_rejects_other_sets(self):
        with self.assertRaisesRegex(ValueError, "exactly 2 rectangles"):
            metrics.own_move_ceiling(shapes_lib.make_shapes("4_rectangles", 2, image_size=8),
                                     (2, 4))
        with self.assertRaisesRegex(ValueError, "one colour"):
            metrics.own_move_ceiling(
                shapes_lib.make_shapes("2_rectangles_occlusion", 2, image_size=8), (2, 4))
        with self.assertRaisesRegex(ValueError, r"sides must be \(lo, hi\)"):
            metrics.own_move_ceiling(self._pair((0, 0, 2, 2), (4, 4, 8, 8)), (4, 2))
        with self.assertRaisesRegex(ValueError, "min_iou must be in"):
            metrics.own_move_ceiling(self._pair((0, 0, 2, 2), (4, 4, 8, 8)), (2, 4), min_iou=0.0)
        with self.assertRaisesRegex(ValueError, "no union of two rectangles"):
            metrics.own_move_ceiling(self._pair((0, 0, 2, 2), (4, 4, 8, 8)), (2, 3))


class TemplateChoiceAccuracyTest(tf.test.TestCase, parameterized.TestCase):

    TEMPLATES = ("square", "circle")

    def setUp(self):
        super().setUp()
        self.data = shapes_lib.make_shapes("2_shapes_separated", 32, seed=13)
        # Both kinds occur, and images mixing them.
        self.assertTrue(np.any(self.data.kinds == shapes_lib.CIRCLE))
        self.assertTrue(np.any(self.data.kinds == shapes_lib.RECTANGLE))
        size = self.data.image_size
        self.size = (size, size)
        # Square template for rectangles (kind 0), circle for circles (kind 1).
        self.right = one_hot(self.data.kinds, 2)
        self.wrong = one_hot(1 - self.data.kinds, 2)

    def accuracy(self, centres, which, templates=TEMPLATES, radius=4.0, data=None):
        data = self.data if data is None else data
        return metrics.template_choice_accuracy(
            where_at(centres, self.size), which, data, templates, radius=radius
        )

    def test_right_template_at_shape_centre_is_correct(self):
        correct = self.accuracy(self.data.centers, self.right)
        self.assertEqual(correct.dtype, bool)
        self.assertAllEqual(correct, np.ones(32, bool))

    def test_moves_in_any_order(self):
        correct = self.accuracy(self.data.centers[:, ::-1], self.right[:, ::-1])
        self.assertAllEqual(correct, np.ones(32, bool))

    def test_only_the_argmax_counts(self):
        # Logits, and weights that favour the right template only slightly.
        logits = 5.0 * self.right - 2.0
        self.assertAllEqual(self.accuracy(self.data.centers, logits), np.ones(32, bool))
        soft = 0.45 + 0.1 * self.right
        self.assertAllEqual(self.accuracy(self.data.centers, soft), np.ones(32, bool))

    def test_bank_order_is_respected(self):
        # With the bank ("circle", "square") the one-hot columns swap meaning.
        correct = self.accuracy(self.data.centers, self.right[..., ::-1], ("circle", "square"))
        self.assertAllEqual(correct, np.ones(32, bool))
        correct = self.accuracy(self.data.centers, self.right, ("circle", "square"))
        self.assertAllEqual(correct, np.zeros(32, bool))

    def test_wrong_template_is_incorrect(self):
        self.assertAllEqual(self.accuracy(self.data.centers, self.wrong), np.zeros(32, bool))

    def test_one_wrong_shape_makes_the_image_incorrect(self):
        which = self.right.copy()
        which[:, 1] = self.wrong[:, 1]
        self.assertAllEqual(self.accuracy(self.data.centers, which), np.zeros(32, bool))

    @parameterized.named_parameters(
        ("x_3px", (0.0, 3.0), 4.0, True),
        ("y_3px", (-3.0, 0.0), 4.0, True),
        ("diagonal_3_5px", (3.0 / 5.0 * 3.5, 4.0 / 5.0 * 3.5), 4.0, True),
        ("x_5px", (0.0, 5.0), 4.0, False),
        ("y_5px", (5.0, 0.0), 4.0, False),
        ("diagonal_5px", (3.0, -4.0), 4.0, False),
        ("x_5px_radius_6", (0.0, 5.0), 6.0, True),
    )
    def test_radius(self, offset, radius, expected):
        # Offsets kept inside the canvas do not matter: where_at places centres anywhere.
        centres = self.data.centers.copy()
        centres[:, 0] += np.asarray(offset, np.float32)
        correct = self.accuracy(centres, self.right, radius=radius)
        self.assertAllEqual(correct, np.full(32, expected))

    def test_move_at_the_other_shape_does_not_count(self):
        # Both moves on shape 0 (with its template): shape 1 has no move.
        centres = np.repeat(self.data.centers[:, :1], 2, axis=1)
        which = np.repeat(self.right[:, :1], 2, axis=1)
        self.assertAllEqual(self.accuracy(centres, which), np.zeros(32, bool))

    def test_padding_shapes_are_ignored(self):
        data = shapes_lib.make_shapes("0to2_rectangles", 60, seed=14)
        which = one_hot(np.zeros((60, 2), int), 1)
        centres = data.centers
        # Padding slots have centre (0, 0): park their moves far away, they must not matter.
        centres = np.where(data.valid[..., None], centres, 100.0)
        correct = metrics.template_choice_accuracy(
            where_at(centres, (28, 28)), which, data, ("square",)
        )
        self.assertAllEqual(correct, np.ones(60, bool))
        # Moving all moves away fails exactly the images with shapes.
        correct = metrics.template_choice_accuracy(
            where_at(np.full((60, 2, 2), 100.0), (28, 28)), which, data, ("square",)
        )
        self.assertAllEqual(correct, data.num_shapes == 0)


class OcclusionOrderTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        data = shapes_lib.make_shapes("2_rectangles_occlusion_visible", 200, seed=15)
        self.data = data
        masks = data.masks > 0.5
        self.overlap = np.any(masks[:, 0] & masks[:, 1], axis=(1, 2))
        # Both cases occur.
        self.assertGreater(self.overlap.sum(), 20)
        self.assertGreater((~self.overlap).sum(), 20)
        self.right_canvas = data.images
        self.wrong_canvas = composite(data.masks, data.colors, data.background, order=(1, 0))
        self.assertAllEqual(
            composite(data.masks, data.colors, data.background, order=(0, 1)), data.images
        )

    def test_right_order_is_right(self):
        right, occluded, _ = metrics.occlusion_order(self.right_canvas, self.data.masks, self.data)
        self.assertAllEqual(occluded, self.overlap)
        self.assertAllEqual(right, self.overlap)

    def test_wrong_order_is_wrong(self):
        right, occluded, _ = metrics.occlusion_order(self.wrong_canvas, self.data.masks, self.data)
        self.assertAllEqual(occluded, self.overlap)
        self.assertAllEqual(right, np.zeros(200, bool))

    def test_move_order_does_not_matter_only_the_canvas(self):
        # Swapped move masks still give each shape its own move.
        right, _, _ = metrics.occlusion_order(
            self.right_canvas, self.data.masks[:, ::-1, ..., None], self.data
        )
        self.assertAllEqual(right, self.overlap)

    def test_non_overlapping_pairs_are_excluded(self):
        keep = ~self.overlap
        data = self.data.take(np.nonzero(keep)[0])
        right, occluded, _ = metrics.occlusion_order(data.images, data.masks, data)
        self.assertFalse(occluded.any())
        self.assertFalse(right.any())

    def test_equal_colours_are_excluded(self):
        data = dataclasses.replace(self.data, colors=np.ones_like(self.data.colors))
        _, occluded, _ = metrics.occlusion_order(data.images, data.masks, data)
        self.assertFalse(occluded.any())

    def test_without_own_moves_it_is_not_right(self):
        both = np.maximum(self.data.masks[:, 0], self.data.masks[:, 1])
        moves = np.stack([both, np.zeros_like(both)], axis=1)
        right, occluded, _ = metrics.occlusion_order(self.right_canvas, moves, self.data)
        self.assertAllEqual(occluded, self.overlap)
        self.assertFalse(right.any())


def boxes_data(boxes, colors, size=12):
    """A `ShapeData` of rectangles given by integer boxes `(N, K, 4)` and colours `(N, K)`."""
    boxes = np.asarray(boxes, np.float32)
    colors = np.asarray(colors, np.float32)
    n, k = colors.shape
    masks = np.zeros((n, k, size, size), np.float32)
    for i in range(n):
        for j in range(k):
            y0, x0, y1, x1 = boxes[i, j].astype(int)
            masks[i, j, y0:y1, x0:x1] = 1.0
    background = np.zeros(n, np.float32)
    return shapes_lib.ShapeData(
        images=composite(masks, colors, background, order=range(k)), boxes=boxes,
        kinds=np.zeros((n, k), np.int32), colors=colors, valid=np.ones((n, k), bool),
        masks=masks, background=background)


class OverlapAndUnseenTest(tf.test.TestCase):

    def test_known_scenes(self):
        data = boxes_data(
            [[[0, 0, 3, 3], [5, 5, 9, 9]],  # apart
             [[0, 0, 4, 4], [2, 2, 6, 6]],  # overlapping, both seen
             [[3, 3, 5, 5], [0, 0, 8, 8]],  # the first inside the second, same colour
             [[0, 0, 8, 8], [3, 3, 5, 5]],  # the second inside the first, same colour
             [[3, 3, 5, 5], [0, 0, 8, 8]],  # the first hidden under the second
             [[0, 0, 8, 8], [3, 3, 5, 5]]],  # the second painted over the first: both seen
            [[1, 1], [1, 1], [1, 1], [1, 1], [0.5, 1], [0.5, 1]])
        self.assertAllEqual(metrics.shapes_overlap(data), [False, True, True, True, True, True])
        self.assertAllEqual(
            metrics.unseen_shapes(data),
            [[False, False], [False, False], [True, False], [False, True], [True, False],
             [False, False]])


class OcclusionOrderPairsTest(tf.test.TestCase):
    """Occlusion order with more than two shapes, and hidden pairs."""

    def setUp(self):
        super().setUp()
        # Paint order 0, 1, 2. Image 0: a chain, 1 over 0 and 2 over 1. Image 1: shape 2 covers
        # the whole overlap of 0 and 1, so that pair is not judged; 2 over 0 and 2 over 1 are.
        # Image 2: shape 0 is hidden entirely by shape 2; 1 is apart from both.
        self.data = boxes_data(
            [[[0, 0, 4, 4], [2, 2, 6, 6], [4, 4, 9, 9]],
             [[0, 0, 5, 5], [3, 3, 8, 8], [2, 2, 7, 7]],
             [[1, 1, 3, 3], [8, 8, 11, 11], [0, 0, 5, 5]]],
            [[1 / 3, 2 / 3, 1.0], [1 / 3, 2 / 3, 1.0], [1 / 3, 2 / 3, 1.0]])
        self.moves = self.data.masks  # each shape its own move

    def test_right_order(self):
        right, occluded, hidden = metrics.occlusion_order(
            self.data.images, self.moves, self.data)
        self.assertAllEqual(occluded, [True, True, False])
        self.assertAllEqual(hidden, [False, False, True])
        self.assertAllEqual(right[occluded], [True, True])

    def test_one_wrong_pair_fails_the_image(self):
        # Image 0 with shapes 1 and 2 swapped in paint order; image 1 with 0 and 1 swapped,
        # which no observer can see (2 covers their overlap), so it stays right.
        wrong = composite(self.data.masks, self.data.colors, self.data.background, (0, 2, 1))
        swapped_hidden = composite(
            self.data.masks, self.data.colors, self.data.background, (1, 0, 2))
        canvas = np.concatenate([wrong[:1], swapped_hidden[1:2], self.data.images[2:]])
        right, occluded, _ = metrics.occlusion_order(canvas, self.moves, self.data)
        self.assertAllEqual(occluded, [True, True, False])
        self.assertAllEqual(right, [False, True, False])

    def test_a_hidden_shape_needs_no_move(self):
        # Image 2 has no judged pair; its hidden shape 0 needs no move of its own, but the
        # shapes that show do.
        moves = self.moves.copy()
        moves[2, 0] = 0.0
        right, occluded, hidden = metrics.occlusion_order(self.data.images, moves, self.data)
        self.assertAllEqual(right, [True, True, False])
        self.assertAllEqual(hidden, [False, False, True])
        moves[0, 1] = 0.0
        right, _, _ = metrics.occlusion_order(self.data.images, moves, self.data)
        self.assertAllEqual(right, [False, True, False])

    def test_appendix_a_set_flags_hidden_bottoms(self):
        data = shapes_lib.make_shapes("2_rectangles_occlusion", 2000, seed=16)
        _, occluded, hidden = metrics.occlusion_order(data.images, data.masks, data)
        bottom_shows = data.visible_masks()[:, 0].sum(axis=(1, 2)) > 0
        overlap = np.any((data.masks[:, 0] > 0) & (data.masks[:, 1] > 0), axis=(1, 2))
        self.assertAllEqual(hidden, overlap & ~bottom_shows)
        self.assertAllEqual(occluded, overlap & bottom_shows)
        self.assertGreater(hidden.sum(), 5)


class CountAndBoxTest(tf.test.TestCase):

    def test_count_accuracy(self):
        self.assertAllClose(metrics.count_accuracy([0.0, 1.0, 2.0, 2.0], [0, 1, 1, 2]), 0.75)
        with self.assertRaisesRegex(ValueError, r"two \(N,\) count vectors"):
            metrics.count_accuracy([1, 2], [1, 2, 3])

    def test_box_iou_known_values(self):
        # Two 4x4 boxes overlapping in a 2x4 strip: 8 / (16 + 16 - 8).
        self.assertAllClose(metrics.box_iou([0, 0, 4, 4], [2, 0, 6, 4]), 8 / 24)
        self.assertAllClose(metrics.box_iou([0, 0, 4, 4], [0, 0, 4, 4]), 1.0)
        self.assertAllClose(metrics.box_iou([0, 0, 2, 2], [3, 3, 5, 5]), 0.0)

    def test_matched_boxes_pair_one_to_one_across_conventions(self):
        # Inferred (x0, y0, x1, y1), in the wrong order; true (y0, x0, y1, x1).
        pred = np.array([[[10, 0, 14, 4], [0, 0, 4, 4], [30, 30, 32, 32]]], np.float32)
        pred_valid = np.array([[True, True, False]])
        true = np.array([[[0, 0, 4, 4], [0, 10, 4, 16]]], np.float32)
        true_valid = np.array([[True, True]])
        iou, pairs = metrics.matched_box_iou(pred, pred_valid, true, true_valid)
        self.assertEqual(pairs, 2)
        # (0,0,4,4) exactly; (10,0,14,4) against (10,0,16,4): 16 / 24.
        self.assertAllClose(iou, (1.0 + 16 / 24) / 2)
        nothing, none = metrics.matched_box_iou(pred, np.zeros((1, 3), bool), true, true_valid)
        self.assertEqual(none, 0)
        self.assertTrue(np.isnan(nothing))

    def test_match_boxes_names_the_pairs(self):
        # Scene 0: inferred box 1 is true box 0, inferred box 0 is true box 1;
        # scene 1: no inferred box; scene 2: inferred box 2 against true box 1.
        pred = np.zeros((3, 3, 4), np.float32)
        pred[0, :2] = [[10, 0, 14, 4], [0, 0, 4, 4]]
        pred[2, 2] = [5, 5, 9, 9]
        pred_valid = np.array([[True, True, False], [False] * 3, [False, False, True]])
        true = np.zeros((3, 2, 4), np.float32)
        true[0] = [[0, 0, 4, 4], [0, 10, 4, 16]]
        true[1, 0] = [0, 0, 4, 4]
        true[2, 1] = [5, 5, 9, 9]
        true_valid = np.array([[True, True], [True, False], [False, True]])
        scene, step, digit, iou = metrics.match_boxes(pred, pred_valid, true, true_valid)
        order = np.lexsort((step, scene))
        self.assertAllEqual(scene[order], [0, 0, 2])
        self.assertAllEqual(step[order], [0, 1, 2])
        self.assertAllEqual(digit[order], [1, 0, 1])
        self.assertAllClose(iou[order], [16 / 24, 1.0, 1.0])
        empty = metrics.match_boxes(pred, np.zeros((3, 3), bool), true, true_valid)
        self.assertEqual([len(v) for v in empty], [0, 0, 0, 0])


class SlotPurityTest(tf.test.TestCase):

    def test_known_values(self):
        # Slot 0 holds classes 3, 3, 5; slot 4 holds 7, 7; slot 2 holds 1:
        # majorities 2 + 2 + 1 of 6 objects.
        slots = [0, 0, 0, 4, 4, 2]
        labels = [3, 3, 5, 7, 7, 1]
        self.assertAllClose(metrics.slot_purity(slots, labels), 5 / 6)

    def test_one_slot_per_class_is_pure_and_one_slot_for_all_is_the_largest_class(self):
        labels = np.array([0, 1, 1, 2, 2, 2])
        self.assertEqual(metrics.slot_purity(labels + 10, labels), 1.0)
        self.assertAllClose(metrics.slot_purity(np.zeros(6), labels), 3 / 6)

    def test_empty_and_bad_shapes(self):
        self.assertTrue(np.isnan(metrics.slot_purity([], [])))
        with self.assertRaisesRegex(ValueError, r"two \(P,\) vectors"):
            metrics.slot_purity([0, 1], [0, 1, 2])


if __name__ == "__main__":
    tf.test.main()
