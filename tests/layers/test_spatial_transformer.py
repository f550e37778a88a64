"""Tests for tfpaint.layers.spatial_transformer: bilinear sampling (thesis eqs 2.20-2.21)."""

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from tests import testing
from tfpaint.layers import spatial_transformer as st

IDENTITY = np.array(st.IDENTITY_THETA, np.float32)


def reference_sample(image, theta, output_size):
    """A NumPy loop of thesis eqs 2.20-2.21.

    Output pixel (i, j) has normalised centre x_V = (2j + 1) / w - 1,
    y_V = (2i + 1) / h - 1; theta maps it to (x_U, y_U) in [-1, 1], in pixels
    x = ((x_U + 1) W - 1) / 2, and
    V_i = sum_nm U_nm max(0, 1 - |x - m|) max(0, 1 - |y - n|).
    """
    image = np.asarray(image, np.float64)
    theta = np.asarray(theta, np.float64)
    batch, in_h, in_w, channels = image.shape
    height, width = output_size
    n = np.arange(in_h)[:, None]  # (H, 1)
    m = np.arange(in_w)[None, :]  # (1, W)
    out = np.zeros((batch, height, width, channels))
    for b in range(batch):
        a, b_, c, d, e, f = theta[b]
        for i in range(height):
            for j in range(width):
                x_v = (2.0 * j + 1.0) / width - 1.0
                y_v = (2.0 * i + 1.0) / height - 1.0
                x_u = a * x_v + b_ * y_v + c  # eq 2.20
                y_u = d * x_v + e * y_v + f
                x = ((x_u + 1.0) * in_w - 1.0) / 2.0
                y = ((y_u + 1.0) * in_h - 1.0) / 2.0
                kernel = np.maximum(0.0, 1.0 - np.abs(x - m)) * np.maximum(
                    0.0, 1.0 - np.abs(y - n)
                )  # (H, W), eq 2.21
                out[b, i, j] = np.einsum("nm,nmc->c", kernel, image[b])
    return out.astype(np.float32)


def random_axis_aligned(rng, batch):
    """Random maps without skew: scales in +-[0.4, 2], shifts in [-0.8, 0.8]."""
    scale = rng.uniform(0.4, 2.0, size=(batch, 2)) * rng.choice([-1.0, 1.0], size=(batch, 2))
    shift = rng.uniform(-0.8, 0.8, size=(batch, 2))
    zero = np.zeros(batch)
    return np.stack(
        [scale[:, 0], zero, shift[:, 0], zero, scale[:, 1], shift[:, 1]], axis=-1
    ).astype(np.float32)


def random_affine(rng, batch):
    """Random general affine maps, skew included."""
    theta = random_axis_aligned(rng, batch)
    theta[:, 1] = rng.uniform(-0.7, 0.7, size=batch)
    theta[:, 3] = rng.uniform(-0.7, 0.7, size=batch)
    return theta


def compose(p, q):
    """The 2x3 map `p o q` (apply q, then p), row-major (6,) each."""
    def full(t):
        return np.vstack([np.reshape(t, (2, 3)), [0.0, 0.0, 1.0]])

    return (full(p) @ full(q))[:2].reshape(6)


class SpatialTransformerTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        testing.set_seeds()
        self.rng = np.random.default_rng(0)

    def image(self, batch, height, width, channels):
        return self.rng.uniform(size=(batch, height, width, channels)).astype(np.float32)

    # Harness ----------------------------------------------------------------

    @parameterized.named_parameters(
        ("separable_grayscale", "separable", 1),
        ("gather_rgb", "gather", 3),
    )
    def test_layer_harness(self, sampler, channels):
        image = self.image(3, 9, 7, channels)
        theta = random_axis_aligned(self.rng, 3)
        testing.run_layer_test(
            self,
            st.SpatialTransformer,
            dict(output_size=(5, 6), allow_skew=sampler == "gather", sampler=sampler),
            (image, theta),
            expected_output_shape=(3, 5, 6, channels),
            expected_num_trainable_weights=0,
        )

    @parameterized.named_parameters(
        ("separable_grayscale", "separable", 1),
        ("separable_rgb", "separable", 3),
        ("gather_grayscale", "gather", 1),
    )
    def test_layer_harness_bank(self, sampler, channels):
        bank = self.image(3, 8, 8, channels)
        theta = random_axis_aligned(self.rng, 4)
        weights = self.rng.dirichlet(np.ones(3), size=4).astype(np.float32)
        testing.run_layer_test(
            self,
            st.SpatialTransformer,
            dict(output_size=(6, 6), allow_skew=False, sampler=sampler),
            (bank, theta),
            call_kwargs={"weights": weights},
            expected_output_shape=(4, 6, 6, channels),
            batch_size=4,
            # The symbolic output shape of the bank path is wrong: see
            # test_symbolic_bank_output_shape_follows_theta.
            run_symbolic=False,
        )

    # Known values ----------------------------------------------------------

    @parameterized.named_parameters(
        ("separable_grayscale", "separable", 1),
        ("separable_rgb", "separable", 3),
        ("gather_grayscale", "gather", 1),
        ("gather_rgb", "gather", 3),
    )
    def test_identity_returns_input(self, sampler, channels):
        image = self.image(2, 9, 11, channels)
        layer = st.SpatialTransformer(
            (9, 11), allow_skew=sampler == "gather", sampler=sampler
        )
        out = layer(image, np.tile(IDENTITY, (2, 1)))
        self.assertAllClose(out, image, atol=1e-5, rtol=0)

    @parameterized.named_parameters(
        ("separable_right", "separable", 3, 0),
        ("separable_left", "separable", -2, 0),
        ("separable_down", "separable", 0, 2),
        ("gather_right", "gather", 3, 0),
        ("gather_up", "gather", 0, -3),
        ("gather_diagonal", "gather", 2, 1),
    )
    def test_translation_moves_mask_by_whole_pixels(self, sampler, kx, ky):
        height, width = 10, 12
        mask = np.zeros((1, height, width, 1), np.float32)
        mask[0, 2:7, 1:10] = 1.0
        mask[0, 4, 5] = 0.5
        theta = np.array([[1.0, 0.0, 2.0 * kx / width, 0.0, 1.0, 2.0 * ky / height]])
        layer = st.SpatialTransformer(
            (height, width), allow_skew=sampler == "gather", sampler=sampler
        )
        out = layer(mask, theta.astype(np.float32)).numpy()
        # output(i, j) = input(i + ky, j + kx); points outside the input read 0.
        expected = np.zeros_like(mask)
        for i in range(height):
            for j in range(width):
                if 0 <= i + ky < height and 0 <= j + kx < width:
                    expected[0, i, j] = mask[0, i + ky, j + kx]
        self.assertAllClose(out, expected, atol=1e-5, rtol=0)

    @parameterized.named_parameters(("separable", "separable"), ("gather", "gather"))
    def test_points_outside_read_zero(self, sampler):
        image = np.ones((2, 6, 6, 1), np.float32)
        # Shifted right by 3 (1.5 image widths) or down-left by 3: nothing inside.
        theta = np.array(
            [[1.0, 0.0, 3.0, 0.0, 1.0, 0.0], [0.5, 0.0, -3.0, 0.0, 0.5, 3.0]], np.float32
        )
        layer = st.SpatialTransformer((6, 6), allow_skew=sampler == "gather", sampler=sampler)
        self.assertAllEqual(layer(image, theta), np.zeros((2, 6, 6, 1)))

    @parameterized.named_parameters(
        ("separable_grayscale", "separable", 1),
        ("separable_rgb", "separable", 3),
        ("gather_grayscale", "gather", 1),
        ("gather_rgb", "gather", 3),
    )
    def test_scale_two_matches_reference(self, sampler, channels):
        image = self.image(2, 8, 8, channels)
        theta = np.tile(np.array([2.0, 0.0, 0.0, 0.0, 2.0, 0.0], np.float32), (2, 1))
        layer = st.SpatialTransformer((8, 8), allow_skew=sampler == "gather", sampler=sampler)
        out = layer(image, theta).numpy()
        self.assertAllClose(out, reference_sample(image, theta, (8, 8)), atol=1e-5, rtol=0)
        # Doubled coordinates: output column j reads input column 2j - 3.5, so
        # for j = 2 (column 0.5) it averages input columns 0 and 1, and so on.
        expected = 0.25 * (image[:, 0:2, 0:2].sum(axis=(1, 2)))
        self.assertAllClose(out[:, 2, 2], expected, atol=1e-5, rtol=0)
        self.assertAllEqual(out[:, 0], np.zeros((2, 8, channels)))

    @parameterized.named_parameters(
        ("separable_grayscale", "separable", 1),
        ("separable_rgb", "separable", 3),
        ("gather_grayscale", "gather", 1),
        ("gather_rgb", "gather", 3),
    )
    def test_axis_aligned_matches_reference(self, sampler, channels):
        image = self.image(4, 9, 7, channels)
        theta = random_axis_aligned(self.rng, 4)
        layer = st.SpatialTransformer((6, 8), allow_skew=sampler == "gather", sampler=sampler)
        expected = reference_sample(image, theta, (6, 8))
        self.assertAllClose(layer(image, theta), expected, atol=1e-5, rtol=0)

    @parameterized.named_parameters(("grayscale", 1), ("rgb", 3))
    def test_gather_with_skew_matches_reference(self, channels):
        image = self.image(4, 9, 7, channels)
        theta = random_affine(self.rng, 4)
        layer = st.SpatialTransformer((6, 8), allow_skew=True)
        self.assertEqual(layer.separable, False)
        expected = reference_sample(image, theta, (6, 8))
        self.assertAllClose(layer(image, theta), expected, atol=1e-5, rtol=0)

    @parameterized.named_parameters(("grayscale", 1), ("rgb", 3))
    def test_separable_and_gather_agree(self, channels):
        image = self.image(8, 10, 10, channels)
        theta = random_axis_aligned(self.rng, 8)
        separable = st.SpatialTransformer((7, 9), allow_skew=False, sampler="separable")
        gather = st.SpatialTransformer((7, 9), allow_skew=False, sampler="gather")
        self.assertAllClose(separable(image, theta), gather(image, theta), atol=1e-5, rtol=0)

    def test_auto_sampler_choice(self):
        self.assertTrue(st.SpatialTransformer((4, 4), allow_skew=False).separable)
        self.assertFalse(st.SpatialTransformer((4, 4), allow_skew=True).separable)
        self.assertFalse(
            st.SpatialTransformer((4, 4), allow_skew=False, sampler="gather").separable
        )

    @parameterized.named_parameters(
        ("separable", "separable"), ("auto", "auto"), ("gather", "gather")
    )
    def test_no_skew_ignores_skew_entries(self, sampler):
        image = self.image(4, 8, 8, 1)
        skewed = random_affine(self.rng, 4)
        unskewed = skewed.copy()
        unskewed[:, [1, 3]] = 0.0
        layer = st.SpatialTransformer((8, 8), allow_skew=False, sampler=sampler)
        self.assertAllEqual(layer.prepare_theta(skewed), unskewed)
        self.assertAllClose(layer(image, skewed), layer(image, unskewed), atol=1e-6, rtol=0)
        # With skew allowed the skew entries matter.
        free = st.SpatialTransformer((8, 8), allow_skew=True)
        self.assertGreater(
            np.abs(free(image, skewed) - free(image, unskewed)).max(), 1e-2
        )

    @parameterized.named_parameters(
        ("separable", False, "separable"), ("gather_skew", True, "gather")
    )
    def test_inverse_samples_with_inverted_map(self, allow_skew, sampler):
        image = self.image(4, 8, 8, 3)
        placement = random_affine(self.rng, 4) if allow_skew else random_axis_aligned(self.rng, 4)
        inverse = st.SpatialTransformer((8, 8), allow_skew, inverse=True, sampler=sampler)
        forward = st.SpatialTransformer((8, 8), allow_skew, sampler=sampler)
        expected = forward(image, st.invert_affine(placement))
        self.assertAllClose(inverse(image, placement), expected, atol=1e-5, rtol=0)

    def test_inverse_places_patch(self):
        # Placing an all-ones patch with a map that halves and moves it to the
        # top-left quadrant paints exactly that quadrant.
        patch = np.ones((1, 4, 4, 1), np.float32)
        placement = np.array([[0.5, 0.0, -0.5, 0.0, 0.5, -0.5]], np.float32)
        layer = st.SpatialTransformer((8, 8), allow_skew=False, inverse=True)
        out = layer(patch, placement).numpy()[0, ..., 0]
        expected = np.zeros((8, 8), np.float32)
        expected[:4, :4] = 1.0
        # Canvas pixel j has patch coordinate u = 2 x + 1, i.e. patch pixel j.
        self.assertAllClose(out, expected, atol=1e-6, rtol=0)

    @parameterized.named_parameters(("separable", "separable"), ("gather", "gather"))
    def test_read_then_write_returns_the_region(self, sampler):
        # AIR's round trip: read a 10x10 glimpse of a pixel-aligned 10x10
        # region with z_where (scale 1/2, shift), write it back with the same
        # map inverted: the region comes back, the rest of the canvas stays 0.
        image = self.rng.uniform(size=(3, 20, 20, 2)).astype(np.float32)
        corners = [(4, 6), (0, 0), (10, 7)]  # (y0, x0) of each region
        theta = np.array([[0.5, 0.0, (2 * (x0 + 5)) / 20 - 1, 0.0, 0.5, (2 * (y0 + 5)) / 20 - 1]
                          for y0, x0 in corners], np.float32)
        read = st.SpatialTransformer((10, 10), allow_skew=False, sampler=sampler)
        write = st.SpatialTransformer((20, 20), allow_skew=False, inverse=True, sampler=sampler)
        glimpse = read(image, theta)  # (3, 10, 10, 2)
        back = write(glimpse, theta).numpy()  # (3, 20, 20, 2)
        for i, (y0, x0) in enumerate(corners):
            expected = np.zeros_like(image[i])
            expected[y0:y0 + 10, x0:x0 + 10] = image[i, y0:y0 + 10, x0:x0 + 10]
            self.assertAllClose(glimpse[i], image[i, y0:y0 + 10, x0:x0 + 10], atol=1e-5)
            self.assertAllClose(back[i], expected, atol=1e-5)

    def test_invert_affine_composes_to_identity(self):
        theta = random_affine(self.rng, 6).astype(np.float64)
        inverse = st.invert_affine(theta).numpy()
        for p, q in zip(theta, inverse):
            self.assertAllClose(compose(p, q), IDENTITY, atol=1e-9, rtol=0)
            self.assertAllClose(compose(q, p), IDENTITY, atol=1e-9, rtol=0)
        # Batched leading axes are kept.
        self.assertEqual(st.invert_affine(np.zeros((2, 3, 6)) + IDENTITY).shape, (2, 3, 6))
        self.assertAllClose(st.invert_affine(IDENTITY), IDENTITY)

    @parameterized.named_parameters(
        ("separable_grayscale", "separable", 1),
        ("separable_rgb", "separable", 3),
        ("gather_grayscale", "gather", 1),
        ("gather_rgb", "gather", 3),
    )
    def test_bank_equals_sampling_the_mix(self, sampler, channels):
        bank = self.image(3, 8, 8, channels)
        theta = random_axis_aligned(self.rng, 5)
        weights = self.rng.dirichlet(np.ones(3), size=5).astype(np.float32)
        layer = st.SpatialTransformer((6, 7), allow_skew=False, sampler=sampler)
        mixed = np.tensordot(weights, bank, axes=1)  # (B, H, W, C)
        expected = reference_sample(mixed, theta, (6, 7))
        self.assertAllClose(layer(bank, theta, weights=weights), expected, atol=1e-5, rtol=0)
        self.assertAllClose(layer(mixed, theta), expected, atol=1e-5, rtol=0)

    def test_symbolic_bank_output_shape_follows_theta(self):
        # The bank path returns one image per theta, not one per bank entry,
        # so a functional model must see (batch of theta, h, w, C).
        layer = st.SpatialTransformer((6, 6), allow_skew=False)
        bank = keras.Input(batch_shape=(3, 5, 5, 1))
        theta = keras.Input(shape=(6,))
        weights = keras.Input(shape=(3,))
        out = layer(bank, theta, weights=weights)
        self.assertEqual(
            tuple(out.shape),
            (None, 6, 6, 1),
            "SpatialTransformer.compute_output_shape takes the batch from the "
            "bank (K) instead of theta in the bank path",
        )

    # Gradients --------------------------------------------------------------

    @parameterized.named_parameters(
        ("separable", False, "separable"), ("gather_skew", True, "gather")
    )
    def test_theta_gradient_matches_finite_differences(self, allow_skew, sampler):
        image = self.image(2, 7, 7, 2).astype(np.float64)
        theta = random_affine(self.rng, 2) if allow_skew else random_axis_aligned(self.rng, 2)
        theta = theta.astype(np.float64)
        layer = st.SpatialTransformer((5, 6), allow_skew, sampler=sampler, dtype="float64")
        r = self.rng.uniform(-1.0, 1.0, size=(2, 5, 6, 2))

        def loss(t):
            return tf.reduce_sum(layer(image, t) * r)

        t = tf.constant(theta)
        with tf.GradientTape() as tape:
            tape.watch(t)
            value = loss(t)
        grad = tape.gradient(value, t).numpy()
        self.assertTrue(np.all(np.isfinite(grad)))
        eps = 1e-6
        numeric = np.zeros_like(theta)
        for b in range(2):
            for k in range(6):
                if not allow_skew and k in (1, 3):
                    continue
                plus, minus = theta.copy(), theta.copy()
                plus[b, k] += eps
                minus[b, k] -= eps
                numeric[b, k] = (loss(plus) - loss(minus)) / (2 * eps)
        self.assertAllClose(grad, numeric, atol=1e-5, rtol=1e-4)
        free = [k for k in range(6) if allow_skew or k not in (1, 3)]
        self.assertGreater(np.abs(grad[:, free]).min(), 0.0)
        if not allow_skew:
            self.assertAllEqual(grad[:, [1, 3]], np.zeros((2, 2)))

    @parameterized.named_parameters(("separable", "separable"), ("gather", "gather"))
    def test_image_gradient_is_transposed_kernel(self, sampler):
        # Sampling is linear in the image: d(sum V)/dU equals the reference's.
        image = tf.constant(self.image(2, 6, 6, 1))
        theta = random_axis_aligned(self.rng, 2)
        layer = st.SpatialTransformer((5, 5), allow_skew=sampler == "gather", sampler=sampler)
        with tf.GradientTape() as tape:
            tape.watch(image)
            total = tf.reduce_sum(layer(image, theta))
        grad = tape.gradient(total, image).numpy()
        expected = np.zeros((2, 6, 6, 1), np.float32)
        for n in range(6):
            for m in range(6):
                unit = np.zeros((2, 6, 6, 1), np.float32)
                unit[:, n, m] = 1.0
                expected[:, n, m] = reference_sample(unit, theta, (5, 5)).sum(axis=(1, 2))
        self.assertAllClose(grad, expected, atol=1e-5, rtol=0)

    # Unknown batch ---------------------------------------------------------

    @parameterized.named_parameters(("separable", "separable"), ("gather", "gather"))
    def test_unknown_batch_in_tf_function(self, sampler):
        layer = st.SpatialTransformer((5, 5), allow_skew=sampler == "gather", sampler=sampler)

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 8, 8, 3], tf.float32),
                tf.TensorSpec([None, 6], tf.float32),
            ]
        )
        def sample(image, theta):
            out = layer(image, theta)
            self.assertEqual(out.shape.as_list(), [None, 5, 5, 3])
            return out

        for batch in (1, 4):
            image = self.image(batch, 8, 8, 3)
            theta = random_axis_aligned(self.rng, batch)
            self.assertAllClose(
                sample(image, theta), reference_sample(image, theta, (5, 5)), atol=1e-5
            )

    @parameterized.named_parameters(("separable", "separable"), ("gather", "gather"))
    def test_bank_unknown_batch_in_tf_function(self, sampler):
        layer = st.SpatialTransformer((5, 5), allow_skew=False, sampler=sampler)
        bank = self.image(2, 8, 8, 1)

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 6], tf.float32),
                tf.TensorSpec([None, 2], tf.float32),
            ]
        )
        def sample(theta, weights):
            return layer(bank, theta, weights=weights)

        theta = random_axis_aligned(self.rng, 3)
        weights = self.rng.dirichlet(np.ones(2), size=3).astype(np.float32)
        expected = reference_sample(np.tensordot(weights, bank, axes=1), theta, (5, 5))
        self.assertAllClose(sample(theta, weights), expected, atol=1e-5)

    # Non-finite maps --------------------------------------------------------

    @parameterized.named_parameters(
        ("separable_nan", "separable", False, 0, np.nan),
        ("separable_inf", "separable", False, 2, np.inf),
        ("gather_nan", "gather", False, 5, np.nan),
        ("gather_skew_nan", "gather", True, 1, np.nan),
        ("gather_minus_inf", "gather", False, 4, -np.inf),
        # A NaN in a skew entry that allow_skew=False zeroes is still an error.
        ("separable_masked_skew_nan", "separable", False, 3, np.nan),
        ("bank_separable_nan", "separable", False, 0, np.nan, True),
        ("bank_gather_inf", "gather", False, 5, np.inf, True),
    )
    def test_non_finite_theta_raises_eagerly(self, sampler, allow_skew, entry, value, bank=False):
        layer = st.SpatialTransformer((5, 5), allow_skew=allow_skew, sampler=sampler)
        theta = random_axis_aligned(self.rng, 3)
        theta[1, entry] = value
        kwargs = {}
        if bank:
            kwargs["weights"] = self.rng.dirichlet(np.ones(2), size=3).astype(np.float32)
        with self.assertRaisesRegex(
            ValueError, r"`theta` must be finite.*non-finite theta in rows \[1\] of 3"
        ):
            layer(self.image(2 if bank else 3, 8, 8, 1), theta, **kwargs)

    @parameterized.named_parameters(
        ("separable_nan", "separable", np.nan, False, False),
        ("gather_nan", "gather", np.nan, False, False),
        ("separable_inf", "separable", np.inf, False, False),
        ("gather_inf", "gather", np.inf, False, False),
        ("separable_nan_xla", "separable", np.nan, False, True),
        ("gather_nan_xla", "gather", np.nan, False, True),
        ("bank_separable_nan", "separable", np.nan, True, False),
        ("bank_gather_nan", "gather", np.nan, True, False),
        ("bank_separable_inf_xla", "separable", np.inf, True, True),
        ("bank_gather_nan_xla", "gather", np.nan, True, True),
    )
    def test_non_finite_theta_in_tf_function_samplers_agree(self, sampler, value, bank, jit):
        # Inside a training step a broken map must not paint a blank image: a
        # NaN image makes the loss NaN, which stops the trainer. Both samplers
        # give NaN wherever the map gives a NaN coordinate: everywhere for a
        # NaN map; for an infinite scale, along the centre line (inf * 0).
        layer = st.SpatialTransformer((5, 5), allow_skew=False, sampler=sampler)
        images = self.image(2 if bank else 3, 8, 8, 3)
        theta = random_axis_aligned(self.rng, 3)
        theta[1, 0] = value
        weights = self.rng.dirichlet(np.ones(2), size=3).astype(np.float32)
        # A bank is shared by the batch: its size K stays known.
        image_spec = tf.TensorSpec([2 if bank else None, 8, 8, 3], tf.float32)
        theta_spec = tf.TensorSpec([None, 6], tf.float32)
        weights_spec = tf.TensorSpec([None, 2], tf.float32)
        if bank:
            sample = tf.function(
                lambda b, t, w: layer(b, t, weights=w),
                input_signature=None if jit else [image_spec, theta_spec, weights_spec],
                jit_compile=jit,
            )
            out = sample(images, theta, weights).numpy()
            sources = np.tensordot(weights, images, axes=1)
        else:
            sample = tf.function(
                lambda i, t: layer(i, t),
                input_signature=None if jit else [image_spec, theta_spec],
                jit_compile=jit,
            )
            out = sample(images, theta).numpy()
            sources = images
        if np.isnan(value):
            self.assertTrue(np.all(np.isnan(out[1])), f"not NaN: {out[1, ..., 0]}")
        else:
            self.assertTrue(np.all(np.isnan(out[1, :, 2])), out[1, ..., 0])  # x = 0
            self.assertAllEqual(np.delete(out[1], 2, axis=1),
                                np.zeros_like(np.delete(out[1], 2, axis=1)))
        # The other examples are untouched.
        good = [0, 2]
        self.assertAllClose(
            out[good], reference_sample(sources[good], theta[good], (5, 5)), atol=1e-5
        )

    # Errors ----------------------------------------------------------------

    @parameterized.named_parameters(
        ("one_entry", dict(output_size=(4,)), "`output_size` must be \\(height, width\\)"),
        ("zero", dict(output_size=(0, 4)), "positive entries"),
        ("sampler", dict(output_size=(4, 4), sampler="nearest"), "`sampler` must be one of"),
        (
            "separable_with_skew",
            dict(output_size=(4, 4), allow_skew=True, sampler="separable"),
            "The separable sampler handles axis-aligned maps only",
        ),
    )
    def test_bad_arguments_raise(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            st.SpatialTransformer(**kwargs)

    def test_bad_theta_shape_raises(self):
        layer = st.SpatialTransformer((4, 4))
        with self.assertRaisesRegex(ValueError, r"`theta` must have shape \(\.\.\., 6\)"):
            layer(self.image(2, 4, 4, 1), np.zeros((2, 4), np.float32))

    def test_bad_image_rank_raises(self):
        layer = st.SpatialTransformer((4, 4))
        with self.assertRaisesRegex(
            ValueError, r"`image` must have shape \(batch, height, width, channels\)"
        ):
            layer(np.zeros((2, 4, 4), np.float32), np.tile(IDENTITY, (2, 1)))

    def test_bad_bank_weights_raise(self):
        layer = st.SpatialTransformer((4, 4), allow_skew=False)
        with self.assertRaisesRegex(
            ValueError, r"`weights` must have shape \(batch, 3\) to mix a bank of 3"
        ):
            layer(self.image(3, 4, 4, 1), np.tile(IDENTITY, (2, 1)), weights=np.ones((2, 2)))

    def test_bank_batch_mismatch_raises(self):
        layer = st.SpatialTransformer((4, 4), allow_skew=False)
        with self.assertRaisesRegex(
            ValueError,
            r"`theta` and `weights` must have the same batch size.*theta.shape=\(2, 6\), "
            r"weights.shape=\(3, 3\)",
        ):
            layer(self.image(3, 4, 4, 1), np.tile(IDENTITY, (2, 1)), weights=np.ones((3, 3)))


class AffineBoxesTest(tf.test.TestCase):

    def test_boxes_of_axis_aligned_maps(self):
        boxes = st.affine_boxes([[1.0, 0, 0, 0, 1.0, 0], [0.5, 0, 0.5, 0, 0.25, -0.5],
                                 [-0.5, 0, 0.5, 0, -0.25, -0.5]], (16, 32))
        # Identity: the whole image; a flipped map covers the same region.
        self.assertAllClose(boxes, [[0, 0, 32, 16], [16, 2, 32, 6], [16, 2, 32, 6]])

    def test_box_holds_exactly_what_a_glimpse_reads(self):
        image = np.zeros((1, 20, 20, 1), np.float32)
        theta = np.array([[0.3, 0.0, -0.2, 0.0, 0.4, 0.1]], np.float32)
        x0, y0, x1, y1 = np.round(st.affine_boxes(theta, (20, 20)).numpy()[0]).astype(int)
        image[0, y0:y1, x0:x1] = 1.0
        glimpse = st.SpatialTransformer((6, 6), allow_skew=False)(image, theta)
        self.assertAllClose(glimpse, np.ones_like(glimpse), atol=1e-5)

    def test_skewed_map_gives_its_bounding_box(self):
        boxes = st.affine_boxes([[0.5, 0.25, 0.0, -0.25, 0.5, 0.0]], (8, 8))
        self.assertAllClose(boxes, [[1.0, 1.0, 7.0, 7.0]])


if __name__ == "__main__":
    tf.test.main()
