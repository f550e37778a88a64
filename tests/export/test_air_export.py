"""AIR through the shared export path: the `scenes` signature, SavedModel and TFLite."""

import json
import os
import tempfile

import numpy as np
import tensorflow as tf

from export import lite
from export import serving
from tests.export import fixtures
from tfpaint.models import air

SHAPE = (16, 16, 1)


def _model():
    model = air.AIR(SHAPE, max_steps=3, glimpse_size=6, rnn_units=8, hidden_units=8,
                    what_units=2, seed=3)
    model(tf.zeros((1, *SHAPE)))
    # Large presence weights, so the scenes get different counts (at the
    # initial ones every step's rho is about 0.5).
    kernel = model.pres_head.kernel
    kernel.assign(tf.random.stateless_normal(kernel.shape, [1, 2], stddev=3.0))
    return model


class AirExportTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.base = tempfile.mkdtemp()
        cls.model = _model()
        cls.path = serving.export_saved_model(cls.model, cls.base, "air")
        cls.signatures = tf.saved_model.load(cls.path).signatures
        cls.x = fixtures.images(SHAPE, num=12)

    def test_scenes_match_keras(self):
        want = self.model(self.x, training=False)
        present = want["z_pres"].numpy()
        self.assertGreater(len(set(want["count"].numpy().tolist())), 1, "counts all alike")
        for name in ("scenes", "serving_default"):
            got = self.signatures[name](image=tf.constant(self.x))
            self.assertCountEqual(got.keys(), serving.SCENES_OUTPUTS)
            self.assertAllClose(got["count"], want["count"], msg=name)
            self.assertAllClose(got["present"], present, msg=name)
            self.assertAllClose(got["boxes"], want["boxes"] * present[..., None], atol=1e-5)
            self.assertAllClose(got["objects"], want["objects"], atol=1e-5)
            self.assertAllClose(got["canvas"], want["canvas"], atol=1e-5)

    def test_objects_sum_to_canvas_and_absent_ones_are_zero(self):
        got = self.signatures["scenes"](image=tf.constant(self.x))
        objects, present = got["objects"].numpy(), got["present"].numpy()
        self.assertAllClose(objects.sum(axis=1), got["canvas"], atol=1e-5)
        absent = present < 0.5
        self.assertTrue(absent.any() and (~absent).any())
        self.assertAllEqual(objects[absent], np.zeros_like(objects[absent]))
        self.assertAllEqual(got["boxes"].numpy()[absent], np.zeros((absent.sum(), 4)))
        self.assertTrue((np.abs(objects[~absent]).sum(axis=(1, 2, 3)) > 0).all())
        self.assertAllEqual(got["count"], present.sum(axis=1))

    def test_bad_image_raises(self):
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                    r"`image` values must be finite and in \[0.0, 1.0\]"):
            self.signatures["scenes"](image=tf.constant(self.x * 2.0))
        with self.assertRaisesRegex((tf.errors.InvalidArgumentError, ValueError), "image"):
            self.signatures["scenes"](image=tf.zeros((2, 8, 8, 1)))

    def test_metadata(self):
        with open(os.path.join(self.path, serving.METADATA_FILE)) as f:
            meta = json.load(f)
        self.assertEqual(meta["model"], "AIR")
        self.assertEqual(meta["max_steps"], 3)
        self.assertEqual(meta["signatures"]["scenes"]["outputs"], list(serving.SCENES_OUTPUTS))

    def test_tflite_matches_saved_model(self):
        tflite, _ = lite.convert(self.path, os.path.join(self.base, "air.tflite"))
        runner = lite.LiteModel(tflite)
        self.assertCountEqual(runner.signatures, ["scenes", "serving_default"])
        want = self.signatures["scenes"](image=tf.constant(self.x[:5]))
        got = runner.run("scenes", image=self.x[:5])
        for key in serving.SCENES_OUTPUTS:
            self.assertAllClose(got[key], want[key], atol=1e-4, rtol=0, msg=key)


if __name__ == "__main__":
    tf.test.main()
