"""Gradients through discrete choices, and the count prior of AIR.

- `score_function_loss`: the score-function (REINFORCE) estimate of the
  gradient of an expected reward, with a baseline that may depend on the data
  (NVIL), as a surrogate loss; and the loss that trains the baseline.
- `presence_mask` and `geometric_count_log_prob`: AIR's z_pres sequence, where
  a step counts only while every earlier step was present, and the truncated
  geometric prior on the number of present steps.
- `reweighted_wake_sleep`, `variational_surrogate`, `effective_sample_size`:
  WS-RAM's estimators of the gradient of `log p(y | I)` over M importance
  samples of an action sequence, and the variational (REINFORCE) baseline
  they are compared with.
"""

import math

import tensorflow as tf


def score_function_loss(log_prob, reward, baseline=None, normalize=False):
    """A surrogate loss whose gradient is the score-function estimate.

    For `z ~ q_phi` and its reward `f(z)` (for example that sample's ELBO),
    `(f(z) - b) grad_phi log q_phi(z)` is an unbiased estimate of
    `grad_phi E_q[f(z)]` for any `b` that does not depend on `z` (Williams
    1992); a `b` near `E[f | x]` lowers its variance (NVIL's data-dependent
    baseline). The surrogate
    `-stop_gradient(f - b) log q(z)` has minus that estimate as its gradient,
    so minimising it ascends the expected reward; it carries no gradient to
    `f` or `b`. The baseline is trained by `(stop_gradient(f) - b)^2`.

    Args:
        log_prob: `(batch,)` `log q_phi(z)` of the sampled `z`, with its
            gradient to phi.
        reward: `(batch,)` `f(z)`; no gradient flows into it from here (add the
            reparameterised part of the objective separately).
        baseline: optional `(batch,)` or scalar `b`; None for no baseline.
        normalize: divide the centred signal `f - b` by `max(1, its standard
            deviation over the batch)` (NVIL's variance normalisation, with
            the batch's deviation for its running estimate). The estimate's
            direction is kept and its scale bounded: a signal of hundreds of
            nats no longer swamps the other gradients of shared weights.

    Returns:
        `(surrogate, baseline_loss)`, each `(batch,)`; `baseline_loss` is zeros
        without a baseline.

    Reference:
        Thesis eq 2.19 (one step, one sample); Mnih and Gregor, "Neural
        Variational Inference and Learning in Belief Networks", ICML 2014
        (the data-dependent baseline); Eslami et al., "Attend, Infer,
        Repeat", NIPS 2016 (its use for z_pres).
    """
    log_prob = tf.convert_to_tensor(log_prob)
    reward = tf.cast(tf.convert_to_tensor(reward), log_prob.dtype)
    if log_prob.shape.rank != 1 or reward.shape.rank != 1:
        raise ValueError(
            "`log_prob` and `reward` must be (batch,) vectors. Received: "
            f"log_prob.shape={log_prob.shape}, reward.shape={reward.shape}")
    reward = tf.stop_gradient(reward)
    if baseline is None:
        signal = reward
        if normalize:
            signal = signal / _signal_scale(signal)
        return -signal * log_prob, tf.zeros_like(reward)
    baseline = tf.cast(tf.convert_to_tensor(baseline), log_prob.dtype)
    if baseline.shape.rank not in (0, 1):
        # A (batch, 1) baseline would broadcast against (batch,) into (batch, batch).
        raise ValueError("`baseline` must be a scalar or a (batch,) vector. Received: "
                         f"baseline.shape={baseline.shape}")
    baseline = baseline + tf.zeros_like(reward)  # (B,)
    signal = tf.stop_gradient(reward - baseline)  # (B,) the centred learning signal
    if normalize:
        signal = signal / _signal_scale(signal)
    return -signal * log_prob, tf.square(reward - baseline)


def _signal_scale(signal):
    """`max(1, std(signal))` over the batch, without gradient."""
    return tf.stop_gradient(tf.maximum(tf.math.reduce_std(signal), 1.0))


def presence_mask(z_pres):
    """Which steps count: step i only while steps 0..i-1 were all present.

    Args:
        z_pres: `(batch, N)` presence samples in [0, 1] (0/1, or relaxed).

    Returns:
        `(batch, N)`: `prod_{j < i} z_pres_j` (1 for the first step). A step
        after the first absent one has mask 0 and contributes nothing to any
        term, its own z_pres included.
    """
    z_pres = tf.convert_to_tensor(z_pres)
    if z_pres.shape.rank != 2:
        raise ValueError(f"`z_pres` must be (batch, N). Received: z_pres.shape={z_pres.shape}")
    return tf.math.cumprod(z_pres, axis=1, exclusive=True)  # (B, N)


