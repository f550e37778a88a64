"""DM-VAE through the shared export path: `scenes` with slots, `sample_slot`, TFLite."""

import json
import os
import tempfile

import numpy as np
import tensorflow as tf

from export import lite
from export import serving
from tests.export import fixtures
from tfpaint.models import dm_vae

SHAPE = (16, 16, 1)


def _model():
    model = dm_vae.DMVAE(SHAPE, max_steps=3, glimpse_size=6, rnn_units=8, num_slots=4,
                         slot_units=3, noise_units=2, mlp_units=(8,), embedding_units=(8,),
                         seed=3)
    model(tf.zeros((1, *SHAPE)))
    # Large presence weights, so the scenes get different counts.
    kernel = model.pres_head.kernel
    kernel.assign(tf.random.stateless_normal(kernel.shape, [1, 2], stddev=3.0))
    return model


class DmVaeExportTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.base = tempfile.mkdtemp()
        cls.model = _model()
        cls.path = serving.export_saved_model(cls.model, cls.base, "dm_vae")
        cls.signatures = tf.saved_model.load(cls.path).signatures
        cls.x = fixtures.images(SHAPE, num=12)

    def test_scenes_match_keras_with_slots(self):
        want = self.model(self.x, training=False)
        present = want["z_pres"].numpy()
        self.assertGreater(len(set(want["count"].numpy().tolist())), 1, "counts all alike")
        for name in ("scenes", "serving_default"):
            got = self.signatures[name](image=tf.constant(self.x))
            self.assertCountEqual(got.keys(), serving.DM_VAE_SCENES_OUTPUTS)
            self.assertAllClose(got["count"], want["count"], msg=name)
            self.assertAllClose(got["objects"], want["objects"], atol=1e-5)
            slots = np.where(present > 0.5, want["slot"].numpy(), -1)
            self.assertAllEqual(got["slots"], slots)
            self.assertTrue((slots == -1).any() and (slots >= 0).any())

    def test_sample_slot_draws_that_slots_primitives(self):
        got = self.signatures["sample_slot"](slot=tf.constant(2), num_samples=tf.constant(5),
                                             seed=tf.constant([4, 5]))["primitives"]
        noise = tf.random.stateless_normal([5, 2], [4, 5])
        want = self.model.generate_glimpses(tf.one_hot([2] * 5, 4), noise)
        self.assertEqual(got.shape, (5, 6, 6, 1))
        self.assertAllClose(got, want, atol=1e-5)
        other = self.signatures["sample_slot"](slot=tf.constant(1), num_samples=tf.constant(5),
                                               seed=tf.constant([4, 5]))["primitives"]
        self.assertNotAllClose(got, other)

    def test_bad_slot_or_count_raises(self):
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                    r"`slot` must be in \[0, 3\]"):
            self.signatures["sample_slot"](slot=tf.constant(4), num_samples=tf.constant(1),
                                           seed=tf.constant([0, 0]))
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                    r"`num_samples` must be in \[1, 1024\]"):
            self.signatures["sample_slot"](slot=tf.constant(0), num_samples=tf.constant(0),
                                           seed=tf.constant([0, 0]))

    def test_metadata(self):
        with open(os.path.join(self.path, serving.METADATA_FILE)) as f:
            meta = json.load(f)
        self.assertEqual(meta["num_slots"], 4)
        self.assertEqual(meta["signatures"]["scenes"]["outputs"],
                         list(serving.DM_VAE_SCENES_OUTPUTS))
        self.assertEqual(meta["signatures"]["sample_slot"]["inputs"]["slot"]["range"], [0, 3])

    def test_tflite_matches_saved_model(self):
        tflite, _ = lite.convert(self.path, os.path.join(self.base, "dm_vae.tflite"))
        runner = lite.LiteModel(tflite)
        self.assertIn("scenes", runner.signatures)
        want = self.signatures["scenes"](image=tf.constant(self.x[:5]))
        got = runner.run("scenes", image=self.x[:5])
        for key in serving.DM_VAE_SCENES_OUTPUTS:
            self.assertAllClose(got[key], want[key], atol=1e-4, rtol=0, msg=key)


if __name__ == "__main__":
    tf.test.main()
