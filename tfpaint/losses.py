"""Training objectives of tfpaint's models, and the bounds that score them."""

import math

import tensorflow as tf

RECONSTRUCTIONS = ("mse", "ce")


def reconstruction_loss(images, canvas, kind="mse", epsilon=1e-6):
    """Per-image reconstruction cost of the final canvas, summed over pixels.

    Args:
        images: `(B, H, W, C)` targets in [0, 1].
        canvas: `(B, H, W, C)` paintings in [0, 1].
        kind: "mse" (`||x - c_T||^2`, thesis section 5.1) or "ce" (Bernoulli
            cross-entropy, the `-log D(x | c_T)` of the variational models).
        epsilon: clip of the canvas away from 0 and 1 for "ce".

    Returns:
        `(B,)` costs.
    """
    if kind not in RECONSTRUCTIONS:
        raise ValueError(
            f"Reconstruction must be one of {RECONSTRUCTIONS}. Received: {kind!r}"
        )
    images = tf.cast(images, canvas.dtype)
    if kind == "mse":
        per_pixel = tf.square(images - canvas)
    else:
        c = tf.clip_by_value(canvas, epsilon, 1.0 - epsilon)
        per_pixel = -(images * tf.math.log(c) + (1.0 - images) * tf.math.log(1.0 - c))
    return tf.reduce_sum(per_pixel, axis=[1, 2, 3])  # (B,)


def gaussian_blur_matrix(size, sigma):
    """The `(size, size)` matrix `G` with `G[i, u] = g(i - u)`, the normalised Gaussian of
    standard deviation `sigma` (pixels) truncated at `ceil(3 sigma)`: `G @ x` blurs a
    column `x` of `size` pixels, taking pixels beyond the edges as zero."""
    if not sigma > 0:
        raise ValueError(f"Blur sigmas must be > 0. Received: {sigma}")
    radius = int(math.ceil(3.0 * sigma))
    offsets = tf.range(-radius, radius + 1, dtype=tf.float32)  # (2r + 1,)
    norm = tf.reduce_sum(tf.exp(-0.5 * tf.square(offsets / sigma)))
    index = tf.range(size, dtype=tf.float32)
    d = index[:, None] - index[None, :]  # (size, size)
    g = tf.exp(-0.5 * tf.square(d / sigma)) / norm
    return tf.where(tf.abs(d) <= radius, g, tf.zeros_like(g))  # (size, size)


def gaussian_blur(images, sigma):
    """Separable Gaussian blur of `(B, H, W, C)` images, zero beyond the edges.

    Computed as `G_H x G_W^T` per channel (two small matrix products, much faster on a CPU
    than a depthwise convolution and its gradient).

    Args:
        images: `(B, H, W, C)`, static H and W.
        sigma: standard deviation of the Gaussian in pixels, > 0.

    Returns:
        `(B, H, W, C)`: `sum_{u,v} g(i - u) g(j - v) x[u, v]` over the pixels of the image.
    """
    if images.shape.rank != 4 or images.shape[1] is None or images.shape[2] is None:
        raise ValueError(
            "Blurring needs `(B, H, W, C)` images with a known H and W. "
            f"Received shape: {images.shape}")
    rows = tf.cast(gaussian_blur_matrix(images.shape[1], sigma), images.dtype)  # (H, H)
    cols = tf.cast(gaussian_blur_matrix(images.shape[2], sigma), images.dtype)  # (W, W)
    return tf.einsum("iu,buvc,jv->bijc", rows, images, cols)  # (B, H, W, C)


