"""Tests for tfpaint.layers.template_bank: template masks and their choice (eqs 3.1-3.2)."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tests import testing
from tfpaint.layers import template_bank as tb

_NAMES = tuple((name, name) for name in tb.TEMPLATE_NAMES)


def softmax(x, axis=-1):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def sharpen(w, gamma):
    """Weight sharpening, thesis eq 3.1: w'^gamma / sum_j w'_j^gamma."""
    p = np.power(w, gamma)
    return p / p.sum(axis=-1, keepdims=True)


class MakeTemplateTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(*_NAMES)
    def test_mask_is_binary(self, name):
        for size in (4, 9, 28):
            mask = tb.make_template(name, size)
            self.assertEqual(mask.shape, (size, size))
            self.assertEqual(mask.dtype, np.float32)
            self.assertTrue(np.all((mask == 0.0) | (mask == 1.0)), name)

    @parameterized.named_parameters(*[n for n in _NAMES if n[0] != "transparency"])
    def test_mask_is_not_empty(self, name):
        self.assertGreater(tb.make_template(name, 28).sum(), 0.0)

    @parameterized.named_parameters(("even", 28), ("odd", 15))
    def test_circle_is_symmetric(self, size):
        circle = tb.make_template("circle", size)
        self.assertAllEqual(circle, circle.T)
        self.assertAllEqual(circle, circle[::-1])
        self.assertAllEqual(circle, circle[:, ::-1])
        # Inscribed: the centre is in, the corners are out, the edge midpoints in.
        self.assertEqual(circle[size // 2, size // 2], 1.0)
        self.assertEqual(circle[0, 0], 0.0)
        self.assertEqual(circle[size // 2, 0], 1.0)
        # Its area is close to pi / 4 of the square.
        self.assertAllClose(circle.mean(), np.pi / 4, atol=0.03)

    def test_square_is_all_ones(self):
        self.assertAllEqual(tb.make_template("square", 10), np.ones((10, 10)))

    def test_transparency_is_all_zeros(self):
        self.assertAllEqual(tb.make_template("transparency", 10), np.zeros((10, 10)))

    def test_line_is_a_horizontal_bar(self):
        line = tb.make_template("line", 28)
        rows = line.mean(axis=1)
        # Whole rows are on or off, symmetric about the middle row.
        self.assertTrue(np.all((rows == 0.0) | (rows == 1.0)))
        self.assertAllEqual(line, line[::-1])
        self.assertEqual(rows[14], 1.0)
        self.assertEqual(rows[0], 0.0)

    def test_curve_is_an_upper_arc(self):
        curve = tb.make_template("curve", 28)
        self.assertAllEqual(curve, curve[:, ::-1])
        # Nothing at the centre or in the bottom rows.
        self.assertEqual(curve[14, 14], 0.0)
        self.assertEqual(curve[-5:].sum(), 0.0)

    def test_unknown_name_raises(self):
        with self.assertRaisesRegex(ValueError, r"Unknown template 'star'; choose from circle"):
            tb.make_template("star", 8)

    def test_small_size_raises(self):
        with self.assertRaisesRegex(ValueError, "Template size must be at least 4 pixels"):
            tb.make_template("circle", 3)


class TemplateBankTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        testing.set_seeds()
        self.rng = np.random.default_rng(0)

    @parameterized.named_parameters(("fixed", False, 0), ("learnable", True, 1))
    def test_layer_harness(self, learnable, num_trainable):
        logits = self.rng.normal(size=(4, 3)).astype(np.float32)
        testing.run_layer_test(
            self,
            tb.TemplateBank,
            dict(
                templates=("circle", "square", "line"),
                size=8,
                learnable=learnable,
                sharpening=2.0,
                exploration_noise=0.1,
                seed=3,
            ),
            (logits,),
            call_kwargs={"training": False},
            expected_output_shape=((4, 3), (4, 8, 8)),
            expected_num_trainable_weights=num_trainable,
        )

    def test_layer_harness_with_mask_array(self):
        masks = (self.rng.uniform(size=(2, 6, 6)) > 0.5).astype(np.float32)
        logits = self.rng.normal(size=(3, 5, 2)).astype(np.float32)
        weights, mixed = testing.run_layer_test(
            self,
            tb.TemplateBank,
            dict(templates=masks, learnable=True),
            (logits,),
            expected_output_shape=((3, 5, 2), (3, 5, 6, 6)),
        )
        self.assertAllClose(mixed, np.tensordot(weights, masks, axes=1), atol=1e-6)

    def test_string_template_is_one_template(self):
        bank = tb.TemplateBank("circle", size=6)
        self.assertEqual(bank.templates, ("circle",))
        self.assertEqual(bank.num_templates, 1)
        bank.build()
        self.assertAllEqual(bank.bank(), tb.make_template("circle", 6)[None])

    def test_weights_are_convex_and_mix_the_bank(self):
        bank = tb.TemplateBank(tb.TEMPLATE_NAMES, size=8)
        logits = self.rng.normal(size=(4, 3, 5)).astype(np.float32) * 3.0
        weights, mixed = bank(logits)
        self.assertEqual(weights.shape, (4, 3, 5))
        self.assertEqual(mixed.shape, (4, 3, 8, 8))
        self.assertAllClose(np.sum(weights, axis=-1), np.ones((4, 3)), atol=1e-6)
        self.assertTrue(np.all(weights.numpy() > 0.0))
        masks = np.stack([tb.make_template(n, 8) for n in tb.TEMPLATE_NAMES])
        self.assertAllClose(mixed, np.einsum("btk,kyx->btyx", weights, masks), atol=1e-6)

    def test_one_hot_logits_pick_one_template(self):
        bank = tb.TemplateBank(("circle", "square"), size=8, sharpening=30.0)
        _, mixed = bank(np.array([[5.0, 0.0], [0.0, 5.0]], np.float32))
        self.assertAllClose(mixed[0], tb.make_template("circle", 8), atol=1e-6)
        self.assertAllClose(mixed[1], tb.make_template("square", 8), atol=1e-6)

    @parameterized.named_parameters(
        ("soften", 0.5), ("none", 1.0), ("three", 3.0), ("ten", 10.0), ("thirty", 30.0)
    )
    def test_sharpening_is_eq_3_1(self, gamma):
        logits = self.rng.normal(size=(6, 4)).astype(np.float32)
        bank = tb.TemplateBank(("circle", "square", "line", "curve"), size=6, sharpening=gamma)
        weights, _ = bank(logits)
        expected = sharpen(softmax(logits), gamma)  # eq 3.1 on w' = softmax(logits)
        self.assertAllClose(weights, expected, atol=1e-6, rtol=1e-5)

    def test_large_sharpening_tends_to_one_hot(self):
        # Distinct logits, at least 0.2 apart.
        logits = np.array(
            [[0.1, 0.5, 0.3, 0.9, 0.7], [-1.0, -0.6, 0.0, -0.2, -0.4]], np.float32
        )
        bank = tb.TemplateBank(tb.TEMPLATE_NAMES, size=6, sharpening=50.0)
        weights = bank(logits)[0].numpy()
        self.assertGreater(weights.max(axis=-1).min(), 0.999)
        self.assertAllEqual(weights.argmax(axis=-1), logits.argmax(axis=-1))
        # Sharpening keeps the order of the weights.
        soft = tb.TemplateBank(tb.TEMPLATE_NAMES, size=6)(logits)[0].numpy()
        self.assertAllEqual(np.argsort(weights, axis=-1), np.argsort(soft, axis=-1))
        self.assertLess(soft.max(), 0.5)

    def test_exploration_noise_only_in_training(self):
        logits = self.rng.normal(size=(8, 3)).astype(np.float32)
        bank = tb.TemplateBank(("circle", "square", "line"), size=6, exploration_noise=0.5, seed=1)
        clean = softmax(logits)
        self.assertAllClose(bank(logits)[0], clean, atol=1e-6)
        self.assertAllClose(bank(logits, training=False)[0], clean, atol=1e-6)
        noisy = bank(logits, training=True)[0].numpy()
        self.assertGreater(np.abs(noisy - clean).max(), 1e-2)
        self.assertAllClose(noisy.sum(axis=-1), np.ones(8), atol=1e-6)
        # Two draws differ: the seed generator moves on.
        self.assertGreater(np.abs(bank(logits, training=True)[0].numpy() - noisy).max(), 1e-3)

    def test_exploration_noise_is_seeded(self):
        logits = self.rng.normal(size=(8, 3)).astype(np.float32)

        def draws(seed):
            bank = tb.TemplateBank(
                ("circle", "square", "line"), size=6, exploration_noise=0.5, seed=seed
            )
            return [bank(logits, training=True)[0].numpy() for _ in range(2)]

        first, again, other = draws(7), draws(7), draws(8)
        self.assertAllEqual(first[0], again[0])
        self.assertAllEqual(first[1], again[1])
        self.assertGreater(np.abs(first[0] - other[0]).max(), 1e-3)

    def test_no_noise_without_exploration(self):
        logits = self.rng.normal(size=(8, 3)).astype(np.float32)
        bank = tb.TemplateBank(("circle", "square", "line"), size=6, sharpening=2.0)
        self.assertAllClose(bank(logits, training=True)[0], softmax(2.0 * logits), atol=1e-6)

    def test_noise_is_on_the_logits_with_std_eta(self):
        # w = softmax(gamma (l + eps)) so log w_k - log w_0 = gamma (l_k - l_0 + eps_k - eps_0),
        # and eps_k - eps_0 has standard deviation sqrt(2) eta.
        eta, gamma = 0.3, 2.0
        logits = np.tile(np.array([[0.2, -0.1]], np.float32), (20000, 1))
        bank = tb.TemplateBank(
            ("circle", "square"), size=6, sharpening=gamma, exploration_noise=eta, seed=5
        )
        w = bank(logits, training=True)[0].numpy().astype(np.float64)
        diff = (np.log(w[:, 1]) - np.log(w[:, 0])) / gamma - (logits[0, 1] - logits[0, 0])
        self.assertAllClose(diff.mean(), 0.0, atol=0.02)
        self.assertAllClose(diff.std(), np.sqrt(2.0) * eta, rtol=0.05)

    def test_learnable_masks_get_gradients(self):
        bank = tb.TemplateBank(("circle", "square"), size=6, learnable=True)
        logits = self.rng.normal(size=(4, 2)).astype(np.float32)
        with tf.GradientTape() as tape:
            _, mixed = bank(logits)
            loss = tf.reduce_sum(mixed * self.rng.uniform(size=(4, 6, 6)).astype(np.float32))
        self.assertLen(bank.trainable_weights, 1)
        grad = tape.gradient(loss, bank.trainable_weights)[0]
        self.assertIsNotNone(grad)
        self.assertEqual(grad.shape, (2, 6, 6))
        self.assertGreater(float(tf.reduce_min(tf.abs(grad))), 0.0)

    def test_fixed_masks_are_not_trainable(self):
        bank = tb.TemplateBank(("circle", "square"), size=6, learnable=False)
        bank(np.zeros((1, 2), np.float32))
        self.assertEqual(bank.trainable_weights, [])
        self.assertIn("masks", [w.name for w in bank.non_trainable_weights])

    def test_learnable_masks_are_clipped(self):
        bank = tb.TemplateBank(("square",), size=4, learnable=True)
        bank.build()
        bank.masks.assign(np.full((1, 4, 4), 1.5, np.float32))
        self.assertAllEqual(bank.bank(), np.ones((1, 4, 4)))
        bank.masks.assign(np.full((1, 4, 4), -0.5, np.float32))
        self.assertAllEqual(bank.bank(), np.zeros((1, 4, 4)))

    def test_logits_gradient_exists(self):
        bank = tb.TemplateBank(("circle", "square", "line"), size=6, sharpening=3.0)
        logits = tf.constant(self.rng.normal(size=(4, 3)).astype(np.float32))
        with tf.GradientTape() as tape:
            tape.watch(logits)
            _, mixed = bank(logits)
            loss = tf.reduce_sum(mixed * self.rng.uniform(size=(4, 6, 6)).astype(np.float32))
        grad = tape.gradient(loss, logits).numpy()
        self.assertTrue(np.all(np.isfinite(grad)))
        self.assertGreater(np.abs(grad).max(), 0.0)

    @parameterized.named_parameters(
        ("unknown_name", dict(templates=("circle", "star")), "Unknown template 'star'"),
        ("empty", dict(templates=()), "`templates` must name at least one template"),
        ("small", dict(templates=("circle",), size=2), "Template size must be at least 4"),
        (
            "bad_array",
            dict(templates=np.zeros((2, 4, 5), np.float32)),
            r"Template masks must have shape \(K, S, S\)",
        ),
        ("sharpening", dict(sharpening=0.0), "`sharpening` must be positive"),
        ("noise", dict(exploration_noise=-0.1), "`exploration_noise` must be >= 0"),
    )
    def test_bad_arguments_raise(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            tb.TemplateBank(**kwargs)

    def test_wrong_number_of_logits_raises(self):
        bank = tb.TemplateBank(("circle", "square"), size=6)
        with self.assertRaisesRegex(
            ValueError, r"Expected 2 template logits in the last axis.*\(4, 3\)"
        ):
            bank(np.zeros((4, 3), np.float32))

    def test_unknown_batch_in_tf_function(self):
        bank = tb.TemplateBank(("circle", "square", "line"), size=6, sharpening=2.0)

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
        def choose(logits):
            return bank(logits)

        logits = self.rng.normal(size=(5, 3)).astype(np.float32)
        weights, mixed = choose(logits)
        self.assertAllClose(weights, softmax(2.0 * logits), atol=1e-6)
        self.assertEqual(mixed.shape, (5, 6, 6))


if __name__ == "__main__":
    tf.test.main()
