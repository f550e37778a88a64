"""Tests for tfpaint.models.DRAW: DRAW's recurrence, its KL, generation, T-DRAW."""

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from tests import testing
from tfpaint import losses
from tfpaint.models import draw

SHAPE = (12, 10, 1)


def make(**kwargs):
    args = dict(image_shape=SHAPE, num_steps=3, encoder_units=8, decoder_units=8,
                latent_units=4, read_size=2, write_size=3, seed=3)
    args.update(kwargs)
    return draw.DRAW(**args)


def images(num=4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(size=(num, *SHAPE)) < 0.3).astype(np.float32)


VARIANTS = (
    ("gaussian", dict(attention="gaussian")),
    ("stn", dict(attention="stn")),
    ("none", dict(attention="none")),
    ("t_draw", dict(writer="template", templates=("square", "circle"), template_size=8,
                    initial_scale=2.0)),
)


class DrawTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(*VARIANTS)
    def test_outputs_and_shapes(self, kwargs):
        model = make(**kwargs)
        out = model(images(), training=True)
        self.assertEqual(out["canvases"].shape, (4, 3, *SHAPE))
        self.assertEqual(out["logits"].shape, (4, *SHAPE))
        for key in ("z", "mu", "sigma"):
            self.assertEqual(out[key].shape, (4, 3, 4), key)
        self.assertEqual(out["kl"].shape, (4,))
        for key in ("read_boxes", "write_boxes"):
            self.assertEqual(out[key].shape, (4, 3, 4), key)
        self.assertAllClose(out["canvas"], out["canvases"][:, -1])
        self.assertAllClose(tf.sigmoid(out["logits"]), out["canvas"], atol=1e-5)
        self.assertEqual("masks" in out, kwargs.get("writer") == "template")
        if "masks" in out:
            self.assertEqual(out["masks"].shape, (4, 3, *SHAPE))
            self.assertEqual(out["colors"].shape, (4, 3, 1))

    def test_kl_is_the_closed_form_summed_over_steps_and_dimensions(self):
        model = make()
        out = model(images(), training=True)
        mu, sigma = out["mu"].numpy(), out["sigma"].numpy()
        # KL(N(mu, sigma) || N(0, 1)) = 1/2 (mu^2 + sigma^2 - log sigma^2 - 1) per dimension.
        closed = 0.5 * np.sum(mu ** 2 + sigma ** 2 - np.log(sigma ** 2) - 1.0, axis=(1, 2))
        self.assertAllClose(out["kl"], closed, rtol=1e-5, atol=1e-5)

    def test_fresh_noise_every_step_and_deterministic_means(self):
        model = make()
        x = images()
        out = model(x, training=True)
        eps = (out["z"] - out["mu"]) / out["sigma"]  # (B, T, Z)
        self.assertNotAllClose(eps[:, 0], eps[:, 1])
        mean = model(x, training=False)
        self.assertAllClose(mean["z"], mean["mu"])
        self.assertAllClose(model(x, training=False)["canvases"], mean["canvases"])

    def test_noise_seed_is_repeatable_and_leaves_the_training_stream(self):
        model = make()
        x = images()
        state = [v.numpy() for v in model.variables if "seed_generator" in v.path]
        a = model(x, noise_seed=tf.constant([1, 2]))
        b = model(x, noise_seed=tf.constant([1, 2]))
        c = model(x, noise_seed=tf.constant([1, 3]))
        self.assertAllClose(a["z"], b["z"])
        self.assertNotAllClose(a["z"], c["z"])
        self.assertAllClose(state, [v.numpy() for v in model.variables
                                    if "seed_generator" in v.path])

    @parameterized.named_parameters(("loop_of_1", 1), ("loop_and_a_tail", 2))
    def test_unroll_leaves_the_computation_as_it_is(self, unroll):
        # T = 3: a while_loop of 3 one-step iterations, or of one 2-step
        # iteration and a last step after it, against all 3 steps traced.
        x = images()
        seed = tf.constant([5, 6])
        reference, model = make(unroll=3), make(unroll=unroll)
        want = reference(x, noise_seed=seed)
        got = model(x, noise_seed=seed)
        for key in want:
            self.assertAllClose(got[key], want[key], atol=1e-6, msg=key)
        self.assertAllClose(model.generate(2, seed)["canvases"],
                            reference.generate(2, seed)["canvases"], atol=1e-6)

    @parameterized.named_parameters(*VARIANTS)
    def test_without_intermediates_the_bound_is_the_same(self, kwargs):
        # A training step's call collects only the loss' terms, with the same values.
        model = make(**kwargs)
        x = images()
        seed = tf.constant([3, 4])
        full = model(x, noise_seed=seed)
        lean = model(x, noise_seed=seed, intermediates=False)
        self.assertEqual(set(lean), {"logits", "kl", "canvas"})
        for key in lean:
            self.assertAllClose(lean[key], full[key], atol=1e-6, msg=key)

    def test_the_recurrence_equals_numpy(self):
        # Eqs 3-8 without attention (17-18), z_t = mu_t, Keras' LSTM gates (i, f, c, o).
        model = make(attention="none", num_steps=4)
        x = images(3)
        got = model(x, training=False)
        w = lambda v: v.numpy().astype(np.float64)
        sigmoid = lambda a: 1.0 / (1.0 + np.exp(-a))

        def lstm(cell, inputs, h, c):
            gates = inputs @ w(cell.kernel) + h @ w(cell.recurrent_kernel) + w(cell.bias)
            i, f, g, o = np.split(gates, 4, axis=-1)
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            return sigmoid(o) * np.tanh(c), c

        flat = x.reshape(3, -1).astype(np.float64)
        canvas = np.full_like(flat, float(model.canvas_layer.blank_logit))
        h_enc = np.tile(w(model.encoder_start), (3, 1))
        h_dec = np.tile(w(model.decoder_start), (3, 1))
        c_enc, c_dec = np.zeros_like(h_enc), np.zeros_like(h_dec)
        for t in range(4):
            error = flat - sigmoid(canvas)  # eq 3
            read = np.stack([flat, error], -1).reshape(3, -1)  # eq 17, channels interleaved
            h_enc, c_enc = lstm(model.encoder, np.concatenate([read, h_dec], -1), h_enc, c_enc)
            z = h_enc @ w(model.latent.mu_dense.kernel) + w(model.latent.mu_dense.bias)
            h_dec, c_dec = lstm(model.decoder, z, h_dec, c_dec)
            canvas = canvas + h_dec @ w(model.patch.kernel) + w(model.patch.bias)  # eq 18
            self.assertAllClose(got["z"][:, t], z, atol=1e-5)
            self.assertAllClose(got["canvases"][:, t].numpy().reshape(3, -1), sigmoid(canvas),
                                atol=1e-5)
        self.assertAllClose(got["logits"].numpy().reshape(3, -1), canvas, atol=1e-4)

    def test_error_image_reads_what_is_missing(self):
        # A recurrence of eq 3: the encoder's first read sees x - sigma(c_0).
        model = make(attention="none")
        x = images(2)
        model(x)
        start = float(tf.sigmoid(model.canvas_layer.blank_logit))
        read, _ = model._read(tf.constant(x), tf.constant(x - start), tf.zeros((2, 8)))
        flat = read.numpy().reshape(2, *SHAPE[:2], 2)
        self.assertAllClose(flat[..., 0], x[..., 0])
        self.assertAllClose(flat[..., 1], x[..., 0] - start)

    @parameterized.named_parameters(*VARIANTS)
    def test_generation_from_the_prior(self, kwargs):
        model = make(**kwargs)
        model(images(1))
        out = model.generate(5, seed=tf.constant([4, 2]))
        self.assertEqual(out["canvases"].shape, (5, 3, *SHAPE))
        self.assertEqual(out["write_boxes"].shape, (5, 3, 4))
        again = model.generate(5, seed=tf.constant([4, 2]))
        self.assertAllClose(out["canvases"], again["canvases"])
        other = model.generate(5, seed=tf.constant([4, 3]))
        self.assertNotAllClose(out["canvases"], other["canvases"])
        self.assertAllInRange(out["canvases"], 0.0, 1.0)

    @parameterized.named_parameters(*VARIANTS)
    def test_unknown_batch_xla_and_gradients(self, kwargs):
        model = make(**kwargs)
        x = images()
        want = model(x, training=False)
        spec = tf.TensorSpec([None, *SHAPE], tf.float32)
        plain = tf.function(lambda v: model(v, training=False), input_signature=[spec])
        compiled = tf.function(lambda v: model(v, training=False), jit_compile=True)
        for got in (plain(x), compiled(x)):
            self.assertAllClose(got["canvases"], want["canvases"], atol=1e-5)
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            loss = tf.reduce_mean(out["kl"] - losses.bernoulli_log_likelihood(out["logits"], x))
        grads = tape.gradient(loss, model.trainable_variables)
        testing.assert_gradients_reach_weights(self, model.trainable_variables, grads)

    @parameterized.named_parameters(*VARIANTS)
    def test_save_and_load(self, kwargs):
        model = make(**kwargs)
        x = images()
        want = model(x, training=False)
        revived = testing.save_and_load(model)
        got = revived(x, training=False)
        self.assertAllClose(got["canvases"], want["canvases"], atol=1e-6)
        self.assertEqual(revived.get_config(), model.get_config())

    @parameterized.named_parameters(
        ("attention", dict(attention="glimpse"), "`attention` must be one of"),
        ("writer", dict(writer="over"), "`writer` must be one of"),
        ("steps", dict(num_steps=0), "`num_steps` must be >= 1"),
        ("unroll", dict(unroll=0), "`unroll` must be >= 1"),
        ("channels", dict(image_shape=(8, 8, 2)), "1 or 3 channels"),
    )
    def test_bad_arguments(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            make(**kwargs)

    def test_wrong_image_shape(self):
        with self.assertRaisesRegex(ValueError, r"Expected images of shape \(batch, 12, 10, 1\)"):
            make()(np.zeros((2, 10, 12, 1), np.float32))

    def test_integer_images(self):
        with self.assertRaisesRegex(ValueError, "Expected float images in \\[0, 1\\]"):
            make()(np.zeros((2, *SHAPE), np.uint8))


if __name__ == "__main__":
    tf.test.main()
