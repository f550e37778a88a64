"""Tests for tfpaint.estimators: the score-function estimate, AIR's count prior and
WS-RAM's importance-weighted estimators."""

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


# A tiny attention problem for WS-RAM: one action a in {0, 1, 2, 3} with
# prior p(a) = softmax(PRIOR_LOGITS), p(y | a) = LIKELIHOOD[a], and a
# proposal q(a) = softmax(PROPOSAL_LOGITS) unlike the prior.
PRIOR_LOGITS = np.array([0.5, -0.3, 0.1, 0.0], np.float32)
PROPOSAL_LOGITS = np.array([-0.4, 0.6, 0.0, 0.2], np.float32)
LIKELIHOOD = np.array([0.05, 0.6, 0.1, 0.3], np.float32)


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def _exact_log_marginal_gradient():
    """d/dtheta log sum_a p(a) p(y | a) = posterior - prior (softmax prior)."""
    prior = _softmax(PRIOR_LOGITS)
    posterior = prior * LIKELIHOOD / np.sum(prior * LIKELIHOOD)
    return posterior - prior, np.log(np.sum(prior * LIKELIHOOD))


def _wake_sleep_estimates(replicas, samples, proposal, control_variates, seed=0):
    """Per-replica gradient estimates `(R, 4)` of the prediction and inference
    networks' logits: minus the gradient of each replica's surrogates."""
    theta = tf.Variable(np.tile(PRIOR_LOGITS, (replicas, 1)))
    eta = tf.Variable(np.tile(PROPOSAL_LOGITS, (replicas, 1)))
    draw_logits = PROPOSAL_LOGITS if proposal else PRIOR_LOGITS
    actions = tf.random.stateless_categorical(
        np.tile(draw_logits, (replicas * samples, 1)), 1, [seed, 7])
    actions = tf.reshape(actions, [replicas, samples])  # (R, M)
    pick = lambda logits: tf.gather(tf.nn.log_softmax(logits), actions, axis=1, batch_dims=1)
    with tf.GradientTape(persistent=True) as tape:
        log_prior = pick(theta)  # (R, M)
        log_proposal = pick(eta) if proposal else None
        log_likelihood = tf.gather(np.log(LIKELIHOOD), actions)  # (R, M)
        terms = estimators.reweighted_wake_sleep(log_likelihood, log_prior, log_proposal,
                                                 control_variates)
        prediction, inference = (tf.reduce_sum(terms[k]) for k in ("prediction", "inference"))
    return -tape.gradient(prediction, theta).numpy(), (
        -tape.gradient(inference, eta).numpy() if proposal else None)


