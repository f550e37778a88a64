"""Tests for tfpaint.losses: the reconstruction costs and the Painter's loss."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tests import testing
from tfpaint import losses


def reference_mse(images, canvas):
    """`||x - c_T||^2` per image (thesis section 5.1), a NumPy loop over pixels."""
    images = np.asarray(images, np.float64)
    canvas = np.asarray(canvas, np.float64)
    out = np.zeros(len(images))
    for b in range(len(images)):
        for idx in np.ndindex(images.shape[1:]):
            out[b] += (images[b][idx] - canvas[b][idx]) ** 2
    return out


def reference_cross_entropy(images, canvas, epsilon=1e-6):
    """`-log D(x | c_T)` per image for a Bernoulli decoder, canvas clipped to [eps, 1 - eps].

    The clip is done in float32, as the loss does it: 1 - 1e-6 rounds to 1 - 1.013e-6 there,
    which moves -log(1 - c) of a saturated pixel by 0.013.
    """
    x = np.asarray(images, np.float64)
    bounds = np.float32(epsilon), np.float32(1.0) - np.float32(epsilon)
    c = np.clip(np.asarray(canvas, np.float32), *bounds).astype(np.float64)
    per_pixel = -(x * np.log(c) + (1.0 - x) * np.log(1.0 - c))
    return per_pixel.reshape(len(x), -1).sum(axis=1)


class ReconstructionLossTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        testing.set_seeds()
        self.rng = np.random.default_rng(0)

    def pair(self, shape):
        images = self.rng.uniform(size=shape).astype(np.float32)
        canvas = self.rng.uniform(size=shape).astype(np.float32)
        return images, canvas

    @parameterized.named_parameters(("grayscale", 1), ("rgb", 3))
    def test_mse_is_sum_of_squares_over_pixels(self, channels):
        images, canvas = self.pair((3, 5, 4, channels))
        out = losses.reconstruction_loss(images, tf.constant(canvas), "mse")
        self.assertEqual(out.shape, (3,))
        self.assertAllClose(out, reference_mse(images, canvas), atol=1e-5, rtol=1e-6)

    def test_mse_golden_value(self):
        # One image of 2x2 pixels: (1 - 0.5)^2 + (0 - 0.25)^2 + 0 + (1 - 0)^2 = 1.3125.
        images = np.array([[[[1.0], [0.0]], [[0.5], [1.0]]]], np.float32)
        canvas = np.array([[[[0.5], [0.25]], [[0.5], [0.0]]]], np.float32)
        out = losses.reconstruction_loss(images, tf.constant(canvas))
        self.assertAllClose(out, [1.3125], atol=1e-7, rtol=0)

    @parameterized.named_parameters(("grayscale", 1), ("rgb", 3))
    def test_cross_entropy_matches_bernoulli(self, channels):
        images, canvas = self.pair((3, 5, 4, channels))
        out = losses.reconstruction_loss(images, tf.constant(canvas), "ce")
        self.assertAllClose(out, reference_cross_entropy(images, canvas), atol=1e-4, rtol=1e-5)

    def test_cross_entropy_clips_saturated_canvas(self):
        # A canvas of exact 0s and 1s would give log(0): the clip keeps it finite.
        images = np.array([[[[1.0], [0.0]], [[0.0], [1.0]]]], np.float32)
        canvas = np.array([[[[0.0], [1.0]], [[0.0], [1.0]]]], np.float32)
        for epsilon in (1e-6, 1e-3):
            out = losses.reconstruction_loss(images, tf.constant(canvas), "ce", epsilon=epsilon)
            self.assertTrue(np.all(np.isfinite(out)))
            # Two wrong pixels cost about -log(eps) each, two right ones about -log(1 - eps).
            expected = -2.0 * np.log(epsilon) - 2.0 * np.log1p(-epsilon)
            self.assertAllClose(out, [expected], rtol=2e-3)
            self.assertAllClose(
                out, reference_cross_entropy(images, canvas, epsilon), rtol=1e-4
            )

    def test_perfect_reconstruction_costs_nothing(self):
        images = (self.rng.uniform(size=(2, 4, 4, 1)) > 0.5).astype(np.float32)
        self.assertAllEqual(losses.reconstruction_loss(images, tf.constant(images)), [0.0, 0.0])
        # Cross-entropy of a binary image against itself: only the clipping remains.
        ce = losses.reconstruction_loss(images, tf.constant(images), "ce")
        self.assertAllClose(ce, np.full(2, -16 * np.log1p(-1e-6)), rtol=1e-2, atol=1e-4)

    def test_gradient_of_mse(self):
        images, canvas = self.pair((2, 3, 3, 1))
        canvas = tf.Variable(canvas)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(losses.reconstruction_loss(images, canvas))
        self.assertAllClose(tape.gradient(loss, canvas), 2.0 * (canvas.numpy() - images))

    def test_unknown_batch_in_tf_function(self):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 4, 4, 1], tf.float32),
                tf.TensorSpec([None, 4, 4, 1], tf.float32),
            ]
        )
        def cost(images, canvas):
            return losses.reconstruction_loss(images, canvas, "ce")

        images, canvas = self.pair((5, 4, 4, 1))
        self.assertAllClose(
            cost(images, canvas), reference_cross_entropy(images, canvas), rtol=1e-5
        )

    @parameterized.named_parameters(("l1", "l1"), ("upper_case", "MSE"), ("none", None))
    def test_unknown_kind_raises(self, kind):
        images, canvas = self.pair((1, 2, 2, 1))
        with self.assertRaisesRegex(
            ValueError, r"Reconstruction must be one of \('mse', 'ce'\)\. Received: "
        ):
            losses.reconstruction_loss(images, tf.constant(canvas), kind)

    def test_float64_tensor_images_are_cast_not_rejected(self):
        # A float64 *tensor* of images (a float64 tf.data pipeline, or float32
        # images against a mixed-precision float16 canvas) is cast to the
        # canvas' dtype; `tf.convert_to_tensor(images, canvas.dtype)`, which an
        # earlier version used, raised ValueError for it.
        images, canvas = self.pair((2, 3, 3, 1))
        out = losses.reconstruction_loss(
            tf.constant(images, tf.float64), tf.constant(canvas), "mse"
        )
        self.assertAllClose(out, reference_mse(images, canvas), atol=1e-5)


def reference_blur(images, sigma):
    """A per-pixel NumPy loop of the truncated, normalised 2-D Gaussian blur, zero outside."""
    images = np.asarray(images, np.float64)
    radius = int(np.ceil(3.0 * sigma))
    g = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    g /= g.sum()
    b, h, w, c = images.shape
    out = np.zeros_like(images)
    for i in range(h):
        for j in range(w):
            for u in range(-radius, radius + 1):
                for v in range(-radius, radius + 1):
                    if 0 <= i - u < h and 0 <= j - v < w:
                        out[:, i, j, :] += g[u + radius] * g[v + radius] * images[:, i - u, j - v, :]
    return out


class BlurredReconstructionLossTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        self.rng = np.random.default_rng(1)

    @parameterized.named_parameters(
        ("narrow_square", 0.5, (2, 6, 6, 1)),
        ("wide_non_square", 2.0, (2, 5, 9, 1)),
        ("rgb", 1.0, (1, 7, 6, 3)),
    )
    def test_blur_matches_numpy_loop(self, sigma, shape):
        images = self.rng.uniform(size=shape).astype(np.float32)
        self.assertAllClose(
            losses.gaussian_blur(tf.constant(images), sigma), reference_blur(images, sigma),
            atol=1e-6)

    def test_loss_sums_scales(self):
        images = self.rng.uniform(size=(3, 8, 8, 1)).astype(np.float32)
        canvas = self.rng.uniform(size=(3, 8, 8, 1)).astype(np.float32)
        expected = sum(
            np.square(reference_blur(images, s) - reference_blur(canvas, s)).sum(axis=(1, 2, 3))
            for s in (1.0, 3.0))
        self.assertAllClose(
            losses.blurred_reconstruction_loss(images, tf.constant(canvas), (1.0, 3.0)),
            expected, rtol=1e-5)

    def test_no_scales_costs_nothing(self):
        canvas = tf.constant(self.rng.uniform(size=(2, 4, 4, 1)), tf.float32)
        self.assertAllEqual(losses.blurred_reconstruction_loss(1.0 - canvas, canvas, ()), [0, 0])

    def test_reaches_past_an_unpainted_shape(self):
        # The point of the coarse scales: painting a background pixel beside an unpainted
        # shape lowers the blurred cost (pixel MSE would raise), one far from it does not.
        images = np.zeros((1, 12, 12, 1), np.float32)
        images[0, 4:8, 6:8, 0] = 1.0  # the unpainted shape
        canvas = tf.Variable(np.zeros_like(images))
        with tf.GradientTape() as tape:
            cost = tf.reduce_sum(losses.blurred_reconstruction_loss(images, canvas, (2.0,)))
        grad = tape.gradient(cost, canvas).numpy()[0, :, :, 0]
        self.assertLess(grad[5, 5], 0.0)  # beside the shape: paint here
        self.assertLess(grad[5, 5], grad[5, 0])  # more than at the far edge

    def test_gradient_matches_finite_differences(self):
        images = self.rng.uniform(size=(1, 5, 5, 1))
        canvas = self.rng.uniform(size=(1, 5, 5, 1))
        theoretical, numerical = tf.test.compute_gradient(
            lambda c: losses.blurred_reconstruction_loss(images, c, (1.0,)),
            [tf.constant(canvas, tf.float64)])
        self.assertAllClose(theoretical, numerical, atol=1e-6)

    def test_unknown_batch_in_tf_function(self):
        @tf.function(input_signature=[tf.TensorSpec([None, 6, 6, 1], tf.float32)] * 2)
        def cost(images, canvas):
            return losses.blurred_reconstruction_loss(images, canvas, (1.5,))

        images = self.rng.uniform(size=(4, 6, 6, 1)).astype(np.float32)
        canvas = self.rng.uniform(size=(4, 6, 6, 1)).astype(np.float32)
        expected = np.square(reference_blur(images - canvas, 1.5)).sum(axis=(1, 2, 3))
        self.assertAllClose(cost(images, canvas), expected, rtol=1e-5)

    @parameterized.named_parameters(("rank_3", (4, 4, 1)), ("rank_5", (1, 4, 4, 1, 1)))
    def test_wrong_rank_raises(self, shape):
        with self.assertRaisesRegex(ValueError, r"Blurring needs `\(B, H, W, C\)` images"):
            losses.gaussian_blur(tf.zeros(shape), 1.0)

    @parameterized.named_parameters(("zero", 0.0), ("negative", -1.0))
    def test_bad_sigma_raises(self, sigma):
        with self.assertRaisesRegex(ValueError, r"Blur sigmas must be > 0\. Received: "):
            losses.blurred_reconstruction_loss(
                np.zeros((1, 4, 4, 1), np.float32), tf.zeros((1, 4, 4, 1)), (1.0, sigma))


class PainterLossTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        self.rng = np.random.default_rng(1)
        self.images = self.rng.uniform(size=(4, 5, 5, 1)).astype(np.float32)
        self.canvas = self.rng.uniform(size=(4, 5, 5, 1)).astype(np.float32)
        self.latent = self.rng.uniform(0.0, 3.0, size=(4,)).astype(np.float32)

    @parameterized.named_parameters(
        ("mse_weight_1", "mse", 1.0, reference_mse),
        ("mse_weight_half", "mse", 0.5, reference_mse),
        ("ce_weight_1", "ce", 1.0, reference_cross_entropy),
        ("ce_weight_0", "ce", 0.0, reference_cross_entropy),
        ("ce_weight_3", "ce", 3.0, reference_cross_entropy),
    )
    def test_adds_weighted_latent_cost(self, reconstruction, weight, reference):
        outputs = {"canvas": tf.constant(self.canvas), "latent_cost": tf.constant(self.latent)}
        out = losses.painter_loss(
            outputs, self.images, reconstruction=reconstruction, latent_weight=weight
        )
        self.assertEqual(set(out), {"loss", "reconstruction", "latent_cost", "mse_per_pixel"})
        recon = reference(self.images, self.canvas)
        self.assertAllClose(out["reconstruction"], recon.mean(), rtol=1e-5)
        self.assertAllClose(out["latent_cost"], self.latent.mean(), rtol=1e-6)
        self.assertAllClose(out["loss"], np.mean(recon + weight * self.latent), rtol=1e-5)
        self.assertAllClose(
            out["mse_per_pixel"], np.mean((self.images - self.canvas) ** 2), rtol=1e-5
        )

    def test_missing_latent_cost_counts_as_zero(self):
        out = losses.painter_loss({"canvas": tf.constant(self.canvas)}, self.images,
                                  latent_weight=10.0)
        recon = reference_mse(self.images, self.canvas)
        self.assertAllClose(out["loss"], recon.mean(), rtol=1e-5)
        self.assertAllClose(out["latent_cost"], 0.0)

    def test_mse_per_pixel_is_reconstruction_over_pixels(self):
        out = losses.painter_loss({"canvas": tf.constant(self.canvas)}, self.images)
        self.assertAllClose(out["mse_per_pixel"], out["reconstruction"] / 25.0, rtol=1e-5)

    def test_bad_reconstruction_raises(self):
        with self.assertRaisesRegex(ValueError, "Reconstruction must be one of"):
            losses.painter_loss({"canvas": tf.constant(self.canvas)}, self.images, "bce")


if __name__ == "__main__":
    tf.test.main()


class VariationalBoundTest(tf.test.TestCase, parameterized.TestCase):
    """DRAW's likelihood and bounds against NumPy's own formulas."""

    def test_bernoulli_log_likelihood(self):
        rng = np.random.default_rng(0)
        logits = rng.normal(size=(3, 4, 5, 1)).astype(np.float32) * 3
        images = (rng.uniform(size=logits.shape) < 0.4).astype(np.float32)
        p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        expected = np.sum(images * np.log(p) + (1 - images) * np.log(1 - p), axis=(1, 2, 3))
        self.assertAllClose(losses.bernoulli_log_likelihood(logits, images), expected,
                            rtol=1e-5)

    def test_gaussian_log_ratio(self):
        rng = np.random.default_rng(1)
        mu = rng.normal(size=(2, 3, 4))
        sigma = rng.uniform(0.2, 2.0, size=mu.shape)
        z = mu + sigma * rng.normal(size=mu.shape)

        def log_normal(x, m, s):
            return -0.5 * ((x - m) / s) ** 2 - np.log(s * np.sqrt(2 * np.pi))

        expected = np.sum(log_normal(z, 0.0, 1.0) - log_normal(z, mu, sigma), axis=(1, 2))
        self.assertAllClose(losses.gaussian_log_ratio(z, mu, sigma), expected)

    @parameterized.named_parameters(("k1", 1), ("k7", 7))
    def test_importance_weighted_bound(self, k):
        log_w = np.random.default_rng(k).normal(-300.0, 5.0, size=(k, 6))
        # log of the mean weight, computed in a shifted frame to stay finite.
        top = log_w.max(0)
        expected = top + np.log(np.mean(np.exp(log_w - top), axis=0))
        self.assertAllClose(losses.importance_weighted_bound(log_w), expected)
        if k == 1:
            self.assertAllClose(losses.importance_weighted_bound(log_w), log_w[0])
