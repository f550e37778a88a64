"""Tests for trainers/tasks/air.py: AIR and T-AIR on the one training loop.

The training test runs the `tiny` config (24x24 scenes, N = 3, LSTM 16) for a
few steps, without XLA.
"""

import math
import os
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tests.trainers import training
from tfpaint import metrics
from trainers import tasks
from trainers import train_lib
from trainers.configs import air as configs


def tiny_config(**overrides):
    config = configs.get_config("tiny")
    for key, value in overrides.items():
        config[key] = value
    return config


class AirTaskTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        self.task = tasks.get_task(tiny_config(iwae_samples=1))
        train_lib.resolve_config(self.task)
        self.train_set, self.test_set = self.task.load_data()
        self.model = self.task.build_model(self.test_set.image_shape)
        self.images = self.test_set.images[:8]

    def test_config_reaches_the_data(self):
        task = tasks.get_task(tiny_config(max_objects=3, max_steps=4, image_size=30))
        train_lib.resolve_config(task)
        _, test_set = task.load_data()
        self.assertEqual(test_set.image_shape, (30, 30, 1))
        self.assertEqual(test_set.scenes.max_objects, 3)
        self.assertEqual(len(test_set.scenes), 16)

    def test_one_sample_bound_is_that_samples_elbo(self):
        scores = self.task.eval_function(self.model, jit=False)(self.images)
        out = self.model(self.images, noise_seed=tf.constant([11, 0]))
        self.assertAllClose(scores["iwae"], -out["elbo"], rtol=1e-5)
        self.assertAllClose(scores["neg_elbo"], -out["elbo"], rtol=1e-5)

    def test_bound_tightens_with_more_samples(self):
        task = tasks.get_task(tiny_config(iwae_samples=8))
        train_lib.resolve_config(task)
        scores = task.eval_function(self.model, jit=False)(self.images)
        # log mean exp >= mean: the K-sample bound is at most the ELBO's average.
        self.assertTrue(np.all(scores["iwae"].numpy() <= scores["neg_elbo"].numpy() + 1e-3))

    def test_metrics_count_every_count(self):
        outputs = {k: v.numpy() for k, v in
                   self.task.eval_function(self.model, jit=False)(self.images).items()}
        examples = self.test_set.examples(limit=8)
        result = self.task.evaluate(outputs, examples)
        expected = np.mean(np.rint(outputs["count"]) == examples.scenes.counts)
        self.assertAllClose(result["count_accuracy"], expected)
        self.assertIn("neg_elbo_nats", result)

    def test_presence_prob_is_annealed(self):
        task = tasks.get_task(tiny_config(presence_prob=0.5, presence_prob_final=0.1,
                                          presence_prob_anneal_steps=4))
        task.build_optimizer()
        values = []
        for step in (0, 2, 9):
            task.optimizer.iterations.assign(step)
            values.append(float(task.presence_prob()))
        self.assertAllClose(values, [0.5, 0.3, 0.1])

    @parameterized.named_parameters(
        ("dataset", dict(dataset="mnist", image_size=None), "AIR trains on multi_mnist"),
        ("z_pres", dict(z_pres="gumbel"), "`z_pres` must be one of"),
        ("decoder", dict(decoder="mlp"), "`decoder` must be one of"),
        ("window", dict(window_range=(0.5, 0.2)), "`window_range` must be"),
        ("temperature", dict(presence_temperature=0.0),
         "`presence_temperature` must be a finite number > 0"),
        ("steps", dict(max_steps=1), r"`max_steps` \(1\) must be at least `max_objects`"),
        ("prior", dict(presence_prob=0.0), r"`presence_prob` must be in \(0, 1\)"),
        ("where", dict(where_prior=(0.0, -1.0, 1.0)), "`where_prior` must be"),
        ("bias", dict(decoder_bias=float("nan")), "`decoder_bias` must be finite"),
    )
    def test_bad_config(self, overrides, message):
        task = tasks.get_task(tiny_config(**overrides))
        with self.assertRaisesRegex(ValueError, message):
            train_lib.resolve_config(task)

    def test_slow_trains_and_writes_counts_and_pictures(self):
        # With the count prior annealed inside the distributed step.
        workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
        config = tiny_config(presence_prob=0.5, presence_prob_final=0.1,
                             presence_prob_anneal_steps=2)
        result, state, _ = training.train_quietly(config, workdir)
        self.assertAllClose(float(state.model.presence_prob.numpy()), 0.1)
        self.assertEqual(int(state.step.numpy()), 4)
        self.assertContainsSubset({"count_accuracy", "neg_elbo_nats", "iwae_2_nats"},
                                  set(result))
        self.assertTrue(math.isfinite(result["neg_elbo_nats"]))
        counts = training.scalars(os.path.join(workdir, "train"), "count")
        self.assertEqual(len(counts), 4)
        training.summary_image(os.path.join(workdir, "eval"), "air/steps")

    def test_slow_concrete_z_pres_trains(self):
        workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
        result, state, _ = training.train_quietly(tiny_config(z_pres="concrete"), workdir)
        self.assertEqual(int(state.step.numpy()), 4)
        self.assertIsNone(state.model.baseline_net)
        self.assertTrue(math.isfinite(result["neg_elbo_nats"]))
        self.assertIn("count_accuracy", result)
        self.assertEqual(set(training.scalars(os.path.join(workdir, "train"), "neg_elbo")),
                         {1, 2, 3, 4})

    def test_slow_t_air_on_rectangles_scores_moves(self):
        workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
        config = configs.get_config("t_air_rectangles_window")
        config.update(dict(num_train=32, num_test=16, batch_size=8, steps=2, eval_every=2,
                           checkpoint_every=2, log_every=1, rnn_units=8, mlp_units=8,
                           latent_units=2, glimpse_size=6, template_size=8, iwae_samples=2,
                           num_summary_images=4))
        result, state, _ = training.train_quietly(config, workdir)
        model = state.model
        self.assertEqual((model.decoder, model.z_pres, model.window_range),
                         ("template", "none", (0.15, 0.55)))
        self.assertContainsSubset({"own_move_rate", "covering_move_rate", "mse_per_pixel",
                                   "neg_elbo_nats"}, set(result))
        self.assertNotIn("count_accuracy", result)
        # The rates are those of the model's moves on the held-out images.
        task = tasks.get_task(config)
        train_lib.resolve_config(task)
        held_out = task.load_data()[1].examples(16)
        outputs = train_lib.predict_in_batches(task.eval_function(model, jit=False),
                                               held_out.images)
        own, _ = metrics.own_move_assignment(outputs["masks"], held_out.shapes)
        self.assertAllClose(result["own_move_rate"], np.mean(own))
        for tag in ("air/steps", "air/objects"):
            training.summary_image(os.path.join(workdir, "eval"), tag)


if __name__ == "__main__":
    tf.test.main()
