"""WS-RAM through the shared export path: the `classify` signature, SavedModel and TFLite."""

import json
import os
import tempfile

import numpy as np
import tensorflow as tf

from export import lite
from export import serving
from tests.export import fixtures
from tfpaint.models import ws_ram

SHAPE = (20, 20, 1)


def _model():
    model = ws_ram.WSRAM(SHAPE, num_classes=4, num_glimpses=3, glimpse_size=5,
                         scales=(0.3, 0.6), low_res_size=5, units=8, samples=2, seed=3)
    model(tf.zeros((1, *SHAPE)))
    # A policy whose boxes differ from image to image (the initial heads'
    # small weights put every window near the centre).
    for head in (model.location_head, model.scale_head):
        head.kernel.assign(tf.random.stateless_normal(head.kernel.shape, [1, 2], stddev=0.3))
    return model


class WsRamExportTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.base = tempfile.mkdtemp()
        cls.model = _model()
        cls.path = serving.export_saved_model(cls.model, cls.base, "ws_ram")
        cls.signatures = tf.saved_model.load(cls.path).signatures
        cls.x = fixtures.images(SHAPE, num=6)

    def test_classify_matches_keras(self):
        want = self.model(self.x, training=False)
        boxes = want["boxes"].numpy()[:, 0]
        self.assertGreater(np.ptp(boxes[:, -1, 0]), 0.1, "every image looked at the same place")
        for name in ("classify", "serving_default"):
            got = self.signatures[name](image=tf.constant(self.x))
            self.assertCountEqual(got.keys(), serving.CLASSIFY_OUTPUTS)
            self.assertAllClose(got["logits"], want["logits"][:, 0], atol=1e-5, msg=name)
            self.assertAllClose(got["probabilities"], tf.nn.softmax(want["logits"][:, 0]),
                                atol=1e-5)
            self.assertAllClose(got["boxes"], boxes, atol=1e-4)

    def test_the_same_answer_on_every_request(self):
        first = self.signatures["classify"](image=tf.constant(self.x))
        second = self.signatures["classify"](image=tf.constant(self.x))
        self.assertAllEqual(first["logits"], second["logits"])

    def test_bad_image_raises(self):
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                    r"`image` values must be finite and in \[0.0, 1.0\]"):
            self.signatures["classify"](image=tf.constant(self.x * 2.0))
        with self.assertRaisesRegex((tf.errors.InvalidArgumentError, ValueError), "image"):
            self.signatures["classify"](image=tf.zeros((2, 8, 8, 1)))

    def test_metadata(self):
        with open(os.path.join(self.path, serving.METADATA_FILE)) as f:
            meta = json.load(f)
        self.assertEqual(meta["model"], "WSRAM")
        self.assertEqual(meta["num_glimpses"], 3)
        self.assertEqual(meta["signatures"]["classify"]["outputs"],
                         list(serving.CLASSIFY_OUTPUTS))

    def test_tflite_matches_saved_model(self):
        tflite, _ = lite.convert(self.path, os.path.join(self.base, "ws_ram.tflite"))
        runner = lite.LiteModel(tflite)
        self.assertCountEqual(runner.signatures, ["classify", "serving_default"])
        want = self.signatures["classify"](image=tf.constant(self.x))
        got = runner.run("classify", image=self.x)
        for key in serving.CLASSIFY_OUTPUTS:
            self.assertAllClose(got[key], want[key], atol=1e-4, rtol=0, msg=key)


if __name__ == "__main__":
    tf.test.main()
