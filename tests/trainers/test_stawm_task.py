"""Tests for trainers/tasks/stawm.py: STAWM on the one training loop.

Tests that train are named `test_slow_*`; each runs a handful of steps of the
`tiny` configs (M=16, batch 16) in seconds, without XLA.
"""

import os
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tests.trainers import training
from tfpaint import runs
from tfpaint.data import registry
from trainers import tasks
from trainers import train_lib
from trainers.configs import stawm as configs


def tiny_config(name="tiny", **overrides):
    config = configs.get_config(name)
    for key, value in overrides.items():
        config[key] = value
    return config


class StawmTrainerTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(
        ("classify", "tiny", dict(max_shift=2)),
        ("sketchpad_bernoulli", "tiny_sketchpad", {}),
    )
    def test_slow_resumed_run_equals_uninterrupted_run(self, name, overrides):
        # Rotations, shifts, dropout and (sketchpad) the Concrete mask all
        # draw random numbers: each stream must resume where it stopped.
        base = tempfile.mkdtemp(dir=self.get_temp_dir())
        _, first, _ = training.train_quietly(tiny_config(name, **overrides), base + "/resumed",
                                    stop_after=10)
        self.assertEqual(int(first.step.numpy()), 10)
        result, resumed, out = training.train_quietly(tiny_config(name, **overrides), base + "/resumed")
        self.assertIn("ckpt-10 at step 10.", out)
        _, straight, _ = training.train_quietly(tiny_config(name, **overrides), base + "/straight")
        self.assertEqual(int(resumed.step.numpy()), 20)
        for a, b in zip(resumed.model.weights, straight.model.weights):
            self.assertAllClose(a, b, atol=1e-5, rtol=0, msg=a.path)
        self.assertIn("error", result)

    def test_slow_pictures_show_every_glimpse(self):
        workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
        training.train_quietly(tiny_config(steps=2), workdir)
        width, height, _ = training.summary_image(os.path.join(workdir, "eval"), "glimpses")
        # Input + 3 glimpses per row, 2 rows, 3x upscaled 28-pixel tiles.
        self.assertEqual((int(width), int(height)), (3 * (4 * 29 + 1), 3 * (2 * 29 + 1)))
        self.assertTrue(os.path.exists(os.path.join(workdir, "progress.png")))
        model, config, _ = runs.restore_model(workdir)
        self.assertEqual(model.heads, ("classify",))
        self.assertEqual(config.objective, "classify")

    def test_slow_loss_falls_on_a_fixed_batch(self):
        task = tasks.get_task(tiny_config(dropout=0.0))
        train_lib.resolve_config(task)
        train_set, _ = task.load_data()
        state = train_lib.TrainState(task, train_set.image_shape)
        batch = {"image": train_set.images[:16], "label": train_set.labels[:16]}
        loss = lambda: float(tf.reduce_mean(task.loss(state.model, batch, training=False)[0]))
        before = loss()
        iterator = state.distribute(tf.data.Dataset.from_tensors(batch).repeat())
        for _ in range(60):
            state.train_step(iterator)
        self.assertLess(loss(), 0.5 * before)

    def test_slow_sketchpad_then_self_supervised(self):
        root = tempfile.mkdtemp(dir=self.get_temp_dir())
        draw = tiny_config("tiny_sketchpad", steps=6, eval_every=100, checkpoint_every=100)
        result, drawn, _ = training.train_quietly(draw, root + "/draw")
        self.assertIn("mse_per_pixel", result)
        self.assertIn("error", result)
        ssl = tiny_config("tiny_sketchpad", objective="self_supervised", learnable_rates=True,
                          steps=4, pretrained_workdir=root + "/draw", eval_every=100,
                          checkpoint_every=100)
        _, state, out = training.train_quietly(ssl, root + "/ssl")
        self.assertIn("Drawing weights from", out)
        # Frozen drawing features: the loaded glimpse CNN is unchanged by training.
        self.assertAllClose(state.model.glimpse_cnn.weights[0], drawn.model.glimpse_cnn.weights[0])
        trainable = {v.path.split("/")[1] for v in state.model.trainable_variables}
        self.assertEqual(trainable, {"class_query", "classifier", "memory_rnn"})

    def test_self_supervised_without_drawing_run_raises(self):
        config = tiny_config(objective="self_supervised")
        with self.assertRaisesRegex(ValueError, "needs config.pretrained_workdir"):
            training.train_quietly(config, self.get_temp_dir() + "/none")

    def test_self_supervised_from_unrelated_checkpoint_raises(self):
        workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
        tf.train.CheckpointManager(tf.train.Checkpoint(step=tf.Variable(3)),
                                   os.path.join(workdir, "checkpoints"), 1).save()
        config = tiny_config(objective="self_supervised", pretrained_workdir=workdir)
        target = tempfile.mkdtemp(dir=self.get_temp_dir())
        with self.assertRaisesRegex(ValueError, "Nothing in .* matched this model's weights"):
            training.train_quietly(config, target)
        self.assertEqual(os.listdir(target), [])

    def test_classifying_a_dataset_without_labels_raises(self):
        config = tiny_config(dataset="faces")
        with self.assertRaisesRegex(ValueError, "dataset 'faces' has no class labels"):
            train_lib.resolve_config(tasks.get_task(config))

    def test_slow_full_mnist_from_a_tfds_data_dir(self):
        # The same configs run on full MNIST from a prepared tfds directory;
        # tfds' mock data stands in for the 60,000 digits (no download here).
        import tensorflow_datasets as tfds

        data_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
        os.makedirs(os.path.join(data_dir, "mnist"))
        config = tiny_config(dataset="mnist_full", data_dir=data_dir, steps=4, eval_every=4,
                             checkpoint_every=4, num_test=32)
        with tfds.testing.mock_data(num_examples=96):
            result, state, _ = training.train_quietly(config, tempfile.mkdtemp(dir=self.get_temp_dir()))
        self.assertEqual(int(state.step.numpy()), 4)
        self.assertIn("error", result)

    def test_full_mnist_without_data_dir_says_how_to_get_it(self):
        task = tasks.get_task(tiny_config(dataset="mnist_full"))
        with self.assertRaisesRegex(registry.DatasetUnavailableError, "tfds build mnist"):
            task.load_data()


if __name__ == "__main__":
    tf.test.main()
