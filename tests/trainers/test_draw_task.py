"""Tests for trainers/tasks/draw.py: DRAW and T-DRAW on the one training loop.

Tests that train are named `test_slow_*`; each runs a few steps of the `tiny`
config (T = 3, LSTM 16, z 4, batch 16) in seconds, without XLA.
"""

import os
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tests.trainers import training
from trainers import tasks
from trainers import train_lib
from trainers.configs import draw as configs


def tiny_config(**overrides):
    config = configs.get_config("tiny")
    for key, value in overrides.items():
        config[key] = value
    return config


def log_normal(x, mean, scale):
    return -0.5 * ((x - mean) / scale) ** 2 - np.log(scale * np.sqrt(2.0 * np.pi))


class DrawTaskTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        self.task = tasks.get_task(tiny_config(iwae_samples=1))
        train_lib.resolve_config(self.task)
        self.train_set, self.test_set = self.task.load_data()
        self.model = self.task.build_model(self.test_set.image_shape)
        self.images = self.test_set.images[:8]

    def test_held_out_digits_are_binary(self):
        self.assertAllEqual(np.unique(self.test_set.images), [0.0, 1.0])
        self.assertTrue(self.train_set.binarize)

    def test_one_sample_bound_is_the_sampled_elbo(self):
        scores = self.task.eval_function(self.model, jit=False)(self.images)
        # The evaluation's first sample, recomputed; its bound in NumPy.
        out = self.model(self.images, training=False, noise_seed=tf.constant([7, 0]))
        logits = out["logits"].numpy().astype(np.float64)
        x = self.images.astype(np.float64)
        log_px = np.sum(x * logits - np.logaddexp(0.0, logits), axis=(1, 2, 3))
        z, mu, sigma = (out[k].numpy().astype(np.float64) for k in ("z", "mu", "sigma"))
        log_ratio = np.sum(log_normal(z, 0.0, 1.0) - log_normal(z, mu, sigma), axis=(1, 2))
        self.assertAllClose(scores["iwae"], -(log_px + log_ratio), rtol=1e-5)
        # The reported ELBO uses the analytic KL of the same sample.
        self.assertAllClose(scores["neg_elbo"], out["kl"].numpy() - log_px, rtol=1e-5)

    def test_one_sample_bound_averages_to_the_elbo(self):
        # Over many samples the Monte-Carlo KL averages to the analytic one.
        single, analytic = [], []
        for k in range(300):
            out = self.model(self.images[:2], training=False, noise_seed=tf.constant([11, k]))
            z, mu, sigma = (out[name].numpy().astype(np.float64) for name in ("z", "mu", "sigma"))
            single.append(-np.sum(log_normal(z, 0.0, 1.0) - log_normal(z, mu, sigma), (1, 2)))
            analytic.append(out["kl"].numpy())
        single, analytic = np.array(single), np.array(analytic)  # (300, 2)
        error = 3 * (single - analytic).std(0) / np.sqrt(len(single))
        gap = np.abs(single.mean(0) - analytic.mean(0))
        self.assertTrue(np.all(gap <= error), f"gap {gap} exceeds 3 standard errors {error}")

    @parameterized.named_parameters(("start", 0, 0.0), ("middle", 2, 0.5), ("after", 9, 1.0))
    def test_kl_warmup_weighs_l_z(self, step, weight):
        task = tasks.get_task(tiny_config(kl_warmup_steps=4))
        model = task.build_model(self.test_set.image_shape)
        model(self.images)
        task.build_optimizer().iterations.assign(step)
        batch = {"image": tf.constant(self.images)}
        loss, logs = task.loss(model, batch, training=True)
        self.assertAllClose(loss, logs["L_x"] + weight * logs["L_z"], rtol=1e-6)
        self.assertGreater(float(tf.reduce_min(logs["L_z"])), 0.0)
        # Evaluation scores the full bound whatever the step.
        full, logs = task.loss(model, batch, training=False)
        self.assertAllClose(full, logs["L_x"] + logs["L_z"], rtol=1e-6)

    def test_bad_config_is_named(self):
        with self.assertRaisesRegex(ValueError, "attention"):
            tasks.get_task(tiny_config(attention="foveal")).validate()
        with self.assertRaisesRegex(ValueError, "templates"):
            tasks.get_task(tiny_config(canvas="over", templates=("hexagon",))).validate()
        with self.assertRaisesRegex(ValueError, "`kl_warmup_steps` must be an integer >= 0"):
            tasks.get_task(tiny_config(kl_warmup_steps=-1)).validate()

    def test_slow_resumed_run_equals_uninterrupted_run_and_writes_pictures(self):
        base = tempfile.mkdtemp(dir=self.get_temp_dir())
        _, first, _ = training.train_quietly(tiny_config(), base + "/resumed", stop_after=10)
        self.assertEqual(int(first.step.numpy()), 10)
        result, resumed, out = training.train_quietly(tiny_config(), base + "/resumed")
        self.assertIn("ckpt-10 at step 10.", out)
        _, straight, _ = training.train_quietly(tiny_config(), base + "/straight")
        for a, b in zip(resumed.model.weights, straight.model.weights):
            self.assertAllClose(a, b, atol=1e-5, rtol=0, msg=a.path)
        self.assertContainsSubset({"neg_elbo_nats", "iwae_2_nats"}, set(result))
        self.assertLessEqual(result["iwae_2_nats"], result["neg_elbo_nats"] + 1.0)
        logdir = os.path.join(base, "straight")
        l_x = training.scalars(os.path.join(logdir, "train"), "L_x")
        l_z = training.scalars(os.path.join(logdir, "train"), "L_z")
        self.assertEqual(sorted(l_x), sorted(l_z))
        self.assertTrue(all(v > 0 for v in l_x.values()))
        # Generation: 2 images x T = 3 steps, 2x upscaled 28-pixel tiles.
        width, height, _ = training.summary_image(os.path.join(logdir, "eval"),
                                                  "draw/generation")
        self.assertGreater(width, height)
        training.summary_image(os.path.join(logdir, "eval"), "draw/reconstruction")

    def test_slow_t_draw_scores_own_moves_on_rectangles(self):
        config = tiny_config(dataset="2_rectangles", canvas="over", num_steps=2,
                             templates=("square",), initial_scale=2.0, num_train=64,
                             num_test=16, steps=4, eval_every=4, checkpoint_every=4)
        result, _, _ = training.train_quietly(
            config, tempfile.mkdtemp(dir=self.get_temp_dir()))
        self.assertIn("own_move_rate", result)
        self.assertIn("covering_move_rate", result)


if __name__ == "__main__":
    tf.test.main()