def geometric_count_log_prob(z_pres, presence_prob):
    """The log-prior of a z_pres sequence under AIR's geometric count prior.

    Each counted step is present with probability `q = presence_prob`
    (`z_pres_i ~ Bernoulli(q)`), so the count n of present steps, out of at
    most N, has `p(n) = q^n (1 - q)` for n < N and `p(N) = q^N`: a geometric
    distribution truncated at N, summing to 1 over n = 0..N.

    Args:
        z_pres: `(batch, N)` presence samples in [0, 1].
        presence_prob: q in (0, 1), a float or a scalar tensor (annealed by
            the caller).

    Returns:
        `(batch,)` `sum_i mask_i log Bernoulli(z_pres_i; q)`, with `mask`
        from `presence_mask`.
    """
    z_pres = tf.convert_to_tensor(z_pres)
    q = tf.cast(presence_prob, z_pres.dtype)
    tf.debugging.assert_greater(q, tf.zeros_like(q), "`presence_prob` must be in (0, 1)")
    tf.debugging.assert_less(q, tf.ones_like(q), "`presence_prob` must be in (0, 1)")
    mask = presence_mask(z_pres)  # (B, N)
    log_bernoulli = z_pres * tf.math.log(q) + (1.0 - z_pres) * tf.math.log1p(-q)  # (B, N)
    return tf.reduce_sum(mask * log_bernoulli, axis=1)  # (B,)


def normalized_weights(log_weights):
    """Self-normalised importance weights over the last axis, without gradient.

    Args:
        log_weights: `(..., M)` unnormalised log weights `log w~^m`.

    Returns:
        `(..., M)` `w^m = w~^m / sum_k w~^k` (WS-RAM eq 8).
    """
    return tf.nn.softmax(tf.stop_gradient(log_weights), axis=-1)


def effective_sample_size(weights):
    """`1 / sum_m (w^m)^2` of normalised weights (WS-RAM section 5.1).

    Args:
        weights: `(..., M)` normalised weights (summing to 1 over M).

    Returns:
        `(...)`: M for equal weights, 1 when one sample has all the weight.
    """
    return 1.0 / tf.reduce_sum(tf.square(weights), axis=-1)


