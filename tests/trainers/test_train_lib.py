"""Tests for trainers/train_lib.py: the one training loop, on a toy task.

The toy task (a noisy linear model predicting each image's mean brightness)
trains in well under a second, so these tests exercise what the loop owns:
the run directory, exact resume, the non-finite guard, damaged checkpoints,
config changes, the time budget and the writers.
"""

import json
import os
import subprocess
import sys
import tempfile
import warnings

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from tests.trainers import training
from tfpaint import runs
from trainers import train_lib
from trainers.configs import common
from trainers.tasks import base


def toy_config(**overrides):
    c = common.base()
    c.name = "toy"
    c.task = "toy"
    c.dataset = "2_rectangles"
    c.num_train, c.num_test = 64, 16
    c.batch_size = 8
    c.steps = 20
    c.learning_rate = 3e-4
    c.jit = False
    c.log_every = c.eval_every = c.checkpoint_every = 5
    c.num_summary_images = 2
    c.nan_batch = -1  # the index of a training batch made NaN (-1: none)
    for key, value in overrides.items():
        c[key] = value
    return c


class ToyTask(base.Task):
    """Predicts each image's mean brightness through Gaussian input noise."""

    name = "toy"
    progress_picture = "toy/images"

    def build_model(self, image_shape):
        seed = self.config.seed
        return keras.Sequential([
            keras.Input(image_shape),
            keras.layers.GaussianNoise(0.1, seed=seed),
            keras.layers.Flatten(),
            keras.layers.Dense(1, kernel_initializer=keras.initializers.RandomNormal(
                stddev=0.01, seed=seed)),
        ], name="toy")

    def train_pipeline(self, dataset):
        pipeline = super().train_pipeline(dataset)
        bad = self.config.nan_batch

        def poison(index, batch):
            image = batch["image"]
            return {"image": tf.where(index == bad, image * np.nan, image)}

        return pipeline.enumerate().map(poison)

    def loss(self, model, batch, training=True):
        images = batch["image"]
        target = tf.reduce_mean(images, axis=[1, 2, 3])  # (B,)
        error = tf.square(model(images, training=training)[:, 0] - target)  # (B,)
        return error, {"squared_error": error}

    def evaluate(self, outputs, examples):
        target = examples.images.mean(axis=(1, 2, 3))
        return {"squared_error": float(np.mean((outputs["prediction"][:, 0] - target) ** 2))}

    def eval_function(self, model, jit):
        return tf.function(lambda images: {"prediction": model(images, training=False)})

    def pictures(self, outputs, examples):
        return {"toy/images": np.repeat(examples.images[0], 3, axis=-1)}


def train(config, workdir, **kwargs):
    return training.train_quietly(config, workdir, task=ToyTask(config), **kwargs)


def weights(model):
    return [np.asarray(w) for w in model.weights]


def run_files(workdir):
    """{name: (size, mtime_ns)} of the files directly in a run directory."""
    return {n: (os.stat(os.path.join(workdir, n)).st_size,
                os.stat(os.path.join(workdir, n)).st_mtime_ns)
            for n in os.listdir(workdir) if os.path.isfile(os.path.join(workdir, n))}


class RunDirectoryTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.workdir = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), "run")

    def test_writes_the_run_directory(self):
        result, state, _ = train(toy_config(), self.workdir)
        self.assertEqual(int(state.step.numpy()), 20)
        self.assertCountEqual(
            os.listdir(self.workdir),
            ["config.json", "model.json", "checkpoints", "metrics.json", "progress.png",
             "train", "eval"])
        with open(os.path.join(self.workdir, "config.json")) as f:
            self.assertEqual(json.load(f), json.loads(toy_config().to_json_best_effort()) | {
                "steps_per_epoch": 8})
        with open(os.path.join(self.workdir, "metrics.json")) as f:
            metrics = json.load(f)
        self.assertEqual(metrics.pop("step"), 20)
        self.assertAllClose(metrics, result)
        self.assertEqual(sorted(metrics), ["squared_error", "train_seconds"])
        checkpoints = os.path.join(self.workdir, "checkpoints")
        self.assertEqual([os.path.basename(p) for p in runs.checkpoint_prefixes(checkpoints)],
                         ["ckpt-10", "ckpt-15", "ckpt-20"])  # keep_checkpoints=3
        train_dir = os.path.join(self.workdir, "train")
        for tag in ("loss", "squared_error", "images_per_second"):
            self.assertEqual(sorted(training.scalars(train_dir, tag)), [5, 10, 15, 20], tag)
        self.assertEqual(sorted(training.scalars(os.path.join(self.workdir, "eval"), "squared_error")),
                         [5, 10, 15, 20])
        # images_per_second counts training steps only, over the steps run so far.
        rate = training.scalars(train_dir, "images_per_second")[20]
        self.assertAllClose(rate, 8 * 20 / result["train_seconds"], rtol=0.05)

    def test_loss_falls_on_a_fixed_batch(self):
        task = ToyTask(toy_config(steps=60))
        train_lib.resolve_config(task)
        batch = {"image": task.load_data()[0].images[:8]}
        state = train_lib.TrainState(task, (28, 28, 1))
        before = float(tf.reduce_mean(task.loss(state.model, batch, training=False)[0]))
        iterator = state.distribute(task.train_pipeline(task.load_data()[0]))
        for _ in range(60):
            state.train_step(iterator)
        after = float(tf.reduce_mean(task.loss(state.model, batch, training=False)[0]))
        self.assertLess(after, 0.2 * before)


class ResumeTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(("no_xla", False), ("xla", True))
    def test_resumed_run_equals_uninterrupted_run(self, jit):
        base = tempfile.mkdtemp(dir=self.get_temp_dir())
        _, first, _ = train(toy_config(jit=jit), os.path.join(base, "resumed"), stop_after=12)
        self.assertEqual(int(first.step.numpy()), 12)
        _, resumed, out = train(toy_config(jit=jit), os.path.join(base, "resumed"))
        self.assertIn("ckpt-12 at step 12.", out)
        _, straight, _ = train(toy_config(jit=jit), os.path.join(base, "straight"))
        # The noise layer's RNG state is checkpointed: without it the resumed
        # run would replay the noise of steps 1-8 and end elsewhere.
        for a, b in zip(weights(resumed.model), weights(straight.model)):
            self.assertAllClose(a, b, atol=1e-6, rtol=0)
        self.assertEqual(int(resumed.optimizer.iterations.numpy()), 20)

    def test_finished_run_trains_nothing(self):
        workdir = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), "run")
        train(toy_config(), workdir)
        before = run_files(os.path.join(workdir, "checkpoints"))
        _, state, out = train(toy_config(), workdir)
        self.assertIn("at step 20.", out)
        self.assertEqual(int(state.step.numpy()), 20)
        self.assertEqual(run_files(os.path.join(workdir, "checkpoints")), before)

    def test_damaged_newest_checkpoint_falls_back_with_a_warning(self):
        workdir = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), "run")
        train(toy_config(), workdir, stop_after=15)
        newest = os.path.join(workdir, "checkpoints", "ckpt-15")
        data = newest + ".data-00000-of-00001"
        with open(data, "r+b") as f:
            f.truncate(os.path.getsize(data) // 2)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _, state, out = train(toy_config(), workdir)
        self.assertTrue(any(newest in str(w.message) for w in caught), caught)
        self.assertIn("ckpt-10 at step 10.", out)
        self.assertEqual(int(state.step.numpy()), 20)
        # Export reads past it the same way.
        model, _, prefix = runs.restore_model(workdir)
        self.assertEqual(os.path.basename(prefix), "ckpt-20")

    def test_no_readable_checkpoint_names_each(self):
        workdir = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), "run")
        train(toy_config(steps=10, keep_checkpoints=1), workdir)
        prefix = os.path.join(workdir, "checkpoints", "ckpt-10")
        with open(prefix + ".index", "wb") as f:
            f.write(b"not a checkpoint index")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with self.assertRaisesRegex(runs.CheckpointUnreadableError,
                                        f"No checkpoint could be read:\n  {prefix}: "):
                train(toy_config(steps=10), workdir)


class NothingLostTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        self.workdir = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), "run")

    def test_non_finite_loss_stops_the_run_and_saves_no_bad_checkpoint(self):
        # Batch 11 is NaN, so the loss of step 12 is NaN (steps count from 1).
        with self.assertRaisesRegex(train_lib.NonFiniteLossError,
                                    r"became NaN or infinite at step 12;.*newest is "
                                    r".*ckpt-10\)"):
            train(toy_config(nan_batch=11), self.workdir)
        prefixes = runs.checkpoint_prefixes(os.path.join(self.workdir, "checkpoints"))
        self.assertEqual([os.path.basename(p) for p in prefixes], ["ckpt-5", "ckpt-10"])
        model, _, _ = runs.restore_model(self.workdir)
        self.assertTrue(all(np.all(np.isfinite(w)) for w in weights(model)))
        self.assertFalse(os.path.exists(os.path.join(self.workdir, "metrics.json")))

    @parameterized.named_parameters(
        ("steps", dict(steps=-5), r"`steps` must be an integer >= 1. Received: -5"),
        ("batch", dict(batch_size=0), r"`batch_size` must be an integer >= 1. Received: 0"),
        ("nan_learning_rate", dict(learning_rate=float("nan")),
         r"`learning_rate` must be a finite number > 0. Received: nan"),
        ("dataset", dict(dataset="2_rectangle"), r"`dataset` must be one of .*'2_rectangles'"),
        ("image_size", dict(dataset="mnist", image_size=64),
         r"'mnist' has 28x28 images; image_size=64 does not fit"),
        ("budget", dict(max_train_seconds=-1.0), r"`max_train_seconds` must be > 0"),
    )
    def test_bad_config_writes_nothing(self, overrides, message):
        train(toy_config(), self.workdir)
        before = run_files(self.workdir)
        with self.assertRaisesRegex(ValueError, message):
            train(toy_config(**overrides), self.workdir)
        self.assertEqual(run_files(self.workdir), before)

    def test_other_config_on_a_run_is_refused_and_writes_nothing(self):
        train(toy_config(), self.workdir)
        before = run_files(self.workdir)
        with self.assertRaisesRegex(
                train_lib.ConfigChangedError,
                r"holds a run of config 'toy' that differs from this one:\n"
                r"  dataset: \"2_rectangles\" -> \"2_shapes\"\n  steps: 20 -> 30\n"
                r"Nothing was changed"):
            train(toy_config(dataset="2_shapes", steps=30), self.workdir)
        self.assertEqual(run_files(self.workdir), before)

    def test_bookkeeping_fields_may_change(self):
        train(toy_config(), self.workdir, stop_after=10)
        _, state, _ = train(toy_config(eval_every=10, log_every=2), self.workdir)
        self.assertEqual(int(state.step.numpy()), 20)

    def test_allowed_config_change_keeps_the_old_config(self):
        train(toy_config(), self.workdir)
        _, state, out = train(toy_config(steps=30), self.workdir, allow_config_change=True)
        self.assertIn("steps: 20 -> 30", out)
        self.assertEqual(int(state.step.numpy()), 30)
        with open(os.path.join(self.workdir, "config-previous-20.json")) as f:
            self.assertEqual(json.load(f)["steps"], 20)
        with open(os.path.join(self.workdir, "config.json")) as f:
            self.assertEqual(json.load(f)["steps"], 30)

    def test_checkpoint_of_another_model_is_an_error_before_writing(self):
        train(toy_config(), self.workdir)
        os.remove(os.path.join(self.workdir, "config.json"))
        before = run_files(self.workdir)

        class Wider(ToyTask):
            def build_model(self, image_shape):
                return keras.Sequential([keras.Input(image_shape), keras.layers.Flatten(),
                                         keras.layers.Dense(2)])

        with self.assertRaisesRegex(runs.CheckpointMismatchError,
                                    "do not fit this model.*Was the model changed"):
            training.train_quietly(toy_config(), self.workdir, task=Wider(toy_config()))
        self.assertEqual(run_files(self.workdir), before)


