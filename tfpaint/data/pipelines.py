"""The one `tf.data` pipeline that feeds every model, and its augmentation.

`make_pipeline` turns a `registry.Dataset` (or an image array) into shuffled,
repeated batches of `{"image": (B, H, W, C)[, "label": (B,)]}`, augmented by
`augment`: random shifts, rotations and flips, each keyed by the batch index
with stateless random ops, so the same batch always gets the same change and a
resumed run that skips the batches it consumed replays the data exactly.
"""

import math

import numpy as np
import tensorflow as tf

from tfpaint.data import registry
from tfpaint.layers import spatial_transformer as st

# Shuffle buffer for streaming datasets, whose images are not all in memory.
STREAMING_SHUFFLE_BUFFER = 10_000
# Each augmentation draws from its own stateless stream: the batch's key
# (seed, index) plus this offset.
_SHIFT_KEY, _ROTATION_KEY, _FLIP_KEY, _BINARIZE_KEY = 0, 1, 2, 3


def check_images(images):
    """Raises ValueError unless `images` is a rank-4 float32 array with values in [0, 1]."""
    if not isinstance(images, np.ndarray):
        raise ValueError(f"images must be a NumPy array, got {type(images).__name__}.")
    if images.ndim != 4:
        raise ValueError(f"images must have rank 4 (N, H, W, C), got shape {images.shape}.")
    if images.dtype != np.float32:
        raise ValueError(
            f"images must be float32 in [0, 1], got dtype {images.dtype} (shape {images.shape})."
        )
    if images.size == 0:
        raise ValueError(f"images must hold at least one image, got shape {images.shape}.")
    if not (np.all(np.isfinite(images)) and images.min() >= 0 and images.max() <= 1):
        raise ValueError(
            f"images must be float32 in [0, 1], got values in "
            f"[{np.nanmin(images)}, {np.nanmax(images)}] (shape {images.shape})."
        )


