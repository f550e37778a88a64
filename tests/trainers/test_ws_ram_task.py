"""Tests for trainers/tasks/ws_ram.py: WS-RAM on the one training loop.

The training tests run the `tiny` config (24x24 scenes, 2 glimpses, width 16)
for a few steps, without XLA.
"""

import math
import os
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tests.trainers import training
from trainers import tasks
from trainers import train_lib
from trainers.configs import ws_ram as configs


def tiny_config(**overrides):
    config = configs.get_config("tiny")
    for key, value in overrides.items():
        config[key] = value
    return config


class WsRamTaskTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        self.task = tasks.get_task(tiny_config())
        train_lib.resolve_config(self.task)
        _, self.test_set = self.task.load_data()
        self.model = self.task.build_model(self.test_set.image_shape)
        self.examples = self.test_set.examples()

    def test_evaluation_scores_the_mode_policy_and_the_samples(self):
        outputs = train_lib.predict_in_batches(
            self.task.eval_function(self.model, jit=False), self.examples.images)
        result = self.task.evaluate(outputs, self.examples)
        labels = self.examples.labels
        mode = self.model(self.examples.images)["logits"].numpy()[:, 0]
        self.assertAllClose(result["error"], np.mean(mode.argmax(-1) != labels))
        self.assertAllClose(outputs["logits"], mode, atol=1e-5)
        self.assertBetween(result["ess"], 1.0, self.task.config.samples)
        self.assertGreater(result["grad_variance"], 0.0)
        self.assertTrue(math.isfinite(result["nll_bound"]))
        picture = self.task.pictures({k: v[:2] for k, v in outputs.items()},
                                     self.examples.head(2))["ws_ram/glimpses"]
        # Two panels side by side (prior | inference network), one row per image.
        self.assertEqual(picture.ndim, 3)
        self.assertGreater(picture.shape[1], 2 * picture.shape[0])

    def test_gradient_variance_is_the_variance_over_draws(self):
        # Over distinct draws: the sample variance of the flattened gradients,
        # averaged over the attention weights.
        images, labels = self.examples.images[:4], self.examples.labels[:4]
        _, gradient = self.task._label_functions()
        draws = [gradient(tf.constant(images), tf.constant(labels), tf.constant([29, r])).numpy()
                 for r in range(2)]
        want = float(np.mean(np.var(np.stack(draws), axis=0, ddof=1)))
        self.assertAllClose(self.task.gradient_variance(images, labels), want, rtol=1e-5)

    @parameterized.named_parameters(
        ("no_labels", dict(dataset="2_rectangles"), "has no class labels"),
        ("algorithm", dict(algorithm="reinforce"), "`algorithm` must be one of"),
        ("var_q", dict(algorithm="var", proposal="q"), "samples from the prior"),
        ("repeats", dict(grad_variance_repeats=1), "`grad_variance_repeats` must be >= 2"),
        ("scales", dict(scales=()), "`scales` must be"),
        ("samples", dict(samples=0), "`samples` must be an integer >= 1"))
    def test_bad_config(self, overrides, message):
        with self.assertRaisesRegex(ValueError, message):
            train_lib.resolve_config(tasks.get_task(tiny_config(**overrides)))

    def test_slow_trains_and_writes_scalars_and_pictures(self):
        # WS-RAM+q+c; the other algorithms' losses and gradients are tested
        # on the model (tests/models/test_ws_ram.py).
        workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
        config = tiny_config()
        result, state, _ = training.train_quietly(config, workdir)
        self.assertEqual(int(state.step.numpy()), 4)
        self.assertContainsSubset({"error", "error_sampled", "ess", "nll_bound",
                                   "grad_variance"}, set(result))
        for tag in ("ess", "nll_bound", "error"):
            self.assertEqual(set(training.scalars(os.path.join(workdir, "train"), tag)),
                             {1, 2, 3, 4}, tag)
        training.summary_image(os.path.join(workdir, "eval"), "ws_ram/glimpses")
        self.assertTrue(os.path.exists(os.path.join(workdir, "progress.png")))


if __name__ == "__main__":
    tf.test.main()
