"""Tests for tfpaint.models.dm_vae: the memory, the slot scorer, the bound and eq 8."""

import math
import os
import tempfile

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from tests import testing
from tfpaint.models import dm_vae

SHAPE = (16, 16, 1)


def make(**kwargs):
    settings = dict(image_shape=SHAPE, max_steps=3, glimpse_size=6, rnn_units=16,
                    num_slots=4, slot_units=5, noise_units=3, mlp_units=(12, 8),
                    embedding_units=(12, 6), presence_prob=0.3, seed=1)
    settings.update(kwargs)
    model = dm_vae.DMVAE(**settings)
    model(tf.zeros((1, *SHAPE)))
    return model


def scenes(num=4, seed=0):
    return testing.random_scenes(SHAPE, num, seed)


force_presence = testing.force_presence


class ScorerAndInformationLossTest(tf.test.TestCase, parameterized.TestCase):

    def test_cosine_logits_against_numpy(self):
        rng = np.random.default_rng(0)
        a, e = rng.normal(size=(5, 7)), rng.normal(size=(4, 7))
        want = 3.0 * np.array([[x @ y / np.linalg.norm(x) / np.linalg.norm(y) for y in e]
                               for x in a])
        self.assertAllClose(dm_vae.cosine_logits(a, e, 3.0), want, atol=1e-6)

    @parameterized.named_parameters(("up", 7.5, 0.01), ("down", 0.02, 40.0),
                                    ("mixed", 1e3, 1e-3))
    def test_cosine_scorer_is_invariant_to_embedding_scale(self, glimpse_gain, slot_gain):
        rng = np.random.default_rng(1)
        a = rng.normal(size=(6, 8)).astype(np.float32)
        e = rng.normal(size=(5, 8)).astype(np.float32)
        # A different positive scale for every embedding, not only one overall.
        ga = glimpse_gain * rng.uniform(0.5, 2.0, size=(6, 1)).astype(np.float32)
        ge = slot_gain * rng.uniform(0.5, 2.0, size=(5, 1)).astype(np.float32)
        self.assertAllClose(dm_vae.cosine_logits(a * ga, e * ge, 10.0),
                            dm_vae.cosine_logits(a, e, 10.0), atol=1e-4)

    def test_model_scorer_ignores_the_scale_of_its_last_embedding_layers(self):
        model = make()
        x = tf.reshape(scenes(3)[:, :6, :6], [3, -1])
        before = model.type_logits(x)
        for net, gain in ((model.glimpse_embedding, 5.0), (model.slot_embedding, 0.1)):
            last = net.layers[-1]
            last.kernel.assign(last.kernel * gain)
            last.bias.assign(last.bias * gain)
        self.assertAllClose(model.type_logits(x), before, atol=1e-5)

    def test_information_loss_is_zero_when_every_slot_is_recovered(self):
        k, s = 5, 3
        with np.errstate(divide="ignore"):
            exact = np.log(np.broadcast_to(np.eye(k)[:, None], (k, s, k)))  # -inf off the slot
        self.assertEqual(float(dm_vae.information_loss(tf.constant(exact))), 0.0)

    def test_information_loss_is_log_k_when_uniform_and_matches_numpy(self):
        k, s = 6, 4
        uniform = np.full((k, s, k), -math.log(k))
        self.assertAllClose(dm_vae.information_loss(uniform), math.log(k))
        logits = np.random.default_rng(2).normal(size=(k, s, k))
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        want = -np.mean([log_probs[j, i, j] for j in range(k) for i in range(s)])
        self.assertAllClose(dm_vae.information_loss(log_probs), want)

    def test_model_information_loss_scores_its_own_samples(self):
        model = make()
        info = model.information_loss(samples_per_slot=2, noise_seed=tf.constant([3, 4]))
        self.assertEqual(info["samples"].shape, (4, 2, 6, 6, 1))
        flat = tf.reshape(info["samples"], [8, -1])
        log_probs = tf.nn.log_softmax(model.type_logits(flat)).numpy().reshape(4, 2, 4)
        self.assertAllClose(info["log_probs"], log_probs, atol=1e-6)
        want = -np.mean([log_probs[j, i, j] for j in range(4) for i in range(2)])
        self.assertAllClose(info["loss"], want, atol=1e-6)
        again = model.information_loss(samples_per_slot=2, noise_seed=tf.constant([3, 4]))
        self.assertAllClose(again["samples"], info["samples"])

    def test_information_loss_trains_memory_generator_and_scorer_not_the_encoders(self):
        model = make()
        with tf.GradientTape() as tape:
            loss = model.information_loss(samples_per_slot=2)["loss"]
        grads = dict(zip([w.path for w in model.trainable_weights],
                         tape.gradient(loss, model.trainable_weights)))
        reached = {p for p, g in grads.items() if g is not None and np.any(g.numpy() != 0)}
        for part in ("memory", "generator", "noise_prior", "glimpse_embedding",
                     "slot_embedding"):
            self.assertTrue(any(part in p for p in reached), part)
        for part in ("noise_encoder", "rnn", "where_head", "pres_head"):
            self.assertFalse(any(part in p for p in reached), part)