def make_pipeline(
    dataset,
    batch_size,
    *,
    shuffle=True,
    repeat=True,
    seed=0,
    drop_remainder=True,
    max_shift=0,
    max_rotation=0.0,
    random_flip=False,
    binarize=None,
):
    """Builds the `tf.data` pipeline of batches for training or evaluation.

    In-memory images go through `from_tensor_slices -> cache -> shuffle (whole
    dataset, reshuffled each epoch) -> repeat -> batch -> augment -> prefetch`;
    streaming sets through the same steps (no cache) with a shuffle buffer of
    `STREAMING_SHUFFLE_BUFFER` examples.

    Args:
        dataset: a `registry.Dataset`, or a `(N, H, W, C)` float32 array in
            [0, 1] (no labels).
        batch_size: examples per batch, at least 1.
        shuffle: whether to shuffle (seeded by `seed`); False keeps the order.
        repeat: whether to repeat forever.
        seed: seed of the shuffle and of the augmentation.
        drop_remainder: whether to drop a last, smaller batch.
        max_shift, max_rotation, random_flip: the augmentation (see `augment`).
        binarize: binarize every batch afresh (see `augment`); default: what
            the dataset asks for (the training split of a binarized set).

    Returns:
        A `tf.data.Dataset` of dicts: `image` float32 `(batch, H, W, C)` and,
        where the dataset has class labels, `label` int32 `(batch,)`.

    Raises:
        ValueError: on `batch_size < 1`, a negative augmentation, images that
            are not rank-4 float32 in [0, 1], or a finite pipeline that would
            yield no batch.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ValueError(f"batch_size must be an integer, got {batch_size!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    if int(max_shift) < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}.")
    if not (math.isfinite(max_rotation) and max_rotation >= 0):
        raise ValueError(f"max_rotation must be >= 0 degrees, got {max_rotation}.")

    if isinstance(dataset, registry.Dataset) and dataset.stream is not None:
        ds = dataset.as_tf_dataset()
        buffer_size = STREAMING_SHUFFLE_BUFFER
    else:
        images = dataset.images if isinstance(dataset, registry.Dataset) else dataset
        check_images(images)
        if not repeat and drop_remainder and batch_size > len(images):
            raise ValueError(
                f"batch_size {batch_size} exceeds the {len(images)} images, so a pipeline "
                "without repeat and with drop_remainder would yield no batch."
            )
        if isinstance(dataset, registry.Dataset):
            ds = dataset.as_tf_dataset()
        else:
            ds = tf.data.Dataset.from_tensor_slices({"image": images})
        ds = ds.cache()
        buffer_size = len(images)
    if shuffle:
        ds = ds.shuffle(buffer_size, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if binarize is None:
        binarize = isinstance(dataset, registry.Dataset) and dataset.binarize
    if max_shift or max_rotation or random_flip or binarize:
        ds = ds.enumerate().map(
            lambda index, batch: augment(
                batch, tf.stack([tf.cast(seed, tf.int64), index]), max_shift=int(max_shift),
                max_rotation=float(max_rotation), random_flip=bool(random_flip),
                binarize=bool(binarize),
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return ds.prefetch(tf.data.AUTOTUNE)


def augment(batch, key, max_shift=0, max_rotation=0.0, random_flip=False, binarize=False):
    """Randomly rotates, shifts, flips and binarizes a batch of images.

    Every change is drawn by a stateless random op from `key` (plus a
    per-augmentation offset), so a batch's key alone decides what it becomes.

    Args:
        batch: a dict with `image` `(B, H, W, C)`; other entries pass through.
        key: `(2,)` int64 stateless seed of this batch, e.g. `(seed, index)`.
        max_shift: translate by a whole number of pixels in
            [-max_shift, max_shift] per axis (edges replicated); the
            appendix-A digits are memorised without it.
        max_rotation: rotate by an angle in [-max_rotation, max_rotation]
            degrees about the centre (STAWM appendix D), through the one
            spatial transformer; outside the image reads zero.
        random_flip: mirror left-right with probability 1/2 (CIFAR-10).
        binarize: replace each pixel by a Bernoulli sample with the pixel's
            gray value as its probability (DRAW's binarized MNIST, drawn anew
            for every batch).

    Returns:
        The batch with its augmented `image`.
    """
    batch = dict(batch)
    images = batch["image"]
    if max_rotation:
        images = random_rotation(images, max_rotation, seed=key + _ROTATION_KEY)
    if max_shift:
        images = random_shift(images, max_shift, seed=key + _SHIFT_KEY)
    if random_flip:
        flip = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed=key + _FLIP_KEY)
        images = tf.where(flip < 0.5, images, tf.reverse(images, axis=[2]))
    if binarize:
        noise = tf.random.stateless_uniform(tf.shape(images), seed=key + _BINARIZE_KEY)
        images = tf.cast(noise < images, images.dtype)
    batch["image"] = images
    return batch


def random_rotation(images, max_degrees, seed=(0, 0)):
    """Rotates each image about its centre by a random angle (bilinear, zeros outside).

    Args:
        images: `(B, H, W, C)` float32.
        max_degrees: largest angle, in degrees.
        seed: `(2,)` int seed of the stateless random angles.

    Returns:
        `(B, H, W, C)` rotated images, clipped to [0, 1].
    """
    batch = tf.shape(images)[0]
    angles = tf.random.stateless_uniform([batch], seed=seed, minval=-1.0, maxval=1.0)
    angles = angles * (max_degrees * math.pi / 180.0)  # (B,)
    cos, sin = tf.cos(angles), tf.sin(angles)
    zeros = tf.zeros_like(angles)
    thetas = tf.stack([cos, -sin, zeros, sin, cos, zeros], axis=-1)  # (B, 6)
    rotate = st.SpatialTransformer(images.shape[1:3], allow_skew=True)
    # Bilinear weights sum to at most 1 only up to rounding.
    return tf.clip_by_value(rotate(images, thetas), 0.0, 1.0)


def random_shift(images, max_shift, seed=(0, 0)):
    """Translates each image by up to `max_shift` pixels per axis (edges replicated).

    Args:
        images: `(B, H, W, C)` float32.
        max_shift: largest shift in pixels.
        seed: `(2,)` int seed of the stateless random shifts.

    Returns:
        `(B, H, W, C)` shifted images.
    """
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    padded = tf.pad(
        images, [[0, 0], [max_shift, max_shift], [max_shift, max_shift], [0, 0]],
        mode="SYMMETRIC",
    )
    offsets = tf.random.stateless_uniform(
        [shape[0], 2], seed=seed, minval=0, maxval=2 * max_shift + 1, dtype=tf.int32
    )  # (B, 2)
    rows = offsets[:, :1] + tf.range(height)[None]  # (B, H)
    cols = offsets[:, 1:] + tf.range(width)[None]  # (B, W)
    out = tf.gather(padded, rows, axis=1, batch_dims=1)  # (B, H, W + 2s, C)
    return tf.gather(out, cols, axis=2, batch_dims=1)  # (B, H, W, C)