def blurred_reconstruction_loss(images, canvas, sigmas):
    """Squared error of the blurred canvas against the blurred image, summed over pixels
    and over the blur scales `sigmas`, `(B,)`.

    Coarse-to-fine matching: where a shape is left unpainted, its blurred error reaches past
    its edges, so a move beside it is drawn toward it instead of sitting on a plateau (a move
    over already-painted pixels of the same colour changes nothing at the finest scale). It is
    zero exactly when the canvas equals the image, so it adds no bias at the optimum.

    Args:
        images: `(B, H, W, C)` targets.
        canvas: `(B, H, W, C)` paintings.
        sigmas: blur standard deviations in pixels (each > 0); empty gives zeros.
    """
    images = tf.cast(images, canvas.dtype)
    total = tf.zeros(tf.shape(canvas)[:1], canvas.dtype)  # (B,)
    for sigma in sigmas:
        diff = gaussian_blur(images - canvas, sigma)  # blur is linear
        total += tf.reduce_sum(tf.square(diff), axis=[1, 2, 3])
    return total


def per_image_loss(outputs, images, reconstruction="mse", latent_weight=1.0):
    """`reconstruction + latent_weight * latent_cost` of each image, `(B,)`.

    The quantity every Painter is trained on; `painter_loss` averages it and
    the distributed training step scales it by the global batch.
    """
    recon = reconstruction_loss(images, outputs["canvas"], reconstruction)  # (B,)
    latent = outputs.get("latent_cost", tf.zeros_like(recon))  # (B,)
    return recon + latent_weight * latent, recon, latent


def painter_loss(outputs, images, reconstruction="mse", latent_weight=1.0):
    """The training loss of a Painter and its parts, averaged over the batch.

    Args:
        outputs: a Painter's output dict (`canvas` and `latent_cost` are used).
        images: `(B, H, W, C)` targets.
        reconstruction: "mse" or "ce".
        latent_weight: multiplier of the latent cost (1 for a VAE's ELBO).

    Returns:
        Dict of scalars: `loss`, `reconstruction`, `latent_cost` and
        `mse_per_pixel` (what the benchmarks report).
    """
    canvas = outputs["canvas"]
    total, recon, latent = per_image_loss(outputs, images, reconstruction, latent_weight)
    loss = tf.reduce_mean(total)
    mse = tf.reduce_mean(tf.square(tf.cast(images, canvas.dtype) - canvas))
    return {
        "loss": loss,
        "reconstruction": tf.reduce_mean(recon),
        "latent_cost": tf.reduce_mean(latent),
        "mse_per_pixel": mse,
    }


def bernoulli_log_likelihood(logits, images):
    """`log p(x | logits)` of images under independent Bernoulli pixels, `(B,)`.

    Args:
        logits: `(B, H, W, C)` Bernoulli logits (DRAW's final canvas).
        images: `(B, H, W, C)` targets in [0, 1] (binary, or gray as soft
            targets).
    """
    images = tf.cast(images, logits.dtype)
    per_pixel = tf.nn.sigmoid_cross_entropy_with_logits(labels=images, logits=logits)
    return -tf.reduce_sum(per_pixel, axis=[1, 2, 3])  # (B,)


def gaussian_log_ratio(z, mu, sigma):
    """`log N(z; 0, I) - log N(z; mu, sigma)`, summed over all but the batch axis, `(B,)`:
    the prior-over-posterior term of a latent sample's importance weight."""
    log_prior = -0.5 * (tf.square(z) + math.log(2.0 * math.pi))
    log_posterior = -0.5 * (tf.square((z - mu) / sigma) + math.log(2.0 * math.pi)) - tf.math.log(
        sigma)
    axes = list(range(1, len(z.shape)))
    return tf.reduce_sum(log_prior - log_posterior, axis=axes)  # (B,)


def importance_weighted_bound(log_weights):
    """`log (1/K) sum_k exp(log_weights[k])` over the first axis (Burda et al. 2016).

    With `log_weights[k] = log p(x, z_k) - log q(z_k | x)` for K samples of the
    whole latent sequence, this lower-bounds `log p(x)`; K = 1 is the
    single-sample ELBO, and the bound tightens as K grows.

    Args:
        log_weights: `(K, B)`.

    Returns:
        `(B,)`.
    """
    k = tf.cast(tf.shape(log_weights)[0], log_weights.dtype)
    return tf.reduce_logsumexp(log_weights, axis=0) - tf.math.log(k)
