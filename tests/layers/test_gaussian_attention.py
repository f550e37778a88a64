"""Tests for tfpaint.layers.gaussian_attention: DRAW's filterbank attention (eqs 19-29)."""

import math

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from tests import testing
from tfpaint.layers import gaussian_attention as ga


def paper_filterbank(params, image_size, n):
    """A NumPy loop of DRAW eqs 19-26 in the paper's own 1-based indexing.

    Filters i = 1..N, pixels a = 1..A (width) and b = 1..B (height). The paper
    divides the stride by N - 1; for N = 1 this uses 1, the layer's documented
    choice (the single filter sits at the centre whatever the stride).

    Returns:
        Dict of float64 arrays: `filter_x` `(batch, N, A)`, `filter_y`
        `(batch, N, B)`, `gamma`, `g_x`, `g_y`, `stride`, `variance`
        `(batch,)`, `mu_x`, `mu_y` `(batch, N)` (centres and means in the
        paper's 1-based pixels), and `z_x`, `z_y` `(batch, N)`, the
        normalisers.
    """
    params = np.asarray(params, np.float64)
    height, width = image_size  # B, A
    batch = params.shape[0]
    out = {"filter_x": np.zeros((batch, n, width)), "filter_y": np.zeros((batch, n, height))}
    for key in ("mu_x", "mu_y", "z_x", "z_y"):
        out[key] = np.zeros((batch, n))
    for key in ("gamma", "g_x", "g_y", "stride", "variance"):
        out[key] = np.zeros(batch)
    for p in range(batch):
        g_x_raw, g_y_raw, log_variance, log_stride, log_gamma = params[p]  # eq 21
        g_x = (width + 1) / 2 * (g_x_raw + 1)  # eq 22
        g_y = (height + 1) / 2 * (g_y_raw + 1)  # eq 23
        stride = (max(width, height) - 1) / max(n - 1, 1) * math.exp(log_stride)  # eq 24
        variance = math.exp(log_variance)
        for i in range(1, n + 1):
            mu_x = g_x + (i - n / 2 - 0.5) * stride  # eq 19
            mu_y = g_y + (i - n / 2 - 0.5) * stride  # eq 20
            out["mu_x"][p, i - 1], out["mu_y"][p, i - 1] = mu_x, mu_y
            for a in range(1, width + 1):  # eq 25
                out["filter_x"][p, i - 1, a - 1] = math.exp(-((a - mu_x) ** 2) / (2 * variance))
            for b in range(1, height + 1):  # eq 26
                out["filter_y"][p, i - 1, b - 1] = math.exp(-((b - mu_y) ** 2) / (2 * variance))
            out["z_x"][p, i - 1] = out["filter_x"][p, i - 1].sum()
            out["z_y"][p, i - 1] = out["filter_y"][p, i - 1].sum()
            out["filter_x"][p, i - 1] /= out["z_x"][p, i - 1]
            out["filter_y"][p, i - 1] /= out["z_y"][p, i - 1]
        out["gamma"][p] = math.exp(log_gamma)
        out["g_x"][p], out["g_y"][p] = g_x, g_y
        out["stride"][p], out["variance"][p] = stride, variance
    return out


def random_params(rng, batch, image_size, n):
    """Random raw parameters whose filters all reach the image (Z >= 1e-3).

    The epsilon floor of the normalisers then plays no part, and the layer
    must match the paper exactly. Rows whose filters miss the image are
    redrawn.
    """
    rows = []
    while len(rows) < batch:
        p = np.array(
            [
                rng.uniform(-0.9, 0.9),  # g~X
                rng.uniform(-0.9, 0.9),  # g~Y
                rng.uniform(-1.0, 2.0),  # log sigma^2
                rng.uniform(-2.0, 0.3),  # log delta~
                rng.uniform(-1.0, 1.0),  # log gamma
            ]
        )
        ref = paper_filterbank(p[None], image_size, n)
        if min(ref["z_x"].min(), ref["z_y"].min()) >= 1e-3:
            rows.append(p)
    return np.stack(rows).astype(np.float32)


