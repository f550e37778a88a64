"""Tests for tfpaint.models.air: AIR's steps, masking, bound and gradients."""

import math
import os
import tempfile

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from tests import testing
from tfpaint import estimators
from tfpaint.layers import spatial_transformer as st
from tfpaint.models import air

SHAPE = (16, 16, 1)


def make(**kwargs):
    settings = dict(image_shape=SHAPE, max_steps=3, glimpse_size=6, rnn_units=16,
                    hidden_units=12, what_units=4, presence_prob=0.3, seed=1)
    settings.update(kwargs)
    model = air.AIR(**settings)
    model(tf.zeros((1, *SHAPE)))
    return model


def scenes(num=4, seed=0):
    return testing.random_scenes(SHAPE, num, seed)


force_presence = testing.force_presence


class AirTest(tf.test.TestCase, parameterized.TestCase):

    def test_objects_sum_to_the_canvas(self):
        model = make()
        model.pres_head.bias.assign([0.0])
        out = model(scenes(8), training=True)
        objects = out["objects"].numpy()  # (B, N, H, W, C)
        self.assertAllClose(objects.sum(axis=1), out["canvas"], atol=1e-5)
        self.assertAllClose(np.cumsum(objects, axis=1), out["canvases"], atol=1e-5)
        absent = out["z_pres"].numpy() < 0.5
        self.assertTrue(absent.any())
        self.assertAllEqual(objects[absent], np.zeros_like(objects[absent]))

    def test_outputs_and_shapes(self):
        model = make()
        out = model(scenes(), training=True)
        expected = {"canvas": (4, *SHAPE), "canvases": (4, 3, *SHAPE),
                    "objects": (4, 3, *SHAPE),
                    "glimpses": (4, 3, 6, 6, 1), "reconstructions": (4, 3, 6, 6, 1),
                    "z_pres": (4, 3), "presence_probs": (4, 3), "mask": (4, 3),
                    "z_where": (4, 3, 3), "where_loc": (4, 3, 3), "where_scale": (4, 3, 3),
                    "theta": (4, 3, 6), "boxes": (4, 3, 4),
                    "z_what": (4, 3, 4), "count": (4,), "log_likelihood": (4,),
                    "kl_what": (4,), "kl_where": (4,), "kl_pres": (4,), "log_q_pres": (4,),
                    "elbo": (4,), "baseline": (4,)}
        self.assertEqual({k: tuple(v.shape) for k, v in out.items()}, expected)
        self.assertAllClose(out["canvas"], out["canvases"][:, -1])
        self.assertAllClose(out["count"], out["z_pres"].numpy().sum(axis=1))

    def test_z_pres_stays_absent_after_the_first_absent_step(self):
        model = make(presence_prob=0.5)
        model.pres_head.bias.assign([0.0])  # rho about 1/2: every pattern occurs
        z = model(scenes(64), training=True)["z_pres"].numpy()
        self.assertTrue(np.all(np.diff(z, axis=1) <= 0.0))  # ones, then zeros
        self.assertGreater(len(np.unique(z.sum(axis=1))), 1)

    def test_absent_steps_contribute_nothing(self):
        model = make()
        force_presence(model, False)
        x = scenes()
        out = model(x, training=True)
        self.assertAllEqual(out["z_pres"], np.zeros((4, 3)))
        self.assertAllEqual(out["canvas"], np.zeros((4, *SHAPE)))
        for key in ("kl_what", "kl_where", "count"):
            self.assertAllEqual(out[key], np.zeros(4), msg=key)
        # Only the first step is decided: log q = log(1 - rho_0), log p = log(1 - q).
        rho = out["presence_probs"].numpy()[:, 0]
        self.assertAllClose(out["kl_pres"], np.log1p(-rho) - math.log(1 - 0.3), atol=1e-5)
        self.assertAllClose(out["mask"], [[1.0, 0.0, 0.0]] * 4)

    def test_present_steps_are_scored_and_written(self):
        model = make()
        force_presence(model, True)
        out = model(scenes(), training=True)
        self.assertAllEqual(out["count"], np.full(4, 3.0))
        # Each step adds its reconstruction, placed by the inverse map.
        steps = out["canvases"].numpy()
        placed = model.writer(out["reconstructions"][:, 1], out["theta"][:, 1]).numpy()
        self.assertAllClose(steps[:, 1] - steps[:, 0], placed, atol=1e-5)
        self.assertTrue(np.all(out["kl_what"].numpy() > 0.0))
        # All three present: log p = 3 log q.
        log_p = out["log_q_pres"] - out["kl_pres"]
        self.assertAllClose(log_p, np.full(4, 3 * math.log(0.3)), atol=1e-5)

    def test_elbo_is_the_gaussian_likelihood_minus_the_kls(self):
        model = make(likelihood_scale=0.5)
        x = scenes()
        out = model(x, noise_seed=tf.constant([3, 4]))
        sigma = 0.5
        residual = (x - out["canvas"].numpy()).reshape(4, -1)
        log_lik = np.sum(-0.5 * (residual / sigma) ** 2 - math.log(sigma)
                         - 0.5 * math.log(2 * math.pi), axis=1)
        self.assertAllClose(out["log_likelihood"], log_lik, rtol=1e-5)
        self.assertAllClose(out["elbo"], log_lik - out["kl_what"] - out["kl_where"]
                            - out["kl_pres"], rtol=1e-5)
        # The count prior is the geometric of the estimators module.
        log_p = estimators.geometric_count_log_prob(out["z_pres"], 0.3)
        self.assertAllClose(out["log_q_pres"] - out["kl_pres"], log_p, atol=1e-5)

    def test_kl_where_is_the_closed_form_over_present_steps(self):
        model = make(where_prior=(-1.0, 0.5, 2.0))
        model.pres_head.bias.assign([0.0])  # some steps present, some not
        out = model(scenes(16), training=True)
        loc, scale = out["where_loc"].numpy(), out["where_scale"].numpy()  # (B, N, 3)
        prior_loc, prior_scale = np.array([-1.0, 0.0, 0.0]), np.array([0.5, 2.0, 2.0])
        kl = np.sum(np.log(prior_scale / scale)
                    + (scale ** 2 + (loc - prior_loc) ** 2) / (2 * prior_scale ** 2) - 0.5,
                    axis=-1)  # (B, N)
        self.assertAllClose(out["kl_where"], np.sum(out["z_pres"].numpy() * kl, axis=1),
                            rtol=1e-5, atol=1e-5)
        # theta reads a window of side exp(log s) at (x, y).
        z = out["z_where"].numpy()
        theta = out["theta"].numpy()
        self.assertAllClose(theta[..., 0], np.exp(z[..., 0]), rtol=1e-5)
        self.assertAllClose(theta[..., [2, 5]], z[..., 1:])

    def test_noise_seed_is_repeatable(self):
        model = make()
        x = scenes()
        a = model(x, noise_seed=tf.constant([1, 2]))
        b = model(x, noise_seed=tf.constant([1, 2]))
        c = model(x, noise_seed=tf.constant([1, 3]))
        self.assertAllClose(a["elbo"], b["elbo"])
        self.assertNotAllClose(a["z_where"], c["z_where"])

    def test_inference_is_deterministic(self):
        model = make()
        x = scenes()
        self.assertAllClose(model(x)["canvas"], model(x)["canvas"])

    def test_gradients_reach_every_weight(self):
        model = make()
        model.pres_head.bias.assign([0.0])
        x = scenes(8)
        with tf.GradientTape() as tape:
            loss, _ = model.loss_terms(model(x, training=True))
            loss = tf.reduce_mean(loss)
        grads = tape.gradient(loss, model.trainable_weights)
        testing.assert_gradients_reach_weights(self, model.trainable_weights, grads)
        self.assertNotIn("presence_prob", [w.name for w in model.trainable_weights])

    @parameterized.named_parameters(("plain", False), ("normalized", True))
    def test_loss_is_the_negative_elbo_plus_the_nvil_terms(self, normalize):
        model = make()
        model.pres_head.bias.assign([0.0])
        out = model(scenes(16), training=True)
        loss, parts = model.loss_terms(out, normalize_signal=normalize)
        elbo, baseline = out["elbo"].numpy(), out["baseline"].numpy()
        signal = elbo - baseline
        if normalize:
            signal = signal / max(1.0, signal.std())
            self.assertGreater(signal.std(), 0.0)
        self.assertAllClose(parts["score_function"], -signal * out["log_q_pres"], rtol=1e-4)
        self.assertAllClose(parts["baseline_loss"], (elbo - baseline) ** 2, rtol=1e-4)
        self.assertAllClose(loss, -elbo + parts["score_function"] + parts["baseline_loss"],
                            rtol=1e-4)

    def test_unknown_batch_in_tf_function(self):
        model = make()
        fn = tf.function(lambda x: model(x, training=True)["elbo"],
                         input_signature=[tf.TensorSpec([None, *SHAPE])])
        self.assertEqual(fn(scenes(5)).shape, (5,))
        self.assertEqual(fn(scenes(2)).shape, (2,))

    @parameterized.named_parameters(("bernoulli", "bernoulli"), ("concrete", "concrete"))
    def test_save_and_load(self, z_pres):
        model = make(z_pres=z_pres, presence_temperature=0.7)
        x = scenes()
        path = os.path.join(tempfile.mkdtemp(), "air.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
        self.assertEqual(loaded.get_config(), model.get_config())
        self.assertAllClose(loaded(x)["canvas"], model(x)["canvas"], atol=1e-6)

    @parameterized.named_parameters(
        ("steps", dict(max_steps=0), "`max_steps` must be >= 1"),
        ("prior", dict(presence_prob=1.0), r"`presence_prob` must be in \(0, 1\)"),
        ("where", dict(where_prior=(0.0, 0.0, 1.0)), "`where_prior` must be"),
        ("scale", dict(likelihood_scale=0.0), "`likelihood_scale` must be > 0"),
        ("shape", dict(image_shape=(16, 16)), "`image_shape` must be"),
        ("z_pres", dict(z_pres="gumbel"), "`z_pres` must be one of"),
        ("temperature", dict(z_pres="concrete", presence_temperature=0.0),
         "`presence_temperature` must be > 0"),
    )
    def test_bad_arguments(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            air.AIR(**kwargs)

    def test_wrong_images(self):
        model = make()
        with self.assertRaisesRegex(ValueError, r"Expected images of shape \(batch, 16, 16, 1\)"):
            model(tf.zeros((2, 8, 8, 1)))
        with self.assertRaisesRegex(ValueError, "Expected float images"):
            model(tf.zeros((2, *SHAPE), tf.uint8))


def logistic_log_pdf(x, loc, scale):
    z = (x - loc) / scale
    return -z - np.log(scale) - 2.0 * np.log1p(np.exp(-z))


class ConcreteAirTest(tf.test.TestCase, parameterized.TestCase):
    """AIR with the relaxed z_pres of the shared ConcreteLatent."""

    def test_relaxed_in_training_hard_at_inference(self):
        model = make(z_pres="concrete")
        model.pres_head.bias.assign([0.0])
        x = scenes(32)
        train = model(x, training=True)
        self.assertNotIn("baseline", train)
        z = train["z_pres"].numpy()
        self.assertTrue(np.any((z > 0.01) & (z < 0.99)))
        # A step writes with its relaxed weight times every earlier one's.
        steps = train["canvases"].numpy()
        placed = model.writer(train["reconstructions"][:, 1], train["theta"][:, 1]).numpy()
        self.assertAllClose(steps[:, 1] - steps[:, 0], z[:, 1, None, None, None] * placed,
                            atol=1e-5)
        infer = model(x)["z_pres"].numpy()
        self.assertTrue(np.all((infer == 0.0) | (infer == 1.0)))
        self.assertTrue(np.all(np.diff(infer, axis=1) <= 0.0))

    def test_mask_is_the_product_of_earlier_relaxed_samples(self):
        model = make(z_pres="concrete")
        model.pres_head.bias.assign([0.0])
        out = model(scenes(16), training=True)
        z, mask = out["z_pres"].numpy(), out["mask"].numpy()
        # z_pres_i = y_i * mask_i and mask_{i+1} = mask_i * y_i = z_pres_i.
        self.assertAllClose(mask[:, 0], np.ones(16))
        self.assertAllClose(mask[:, 1:], z[:, :-1], atol=1e-6)

    def test_kl_pres_is_the_concrete_log_ratio(self):
        tau, q = 2.0, 0.3
        model = make(z_pres="concrete", presence_temperature=tau, max_steps=1)
        out = model(scenes(8), noise_seed=tf.constant([2, 3]))
        y = out["z_pres"].numpy()[:, 0].astype(np.float64)
        rho = out["presence_probs"].numpy()[:, 0].astype(np.float64)
        x = np.log(y) - np.log1p(-y)  # the logit sample
        kl = (logistic_log_pdf(x, np.log(rho / (1 - rho)) / tau, 1 / tau)
              - logistic_log_pdf(x, math.log(q / (1 - q)) / tau, 1 / tau))
        self.assertAllClose(out["kl_pres"], kl, rtol=1e-3, atol=1e-3)
        self.assertGreater(np.abs(kl).max(), 0.05)
        self.assertAllClose(out["elbo"], out["log_likelihood"] - out["kl_what"]
                            - out["kl_where"] - out["kl_pres"], rtol=1e-5)

    def test_loss_is_the_negative_elbo_and_reaches_the_presence_head(self):
        model = make(z_pres="concrete")
        model.pres_head.bias.assign([0.0])
        x = scenes(8)
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            loss, parts = model.loss_terms(out)
            mean = tf.reduce_mean(loss)
        self.assertAllClose(loss, -out["elbo"])
        self.assertEqual(list(parts), ["neg_elbo"])
        grads = tape.gradient(mean, model.trainable_weights)
        testing.assert_gradients_reach_weights(self, model.trainable_weights, grads)


def t_air(**kwargs):
    settings = dict(image_shape=SHAPE, max_steps=2, glimpse_size=6, rnn_units=16,
                    hidden_units=12, what_units=3, z_pres="none", decoder="template",
                    templates=("square", "circle"), template_size=8, seed=2)
    settings.update(kwargs)
    model = air.AIR(**settings)
    model(tf.zeros((1, *SHAPE)))
    return model


class TemplateAirTest(tf.test.TestCase, parameterized.TestCase):
    """T-AIR: z_where places a template, z_what gives its colour, "over" paints it."""

    def test_every_step_is_present_without_z_pres(self):
        model = t_air()
        out = model(scenes(), training=True)
        self.assertAllEqual(out["z_pres"], np.ones((4, 2)))
        self.assertAllEqual(out["count"], np.full(4, 2.0))
        self.assertAllEqual(out["kl_pres"], np.zeros(4))
        self.assertIsNone(model.pres_head)
        self.assertEqual(out["z_where"].shape, (4, 2, 4))

    def test_canvas_is_the_over_rule_of_the_moves(self):
        model = t_air()
        out = model(scenes(), noise_seed=tf.constant([1, 1]))
        masks, colors = out["masks"].numpy(), out["colors"].numpy()  # (B,N,H,W,1), (B,N,1)
        canvas = np.zeros((4, *SHAPE), np.float32)
        for i in range(2):
            m = masks[:, i]
            canvas = canvas * (1.0 - m) + m * colors[:, i, None, None, :]
            self.assertAllClose(out["canvases"][:, i], canvas, atol=1e-5)
            self.assertAllClose(out["objects"][:, i], m * colors[:, i, None, None, :],
                                atol=1e-6)
        self.assertGreater(masks.max(), 0.5)

    def test_template_fills_the_window_it_read(self):
        model = t_air(templates=("square",))
        out = model(scenes())
        square = model.template_writer.bank.bank().numpy()[0]  # (S, S)
        size = model.template_size
        for i in range(2):
            # The placed mask is the square warped by theta^-1 (canvas ->
            # template): NumPy's bilinear sampling of the template at each
            # pixel centre mapped into the window.
            theta = out["theta"].numpy()[:, i]  # (B, 6) glimpse -> image
            mask = out["masks"].numpy()[:, i, ..., 0]  # (B, H, W)
            height, width = SHAPE[:2]
            for b in range(4):
                a, _, c, _, e, f = theta[b]
                u = (2 * (np.arange(width) + 0.5) / width - 1 - c) / a  # template x in [-1, 1]
                v = (2 * (np.arange(height) + 0.5) / height - 1 - f) / e
                ju = (u + 1) * size / 2 - 0.5  # template pixel coordinates
                jv = (v + 1) * size / 2 - 0.5
                want = np.zeros((height, width))
                for yi in range(height):
                    for xi in range(width):
                        x0, y0 = int(np.floor(ju[xi])), int(np.floor(jv[yi]))
                        for dy in (0, 1):
                            for dx in (0, 1):
                                xx, yy = x0 + dx, y0 + dy
                                if 0 <= xx < size and 0 <= yy < size:
                                    weight = ((1 - abs(ju[xi] - xx)) * (1 - abs(jv[yi] - yy)))
                                    want[yi, xi] += weight * square[yy, xx]
                self.assertAllClose(mask[b], want, atol=1e-4, msg=f"step {i}, image {b}")
        self.assertGreater(out["masks"].numpy().max(), 0.5)

    @parameterized.named_parameters(("glimpse", "glimpse"), ("template", "template"))
    def test_window_range_bounds_the_sides(self, decoder):
        low, high = 0.2, 0.4
        model = (t_air(window_range=(low, high)) if decoder == "template"
                 else make(window_range=(low, high)))
        model.where_head.bias.assign(model.where_head.bias * 0.0 + 3.0)  # push the scales
        out = model(scenes(8), training=True)
        z, theta = out["z_where"].numpy(), out["theta"].numpy()
        scales = z[..., :model.scales]
        sides = low + (high - low) / (1.0 + np.exp(-scales))
        self.assertAllClose(theta[..., 0], sides[..., 0], rtol=1e-5)
        self.assertAllClose(theta[..., 4], sides[..., -1], rtol=1e-5)
        self.assertTrue(np.all((theta[..., [0, 4]] > low) & (theta[..., [0, 4]] < high)))
        # Its scale logits have the N(0, 1) prior: the KL of present steps.
        loc, scale = out["where_loc"].numpy(), out["where_scale"].numpy()
        prior_loc = np.array([0.0] * model.scales + [0.0, 0.0])
        prior_scale = np.array([1.0] * model.scales + [model.where_prior[2]] * 2)
        kl = np.sum(np.log(prior_scale / scale)
                    + (scale ** 2 + (loc - prior_loc) ** 2) / (2 * prior_scale ** 2) - 0.5,
                    axis=-1)
        self.assertAllClose(out["kl_where"], np.sum(out["z_pres"].numpy() * kl, axis=1),
                            rtol=1e-4, atol=1e-4)

    def test_gradients_reach_every_trainable_weight(self):
        model = t_air()
        x = scenes(8)
        with tf.GradientTape() as tape:
            loss, parts = model.loss_terms(model(x, training=True))
            loss = tf.reduce_mean(loss)
        self.assertEqual(list(parts), ["neg_elbo"])
        grads = tape.gradient(loss, model.trainable_weights)
        testing.assert_gradients_reach_weights(self, model.trainable_weights, grads)
        names = [w.path for w in model.trainable_weights]
        self.assertFalse(any("where/" in n and "template_writer" in n for n in names), names)

    def test_save_and_load(self):
        model = t_air(window_range=(0.1, 0.6))
        x = scenes()
        path = os.path.join(tempfile.mkdtemp(), "t_air.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
        self.assertEqual(loaded.get_config(), model.get_config())
        self.assertAllClose(loaded(x)["canvas"], model(x)["canvas"], atol=1e-6)

    @parameterized.named_parameters(
        ("decoder", dict(decoder="mlp"), "`decoder` must be one of"),
        ("window", dict(window_range=(0.5, 0.5)), "`window_range` must be"),
        ("window_negative", dict(window_range=(-0.1, 0.5)), "`window_range` must be"),
    )
    def test_bad_arguments(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            air.AIR(**kwargs)


if __name__ == "__main__":
    tf.test.main()
