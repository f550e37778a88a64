"""Tests for tfpaint.strokes: moves as SVG, checked by rendering the SVG.

The SVG is rasterised by resvg (an independent renderer, `resvg-py`) and
compared with the canvas the Painter's own layers paint for the same moves.
"""

import io
import xml.etree.ElementTree as ET

from absl.testing import parameterized
import numpy as np
from PIL import Image
import resvg_py
import tensorflow as tf

from tfpaint import strokes
from tfpaint.layers import template_bank
from tfpaint.models import painter

_SVG = "{http://www.w3.org/2000/svg}"
_TEMPLATES = ("circle", "square", "line", "curve")
# Row-major canvas -> template affines: off-centre, unequal scales, so a
# transposed or non-inverted transform lands somewhere else.
_WHERE = np.array([
    [2.0, 0, -0.5, 0, 2.5, 0.3],
    [3.0, 0, 1.0, 0, 1.5, -0.8],
    [1.5, 0, 0.3, 0, 4.0, 0.2],
    [1.8, 0, 0.0, 0, 1.8, -0.3],
], np.float32)


def rasterise(svg):
    """resvg's rendering of an SVG as `(H, W, 3)` float32 in [0, 1]."""
    png = bytes(resvg_py.svg_to_bytes(svg_string=svg))
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.float32) / 255.0


def iou(a, b, level=0.5):
    """Intersection over union of two pictures thresholded at `level`."""
    a, b = a > level, b > level
    return (a & b).sum() / max((a | b).sum(), 1)


def centroid(picture):
    """Intensity-weighted centre (x, y) of a `(H, W)` picture, in pixel units
    whose pixel centres sit at half-integers (SVG's user space)."""
    rows, cols = np.indices(picture.shape)
    total = picture.sum()
    return ((cols + 0.5) * picture).sum() / total, ((rows + 0.5) * picture).sum() / total