def centred_params(batch=1):
    """g~ = 0, sigma^2 = 1, delta~ = 1, gamma = 1."""
    return np.zeros((batch, 5), np.float32)


class GaussianAttentionTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        testing.set_seeds()
        self.rng = np.random.default_rng(0)

    def layer(self, image_size=(20, 28), glimpse_size=5, channels=1, **kwargs):
        return ga.GaussianAttention(image_size, glimpse_size, channels=channels, **kwargs)

    def with_params(self, layer, params, features=4):
        """Builds `layer` so that `layer(h)` gives `params` for any h (zero kernel)."""
        layer.build((None, features))
        layer.dense.kernel.assign(np.zeros((features, 5), np.float32))
        layer.dense.bias.assign(np.asarray(params, np.float32))
        return layer

    # Harness ----------------------------------------------------------------

    @parameterized.named_parameters(("grayscale_n1", 1, 1), ("rgb_n5", 5, 3))
    def test_layer_harness(self, n, channels):
        h = self.rng.normal(size=(3, 7)).astype(np.float32)
        batch_n = lambda *shape: (3, *shape)
        testing.run_layer_test(
            self,
            ga.GaussianAttention,
            dict(image_size=(20, 28), glimpse_size=n, channels=channels, seed=3),
            (h,),
            expected_output_shape={
                "params": batch_n(5),
                "filter_x": batch_n(n, 28),
                "filter_y": batch_n(n, 20),
                "gamma": batch_n(),
                "center_x": batch_n(),
                "center_y": batch_n(),
                "stride": batch_n(),
                "variance": batch_n(),
                "mu_x": batch_n(n),
                "mu_y": batch_n(n),
            },
            expected_num_trainable_weights=2,
        )

    def test_config_round_trip_with_initializers(self):
        layer = self.layer(
            kernel_initializer=keras.initializers.Constant(0.25),
            bias_initializer=keras.initializers.Constant([0.1, -0.2, 0.0, 0.3, 0.5]),
            epsilon=1e-6,
            name="read_attention",
        )
        revived = testing.assert_config_round_trip(self, layer)
        h = np.ones((2, 3), np.float32)
        self.assertAllClose(revived(h)["params"], layer(h)["params"])
        self.assertAllClose(layer(h)["params"][0], [0.85, 0.55, 0.75, 1.05, 1.25])

    # The filterbank against the paper -----------------------------------------

    @parameterized.named_parameters(
        ("square_n1", (28, 28), 1),
        ("square_n2", (28, 28), 2),
        ("wide_n1", (20, 28), 1),
        ("wide_n2", (20, 28), 2),
        ("wide_n5", (20, 28), 5),
        ("wide_n12", (20, 28), 12),
        ("tall_n5", (28, 20), 5),
        ("tall_n12", (28, 20), 12),
    )
    def test_filterbank_matches_paper_loop(self, image_size, n):
        params = random_params(self.rng, 6, image_size, n)
        out = self.layer(image_size, n).filterbanks(params)
        ref = paper_filterbank(params, image_size, n)
        height, width = image_size
        self.assertEqual(out["filter_x"].shape, (6, n, width))
        self.assertEqual(out["filter_y"].shape, (6, n, height))
        self.assertAllClose(out["filter_x"], ref["filter_x"], atol=2e-6, rtol=0)
        self.assertAllClose(out["filter_y"], ref["filter_y"], atol=2e-6, rtol=0)
        self.assertAllClose(out["gamma"], ref["gamma"], rtol=1e-5)
        self.assertAllClose(out["variance"], ref["variance"], rtol=1e-5)
        self.assertAllClose(out["stride"], ref["stride"], rtol=1e-5)
        # The window in 0-based pixels is the paper's, one pixel lower.
        self.assertAllClose(out["center_x"], ref["g_x"] - 1.0, atol=1e-4, rtol=0)
        self.assertAllClose(out["center_y"], ref["g_y"] - 1.0, atol=1e-4, rtol=0)
        self.assertAllClose(out["mu_x"], ref["mu_x"] - 1.0, atol=1e-4, rtol=0)
        self.assertAllClose(out["mu_y"], ref["mu_y"] - 1.0, atol=1e-4, rtol=0)

    def test_filter_is_hand_checked_gaussian(self):
        # A = B = 3, N = 1, g~ = 0, sigma^2 = 1: the one filter sits on the
        # middle pixel, weights exp(-1/2), 1, exp(-1/2) over their sum.
        out = self.layer((3, 3), 1).filterbanks(centred_params())
        e = math.exp(-0.5)
        expected = np.array([e, 1.0, e]) / (1.0 + 2.0 * e)
        self.assertAllClose(out["filter_x"][0, 0], expected, atol=1e-6, rtol=0)
        self.assertAllClose(out["filter_y"][0, 0], expected, atol=1e-6, rtol=0)
        self.assertAllClose(out["center_x"], [1.0])
        self.assertAllClose(out["stride"], [2.0])  # (max(A, B) - 1) / max(N - 1, 1)

    @parameterized.named_parameters(("n1", 1), ("n2", 2), ("n5", 5), ("n12", 12))
    def test_filter_rows_sum_to_one(self, n):
        params = random_params(self.rng, 8, (20, 28), n)
        out = self.layer((20, 28), n).filterbanks(params)
        self.assertAllClose(tf.reduce_sum(out["filter_x"], -1), np.ones((8, n)), atol=1e-5)
        self.assertAllClose(tf.reduce_sum(out["filter_y"], -1), np.ones((8, n)), atol=1e-5)
        self.assertTrue(np.all(out["filter_x"].numpy() >= 0.0))

    @parameterized.named_parameters(
        ("square_n2", (28, 28), 2),
        ("square_n5", (28, 28), 5),
        ("square_n12", (28, 28), 12),
        ("wide_n5", (20, 28), 5),
        ("tall_n12", (28, 20), 12),
        ("odd_square_n4", (9, 9), 4),
    )
    def test_centred_grid_is_symmetric_and_spans_longer_side(self, image_size, n):
        height, width = image_size
        out = self.layer(image_size, n).filterbanks(centred_params())
        mu_x, mu_y = out["mu_x"][0].numpy(), out["mu_y"][0].numpy()
        # Symmetric about the image centre (A - 1)/2, (B - 1)/2 in 0-based pixels.
        self.assertAllClose(out["center_x"], [(width - 1) / 2])
        self.assertAllClose(out["center_y"], [(height - 1) / 2])
        self.assertAllClose(mu_x + mu_x[::-1], np.full(n, width - 1.0), atol=1e-4)
        self.assertAllClose(mu_y + mu_y[::-1], np.full(n, height - 1.0), atol=1e-4)
        fx, fy = out["filter_x"][0].numpy(), out["filter_y"][0].numpy()
        self.assertAllClose(fx, fx[::-1, ::-1], atol=1e-6)
        self.assertAllClose(fy, fy[::-1, ::-1], atol=1e-6)
        # The grid spans max(A, B) - 1 pixels: the extreme filters sit on the
        # first and last pixel of the longer side, beyond the shorter side's.
        half = (max(height, width) - 1) / 2
        self.assertAllClose([mu_x[0], mu_x[-1]], [(width - 1) / 2 - half, (width - 1) / 2 + half],
                            atol=1e-4)
        self.assertAllClose([mu_y[0], mu_y[-1]],
                            [(height - 1) / 2 - half, (height - 1) / 2 + half], atol=1e-4)
        longer = mu_x if width >= height else mu_y
        self.assertAllClose([longer[0], longer[-1]], [0.0, max(height, width) - 1.0], atol=1e-4)
        # The first filter peaks on pixel 0 of the longer side (and the last on
        # the last pixel): not one filter in, as a 1-based formula on a 0-based
        # grid would put it.
        filters = fx if width >= height else fy
        self.assertEqual(int(np.argmax(filters[0])), 0)
        self.assertEqual(int(np.argmax(filters[-1])), max(height, width) - 1)

    def test_single_filter_sits_at_centre_whatever_stride(self):
        params = centred_params(3)
        params[:, 0] = [-0.5, 0.2, 0.2]  # g~X
        params[:, 1] = [0.0, 0.1, 0.1]  # g~Y
        params[:, 3] = [-2.0, 0.0, 3.0]  # log delta~
        out = self.layer((20, 28), 1).filterbanks(params)
        self.assertAllClose(out["mu_x"][:, 0], out["center_x"])
        self.assertAllClose(out["mu_y"][:, 0], out["center_y"])
        self.assertAllClose(out["stride"], 27.0 * np.exp(params[:, 3]), rtol=1e-5)
        # The same centre with strides 20 times apart: the same filters.
        self.assertAllClose(out["filter_x"][1], out["filter_x"][2], atol=1e-6)
        self.assertAllClose(out["filter_y"][1], out["filter_y"][2], atol=1e-6)

    def test_window_far_outside_is_finite(self):
        params = np.array(
            [[40.0, 0.0, 0.0, 0.0, 0.0], [-30.0, 25.0, -3.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]],
            np.float32,
        )
        layer = self.layer((20, 28), 5)
        params_t = tf.constant(params)
        with tf.GradientTape() as tape:
            tape.watch(params_t)
            out = layer.filterbanks(params_t)
            loss = tf.reduce_sum(out["filter_x"] * self.rng.uniform(size=(3, 5, 28)))
            loss += tf.reduce_sum(out["filter_y"] * self.rng.uniform(size=(3, 5, 20)))
        grad = tape.gradient(loss, params_t)
        for key in ("filter_x", "filter_y"):
            self.assertTrue(np.all(np.isfinite(out[key])), key)
        self.assertTrue(np.all(np.isfinite(grad)))
        # Far to the right, its filters read nothing (not the edge pixel).
        self.assertAllClose(out["filter_x"][0], np.zeros((5, 28)), atol=1e-30)
        self.assertAllClose(out["filter_x"][1], np.zeros((5, 28)), atol=1e-30)
        self.assertAllClose(out["filter_y"][1], np.zeros((5, 20)), atol=1e-30)
        # The window inside still reads as usual.
        self.assertAllClose(tf.reduce_sum(out["filter_x"][2], -1), np.ones(5), atol=1e-5)

    # Reading and writing -----------------------------------------------------

    def paper_filterbank_inside(self, params, image_size, n):
        """The paper's filters, checking that every filter reaches the image."""
        ref = paper_filterbank(params, image_size, n)
        self.assertGreater(min(ref["z_x"].min(), ref["z_y"].min()), 1e-3)
        return ref

    def reference_read(self, params, images, errors, image_size, n):
        ref = self.paper_filterbank_inside(params, image_size, n)
        fx, fy, gamma = ref["filter_x"], ref["filter_y"], ref["gamma"]
        glimpse = np.zeros((images.shape[0], 2, n, n, images.shape[-1]))
        for p in range(images.shape[0]):
            for k, image in enumerate((images, errors)):
                for c in range(images.shape[-1]):
                    glimpse[p, k, :, :, c] = gamma[p] * fy[p] @ image[p, :, :, c] @ fx[p].T
        return glimpse

    def reference_write(self, params, patch, image_size, n):
        ref = self.paper_filterbank_inside(params, image_size, n)
        fx, fy, gamma = ref["filter_x"], ref["filter_y"], ref["gamma"]
        canvas = np.zeros((patch.shape[0], *image_size, patch.shape[-1]))
        for p in range(patch.shape[0]):
            for c in range(patch.shape[-1]):
                canvas[p, :, :, c] = fy[p].T @ patch[p, :, :, c] @ fx[p] / gamma[p]
        return canvas

    @parameterized.named_parameters(("grayscale_n2", 1, 2), ("rgb_n5", 3, 5), ("rgb_n1", 3, 1))
    def test_read_matches_numpy(self, channels, n):
        image_size = (20, 28)
        batch = 4
        images = np.arange(batch * 20 * 28 * channels, dtype=np.float32).reshape(
            batch, 20, 28, channels) / 1000.0
        errors = self.rng.uniform(-1.0, 1.0, size=images.shape).astype(np.float32)
        h = self.rng.normal(size=(batch, 6)).astype(np.float32)
        layer = self.layer(
            image_size, n, channels,
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.1, seed=5),
            bias_initializer=keras.initializers.Constant([0, 0, 0.5, -0.5, 0]),
        )
        glimpse = layer.read(images, errors, h)
        params = layer(h)["params"].numpy()
        expected = self.reference_read(params, images, errors, image_size, n)
        self.assertEqual(glimpse.shape, (batch, 2, n, n, channels))
        self.assertAllClose(glimpse, expected, atol=2e-4, rtol=1e-4)
        flat = layer.read(images, errors, h, flatten=True)
        self.assertEqual(flat.shape, (batch, 2 * n * n * channels))
        self.assertAllClose(flat, np.reshape(expected, (batch, -1)), atol=2e-4, rtol=1e-4)

    def test_read_of_constant_image_is_gamma(self):
        # Rows sum to 1, so a constant image reads gamma * value everywhere.
        params = random_params(self.rng, 3, (20, 28), 4)
        layer = self.with_params(self.layer((20, 28), 4, 2), params[0])
        images = np.full((3, 20, 28, 2), 0.5, np.float32)
        glimpse = layer.read(images, -images, np.ones((3, 4), np.float32))
        gamma = math.exp(params[0, 4])
        self.assertAllClose(glimpse[:, 0], np.full((3, 4, 4, 2), 0.5 * gamma), atol=1e-5)
        self.assertAllClose(glimpse[:, 1], np.full((3, 4, 4, 2), -0.5 * gamma), atol=1e-5)

    @parameterized.named_parameters(("grayscale_n2", 1, 2), ("rgb_n5", 3, 5), ("rgb_n12", 3, 12))
    def test_write_matches_numpy(self, channels, n):
        image_size = (20, 28)
        batch = 3
        patch = self.rng.uniform(-1.0, 1.0, size=(batch, n, n, channels)).astype(np.float32)
        h = self.rng.normal(size=(batch, 6)).astype(np.float32)
        # delta~ ~ 0.5: the non-square image's outer Y filters stay near it.
        layer = self.layer(
            image_size, n, channels,
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.1, seed=6),
            bias_initializer=keras.initializers.Constant([0, 0, 0, -0.7, 0]),
        )
        canvas = layer.write(patch, h)
        params = layer(h)["params"].numpy()
        self.assertEqual(canvas.shape, (batch, 20, 28, channels))
        self.assertAllClose(canvas, self.reference_write(params, patch, image_size, n),
                            atol=1e-5, rtol=1e-4)

    @parameterized.named_parameters(("grayscale_n3", 1, 3), ("rgb_n6", 3, 6))
    def test_read_and_write_are_adjoint_up_to_gamma_squared(self, channels, n):
        # <gamma F_Y x F_X^T, w> = gamma <x, F_Y^T w F_X> = gamma^2 <x, write(w)>.
        batch = 4
        images = self.rng.uniform(size=(batch, 20, 28, channels)).astype(np.float32)
        patch = self.rng.uniform(-1.0, 1.0, size=(batch, n, n, channels)).astype(np.float32)
        h = self.rng.normal(size=(batch, 5)).astype(np.float32)
        layer = self.layer(
            (20, 28), n, channels,
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.4, seed=7),
        )
        glimpse = layer.read(images, images, h)[:, 0].numpy()
        canvas = layer.write(patch, h).numpy()
        gamma = layer(h)["gamma"].numpy()
        lhs = np.sum(glimpse * patch, axis=(1, 2, 3))
        rhs = gamma ** 2 * np.sum(images * canvas, axis=(1, 2, 3))
        self.assertAllClose(lhs, rhs, rtol=1e-4, atol=1e-5)
        self.assertGreater(np.abs(gamma - 1.0).max(), 0.05)  # gamma^2 is really tested

    def test_read_write_unknown_batch_and_xla_agree(self):
        layer = self.layer(
            (20, 28), 5, 3, kernel_initializer=keras.initializers.RandomNormal(stddev=0.3, seed=8)
        )
        images = self.rng.uniform(size=(4, 20, 28, 3)).astype(np.float32)
        errors = self.rng.uniform(-1, 1, size=(4, 20, 28, 3)).astype(np.float32)
        patch = self.rng.uniform(size=(4, 5, 5, 3)).astype(np.float32)
        h = self.rng.normal(size=(4, 6)).astype(np.float32)

        def both(images, errors, patch, h):
            return layer.read(images, errors, h, flatten=True), layer.write(patch, h)

        eager = both(images, errors, patch, h)
        signature = [
            tf.TensorSpec([None, 20, 28, 3]),
            tf.TensorSpec([None, 20, 28, 3]),
            tf.TensorSpec([None, 5, 5, 3]),
            tf.TensorSpec([None, 6]),
        ]
        traced = tf.function(both, input_signature=signature)
        compiled = tf.function(both, input_signature=signature, jit_compile=True)
        concrete = traced.get_concrete_function()
        self.assertEqual(concrete.structured_outputs[0].shape.as_list(), [None, 150])
        self.assertEqual(concrete.structured_outputs[1].shape.as_list(), [None, 20, 28, 3])
        for fn in (traced, compiled):
            for size in (4, 1):
                out = fn(images[:size], errors[:size], patch[:size], h[:size])
                self.assertAllClose(out[0], eager[0][:size], atol=1e-5, rtol=1e-5)
                self.assertAllClose(out[1], eager[1][:size], atol=1e-5, rtol=1e-5)

    def test_gradients_reach_h_images_and_patch(self):
        layer = self.layer((20, 28), 4, 1)
        images = tf.constant(self.rng.uniform(size=(2, 20, 28, 1)).astype(np.float32))
        errors = tf.constant(self.rng.uniform(size=(2, 20, 28, 1)).astype(np.float32))
        patch = tf.constant(self.rng.uniform(size=(2, 4, 4, 1)).astype(np.float32))
        h = tf.constant(self.rng.normal(size=(2, 6)).astype(np.float32))

        @tf.function(jit_compile=True)
        def grads(images, errors, patch, h):
            with tf.GradientTape() as tape:
                tape.watch([images, errors, patch, h])
                loss = testing.projection_loss(layer.read(images, errors, h))
                loss += testing.projection_loss(layer.write(patch, h), seed=1)
            return tape.gradient(loss, [images, errors, patch, h])

        for name, grad in zip(("images", "errors", "patch", "h"),
                              grads(images, errors, patch, h)):
            self.assertIsNotNone(grad, name)
            self.assertTrue(np.all(np.isfinite(grad)), name)
            self.assertGreater(float(tf.reduce_max(tf.abs(grad))), 0.0, name)

    def test_return_attention_gives_call_dict(self):
        layer = self.layer((20, 28), 3, 2, seed=9)
        images = self.rng.uniform(size=(2, 20, 28, 2)).astype(np.float32)
        patch = self.rng.uniform(size=(2, 3, 3, 2)).astype(np.float32)
        h = self.rng.normal(size=(2, 6)).astype(np.float32)
        expected = layer(h)
        glimpse, read_attention = layer.read(images, images, h, flatten=True,
                                             return_attention=True)
        canvas, write_attention = layer.write(patch, h, return_attention=True)
        self.assertAllClose(glimpse, layer.read(images, images, h, flatten=True))
        self.assertAllClose(canvas, layer.write(patch, h))
        testing.assert_nested_close(self, read_attention, expected)
        testing.assert_nested_close(self, write_attention, expected)

    @parameterized.named_parameters(("square_n5", (28, 28), 5), ("wide_n5", (20, 28), 5),
                                    ("wide_n1", (20, 28), 1))
    def test_boxes_of_centred_window(self, image_size, n):
        # Centre (A - 1)/2 + 0.5 = A/2 in edge coordinates; N cells of one
        # stride (max(A, B) - 1)/max(N - 1, 1) each.
        height, width = image_size
        layer = self.layer(image_size, n)
        half = n * (max(height, width) - 1) / max(n - 1, 1) / 2
        boxes = layer.boxes(layer.filterbanks(centred_params(2)))
        expected = [width / 2 - half, height / 2 - half, width / 2 + half, height / 2 + half]
        self.assertAllClose(boxes, [expected, expected], atol=1e-4)

    def test_boxes_hand_checked(self):
        # A = B = 28, N = 5, delta~ = 1/2: stride 27/8 = 3.375, half 8.4375;
        # g~X = 0.5: gX = 29/2 * 1.5 - 1 = 20.75, edge centre 21.25.
        params = centred_params()
        params[0, 0] = 0.5
        params[0, 3] = math.log(0.5)
        layer = self.layer((28, 28), 5)
        boxes = layer.boxes(layer.filterbanks(params))
        self.assertAllClose(boxes, [[12.8125, 5.5625, 29.6875, 22.4375]], atol=1e-4)

    # Bad arguments -----------------------------------------------------------

    @parameterized.named_parameters(
        ("image_size_zero", dict(image_size=(0, 5)), r"`image_size` must be \(height, width\)"),
        ("image_size_one_entry", dict(image_size=(5,)), r"`image_size` must be \(height, width\)"),
        ("image_size_int", dict(image_size=28), r"`image_size` must be \(height, width\)"),
        ("image_size_float", dict(image_size=(2.5, 3)), r"`image_size` must be \(height, width\)"),
        ("glimpse_zero", dict(glimpse_size=0), r"`glimpse_size` must be an integer >= 1"),
        ("glimpse_float", dict(glimpse_size=2.5), r"`glimpse_size` must be an integer >= 1"),
        ("glimpse_none", dict(glimpse_size=None), r"`glimpse_size` must be an integer >= 1"),
        ("channels_zero", dict(channels=0), r"`channels` must be an integer >= 1"),
        ("epsilon_zero", dict(epsilon=0.0), r"`epsilon` must be finite and > 0"),
        ("epsilon_negative", dict(epsilon=-1e-8), r"`epsilon` must be finite and > 0"),
        ("epsilon_inf", dict(epsilon=float("inf")), r"`epsilon` must be finite and > 0"),
    )
    def test_bad_constructor_arguments(self, kwargs, message):
        args = dict(image_size=(20, 28), glimpse_size=5)
        args.update(kwargs)
        with self.assertRaisesRegex(ValueError, message):
            ga.GaussianAttention(**args)

    def test_numpy_integers_are_accepted(self):
        layer = ga.GaussianAttention((np.int64(20), np.int32(28)), np.int64(3), np.int64(2))
        self.assertEqual(layer.get_config()["image_size"], (20, 28))
        self.assertIsInstance(layer.get_config()["glimpse_size"], int)

    def test_bad_call_shapes(self):
        layer = self.layer((20, 28), 5, 3)
        h = np.zeros((2, 4), np.float32)
        images = np.zeros((2, 20, 28, 3), np.float32)
        with self.assertRaisesRegex(ValueError, r"`images` must have shape \(batch, 20, 28, 3\)"):
            layer.read(np.zeros((2, 28, 20, 3), np.float32), images, h)
        with self.assertRaisesRegex(ValueError, r"`errors` must have shape \(batch, 20, 28, 3\)"):
            layer.read(images, np.zeros((2, 20, 28, 1), np.float32), h)
        with self.assertRaisesRegex(ValueError, r"`images` must have shape"):
            layer.read(np.zeros((20, 28, 3), np.float32), images, h)
        with self.assertRaisesRegex(ValueError, r"`patch` must have shape \(batch, 5, 5, 3\)"):
            layer.write(np.zeros((2, 4, 4, 3), np.float32), h)
        with self.assertRaisesRegex(ValueError, r"`params` must have shape \(batch, 5\)"):
            layer.filterbanks(np.zeros((2, 4), np.float32))
        with self.assertRaisesRegex(ValueError, r"`h` must have shape \(batch, features\)"):
            layer(np.zeros((2, 3, 4), np.float32))


if __name__ == "__main__":
    tf.test.main()