class DmVaeTest(tf.test.TestCase, parameterized.TestCase):

    def test_outputs_and_shapes(self):
        model = make()
        out = model(scenes(), training=True)
        for key, shape in {"canvas": (4, *SHAPE), "canvases": (4, 3, *SHAPE),
                           "objects": (4, 3, *SHAPE), "z_type": (4, 3, 4),
                           "type_probs": (4, 3, 4), "slot": (4, 3), "eps": (4, 3, 3),
                           "z_what": (4, 3, 7), "kl_type": (4,), "kl_eps": (4,),
                           "count": (4,), "boxes": (4, 3, 4), "elbo": (4,)}.items():
            self.assertEqual(tuple(out[key].shape), shape, key)
        self.assertAllClose(out["z_type"].numpy().sum(-1), np.ones((4, 3)), atol=1e-5)
        self.assertAllEqual(out["slot"], np.argmax(out["type_probs"], axis=-1))

    def test_elbo_is_the_likelihood_minus_every_kl(self):
        model = make()
        out = model(scenes(8), training=True)
        self.assertAllClose(out["kl_what"], out["kl_type"] + out["kl_eps"], atol=1e-5)
        want = (out["log_likelihood"] - out["kl_type"] - out["kl_eps"] - out["kl_where"]
                - out["kl_pres"])
        self.assertAllClose(out["elbo"], want, rtol=1e-5)

    def test_kl_eps_is_the_closed_form_against_the_slot_prior(self):
        # One step, present: its posterior and its slot's prior are recomputed
        # from the layers, at inference (the means, the likeliest slot).
        model = make(max_steps=1)
        force_presence(model, True)
        out = model(scenes(3))
        glimpses = tf.reshape(out["glimpses"][:, 0], [3, -1])
        slot = tf.one_hot(out["slot"][:, 0], 4) @ model.memory
        post = model.noise(model.noise_encoder(tf.concat([glimpses, slot], -1)))
        prior = model.noise_prior(slot).numpy()
        loc_p, scale_p = prior[:, :3], np.log1p(np.exp(prior[:, 3:])) + 1e-3
        mu, sd = post["mu"].numpy(), post["sigma"].numpy()
        want = np.sum(np.log(scale_p / sd) + (sd ** 2 + (mu - loc_p) ** 2) / (2 * scale_p ** 2)
                      - 0.5, axis=-1)
        self.assertAllClose(out["kl_eps"], want, rtol=1e-4)
        self.assertAllClose(out["eps"][:, 0], mu, atol=1e-5)  # the mean at inference

    def test_inference_addresses_one_slot_exactly(self):
        model = make()
        out = model(scenes())
        z_type = out["z_type"].numpy()
        self.assertAllEqual(z_type, np.eye(4)[out["slot"].numpy()])

    def test_absent_steps_contribute_nothing(self):
        model = make()
        force_presence(model, False)
        out = model(scenes(), training=True)
        self.assertAllEqual(out["count"], np.zeros(4))
        self.assertAllEqual(out["canvas"], np.zeros((4, *SHAPE)))
        self.assertAllEqual(out["kl_type"], np.zeros(4))
        self.assertAllEqual(out["kl_eps"], np.zeros(4))
        self.assertAllEqual(out["kl_where"], np.zeros(4))

    @parameterized.named_parameters(("hot", 10.0, None, 0.5), ("cold", 0.01, 0.99, None))
    def test_concrete_addresses_approach_one_hot_as_the_temperature_falls(
            self, temperature, at_least, at_most):
        model = make(type_temperature=temperature)
        force_presence(model, True)
        out = model(scenes(64), training=True)
        largest = out["z_type"].numpy().max(axis=-1).mean()
        if at_least is not None:
            self.assertGreater(largest, at_least)
        if at_most is not None:
            self.assertLess(largest, at_most)

    def test_gradients_reach_every_weight(self):
        model = make(z_pres="concrete")
        x = scenes(8)
        with tf.GradientTape() as tape:
            loss, _ = model.loss_terms(model(x, training=True))
            loss = tf.reduce_mean(loss) + model.information_loss()["loss"]
        grads = tape.gradient(loss, model.trainable_weights)
        testing.assert_gradients_reach_weights(self, model.trainable_weights, grads)

    def test_sample_memory_draws_from_each_slot(self):
        model = make()
        a = model.sample_memory(5, noise_seed=tf.constant([1, 2])).numpy()
        b = model.sample_memory(5, noise_seed=tf.constant([1, 2])).numpy()
        self.assertEqual(a.shape, (4, 5, 6, 6, 1))
        self.assertAllClose(a, b)
        self.assertTrue(((a >= 0) & (a <= 1)).all())
        # One slot's samples come from its own generator input.
        noise = tf.random.stateless_normal([5, 3], [9, 9])
        one = model.generate_glimpses(tf.one_hot([2] * 5, 4), noise).numpy()
        other = model.generate_glimpses(tf.one_hot([1] * 5, 4), noise).numpy()
        self.assertNotAllClose(one, other)

    def test_unknown_batch_in_tf_function(self):
        model = make()
        fn = tf.function(lambda x: model(x, training=True)["elbo"],
                         input_signature=[tf.TensorSpec([None, *SHAPE])])
        self.assertEqual(fn(scenes(5)).shape, (5,))
        self.assertEqual(fn(scenes(2)).shape, (2,))

    def test_xla_matches(self):
        model = make()
        x = scenes(3)
        fn = lambda images: model(images, noise_seed=tf.constant([4, 4]))["elbo"]
        self.assertAllClose(tf.function(fn, jit_compile=True)(x), tf.function(fn)(x),
                            rtol=1e-4, atol=1e-3)

    @parameterized.named_parameters(("bernoulli", "bernoulli"), ("concrete", "concrete"))
    def test_save_and_load(self, z_pres):
        model = make(z_pres=z_pres, type_temperature=0.3, similarity_scale=4.0)
        x = scenes()
        path = os.path.join(tempfile.mkdtemp(), "dm_vae.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
        self.assertIsInstance(loaded, dm_vae.DMVAE)
        self.assertEqual(loaded.get_config(), model.get_config())
        self.assertAllClose(loaded.memory, model.memory)
        self.assertAllClose(loaded(x)["canvas"], model(x)["canvas"], atol=1e-6)

    @parameterized.named_parameters(
        ("slots", dict(num_slots=1), "`num_slots` must be >= 2"),
        ("temperature", dict(type_temperature=0.0), "`type_temperature` must be > 0"),
        ("scale", dict(similarity_scale=-1.0), "`similarity_scale` must be > 0"),
        ("mlp", dict(mlp_units=()), "`mlp_units` must be one or more"),
        ("embedding", dict(embedding_units=(4, 0)), "`embedding_units` must be one or more"),
        ("noise", dict(noise_units=0), "`noise_units` must be >= 1"),
        ("air", dict(presence_prob=1.0), r"`presence_prob` must be in \(0, 1\)"),
    )
    def test_bad_arguments(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            dm_vae.DMVAE(**kwargs)


class BlankSceneTest(tf.test.TestCase):

    def test_a_blank_scene_gives_count_zero_after_a_short_training(self):
        # Scenes with no object or one square; the count prior and the KLs make
        # an empty step cost more than it explains on a blank scene.
        rng = np.random.default_rng(0)
        images = np.zeros((64, *SHAPE), np.float32)
        for n in range(32):
            y, x = rng.integers(1, 9, size=2)
            images[n, y:y + 6, x:x + 6] = 1.0
        model = make(z_pres="concrete", presence_prob=0.1, where_prior=(math.log(0.4), 0.3, 1.0))
        optimizer = keras.optimizers.Adam(3e-3)

        @tf.function
        def step(batch):
            with tf.GradientTape() as tape:
                loss, _ = model.loss_terms(model(batch, training=True))
                loss = tf.reduce_mean(loss)
            optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_weights),
                                          model.trainable_weights))
            return loss

        for _ in range(300):
            step(images)
        count = model(images)["count"].numpy()
        self.assertAllEqual(count[32:], np.zeros(32))  # the blank scenes
        self.assertGreater(np.mean(count[:32] >= 1), 0.9)  # not by never drawing


if __name__ == "__main__":
    tf.test.main()
