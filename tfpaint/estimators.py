"""Gradients through discrete choices, and the count prior of AIR.

- `score_function_loss`: the score-function (REINFORCE) estimate of the
  gradient of an expected reward, with a baseline that may depend on the data
  (NVIL), as a surrogate loss; and the loss that trains the baseline.
- `presence_mask` and `geometric_count_log_prob`: AIR's z_pres sequence, where
  a step counts only while every earlier step was present, and the truncated
  geometric prior on the number of present steps.
"""

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