def inverse_affine(where):
    """A NumPy inverse of a row-major 2x3 affine, as a row-major 2x3."""
    full = np.vstack([np.reshape(where, (2, 3)), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2].ravel()


def painted(image_shape, templates, where, what, which, template_size=32):
    """The canvas the Painter's TemplateWriter and OverCanvas paint."""
    model = painter.SimplePainter(
        num_moves=len(where), image_shape=image_shape, templates=templates,
        template_size=template_size, hidden_units=4)
    model(tf.zeros((1, *image_shape)))
    canvases = model.render(where[None], what[None], which[None])
    return model, canvases[0, -1].numpy()


class MovesToSvgTest(parameterized.TestCase, tf.test.TestCase):

    @parameterized.named_parameters(("square_canvas", (28, 28)), ("wide_canvas", (20, 30)))
    def test_rendered_svg_matches_canvas(self, canvas_shape):
        what = np.array([[0.9], [0.5], [0.3], [1.0]], np.float32)
        which = np.eye(4, dtype=np.float32)
        _, canvas = painted((*canvas_shape, 1), _TEMPLATES, _WHERE, what, which)
        svg = strokes.moves_to_svg(_WHERE, what, which, _TEMPLATES, canvas_shape)
        picture = rasterise(svg)
        self.assertEqual(picture.shape, (*canvas_shape, 3))
        # Edges differ (bilinear template sampling vs exact coverage), shapes do not.
        self.assertLess(np.abs(picture[..., 0] - canvas[..., 0]).mean(), 0.02)
        # The painted area (every colour here is at least 0.3, the background 0).
        self.assertGreater(iou(picture[..., 0], canvas[..., 0], level=0.2), 0.9)
        # The mistakes a transform can make land elsewhere: the checks can fail.
        swapped = _WHERE[:, [4, 3, 5, 1, 0, 2]]  # x and y transposed
        not_inverted = np.stack([inverse_affine(w) for w in _WHERE])  # where used as forward
        for wrong_where in (swapped, not_inverted):
            wrong = rasterise(
                strokes.moves_to_svg(wrong_where, what, which, _TEMPLATES, canvas_shape))
            self.assertGreater(np.abs(wrong[..., 0] - canvas[..., 0]).mean(), 0.1)
            self.assertLess(iou(wrong[..., 0], canvas[..., 0], level=0.2), 0.6)

    def test_order_is_the_over_rule(self):
        # Two large overlapping squares: the later one covers the overlap.
        where = np.array([[1.5, 0, 0.4, 0, 1.5, 0.0], [1.5, 0, -0.4, 0, 1.5, 0.0]], np.float32)
        what = np.array([[1.0], [0.4]], np.float32)
        which = np.ones((2, 1), np.float32)
        _, canvas = painted((28, 28, 1), ("square",), where, what, which)
        ours = rasterise(strokes.moves_to_svg(where, what, which, ("square",), (28, 28)))
        reverse = rasterise(strokes.moves_to_svg(where[::-1], what[::-1], which, ("square",),
                                                 (28, 28)))
        self.assertLess(np.abs(ours[..., 0] - canvas[..., 0]).mean(), 0.02)
        self.assertGreater(np.abs(reverse[..., 0] - canvas[..., 0]).mean(), 0.05)
        self.assertAllClose(ours[14, 14], [0.4] * 3, atol=1 / 255)

    def test_rgb_colours(self):
        where = np.array([[1.2, 0, 0, 0, 1.2, 0]], np.float32)
        what = np.array([[1.0, 0.5, 0.0]], np.float32)
        _, canvas = painted((32, 32, 3), ("circle",), where, what, np.ones((1, 1), np.float32))
        picture = rasterise(strokes.moves_to_svg(where, what, np.ones((1, 1)), ("circle",),
                                                 (32, 32), background=(0.0, 0.0, 0.2)))
        self.assertAllClose(picture[16, 16], [1.0, 0.5, 0.0], atol=1 / 255)
        self.assertAllClose(picture[0, 0], [0.0, 0.0, 0.2], atol=1 / 255)
        # Red and green: the model's canvas has the same (zero) background there.
        self.assertLess(np.abs(picture[..., :2] - canvas[..., :2]).mean(), 0.02)

    def test_identity_move_is_a_centred_circle(self):
        svg = strokes.moves_to_svg([[1.0, 0, 0, 0, 1.0, 0]], [[1.0]], [[1.0]], ("circle",),
                                   (20, 30))
        root = ET.fromstring(svg)
        self.assertEqual(root.get("viewBox"), "0 0 30 20")
        group = root.find(f"{_SVG}g")
        self.assertEqual(group.get("transform"), "matrix(15 0 0 10 15 10)")
        self.assertEqual(group.get("fill"), "#ffffff")
        self.assertIsNotNone(group.find(f"{_SVG}circle"))

    def test_identity_circle_fills_the_canvas_centre(self):
        picture = rasterise(strokes.moves_to_svg([[1.0, 0, 0, 0, 1.0, 0]], [[1.0]], [[1.0]],
                                                 ("circle",), (32, 32)))[..., 0]
        self.assertAllClose(centroid(picture), (16.0, 16.0), atol=0.05)
        # Radius W / 2: the disc's area, within its anti-aliased rim.
        self.assertAllClose(picture.sum(), np.pi * 16**2, rtol=0.01)

    def test_translation_moves_the_circle_the_right_way(self):
        # template = 2 canvas + (-1, 0.6): the circle's centre sits at canvas
        # (0.5, -0.3), right of and above the middle of a 20 x 30 canvas:
        # pixel x = (0.5 + 1) * 30 / 2 = 22.5, y = (-0.3 + 1) * 20 / 2 = 7.
        where = np.array([[2.0, 0, -1.0, 0, 2.0, 0.6]], np.float32)
        what, which = np.ones((1, 1), np.float32), np.ones((1, 1), np.float32)
        picture = rasterise(strokes.moves_to_svg(where, what, which, ("circle",), (20, 30)))
        _, canvas = painted((20, 30, 1), ("circle",), where, what, which)
        # The Painter's own canvas agrees on where the circle is.
        self.assertAllClose(centroid(canvas[..., 0]), (22.5, 7.0), atol=0.1)
        self.assertAllClose(centroid(picture[..., 0]), (22.5, 7.0), atol=0.1)
        # An ellipse of radii (15 / 2, 10 / 2) pixels.
        self.assertAllClose(picture[..., 0].sum(), np.pi * 7.5 * 5.0, rtol=0.02)

    def test_transform_inverts_where(self):
        # where: template = A canvas + t, so the template origin sits at
        # canvas -A^-1 t; x = (0 - (-0.5)) / 2 = 0.25, y = (0 - 0.3) / 2.5 = -0.12.
        a, b, c, d, e, f = strokes.svg_transform(_WHERE[0], (20, 30))
        self.assertAllClose([a, b, c, d], [15 / 2.0, 0, 0, 10 / 2.5])
        self.assertAllClose([e, f], [(0.25 + 1) * 15, (-0.12 + 1) * 10])
        with self.assertRaisesRegex(ValueError, "`where` is not invertible"):
            strokes.svg_transform([0, 0, 0, 0, 1, 0], (20, 30))

    def test_custom_mask_bank_is_traced(self):
        mask = np.zeros((16, 16), np.float32)
        mask[2:14, 2:6] = 1.0
        mask[10:14, 2:14] = 1.0  # an L
        where = np.array([[1.1, 0, 0.1, 0, 1.1, -0.1]], np.float32)
        what, which = np.array([[0.8]], np.float32), np.ones((1, 1), np.float32)
        _, canvas = painted((28, 28, 1), mask[None], where, what, which, template_size=16)
        svg = strokes.moves_to_svg(where, what, which, mask[None], (28, 28))
        self.assertIn('fill-rule="evenodd"', svg)
        picture = rasterise(svg)
        self.assertLess(np.abs(picture[..., 0] - canvas[..., 0]).mean(), 0.03)

    def test_template_shapes_match_make_template(self):
        # Each named primitive, drawn full-size, covers the pixels its mask does.
        for name in ("circle", "square", "line", "curve"):
            svg = strokes.moves_to_svg([[1.0, 0, 0, 0, 1.0, 0]], [[1.0]], [[1.0]], (name,),
                                       (64, 64))
            picture = rasterise(svg)[..., 0]
            mask = template_bank.make_template(name, 64)
            self.assertLess(np.abs(picture - mask).mean(), 0.02, name)
        self.assertIsNone(strokes.template_shapes(("transparency",))[0])

    def test_soft_weights_drop_tiny_weights_and_set_opacity(self):
        svg = strokes.moves_to_svg([[1.0, 0, 0, 0, 1.0, 0]], [[1.0]], [[0.25, 0.0005]],
                                   ("square", "circle"), (8, 8))
        group = ET.fromstring(svg).find(f"{_SVG}g")
        self.assertLen(list(group), 1)  # the circle's weight is below min_weight
        self.assertEqual(group[0].get("fill-opacity"), "0.25")
        self.assertAllClose(rasterise(svg)[4, 4], [0.25] * 3, atol=1 / 255)

    def test_stacking_plan_of_the_named_bank(self):
        order, containers = strokes.stacking_plan(
            ("line", "curve", "circle", "square", "transparency"))
        self.assertEqual(order, [3, 2, 1, 0, 4])  # by area: square, circle, curve, line
        self.assertEqual(containers[2], [3])  # the circle lies in the square
        self.assertEqual(containers[1], [3, 2])  # the curve in both
        self.assertEqual(containers[0], [3, 2])  # the line too, but not in the curve

    @parameterized.named_parameters(
        # Nested: the square holds the circle, which holds the line.
        ("nested", ("square", "circle", "line"), (0.5, 0.3, 0.2)),
        ("nested_reordered", ("line", "square", "circle"), (0.2, 0.5, 0.3)),
        # Disjoint: the left and right halves of the square.
        ("disjoint", "halves", (0.3, 0.7)),
    )
    def test_soft_weights_add_up_like_the_canvas(self, templates, weights):
        if templates == "halves":
            templates = np.zeros((2, 16, 16), np.float32)
            templates[0, :, :8] = templates[1, :, 8:] = 1.0
        where = np.array([[1.2, 0, 0.1, 0, 1.2, -0.1]], np.float32)
        what = np.array([[0.9]], np.float32)
        which = np.array([weights], np.float32)
        _, canvas = painted((28, 28, 1), templates, where, what, which, template_size=16)
        picture = rasterise(strokes.moves_to_svg(where, what, which, templates, (28, 28)))
        self.assertLess(np.abs(picture[..., 0] - canvas[..., 0]).mean(), 0.015)
        # Drawing each template at its weight, the obvious rule, is wrong where
        # nested templates overlap: 1 - (1 - 0.5)(1 - 0.3)(1 - 0.2) = 0.72, not 1.
        if weights == (0.5, 0.3, 0.2):
            self.assertAllClose(picture[14, 15, 0], 0.9, atol=1 / 255)

    def test_soft_weights_of_overlapping_templates_fall_short_as_documented(self):
        # Line and curve overlap, neither holds the other: the overlap gets
        # 1 - (1 - 0.6)(1 - 0.4) = 0.76 of the colour instead of all of it.
        where = np.array([[1.0, 0, 0, 0, 1.0, 0]], np.float32)
        svg = strokes.moves_to_svg(where, [[1.0]], [[0.6, 0.4]], ("line", "curve"), (64, 64))
        picture = rasterise(svg)[..., 0]
        # (x, y) = (0.75, 0) in template coordinates is in both; pixel (56, 32).
        self.assertAllClose(picture[32, 56], 0.76, atol=2 / 255)
        self.assertAllClose(picture[32, 32], 0.6, atol=2 / 255)  # the line alone

    @parameterized.named_parameters(
        ("where", np.zeros((2, 4)), np.ones((2, 1)), np.ones((2, 1)), r"`where` must have shape"),
        ("what", np.zeros((2, 6)), np.ones((3, 1)), np.ones((2, 1)), r"`what` must have shape"),
        ("which", np.zeros((2, 6)), np.ones((2, 1)), np.ones((2, 2)),
         r"`which` must have shape \(2, 1\)"),
    )
    def test_bad_shapes_raise(self, where, what, which, message):
        with self.assertRaisesRegex(ValueError, message):
            strokes.moves_to_svg(where, what, which, ("circle",), (8, 8))

    @parameterized.named_parameters(
        ("canvas_shape", dict(canvas_shape=(8, 8, 1)), r"`canvas_shape` must be \(height, width\)"),
        ("canvas_size_zero", dict(canvas_shape=(0, 8)), r"`canvas_shape` must be"),
        ("background", dict(background=(0.0, 0.0, 0.2)), r"`background` must be a scalar or have 1"),
        ("nan", dict(where=[[np.nan, 0, 0, 0, 1, 0]]), r"`where` holds NaN"),
        ("mask_sizes", dict(templates=[np.ones((4, 4)), np.ones((5, 5))]), r"must all have one shape"),
    )
    def test_bad_arguments_raise(self, change, message):
        kwargs = dict(where=[[1.0, 0, 0, 0, 1.0, 0]], what=[[1.0]], which=[[1.0]],
                      templates=("circle",), canvas_shape=(8, 8))
        kwargs.update(change)
        if "templates" in change:
            kwargs["which"] = [[0.5, 0.5]]
        with self.assertRaisesRegex(ValueError, message):
            strokes.moves_to_svg(**kwargs)

    def test_unknown_template_raises(self):
        with self.assertRaisesRegex(ValueError, "Unknown template 'star'"):
            strokes.template_shapes(("star",))


class PaintingToSvgTest(tf.test.TestCase):

    def test_model_outputs_to_svg(self):
        model = painter.SimplePainter(num_moves=3, image_shape=(12, 12, 1),
                                      templates=("circle", "square"), template_size=8,
                                      hidden_units=8, initial_scale=1.5, seed=0)
        images = np.random.default_rng(0).uniform(size=(2, 12, 12, 1)).astype(np.float32)
        outputs = model(images)
        svg = strokes.painting_to_svg(model, outputs, index=1, title="digit <1>")
        root = ET.fromstring(svg)
        self.assertEqual(root.find(f"{_SVG}title").text, "digit <1>")
        self.assertLen(root.findall(f"{_SVG}g"), 3)
        # An untrained model's choices are soft (about 0.5 each); they still add up.
        picture = rasterise(svg)[..., 0]
        self.assertLess(np.abs(picture - outputs["canvas"][1, ..., 0].numpy()).mean(), 0.02)

    def test_additive_canvas_raises(self):
        model = painter.SimplePainter(num_moves=2, image_shape=(8, 8, 1), canvas="additive",
                                      template_size=8, hidden_units=4)
        outputs = model(np.zeros((1, 8, 8, 1), np.float32))
        with self.assertRaisesRegex(ValueError, "SVG export needs the 'over' canvas"):
            strokes.painting_to_svg(model, outputs)

    def test_save_svg(self):
        path = f"{self.get_temp_dir()}/sub/painting.svg"
        strokes.save_svg("<svg/>", path)
        with open(path) as f:
            self.assertEqual(f.read(), "<svg/>")


if __name__ == "__main__":
    tf.test.main()
