"""End-to-end: train briefly, then the export programs as users run them,
for a Painter and for STAWM."""

import os
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from export import benchmark_export
from tfpaint import runs
from trainers import tasks
from trainers import train_lib
from trainers.configs import painter as configs
from trainers.configs import stawm as stawm_configs

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(module, *args):
    env = dict(os.environ, PYTHONPATH=_ROOT)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


class ExportToolsTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.workdir = tempfile.mkdtemp()
        config = configs.get_config("mnist_20moves")
        config.steps, config.num_moves, config.num_test = 3, 4, 20
        config.log_every, config.eval_every, config.checkpoint_every = 1, 1000, 1000
        train_lib.train(tasks.get_task(config), cls.workdir, progress=False)
        cls.stawm_workdir = tempfile.mkdtemp()
        config = stawm_configs.get_config("tiny_sketchpad")
        config.steps, config.num_test = 3, 16
        train_lib.train(tasks.get_task(config), cls.stawm_workdir, progress=False)

    def test_restore_model_matches_training_checkpoint(self):
        model, config, prefix = runs.restore_model(self.workdir)
        self.assertEqual(config.num_moves, 4)
        self.assertTrue(prefix.endswith("ckpt-3"))
        again, _, _ = runs.restore_model(prefix)
        x = np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype(np.float32)
        self.assertAllClose(model(x)["canvas"], again(x)["canvas"])
        # Restored weights differ from a fresh model's (the checkpoint was read).
        fresh = runs.build_model(self.workdir)
        self.assertNotAllClose(model(x)["where"], fresh(x)["where"])

    def test_restore_model_without_checkpoint_raises(self):
        with self.assertRaisesRegex(FileNotFoundError, "No checkpoint at"):
            runs.restore_model(tempfile.mkdtemp())

    def test_benchmark_default_model_is_the_default_config(self):
        task = tasks.get_task(configs.get_config("mnist_20moves"))
        train_lib.resolve_config(task)
        unnamed = lambda model: {k: v for k, v in model.get_config().items() if k != "name"}
        self.assertEqual(unnamed(benchmark_export.default_model()),
                         unnamed(task.build_model((28, 28, 1))))

    def test_stawm_saved_model_then_tflite(self):
        base = tempfile.mkdtemp()
        result = _run("export.saved_model", f"--checkpoint={self.stawm_workdir}",
                      f"--export_base={base}")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        version = os.path.join(base, "stawm", "1")
        self.assertIn(version, result.stdout)
        signatures = tf.saved_model.load(version).signatures
        self.assertCountEqual(signatures.keys(), ["classify", "draw", "serving_default"])
        model, _, _ = runs.restore_model(self.stawm_workdir)
        x = np.random.default_rng(1).uniform(size=(3, 28, 28, 1)).astype(np.float32)
        self.assertAllClose(signatures["classify"](image=tf.constant(x))["logits"],
                            model(x, training=False)["logits"], atol=1e-4)
        output = os.path.join(base, "stawm.tflite")
        result = _run("export.tflite", f"--saved_model={os.path.join(base, 'stawm')}",
                      f"--output={output}")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertIn("Parity within", result.stdout)
        for name in ("classify/logits", "draw/canvases", "serving_default/boxes"):
            self.assertIn(name, result.stdout)

    def test_svg_of_a_stawm_run_says_it_needs_a_painter(self):
        result = _run("export.svg", f"--checkpoint={self.stawm_workdir}",
                      f"--output_dir={tempfile.mkdtemp()}")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("SVG strokes need a Painter run", result.stderr)
        self.assertNotIn("Traceback", result.stderr)

    def test_saved_model_then_tflite(self):
        base = tempfile.mkdtemp()
        for version in ("1", "2"):
            result = _run("export.saved_model", f"--checkpoint={self.workdir}",
                          f"--export_base={base}")
            self.assertEqual(result.returncode, 0, result.stderr[-3000:])
            self.assertIn(os.path.join(base, "painter", version), result.stdout)
        self.assertTrue(os.path.exists(os.path.join(base, "models.config")))
        output = os.path.join(base, "painter.tflite")
        result = _run("export.tflite", f"--saved_model={os.path.join(base, 'painter')}",
                      f"--output={output}")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertIn("Parity within", result.stdout)
        self.assertIn(os.path.join(base, "painter", "2"), result.stdout)
        self.assertTrue(os.path.exists(output))

    def test_svg_tool_writes_strokes_close_to_the_canvas(self):
        output = tempfile.mkdtemp()
        result = _run("export.svg", f"--checkpoint={self.workdir}", f"--output_dir={output}",
                      "--num_images=2")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertCountEqual(os.listdir(output), ["painting-0.svg", "painting-0.png",
                                                   "painting-1.svg", "painting-1.png"])
        gaps = [float(line.rsplit("=", 1)[1]) for line in result.stdout.splitlines()
                if "|SVG - canvas|" in line]
        self.assertLen(gaps, 2)
        self.assertLess(max(gaps), 0.05)

    def test_benchmark_prints_every_row_and_parity(self):
        # Runs the benchmark as a user would, at a tiny budget: the table must
        # be complete and parity within 1e-4. Speed is not checked here.
        result = _run("export.benchmark_export", f"--checkpoint={self.workdir}",
                      "--seconds=0.05", "--batch_size=8", "--callers=2")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        rows = {}
        for line in result.stdout.splitlines():
            name, _, figures = line.partition("  ")
            rows[name.strip()] = figures.split()
        for name in ("SavedModel, no XLA", "SavedModel, XLA", "SavedModel moves, XLA"):
            self.assertLen(rows[name], 3, name)  # latency, 1 caller, 2 callers
            self.assertGreater(float(rows[name][2].replace(",", "")), 0.0, name)
        self.assertEqual(rows["TFLite (LiteRT)"][2], "-")
        parity = [float(line.split()[-1]) for line in result.stdout.splitlines()
                  if " vs " in line and "target" not in line]
        self.assertLen(parity, 3)
        self.assertLess(max(parity), 1e-4)

    def test_saved_model_without_checkpoint_fails_clearly(self):
        result = _run("export.saved_model", f"--checkpoint={tempfile.mkdtemp()}",
                      f"--export_base={tempfile.mkdtemp()}")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("No checkpoint at", result.stderr)
        self.assertNotIn("Traceback", result.stderr)


if __name__ == "__main__":
    tf.test.main()
