"""Tests for tfpaint.estimators: the score-function estimate and AIR's count prior."""

import itertools

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tfpaint import estimators

# A tiny discrete problem: z ~ Bernoulli(sigmoid(theta)) with reward f(z).
THETA = 0.3
REWARDS = (11.0, 13.0)  # f(0), f(1): a large mean, a small difference


def _exact_gradient():
    """d/dtheta E[f(z)] = p (1 - p) (f(1) - f(0)), with p = sigmoid(theta)."""
    p = 1.0 / (1.0 + np.exp(-THETA))
    return p * (1.0 - p) * (REWARDS[1] - REWARDS[0]), (1 - p) * REWARDS[0] + p * REWARDS[1]


def _per_sample_estimates(num, baseline, seed=0):
    """Minus the gradient of each sample's surrogate loss: one estimate per sample."""
    theta = tf.Variable(tf.fill([num], THETA))
    z = tf.cast(tf.random.stateless_uniform([num], [seed, 1]) < tf.sigmoid(THETA), tf.float32)
    reward = tf.where(z > 0, REWARDS[1], REWARDS[0])
    with tf.GradientTape() as tape:
        log_prob = -tf.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=theta)  # (num,)
        loss, _ = estimators.score_function_loss(log_prob, reward, baseline)
        total = tf.reduce_sum(loss)
    return -tape.gradient(total, theta).numpy()  # each sample's own estimate


class ScoreFunctionTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(("no_baseline", None), ("constant", 12.0),
                                    ("a_poor_one", 5.0))
    def test_estimate_is_unbiased(self, baseline):
        exact, _ = _exact_gradient()
        estimates = _per_sample_estimates(200_000, baseline)
        error = estimates.std() / np.sqrt(len(estimates))
        self.assertLess(abs(estimates.mean() - exact), 4.0 * error)

    def test_a_baseline_near_the_mean_reward_lowers_the_variance(self):
        _, mean_reward = _exact_gradient()
        plain = _per_sample_estimates(50_000, None).var()
        centred = _per_sample_estimates(50_000, mean_reward).var()
        # Centring removes the 11-13 offset of the reward: far less variance.
        self.assertLess(centred, plain / 20.0)

    def test_the_baseline_is_trained_toward_the_reward_and_the_policy_is_not(self):
        log_prob = tf.Variable([-0.5, -1.0])
        baseline = tf.Variable([1.0, 4.0])
        reward = tf.constant([3.0, 2.0])
        with tf.GradientTape(persistent=True) as tape:
            loss, baseline_loss = estimators.score_function_loss(log_prob, reward, baseline)
            total_loss, total_baseline = tf.reduce_sum(loss), tf.reduce_sum(baseline_loss)
        # d/db (f - b)^2 = -2 (f - b); the surrogate sends nothing to b.
        self.assertAllClose(tape.gradient(total_baseline, baseline), [-4.0, 4.0])
        self.assertIsNone(tape.gradient(total_loss, baseline))
        self.assertIsNone(tape.gradient(total_baseline, log_prob))
        # d/dlog q of -(f - b) log q is -(f - b).
        self.assertAllClose(tape.gradient(total_loss, log_prob), [-2.0, 2.0])

    @parameterized.named_parameters(("large", 100.0, 100.0), ("small", 0.1, 1.0))
    def test_normalized_signal_is_divided_by_its_deviation_but_at_most_by_one(self, spread,
                                                                                 divisor):
        rng = np.random.default_rng(3)
        signal = rng.normal(size=64)
        signal = (signal - signal.mean()) / signal.std() * spread  # std exactly `spread`
        baseline = rng.normal(size=64)
        log_prob = tf.Variable(rng.normal(size=64))
        with tf.GradientTape() as tape:
            loss, baseline_loss = estimators.score_function_loss(
                log_prob, signal + baseline, baseline, normalize=True)
            total = tf.reduce_sum(loss)
        # -d/dlog q is the centred signal over max(1, its std).
        self.assertAllClose(-tape.gradient(total, log_prob), signal / divisor, rtol=1e-5)
        # The baseline's own loss is not rescaled.
        self.assertAllClose(baseline_loss, signal ** 2, rtol=1e-5)

    def test_normalized_estimate_is_the_exact_gradient_over_the_scale(self):
        low, high = 10.0, 50.0  # a signal of +-20 around the baseline: scale about 20
        p = 1.0 / (1.0 + np.exp(-THETA))
        exact = p * (1.0 - p) * (high - low)
        num = 100_000
        theta = tf.Variable(tf.fill([num], THETA))
        z = tf.cast(tf.random.stateless_uniform([num], [4, 1]) < tf.sigmoid(THETA), tf.float32)
        reward = tf.where(z > 0, high, low)
        with tf.GradientTape() as tape:
            log_prob = -tf.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=theta)
            loss, _ = estimators.score_function_loss(log_prob, reward, 30.0, normalize=True)
            total = tf.reduce_sum(loss)
        estimates = -tape.gradient(total, theta).numpy()
        scale = float(np.std(reward.numpy() - 30.0))
        self.assertGreater(scale, 19.0)
        error = estimates.std() / np.sqrt(num)
        self.assertLess(abs(estimates.mean() - exact / scale), 4.0 * error)

    def test_shapes_are_checked(self):
        with self.assertRaisesRegex(ValueError, r"must be \(batch,\) vectors"):
            estimators.score_function_loss(tf.zeros([2, 3]), tf.zeros([2]))
        with self.assertRaisesRegex(ValueError, r"`baseline` must be a scalar or a \(batch,\)"):
            estimators.score_function_loss(tf.zeros([2]), tf.zeros([2]), tf.zeros([2, 1]))


class CountPriorTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(("q_0.3", 0.3), ("q_0.01", 0.01), ("q_0.9", 0.9))
    def test_log_probs_sum_to_one_over_counts(self, q):
        steps = 4
        # The sequence of count n: n present steps, then absent ones.
        sequences = np.array([[1.0] * n + [0.0] * (steps - n) for n in range(steps + 1)],
                             np.float32)
        log_prob = estimators.geometric_count_log_prob(sequences, q).numpy()
        self.assertAllClose(np.exp(log_prob).sum(), 1.0, atol=1e-6)
        expected = [q ** n * (1 - q) for n in range(steps)] + [q ** steps]
        self.assertAllClose(np.exp(log_prob), expected, rtol=1e-5)

    def test_steps_after_the_first_absent_one_contribute_nothing(self):
        # Every sequence with the same first absent step has the same prior.
        q = 0.4
        sequences = np.array(list(itertools.product([0.0, 1.0], repeat=4)), np.float32)
        log_prob = estimators.geometric_count_log_prob(sequences, q).numpy()
        counts = np.argmin(np.concatenate([sequences, np.zeros((16, 1))], axis=1), axis=1)
        for n in range(5):
            self.assertAllClose(log_prob[counts == n], np.full((counts == n).sum(),
                                                                 log_prob[counts == n][0]))
            expected = q ** n * (1 - q) if n < 4 else q ** 4
            self.assertAllClose(np.exp(log_prob[counts == n][0]), expected, rtol=1e-5)

    def test_presence_mask_is_the_product_of_earlier_steps(self):
        z = np.array([[1.0, 1.0, 0.0, 1.0], [0.0, 1.0, 1.0, 1.0], [0.5, 0.5, 1.0, 1.0]],
                     np.float32)
        mask = estimators.presence_mask(z).numpy()
        expected = np.stack([np.prod(z[:, :i], axis=1) for i in range(4)], axis=1)
        self.assertAllClose(mask, expected)

    def test_unknown_batch_and_gradient_of_the_presence_probability(self):
        fn = tf.function(lambda z, q: estimators.geometric_count_log_prob(z, q),
                         input_signature=[tf.TensorSpec([None, 3]), tf.TensorSpec([])])
        z = tf.constant([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
        q = tf.Variable(0.3)
        with tf.GradientTape() as tape:
            log_prob = fn(z, q)
        # d/dq [log q + log(1 - q)] = 1/q - 1/(1 - q); d/dq 3 log q = 3/q.
        self.assertAllClose(tape.jacobian(log_prob, q), [1 / 0.3 - 1 / 0.7, 3 / 0.3],
                            rtol=1e-5)

    @parameterized.named_parameters(("zero", 0.0), ("one", 1.0))
    def test_presence_prob_outside_the_open_interval_raises(self, q):
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, r"must be in \(0, 1\)"):
            estimators.geometric_count_log_prob(tf.ones([1, 2]), q)


if __name__ == "__main__":
    tf.test.main()