class ReweightedWakeSleepTest(tf.test.TestCase, parameterized.TestCase):

    def test_enumerated_actions_give_the_exact_gradient_and_likelihood(self):
        # Every action once, under a uniform proposal: the self-normalised
        # weights are the exact posterior, so eq 8 is the exact gradient of
        # log p(y | I) and eq 9's bound is log p(y | I) itself.
        theta = tf.Variable(PRIOR_LOGITS[None])
        with tf.GradientTape() as tape:
            log_prior = tf.nn.log_softmax(theta)  # (1, 4): all four actions
            terms = estimators.reweighted_wake_sleep(
                tf.constant(np.log(LIKELIHOOD)[None]), log_prior,
                tf.fill([1, 4], np.log(0.25).astype(np.float32)))
        exact_grad, exact_log_marginal = _exact_log_marginal_gradient()
        self.assertAllClose(-tape.gradient(terms["prediction"], theta)[0], exact_grad,
                            atol=1e-6)
        self.assertAllClose(terms["log_bound"], [exact_log_marginal], atol=1e-6)
        prior = _softmax(PRIOR_LOGITS)
        self.assertAllClose(terms["weights"][0], prior * LIKELIHOOD / np.sum(prior * LIKELIHOOD))

    @parameterized.named_parameters(("prior", False), ("proposal", True))
    def test_many_samples_approach_the_exact_gradient(self, proposal):
        # Self-normalised importance sampling is consistent: one replica of
        # 4,000 samples.
        grad, _ = _wake_sleep_estimates(1, 4000, proposal, control_variates=False)
        self.assertAllClose(grad[0], _exact_log_marginal_gradient()[0], atol=0.03)

    @parameterized.named_parameters(("prior", False), ("proposal", True))
    def test_control_variates_keep_the_mean_and_lower_the_variance(self, proposal):
        # Same draws with and without: the difference is the control variate
        # alone, whose mean must be zero within Monte Carlo error.
        replicas = 20_000
        plain, plain_q = _wake_sleep_estimates(replicas, 5, proposal, control_variates=False)
        cv, cv_q = _wake_sleep_estimates(replicas, 5, proposal, control_variates=True)
        pairs = [(plain, cv)] + ([(plain_q, cv_q)] if proposal else [])
        for without, with_cv in pairs:
            difference = with_cv - without  # (R, 4)
            stderr = difference.std(axis=0) / np.sqrt(replicas)
            self.assertTrue(np.all(np.abs(difference.mean(axis=0)) < 4.0 * stderr + 1e-7),
                            f"means differ: {difference.mean(axis=0)} (stderr {stderr})")
            self.assertLess(with_cv.var(axis=0).sum(), 0.8 * without.var(axis=0).sum())

    def test_prior_proposal_control_variates_centre_the_weights(self):
        log_likelihood = tf.constant([[-1.0, -2.0, -0.5]])
        log_prior = tf.Variable([[-0.3, -0.7, -1.1]])
        with tf.GradientTape() as tape:
            terms = estimators.reweighted_wake_sleep(log_likelihood, log_prior,
                                                     control_variates=True)
        weights = _softmax(np.array([-1.0, -2.0, -0.5]))
        self.assertAllClose(-tape.gradient(terms["prediction"], log_prior)[0],
                            weights - 1.0 / 3.0, atol=1e-6)
        self.assertAllClose(terms["inference"], [0.0])

    @parameterized.named_parameters(("equal", [0.0] * 5, 5.0), ("one_hot", [0.0] + [-1e4] * 4,
                                                                  1.0))
    def test_effective_sample_size(self, log_weights, expected):
        weights = estimators.normalized_weights(tf.constant([log_weights]))
        self.assertAllClose(estimators.effective_sample_size(weights), [expected])

    def test_unknown_batch_size(self):
        fn = tf.function(lambda ll, lp, lq: estimators.reweighted_wake_sleep(ll, lp, lq, True),
                         input_signature=[tf.TensorSpec([None, 3])] * 3)
        out = fn(tf.zeros([2, 3]), tf.zeros([2, 3]), tf.zeros([2, 3]))
        self.assertAllClose(out["ess"], [3.0, 3.0])
        self.assertAllClose(out["log_bound"], [0.0, 0.0])

    def test_bad_arguments_are_named(self):
        with self.assertRaisesRegex(ValueError, r"must be \(batch, M\)"):
            estimators.reweighted_wake_sleep(tf.zeros([2]), tf.zeros([2]))


class VariationalSurrogateTest(tf.test.TestCase):

    def test_gradient_is_eq_5_with_the_baseline(self):
        log_likelihood = tf.Variable([[-1.0, -3.0]])
        log_prior = tf.Variable([[-0.2, -0.9]])
        baseline = tf.constant([-1.5])
        with tf.GradientTape(persistent=True) as tape:
            surrogate, baseline_loss = estimators.variational_surrogate(
                log_likelihood, log_prior, baseline)
        # (1/M) sum_m [d log p(y|a^m) + (log p(y|a^m) - b) d log p(a^m)].
        self.assertAllClose(-tape.gradient(surrogate, log_likelihood), [[0.5, 0.5]])
        self.assertAllClose(-tape.gradient(surrogate, log_prior), [[0.25, -0.75]])
        self.assertAllClose(baseline_loss, [(0.25 + 2.25) / 2])

    def test_estimate_is_unbiased_for_the_expected_log_likelihood(self):
        # d/dtheta E_p[log p(y | a)] = sum_a p(a) (onehot(a) - p) log L(a).
        replicas, samples = 20_000, 5
        theta = tf.Variable(np.tile(PRIOR_LOGITS, (replicas, 1)))
        actions = tf.reshape(tf.random.stateless_categorical(
            np.tile(PRIOR_LOGITS, (replicas * samples, 1)), 1, [3, 4]), [replicas, samples])
        with tf.GradientTape() as tape:
            log_prior = tf.gather(tf.nn.log_softmax(theta), actions, axis=1, batch_dims=1)
            surrogate, _ = estimators.variational_surrogate(
                tf.gather(np.log(LIKELIHOOD), actions), log_prior, tf.fill([replicas], -1.2))
            total = tf.reduce_sum(surrogate)
        grads = -tape.gradient(total, theta).numpy()
        prior = _softmax(PRIOR_LOGITS)
        exact = prior * (np.log(LIKELIHOOD) - np.sum(prior * np.log(LIKELIHOOD)))
        stderr = grads.std(axis=0) / np.sqrt(replicas)
        self.assertTrue(np.all(np.abs(grads.mean(axis=0) - exact) < 4.0 * stderr),
                        f"{grads.mean(axis=0)} against {exact}")

if __name__ == "__main__":
    tf.test.main()
