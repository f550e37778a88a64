"""Tests for export.lite: builtin-only conversion, LiteRT parity of every signature, input checks."""

import os
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from export import lite
from export import serving
from tests.export import fixtures
from tfpaint.models import draw
from trainers import tasks
from trainers import train_lib
from trainers.configs import painter as configs

TOLERANCE = 1e-4


class LiteTest(parameterized.TestCase, tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.base = tempfile.mkdtemp()
        cls.paths = {}
        for name in ("gray_over", "rgb_over", "gray_additive", "depth_sorted", "recurrent"):
            model = fixtures.make_model(name)
            saved = serving.export_saved_model(model, cls.base, name)
            tflite, _ = lite.convert(saved, os.path.join(cls.base, f"{name}.tflite"))
            cls.paths[name] = (model, saved, tflite)

    @parameterized.named_parameters(
        (name, name)
        for name in ("gray_over", "rgb_over", "gray_additive", "depth_sorted", "recurrent"))
    def test_every_signature_matches_saved_model(self, name):
        model, saved, tflite = self.paths[name]
        sigs = tf.saved_model.load(saved).signatures
        runner = lite.LitePainter(tflite)
        x = fixtures.images(model.image_shape, num=5)
        want = sigs["serving_default"](image=tf.constant(x))
        got = runner.paint(x)
        self.assertCountEqual(got.keys(), serving.SERVING_OUTPUTS)
        for key in got:
            self.assertAllClose(got[key], want[key], atol=TOLERANCE, rtol=0, msg=key)
        got_moves = runner.moves(x)
        want_moves = sigs["moves"](image=tf.constant(x))
        for key in serving.MOVES_OUTPUTS:
            self.assertAllClose(got_moves[key], want_moves[key], atol=TOLERANCE, rtol=0)
        moves = {k: want[k].numpy() for k in ("where", "what", "which")}
        got = runner.render(**moves)
        want = sigs["render"](**{k: tf.constant(v) for k, v in moves.items()})
        for key in serving.RENDER_OUTPUTS:
            self.assertAllClose(got[key], want[key], atol=TOLERANCE, rtol=0, msg=key)

    @parameterized.named_parameters(
        (name, name) for name in ("gray_over", "gray_additive", "depth_sorted", "recurrent"))
    def test_builtin_ops_only(self, name):
        ops = lite.op_names(self.paths[name][2])
        self.assertNotEmpty(ops)
        for op in ops:
            self.assertFalse(op.startswith("Flex") or op == "CUSTOM", f"non-builtin op {op}")

    def test_twenty_move_mnist_painter_parity(self):
        # The architecture of the default job (mnist_20moves), initial weights.
        task = tasks.get_task(configs.get_config("mnist_20moves"))
        train_lib.resolve_config(task)
        model = task.build_model((28, 28, 1))
        model(tf.zeros((1, 28, 28, 1)))
        saved = serving.export_saved_model(model, self.base, "mnist_20moves")
        tflite, _ = lite.convert(saved, os.path.join(self.base, "mnist.tflite"))
        x = fixtures.images((28, 28, 1), num=8)
        want = model(x, training=False)
        via_saved = tf.saved_model.load(saved).signatures["serving_default"](image=tf.constant(x))
        got = lite.LitePainter(tflite).paint(x)
        for key in serving.SERVING_OUTPUTS:
            self.assertAllClose(via_saved[key], want[key], atol=TOLERANCE, rtol=0, msg=key)
            self.assertAllClose(got[key], via_saved[key], atol=TOLERANCE, rtol=0, msg=key)
        self.assertEqual(got["canvases"].shape, (8, 20, 28, 28, 1))

    def test_batch_sizes(self):
        runner = lite.LitePainter(self.paths["gray_over"][2])
        for batch in (1, 7, 2):
            self.assertEqual(runner.paint(fixtures.images(fixtures.GRAY, num=batch))["canvas"]
                             .shape, (batch, *fixtures.GRAY))

    @parameterized.named_parameters(
        ("range", lambda x: x + 1.0, ValueError, r"`image` values must be finite and in"),
        ("nan", lambda x: x * np.nan, ValueError, "`image` values must be finite"),
        ("shape", lambda x: x[:, 1:], ValueError, r"`image` must have shape \[batch, 12, 12, 1\]"),
        ("dtype", lambda x: x.astype(np.float64), TypeError, "`image` must be float32"),
    )
    def test_bad_image_raises(self, corrupt, error, message):
        runner = lite.LitePainter(self.paths["gray_over"][2])
        with self.assertRaisesRegex(error, message):
            runner.paint(corrupt(fixtures.images(fixtures.GRAY)))

    def test_bad_moves_raise(self):
        runner = lite.LitePainter(self.paths["gray_over"][2])
        moves = runner.paint(fixtures.images(fixtures.GRAY))
        with self.assertRaisesRegex(ValueError, "`which` values must be finite and in"):
            runner.render(moves["where"], moves["what"], -moves["which"] - 1.0)
        with self.assertRaisesRegex(ValueError, "same batch size"):
            runner.render(moves["where"], moves["what"][:1], moves["which"])

    @parameterized.named_parameters(
        (name, name) for name in ("stawm_classify", "stawm_draw", "stawm_sketchpad"))
    def test_stawm_signatures_convert_with_parity(self, name):
        model = fixtures.make_model(name)
        saved = serving.export_saved_model(model, self.base, name)
        tflite, _ = lite.convert(saved, os.path.join(self.base, f"{name}.tflite"))
        sigs = tf.saved_model.load(saved).signatures
        runner = lite.LiteModel(tflite)
        self.assertCountEqual(runner.signatures, sigs.keys())
        x = fixtures.images(model.image_shape, num=3)
        for signature in sigs:
            want = sigs[signature](image=tf.constant(x))
            got = runner.run(signature, image=x)
            self.assertCountEqual(got.keys(), want.keys())
            for key in want:
                self.assertAllClose(got[key], want[key], atol=TOLERANCE, rtol=0,
                                    msg=f"{signature}/{key}")
        for op in lite.op_names(tflite):
            self.assertFalse(op.startswith("Flex") or op == "CUSTOM", f"non-builtin op {op}")
        with self.assertRaisesRegex(ValueError, r"`image` values must be finite and in"):
            runner.run("serving_default", image=x + 1.0)
        with self.assertRaisesRegex(ValueError, "No signature 'moves'"):
            runner.run("moves", image=x)

    def test_draw_reconstruct_converts_and_generate_is_named_as_left_out(self):
        model = draw.DRAW(fixtures.GRAY, num_steps=2, encoder_units=8, decoder_units=8,
                          latent_units=2, read_size=2, write_size=3, seed=1)
        model(fixtures.images(fixtures.GRAY))
        saved = serving.export_saved_model(model, self.base, "draw")
        tflite, _ = lite.convert(saved, os.path.join(self.base, "draw.tflite"))
        runner = lite.LiteModel(tflite)
        self.assertCountEqual(runner.signatures, ["reconstruct", "serving_default"])
        self.assertRegex(lite.not_converted(tflite)["generate"], "StatelessRandomNormalV2")
        x = fixtures.images(fixtures.GRAY, num=3)
        want = tf.saved_model.load(saved).signatures["reconstruct"](image=tf.constant(x))
        got = runner.run("reconstruct", image=x)
        for key in want:
            self.assertAllClose(got[key], want[key], atol=TOLERANCE, rtol=0, msg=key)

    def test_missing_files_raise(self):
        with self.assertRaisesRegex(FileNotFoundError, "No SavedModel at"):
            lite.convert(self.get_temp_dir(), os.path.join(self.get_temp_dir(), "x.tflite"))
        with self.assertRaisesRegex(FileNotFoundError, "No TFLite model at"):
            lite.LitePainter(os.path.join(self.get_temp_dir(), "missing.tflite"))


if __name__ == "__main__":
    tf.test.main()
