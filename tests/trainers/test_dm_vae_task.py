"""Tests for trainers/tasks/dm_vae.py: DM-VAE on the one training loop.

The training tests run the `tiny` config (24x24 scenes, N = 3, 3 slots) for a
few steps, without XLA.
"""

import math
import os
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tests.trainers import training
from tfpaint import metrics
from tfpaint.models import dm_vae
from trainers import tasks
from trainers import train_lib
from trainers.configs import dm_vae as configs


def tiny_config(**overrides):
    config = configs.get_config("tiny")
    for key, value in overrides.items():
        config[key] = value
    return config


class DmVaeTaskTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        self.task = tasks.get_task(tiny_config(iwae_samples=1))
        train_lib.resolve_config(self.task)
        self.train_set, self.test_set = self.task.load_data()
        self.model = self.task.build_model(self.test_set.image_shape)

    def test_config_builds_the_papers_memory(self):
        config = configs.get_config("multi_mnist_paper")
        task = tasks.get_task(config)
        model = task.build_model((50, 50, 1))
        self.assertIsInstance(model, dm_vae.DMVAE)
        self.assertEqual((model.num_slots, model.noise_units, model.rnn_units),
                         (15, 32, 256))
        self.assertEqual((model.mlp_units, model.embedding_units), ((256, 128), (256, 128)))
        self.assertEqual((config.batch_size, config.learning_rate), (64, 1e-4))
        self.assertEqual(configs.get_config("multi_mnist_cpu_no_information")
                         .information_weight, 0.0)

    @parameterized.named_parameters(("with", 2.0), ("without", 0.0))
    def test_loss_adds_gamma_times_the_information_loss(self, gamma):
        task = tasks.get_task(tiny_config(information_weight=gamma, information_samples=2))
        train_lib.resolve_config(task)
        batch = {"image": tf.constant(self.test_set.images[:4])}
        self.model.seed_generator.state.assign([5, 0])
        loss, parts = task.loss(self.model, batch)
        self.model.seed_generator.state.assign([5, 0])
        outputs = self.model(batch["image"], training=True)
        want, _ = self.model.loss_terms(outputs)
        if gamma:
            info = self.model.information_loss(2)["loss"]
            want = want + gamma * info
            self.assertAllClose(parts["information_loss"], np.full(4, info), rtol=1e-5)
        else:
            self.assertNotIn("information_loss", parts)
        self.assertAllClose(loss, want, rtol=1e-5)
        self.assertContainsSubset({"kl_type", "kl_eps", "kl_where", "count"}, set(parts))

    def test_slot_purity_is_of_the_matched_digits(self):
        outputs = {k: v.numpy() for k, v in
                   self.task.eval_function(self.model, jit=False)(self.test_set.images).items()}
        examples = self.test_set.examples()
        # Force objects everywhere so that there are matches to score.
        outputs["z_pres"] = np.ones_like(outputs["z_pres"])
        result = self.task.evaluate(outputs, examples)
        scenes = examples.scenes
        scene, step, digit, _ = metrics.match_boxes(outputs["boxes"], outputs["z_pres"] > 0.5,
                                                    scenes.boxes, scenes.valid)
        self.assertGreater(len(scene), 0)
        self.assertAllClose(result["slot_purity"], metrics.slot_purity(
            outputs["slot"][scene, step], scenes.labels[scene, digit]))
        self.assertEqual(result["slots_used"], len(np.unique(outputs["slot"])))

    @parameterized.named_parameters(
        ("dataset", dict(dataset="mnist", image_size=None), "DM-VAE trains on multi_mnist"),
        ("slots", dict(num_slots=1), "`num_slots` must be >= 2"),
        ("layers", dict(mlp_layers=(8, 0)), "`mlp_layers` must be one or more"),
        ("embedding", dict(embedding_layers=()), "`embedding_layers` must be one or more"),
        ("temperature", dict(type_temperature=0.0), "`type_temperature` must be"),
        ("gamma", dict(information_weight=-1.0), r"`information_weight` \(gamma\) must be"),
        ("steps", dict(max_steps=1), r"`max_steps` \(1\) must be at least `max_objects`"),
    )
    def test_bad_config(self, overrides, message):
        task = tasks.get_task(tiny_config(**overrides))
        with self.assertRaisesRegex(ValueError, message):
            train_lib.resolve_config(task)

    def test_slow_trains_and_writes_memory_and_slot_pictures(self):
        workdir = tempfile.mkdtemp(dir=self.get_temp_dir())
        result, state, _ = training.train_quietly(tiny_config(z_pres="concrete"), workdir)
        self.assertEqual(int(state.step.numpy()), 4)
        self.assertContainsSubset({"count_accuracy", "neg_elbo_nats", "iwae_2_nats",
                                   "slots_used"}, set(result))
        self.assertTrue(math.isfinite(result["neg_elbo_nats"]))
        self.assertEqual(len(training.scalars(os.path.join(workdir, "train"),
                                              "information_loss")), 4)
        width, height, _ = training.summary_image(os.path.join(workdir, "eval"),
                                                  "dm_vae/memory")
        # 3 slots of 8x8 primitives, a swatch and 8 samples each, 1-pixel gaps, scale 2.
        self.assertEqual((height, width), (2 * (3 * 9 + 1), 2 * (9 * 9 + 1)))
        training.summary_image(os.path.join(workdir, "eval"), "dm_vae/slots")
        self.assertTrue(os.path.exists(os.path.join(workdir, "progress.png")))


if __name__ == "__main__":
    tf.test.main()
