"""The argument and input checks every model shares, with one wording."""

import tensorflow as tf


def image_shape(value):
    """`value` as a `(height, width, channels)` tuple of ints, or a ValueError."""
    shape = tuple(int(s) for s in value)
    if len(shape) != 3 or shape[2] not in (1, 3):
        raise ValueError("`image_shape` must be (height, width, channels) with 1 or 3 channels. "
                         f"Received: image_shape={shape}")
    return shape


def positive_ints(**values):
    """Raises a ValueError naming the first of `values` below 1."""
    for name, value in values.items():
        if int(value) < 1:
            raise ValueError(f"`{name}` must be >= 1. Received: {name}={value}")


def image_batch(images, shape):
    """Raises a ValueError unless `images` is `(batch, *shape)`."""
    if images.shape.rank != 4 or tuple(images.shape[1:]) != tuple(shape):
        raise ValueError(
            f"Expected images of shape (batch, {', '.join(map(str, shape))}). "
            f"Received: images.shape={tuple(images.shape)}")


def float_images(images, shape, dtype):
    """`images` checked as a float `(batch, *shape)` batch, cast to `dtype`."""
    images = tf.convert_to_tensor(images)
    image_batch(images, shape)
    if not images.dtype.is_floating:
        raise ValueError(f"Expected float images in [0, 1]. Received: dtype={images.dtype.name}")
    return tf.cast(images, dtype)
