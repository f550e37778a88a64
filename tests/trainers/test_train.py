"""Tests for trainers/train.py, the one main: config names, overrides, errors.

The subprocess tests run `python -m trainers.train` as `bazel run
//trainers:<family>` does (with `--family`), from the directory holding the
`trainers` package.
"""

import json
import os
import subprocess
import sys
import tempfile

from absl import app
from absl.testing import parameterized
import tensorflow as tf

import trainers
from trainers import train

# The directory that holds the `trainers` package: the repository root, or the
# runfiles root under Bazel.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(trainers.__file__)))
PAINTER = os.path.join(train.CONFIGS_DIR, "painter.py")


def run_main(*args, timeout=300):
    env = dict(os.environ)
    env.pop("BUILD_WORKING_DIRECTORY", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO_ROOT, env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "trainers.train", *args], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


class ExpandArgvTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(
        ("name", ["--config=shapes_2moves"], [f"--config={PAINTER}:shapes_2moves"]),
        ("default", [], [f"--config={PAINTER}:mnist_20moves"]),
        ("space", ["--config", "shapes_2moves"], [f"--config={PAINTER}:shapes_2moves"]),
        ("override", ["--config=shapes_2moves", "--config.steps=5"],
         [f"--config={PAINTER}:shapes_2moves", "--config.steps=5"]),
        ("shorthand", ["--steps=5", "--seed", "3"],
         [f"--config={PAINTER}:mnist_20moves", "--config.steps=5", "--config.seed", "3"]),
        ("bools", ["--sorter", "--nojit", "--jit=false"],
         [f"--config={PAINTER}:mnist_20moves", "--config.sorter", "--noconfig.jit",
          "--config.jit=false"]),
        ("program_flags", ["--workdir=/w", "--noprogress", "--strategy=one_device"],
         [f"--config={PAINTER}:mnist_20moves", "--workdir=/w", "--noprogress",
          "--strategy=one_device"]),
        ("unknown_passes_through", ["--moves=3"],
         [f"--config={PAINTER}:mnist_20moves", "--moves=3"]),
        ("file", [f"--config={PAINTER}:rectangles_2moves", "--latent=custom"],
         [f"--config={PAINTER}:rectangles_2moves", "--config.latent=custom"]),
    )
    def test_short_forms(self, args, want):
        got = train.expand_argv(["prog", "--family=painter", *args])
        self.assertEqual(got, ["prog", want[0], "--family=painter", *want[1:]])

    def test_unknown_name_lists_the_configs(self):
        with self.assertRaisesRegex(app.UsageError,
                                    "Unknown config 'nope' of painter. Available: .*mnist_20moves"):
            train.expand_argv(["prog", "--family=painter", "--config=nope"])

    def test_a_name_needs_a_family(self):
        with self.assertRaisesRegex(app.UsageError, "or a family with --family="):
            train.expand_argv(["prog", "--config=mnist_20moves"])


class MainTest(tf.test.TestCase):

    def test_slow_painter_trains_and_prints_where_things_are(self):
        workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
        proc = run_main("--family=painter", "--config=rectangles_2moves", "--steps=5",
                        "--config.num_train=100", "--nojit", f"--workdir={workdir}",
                        "--progress=false")
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        self.assertIn(f"Training rectangles_2moves (simple Painter, 2 moves, 2_rectangles) in "
                      f"{workdir}", proc.stdout)
        self.assertIn("Held-out: mse_per_pixel=", proc.stdout)
        self.assertIn(f"Progress:    {workdir}/progress.png", proc.stdout)
        with open(os.path.join(workdir, "config.json")) as f:
            config = json.load(f)
        self.assertEqual((config["steps"], config["num_train"], config["jit"]), (5, 100, False))
        with open(os.path.join(workdir, "metrics.json")) as f:
            self.assertEqual(json.load(f)["step"], 5)

    def test_slow_stawm_epochs_set_the_steps(self):
        workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
        proc = run_main("--family=stawm", "--config=mnist_8x8", "--epochs=2", "--num_train=128",
                        "--num_test=16", "--nojit", f"--workdir={workdir}", "--progress=false")
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        with open(os.path.join(workdir, "config.json")) as f:
            config = json.load(f)
        self.assertEqual((config["steps_per_epoch"], config["steps"]), (1, 2))
        self.assertIn("Held-out: error=", proc.stdout)

    def test_bad_values_exit_with_the_reason_and_write_nothing(self):
        # Each kind of error once (the loop's checks are tested in test_train_lib).
        for args, message in (
                (["--learning_rate=nan"], "`learning_rate` must be a finite number > 0"),
                (["--config.stpes=3"], "has no field 'stpes'; did you mean 'steps'?"),
                (["--steps=three"], "invalid literal for int() with base 10: 'three'")):
            workdir = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), "run")
            proc = run_main("--family=painter", *args, f"--workdir={workdir}")
            self.assertNotEqual(proc.returncode, 0, args)
            self.assertIn(message, proc.stderr, args)
            self.assertNotIn("Traceback", proc.stderr, args)
            self.assertFalse(os.path.exists(workdir), args)

    def test_missing_dataset_exits_with_how_to_get_it(self):
        workdir = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), "run")
        proc = run_main("--family=painter", "--config=cifar10_conv", f"--workdir={workdir}")
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("tfds build cifar10", proc.stderr)
        self.assertNotIn("Traceback", proc.stderr)
        self.assertFalse(os.path.exists(workdir))


if __name__ == "__main__":
    tf.test.main()
