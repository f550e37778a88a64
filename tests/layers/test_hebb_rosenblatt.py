"""Tests for tfpaint.layers.hebb_rosenblatt: the memory of STAWM (eq 2)."""

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from tests import testing
from tfpaint.layers import hebb_rosenblatt as hr

M = 6
T = 5
B = 3


def relu6(x):
    return np.clip(x, 0.0, 6.0)


def numpy_memory(xs, eta, delta, theta, queries=None):
    """Eq 2 as a plain loop: `W <- W + eta e (x) relu6(e W + theta e) - delta W`.

    Args:
        xs: `(B, T, M)` memory inputs before the input activation.
        queries: optional `(B, M)` query projected through every intermediate
            memory, without the theta term.

    Returns:
        `(B, T, M, M)` memories after each step, and `(B, T, M)` projections.
    """
    batch, steps, m = xs.shape
    memories, projections = [], []
    for b in range(batch):
        w = np.zeros((m, m))
        ws, ps = [], []
        for t in range(steps):
            e = relu6(xs[b, t].astype(np.float64))
            response = relu6(e @ w + theta * e)
            w = w + eta * np.outer(e, response) - delta * w
            ws.append(w.copy())
            if queries is not None:
                ps.append(relu6(queries[b] @ w))
        memories.append(ws)
        projections.append(ps)
    return np.array(memories), np.array(projections)


class HebbRosenblattCellTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        testing.set_seeds()
        rng = np.random.default_rng(0)
        # Inputs straddle both ends of ReLU6 so that clipping is exercised.
        self.xs = rng.uniform(-0.5, 1.0, size=(B, T, M)).astype(np.float32)
        self.queries = rng.uniform(0.0, 1.0, size=(B, M)).astype(np.float32)

    @parameterized.named_parameters(("fixed_rates", False), ("learnable_rates", True))
    def test_rnn_matches_numpy_loop_of_eq2(self, learnable):
        cell = hr.HebbRosenblattCell(M, learnable_rates=learnable)
        rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True)
        sequence, terminal = rnn(self.xs)
        expected, _ = numpy_memory(self.xs, 0.4, 0.2, 0.5)
        self.assertEqual(tuple(sequence.shape), (B, T, M * M))
        self.assertAllClose(
            tf.reshape(sequence, (B, T, M, M)), expected, atol=1e-5, rtol=1e-5
        )
        self.assertAllClose(tf.reshape(terminal, (B, M, M)), expected[:, -1], atol=1e-5)

    @parameterized.named_parameters(("fixed_rates", False), ("learnable_rates", True))
    def test_query_projection_matches_numpy_and_omits_theta(self, learnable):
        cell = hr.HebbRosenblattCell(M, eta=0.5, delta=0.1, theta=0.3,
                                     learnable_rates=learnable, with_query=True)
        queries = np.repeat(self.queries[:, None], T, axis=1)  # (B, T, M)
        rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True, unroll=True)
        projections, terminal = rnn(np.concatenate([self.xs, queries], axis=-1))
        memories, expected = numpy_memory(self.xs, 0.5, 0.1, 0.3, self.queries)
        self.assertAllClose(projections, expected, atol=1e-5, rtol=1e-5)
        self.assertAllClose(tf.reshape(terminal, (B, M, M)), memories[:, -1], atol=1e-5)
        # With theta the projection of q would differ by theta * q inside phi.
        with_theta = relu6(np.einsum("bm,bmn->bn", self.queries, memories[:, -1])
                           + 0.3 * self.queries)
        self.assertGreater(np.abs(projections[:, -1] - with_theta).max(), 1e-2)

    def test_learned_rates_are_used(self):
        cell = hr.HebbRosenblattCell(M, learnable_rates=True)
        rnn = keras.layers.RNN(cell, return_state=True)
        rnn(self.xs)
        cell.eta.assign(0.7)
        cell.delta.assign(0.3)
        cell.theta.assign(0.1)
        _, terminal = rnn(self.xs)
        expected, _ = numpy_memory(self.xs, 0.7, 0.3, 0.1)
        self.assertAllClose(tf.reshape(terminal, (B, M, M)), expected[:, -1], atol=1e-5)

    def test_memory_starts_at_zero_and_first_update_is_theta_term(self):
        cell = hr.HebbRosenblattCell(M)
        w0 = tf.reshape(cell.get_initial_state(B)[0], (B, M, M))
        self.assertAllEqual(w0, np.zeros((B, M, M)))
        e = relu6(self.xs[:, 0])
        w1 = cell.update(w0, tf.constant(e))
        expected = 0.4 * e[:, :, None] * relu6(0.5 * e)[:, None, :]
        self.assertAllClose(w1, expected, atol=1e-6)

    @parameterized.named_parameters(("fixed_rates", False, 0), ("learnable_rates", True, 3))
    def test_cell_layer_harness(self, learnable, num_weights):
        state = np.random.default_rng(1).normal(size=(B, M * M)).astype(np.float32) * 0.1
        testing.run_layer_test(
            self,
            hr.HebbRosenblattCell,
            dict(units=M, learnable_rates=learnable),
            (self.xs[:, 0], state),
            expected_output_shape=((B, M * M), [(B, M * M)]),
            expected_num_trainable_weights=num_weights,
        )

    def test_rnn_model_keras_save_load_and_fit(self):
        queries = np.repeat(self.queries[:, None], T, axis=1)
        inputs = np.concatenate([self.xs, queries], axis=-1)
        cell = hr.HebbRosenblattCell(M, learnable_rates=True, with_query=True)
        sequence = keras.Input(batch_shape=(None, T, 2 * M))
        outputs = keras.layers.RNN(cell, return_sequences=True)(sequence)
        model = keras.Model(sequence, outputs)
        before = model(inputs)
        loaded = testing.save_and_load(model, self.get_temp_dir())
        self.assertAllEqual(loaded(inputs), before)
        self.assertEqual(loaded.layers[-1].cell.get_config(), cell.get_config())
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        eta = float(cell.eta.numpy())
        model.fit(inputs, np.zeros((B, T, M), np.float32), batch_size=B, verbose=0)
        self.assertNotAlmostEqual(float(cell.eta.numpy()), eta)

    def test_unknown_batch_size_in_tf_function(self):
        cell = hr.HebbRosenblattCell(M)
        rnn = keras.layers.RNN(cell, return_state=True)

        @tf.function(input_signature=[tf.TensorSpec([None, T, M], tf.float32)])
        def terminal(xs):
            return rnn(xs)[1]

        expected, _ = numpy_memory(self.xs, 0.4, 0.2, 0.5)
        self.assertAllClose(tf.reshape(terminal(self.xs), (B, M, M)), expected[:, -1],
                            atol=1e-5)
        self.assertAllClose(tf.reshape(terminal(self.xs[:1]), (1, M, M)), expected[:1, -1],
                            atol=1e-5)

    def test_gradients_reach_rates_and_inputs(self):
        cell = hr.HebbRosenblattCell(M, learnable_rates=True, with_query=True)
        rnn = keras.layers.RNN(cell)
        queries = np.repeat(self.queries[:, None], T, axis=1)
        inputs = tf.constant(np.concatenate([self.xs, queries], axis=-1))
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = testing.projection_loss(rnn(inputs))
        input_grad, *grads = tape.gradient(loss, [inputs] + cell.trainable_weights)
        testing.assert_gradients_reach_weights(self, cell.trainable_weights, grads)
        self.assertGreater(float(tf.reduce_max(tf.abs(input_grad))), 0.0)

    @parameterized.named_parameters(
        ("eta_not_above_delta", dict(eta=0.2, delta=0.2), "eta > delta"),
        ("delta_zero", dict(eta=0.4, delta=0.0), "delta > 0"),
        ("negative_theta", dict(theta=-0.1), "theta >= 0"),
    )
    def test_unstable_rates_raise_or_warn(self, rates, condition):
        with self.assertRaisesRegex(ValueError, "stability conditions.*" + condition):
            hr.HebbRosenblattCell(M, **rates)
        with self.assertWarnsRegex(UserWarning, condition):
            hr.HebbRosenblattCell(M, check_stability="warn", **rates)
        hr.HebbRosenblattCell(M, check_stability="none", **rates)

    def test_bad_arguments_raise(self):
        with self.assertRaisesRegex(ValueError, "`units` must be >= 1"):
            hr.HebbRosenblattCell(0)
        with self.assertRaisesRegex(ValueError, "`input_activation` must be one of"):
            hr.HebbRosenblattCell(M, input_activation="tanh")
        with self.assertRaisesRegex(ValueError, "`check_stability` must be one of"):
            hr.HebbRosenblattCell(M, check_stability="maybe")
        cell = hr.HebbRosenblattCell(M, with_query=True)
        with self.assertRaisesRegex(ValueError, r"expects inputs of shape \(batch, 12\)"):
            keras.layers.RNN(cell)(self.xs)


if __name__ == "__main__":
    tf.test.main()