class BudgetTest(tf.test.TestCase):

    def test_time_budget_stops_checkpointed_and_resumes(self):
        workdir = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), "run")
        config = toy_config(steps=100000, max_train_seconds=1.0)
        result, state, _ = train(config, workdir)
        stopped = int(state.step.numpy())
        self.assertBetween(stopped, 1, 99999)
        self.assertGreaterEqual(result["train_seconds"], 1.0)
        prefixes = runs.checkpoint_prefixes(os.path.join(workdir, "checkpoints"))
        self.assertEqual(os.path.basename(prefixes[-1]), f"ckpt-{stopped}")
        with open(os.path.join(workdir, "metrics.json")) as f:
            self.assertEqual(json.load(f)["step"], stopped)

    def test_on_eval_sees_every_evaluation_and_may_stop_the_run(self):
        workdir = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), "run")
        calls = []

        def on_eval(step, metrics, seconds):
            calls.append((step, dict(metrics), seconds))
            return step == 10  # stop at the second evaluation

        result, state, _ = train(toy_config(steps=20), workdir, on_eval=on_eval)
        self.assertEqual([c[0] for c in calls], [5, 10])
        self.assertEqual(int(state.step.numpy()), 10)
        # The final metrics are those of the stopping evaluation, not a second one.
        self.assertAllClose(result["squared_error"], calls[-1][1]["squared_error"])
        self.assertGreater(calls[1][2], calls[0][2])  # training seconds so far grow
        prefixes = runs.checkpoint_prefixes(os.path.join(workdir, "checkpoints"))
        self.assertEqual(os.path.basename(prefixes[-1]), "ckpt-10")
        seconds = training.scalars(os.path.join(workdir, "eval"), "train_seconds")
        self.assertEqual(sorted(seconds), [5, 10])
        self.assertAllClose(seconds[10], calls[1][2], rtol=1e-5)

    def test_on_eval_sees_the_final_evaluation(self):
        workdir = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), "run")
        steps = []
        train(toy_config(steps=7), workdir, on_eval=lambda s, m, t: steps.append(s))
        self.assertEqual(steps, [5, 7])

    def test_on_eval_is_refused_with_several_workers(self):
        # An instance that was never started: the check comes before any use,
        # and no collective runtime is set up for the rest of this process.
        strategy = object.__new__(tf.distribute.MultiWorkerMirroredStrategy)
        with self.assertRaisesRegex(ValueError, "`on_eval` stops one process"):
            train(toy_config(), tempfile.mkdtemp(dir=self.get_temp_dir()), strategy=strategy,
                  on_eval=lambda s, m, t: False)


_THREADS_SCRIPT = """
import tensorflow as tf
from trainers import train_lib
print("before", train_lib.set_threads({"intra_op_threads": 1, "inter_op_threads": 3}))
print("pools", tf.config.threading.get_intra_op_parallelism_threads(),
      tf.config.threading.get_inter_op_parallelism_threads())
float(tf.reduce_sum(tf.ones([2])))
print("same", train_lib.set_threads({"intra_op_threads": 1, "inter_op_threads": 3}))
print("after", train_lib.set_threads({"intra_op_threads": 2, "inter_op_threads": 3}))
"""


class SetThreadsTest(tf.test.TestCase):

    def test_pools_are_set_before_the_first_op_and_reported_after(self):
        # A fresh process: this one's TensorFlow has started already.
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        run = subprocess.run([sys.executable, "-c", _THREADS_SCRIPT], capture_output=True,
                             text=True, env=env, timeout=300, check=False)
        self.assertEqual(run.returncode, 0, run.stderr[-2000:])
        lines = run.stdout.splitlines()
        self.assertIn("before True", lines)
        self.assertIn("pools 1 3", lines)
        self.assertIn("same True", lines)
        self.assertIn("after False", lines)
        self.assertIn("intra_op_threads=2 not applied", run.stdout)

    def test_negative_threads_are_an_error(self):
        with self.assertRaisesRegex(ValueError, "`inter_op_threads` must be >= 0"):
            train_lib.set_threads({"inter_op_threads": -1})
        config = common.base()
        config.steps = 10
        config = common.derive(config)
        config.intra_op_threads = -2
        with self.assertRaisesRegex(ValueError, "`intra_op_threads` must be an integer >= 0"):
            common.validate(config)


if __name__ == "__main__":
    tf.test.main()
