"""Tests for the STAWM trainer: trainers/stawm_lib.py, its configs and absl main.

Tests that train are named `test_slow_*`; each runs a handful of steps of the
`tiny` configs (M=16, batch 16) in seconds, without XLA.
"""

import contextlib
import io
import json
import os
import tempfile

from absl import flags
from absl.testing import flagsaver
from absl.testing import parameterized
import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from tfpaint.data import digits
from trainers import stawm as stawm_main
from trainers import stawm_lib
from trainers.configs import stawm as configs

FLAGS = flags.FLAGS


def tiny_config(name="tiny", **overrides):
    config = configs.get_config(name)
    for key, value in overrides.items():
        config[key] = value
    return config


def train_quietly(config, workdir, stop_after=None):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result, state = stawm_lib.train(config, workdir, progress=False, stop_after=stop_after)
    return result, state, out.getvalue()


class StawmTrainerTest(tf.test.TestCase, parameterized.TestCase):

    def test_slow_train_stop_and_resume(self):
        workdir = self.get_temp_dir() + "/resume"
        config = tiny_config()
        _, state, _ = train_quietly(config, workdir, stop_after=10)
        self.assertEqual(int(state.step.numpy()), 10)
        weights = [w.numpy() for w in state.model.trainable_weights]
        result, resumed, out = train_quietly(config, workdir)
        self.assertIn("Resumed from", out)
        self.assertEqual(int(resumed.step.numpy()), 20)
        # The resumed run started from the saved weights, then trained on.
        self.assertTrue(any(not np.allclose(a, b.numpy())
                            for a, b in zip(weights, resumed.model.trainable_weights)))
        with open(os.path.join(workdir, "metrics.json")) as f:
            metrics = json.load(f)
        self.assertEqual(metrics["step"], 20)
        self.assertBetween(metrics["error"], 0.0, 1.0)
        self.assertAllClose(result["error"], metrics["error"])
        with open(os.path.join(workdir, "config.json")) as f:
            self.assertEqual(json.load(f)["name"], "tiny")
        self.assertTrue(os.path.exists(os.path.join(workdir, "progress.png")))
        acc = event_accumulator.EventAccumulator(
            os.path.join(workdir, "eval"), size_guidance={event_accumulator.TENSORS: 0})
        acc.Reload()
        self.assertIn("glimpses", acc.Tags()["tensors"])
        width, height, _ = tf.make_ndarray(acc.Tensors("glimpses")[-1].tensor_proto)
        # Input + 3 glimpses per row, 2 rows, 3x upscaled 28-pixel tiles.
        self.assertEqual((int(width), int(height)), (3 * (4 * 29 + 1), 3 * (2 * 29 + 1)))

    def test_slow_sketchpad_then_self_supervised(self):
        root = self.get_temp_dir()
        draw = tiny_config("tiny_sketchpad", steps=6, eval_every=100, checkpoint_every=100)
        result, drawn, _ = train_quietly(draw, root + "/draw")
        self.assertIn("mse_per_pixel", result)
        self.assertIn("error", result)
        ssl = tiny_config("tiny_sketchpad", task="self_supervised", learnable_rates=True,
                          steps=4, pretrained_workdir=root + "/draw", eval_every=100,
                          checkpoint_every=100)
        _, state, out = train_quietly(ssl, root + "/ssl")
        self.assertIn("Drawing weights from", out)
        # Frozen drawing features: the loaded glimpse CNN is unchanged by training.
        self.assertAllClose(state.model.glimpse_cnn.weights[0], drawn.model.glimpse_cnn.weights[0])
        trainable = {v.path.split("/")[1] for v in state.model.trainable_variables}
        self.assertEqual(trainable, {"class_query", "classifier", "memory_rnn"})

    def test_self_supervised_without_drawing_run_raises(self):
        config = tiny_config(task="self_supervised", pretrained_workdir=None)
        with self.assertRaisesRegex(ValueError, "needs config.pretrained_workdir"):
            train_quietly(config, self.get_temp_dir() + "/none")

    def test_self_supervised_from_unrelated_checkpoint_raises(self):
        workdir = tempfile.mkdtemp()
        tf.train.Checkpoint(step=tf.Variable(3)).save(os.path.join(workdir, "checkpoints", "ckpt"))
        config = tiny_config(task="self_supervised", pretrained_workdir=workdir)
        with self.assertRaisesRegex(ValueError, "Nothing in .* matched this model's weights"):
            train_quietly(config, tempfile.mkdtemp())

    def test_slow_full_mnist_from_a_tfds_data_dir(self):
        # The same configs run on full MNIST from a prepared tfds directory;
        # tfds' mock data stands in for the 60,000 digits (no download here).
        import tensorflow_datasets as tfds

        data_dir = tempfile.mkdtemp()
        os.makedirs(os.path.join(data_dir, "mnist"))
        config = tiny_config(dataset="mnist_full", data_dir=data_dir, steps=4, eval_every=4,
                             checkpoint_every=4, num_test=32)
        with tfds.testing.mock_data(num_examples=96):
            result, state, _ = train_quietly(config, tempfile.mkdtemp())
        self.assertEqual(int(state.step.numpy()), 4)
        self.assertBetween(result["error"], 0.0, 1.0)

    def test_full_mnist_without_data_dir_says_how_to_get_it(self):
        config = tiny_config(dataset="mnist_full")
        with self.assertRaisesRegex(digits.DatasetUnavailableError, "tfds build mnist"):
            stawm_lib.load_data(config)

    def test_learning_rate_schedule(self):
        schedule = stawm_lib.StepExponentialDecay(1e-3, 10, decay=0.5, milestones=(2,))
        self.assertAllClose([float(schedule(s)) for s in (0, 10, 20, 30)],
                            [1e-3, 5e-4, 2.5e-5, 1.25e-5])

    def test_pipeline_batches_and_rotates(self):
        config = tiny_config(max_shift=1)
        train_set, _ = stawm_lib.load_data(config)
        images, labels = next(iter(stawm_lib.train_pipeline(config, train_set)))
        self.assertEqual(images.shape, (16, 28, 28, 1))
        self.assertEqual(labels.shape, (16,))
        self.assertBetween(float(tf.reduce_min(images)), 0.0, 1.0)
        self.assertLessEqual(float(tf.reduce_max(images)), 1.0)

    @parameterized.named_parameters(*[(n, n) for n in sorted(configs.CONFIGS)])
    def test_every_config_builds_its_model(self, name):
        config = configs.get_config(name)
        self.assertGreater(config.steps, 0)
        shape = {"cifar10": (32, 32, 3), "celeb_a": (64, 64, 3)}.get(config.dataset, (28, 28, 1))
        model = stawm_lib.build_model(config, shape)
        self.assertEqual(model.heads, stawm_lib.heads_of(config.task))

    def test_main_flags_override_config(self):
        with flagsaver.flagsaver(config="mnist_8x8", epochs=3, seed=5, jit=True):
            FLAGS(["stawm"])
            config = stawm_main.resolved_config()
        self.assertEqual(config.steps, 3 * (4500 // 128))
        self.assertEqual(config.seed, 5)
        self.assertTrue(config.jit)
        with flagsaver.flagsaver(config="mnist_8x8", dataset="mnist_full"):
            FLAGS(["stawm"])
            config = stawm_main.resolved_config()
        self.assertEqual(config.steps, 200 * (60000 // 128))


if __name__ == "__main__":
    tf.test.main()