def reweighted_wake_sleep(log_likelihood, log_prior, log_proposal=None,
                          control_variates=False):
    """WS-RAM's gradient estimates (eqs 7-8, 14, 16-17) as surrogate losses.

    Given M action sequences `a^m` drawn from a proposal `q(a | y, I)` (the
    prior `p(a | I)` itself when `log_proposal` is None), the unnormalised
    weights are `w~^m = p(a^m | I) p(y | a^m, I) / q(a^m | y, I)` (eq 7) and
    `w^m` their normalised values. Minimising the returned surrogates follows

        d/dtheta: sum_m w^m [d log p(y | a^m) + d log p(a^m)]       (eq 8)
        d/deta:   sum_m w^m d log q(a^m)                            (eq 14)

    (the wake-p and wake-q steps of reweighted wake-sleep). With
    `control_variates` the weight multiplying each score is lowered by a
    term of known mean zero (eq 15: `E_q[(p / q) d log p] = 0` and
    `E_q[d log q] = 0`):

        d/dtheta: ... + sum_m (w^m - b^m) d log p(a^m)              (eq 16)
        d/deta:   sum_m (w^m - 1 / M) d log q(a^m)                  (eq 17)

    with `b^m = p(a^m) / (M q(a^m))`. As a reward baseline (eq 18):
    `w^m - b^m = (p(a^m) / (M q(a^m))) (p(y | a^m) / p^(y | I) - 1)`, the
    reward `p(y | a) / p^(y | I)` (`p^` the estimate `(1/M) sum_k w~^k`)
    less its mean under the prior, 1. Each control variate has mean exactly
    zero (eq 15), so it adds no bias to eq 8's. With the prior as proposal
    `b^m = 1 / M`: the weights are centred.

    The paper's eqs 16-18 were lost in extraction; this is their
    reconstruction from eq 15 and the text around it. A baseline scaled by
    the estimate `E_q[p(y | a)] / p(y | I)` (the other samples' ratio)
    instead of 1 doubled the variance of the prediction network's gradient
    on the toy problem of tests/test_estimators.py, where this one lowers it
    by 40%.

    Args:
        log_likelihood: `(B, M)` `log p(y | a^m, I)` with its gradient.
        log_prior: `(B, M)` `log p(a^m | I)` with its gradient.
        log_proposal: `(B, M)` `log q(a^m | y, I)` with its gradient to the
            inference network, or None when the samples came from the prior.
        control_variates: subtract eq 15's control variates.

    Returns:
        Dict of `(B,)` tensors: `prediction` (surrogate of the prediction
        network, eq 8 / 16), `inference` (of the inference network, eq 14 /
        17; zeros without a proposal), `log_bound` (`log (1/M) sum_m w~^m`,
        eq 9's lower bound on `log p(y | I)`) and `ess` (the effective
        sample size of the weights); and `weights` `(B, M)`.

    Reference:
        Ba, Grosse, Salakhutdinov and Frey, "Learning Wake-Sleep Recurrent
        Attention Models", NIPS 2015, sections 4.2-4.4; Bornschein and
        Bengio, "Reweighted Wake-Sleep", ICLR 2015.
    """
    log_likelihood = tf.convert_to_tensor(log_likelihood)
    log_prior = tf.convert_to_tensor(log_prior, log_likelihood.dtype)
    if log_likelihood.shape.rank != 2 or log_prior.shape.rank != 2:
        raise ValueError("`log_likelihood` and `log_prior` must be (batch, M). Received: "
                         f"{log_likelihood.shape} and {log_prior.shape}")
    samples = log_likelihood.shape[-1]
    if samples is None:
        raise ValueError("The number of samples M (the last axis) must be known.")
    log_ratio = tf.zeros_like(log_prior)  # log p(a) - log q(a)
    if log_proposal is not None:
        log_proposal = tf.convert_to_tensor(log_proposal, log_likelihood.dtype)
        log_ratio = tf.stop_gradient(log_prior - log_proposal)
    log_w = tf.stop_gradient(log_likelihood) + log_ratio  # (B, M) log w~
    weights = normalized_weights(log_w)  # (B, M)
    prior_coef = weights
    if control_variates:
        prior_coef = weights - tf.exp(log_ratio) / samples  # w^m - b^m
    prediction = -tf.reduce_sum(weights * log_likelihood + prior_coef * log_prior, axis=-1)
    inference = tf.zeros_like(prediction)
    if log_proposal is not None:
        proposal_coef = weights - 1.0 / samples if control_variates else weights
        inference = -tf.reduce_sum(proposal_coef * log_proposal, axis=-1)
    log_bound = tf.reduce_logsumexp(log_w, axis=-1) - math.log(samples)
    return {"prediction": prediction, "inference": inference, "log_bound": log_bound,
            "ess": effective_sample_size(weights), "weights": weights}


def variational_surrogate(log_likelihood, log_prior, baseline):
    """The variational method's gradient estimate (WS-RAM eqs 3-5) as a surrogate loss.

    With M action sequences `a^m ~ p(a | I)` from the prior, the gradient of
    `F = E_p[log p(y | a, I)]` is estimated by

        (1/M) sum_m [d log p(y | a^m) + (log p(y | a^m) - b(I)) d log p(a^m)]

    (eq 5, with a learned baseline `b` as the control variate of Mnih et al.
    2014), the REINFORCE rule of the recurrent attention model.

    Args:
        log_likelihood: `(B, M)` `log p(y | a^m, I)` with its gradient.
        log_prior: `(B, M)` `log p(a^m | I)` with its gradient.
        baseline: `(B,)` `b(I)`, trained by its squared error.

    Returns:
        `(surrogate, baseline_loss)`, each `(B,)`.
    """
    log_likelihood = tf.convert_to_tensor(log_likelihood)
    log_prior = tf.convert_to_tensor(log_prior, log_likelihood.dtype)
    if log_likelihood.shape.rank != 2 or log_prior.shape.rank != 2:
        raise ValueError("`log_likelihood` and `log_prior` must be (batch, M). Received: "
                         f"{log_likelihood.shape} and {log_prior.shape}")
    baseline = tf.convert_to_tensor(baseline, log_likelihood.dtype)
    samples = tf.shape(log_likelihood)[-1]
    flat = lambda t: tf.reshape(t, [-1])
    repeated = tf.repeat(baseline, samples)  # (B * M,), rows of one example together
    surrogate, baseline_loss = score_function_loss(flat(log_prior), flat(log_likelihood),
                                                   repeated)
    per_sample = tf.reshape(surrogate, tf.shape(log_likelihood)) - log_likelihood  # (B, M)
    return (tf.reduce_mean(per_sample, axis=-1),
            tf.reduce_mean(tf.reshape(baseline_loss, tf.shape(log_likelihood)), axis=-1))
