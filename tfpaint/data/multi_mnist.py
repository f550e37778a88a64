"""Multi-MNIST: scenes of 0..K MNIST digits, scaled and placed at random (AIR, section 3.1).

Each scene of side S (50 by default) holds `n` digits, with `n` drawn uniformly
from `min_digits..max_digits` (so 0, 1 and 2 digits are equally common by
default). Each digit is resized to a side drawn uniformly from `digit_sizes`
(scaled with S / 50) and placed anywhere it fits; digits may overlap, and an
overlap keeps the brighter pixel (the union of the strokes). The count, each
digit's class and its box are kept as ground truth.

A held-out split is built only from held-out digits (`registry.load` passes the
digits of the split), with a seed the training split never uses.
"""

import dataclasses

import numpy as np
import tensorflow as tf

# Digit sides at a 50-pixel scene; other scene sizes scale them.
DEFAULT_DIGIT_SIZES = (20, 28)
DEFAULT_IMAGE_SIZE = 50
# A pixel of a resized digit at least this bright is ink, for its box.
INK_THRESHOLD = 0.25


@dataclasses.dataclass(frozen=True, eq=False)
class SceneData:
    """Scenes of digits with their ground truth.

    N scenes, K digit slots (the most digits a scene may hold), side S. Slots
    beyond a scene's count are padding (`valid` False, `labels` -1, boxes 0).

    Attributes:
        images: `(N, S, S, 1)` float32 in [0, 1].
        boxes: `(N, K, 4)` float32 `(y0, x0, y1, x1)`: the box of each digit's
            ink, in pixels, end exclusive (as `shapes.ShapeData`).
        labels: `(N, K)` int32 digit classes, -1 for padding.
        valid: `(N, K)` bool: whether the slot holds a digit.
        counts: `(N,)` int32: digits in each scene.
    """

    images: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    valid: np.ndarray
    counts: np.ndarray

    def __post_init__(self):
        n, k = self.labels.shape
        s = self.images.shape[1]
        expected = {"images": (n, s, s, 1), "boxes": (n, k, 4), "labels": (n, k),
                    "valid": (n, k), "counts": (n,)}
        for field, shape in expected.items():
            actual = getattr(self, field).shape
            if actual != shape:
                raise ValueError(f"SceneData.{field} has shape {actual}, expected {shape} "
                                 f"(N={n} scenes, K={k} slots, size {s}).")
        if not np.array_equal(self.valid.sum(axis=1), self.counts):
            raise ValueError("SceneData.counts must equal the valid slots of each scene.")

    def __len__(self):
        return len(self.counts)

    @property
    def max_objects(self):
        """K: the digit slots per scene."""
        return self.labels.shape[1]

    def head(self, n):
        """The first `n` scenes."""
        return SceneData(**{f.name: getattr(self, f.name)[:n]
                            for f in dataclasses.fields(self)})


def make_scenes(digits, labels, num_scenes, seed=0, image_size=DEFAULT_IMAGE_SIZE,
                min_digits=0, max_digits=2, digit_sizes=None):
    """Generates Multi-MNIST scenes from a set of digits.

    Args:
        digits: `(M, 28, 28, 1)` float32 digits in [0, 1], bright on dark.
        labels: `(M,)` their classes.
        num_scenes: N.
        seed: seed of the counts, the digits drawn, their sizes and places.
        image_size: S, the scene side.
        min_digits, max_digits: the range of counts, drawn uniformly.
        digit_sizes: `(smallest, largest)` digit side in pixels (default
            `DEFAULT_DIGIT_SIZES` scaled by S / 50); at most S.

    Returns:
        A `SceneData`.

    Raises:
        ValueError: on counts, sizes or digits that do not fit.
    """
    digits = np.asarray(digits, np.float32)
    labels = np.asarray(labels, np.int32)
    if digits.ndim != 4 or digits.shape[-1] != 1 or len(digits) != len(labels):
        raise ValueError(f"`digits` must be (M, H, W, 1) with one label each. Received: "
                         f"digits.shape={digits.shape}, labels.shape={labels.shape}")
    if len(digits) == 0:
        raise ValueError("`digits` is empty: scenes need at least one digit.")
    if not (np.all(np.isfinite(digits)) and digits.min() >= 0.0 and digits.max() <= 1.0):
        raise ValueError("`digits` must be finite and in [0, 1]. Received values in "
                         f"[{np.nanmin(digits)}, {np.nanmax(digits)}]"
                         f"{' with NaN or inf' if not np.all(np.isfinite(digits)) else ''}.")
    if int(num_scenes) < 1:
        raise ValueError(f"`num_scenes` must be >= 1. Received: {num_scenes}")
    if not 0 <= int(min_digits) <= int(max_digits) or int(max_digits) < 1:
        raise ValueError("Need 0 <= min_digits <= max_digits and max_digits >= 1. "
                         f"Received: min_digits={min_digits}, max_digits={max_digits}")
    size = int(image_size)
    if digit_sizes is None:
        digit_sizes = tuple(max(1, round(s * size / DEFAULT_IMAGE_SIZE))
                            for s in DEFAULT_DIGIT_SIZES)
    low, high = (int(s) for s in digit_sizes)
    if not 1 <= low <= high <= size:
        raise ValueError(f"`digit_sizes` must be (smallest, largest) with 1 <= smallest <= "
                         f"largest <= image_size={size}. Received: {digit_sizes}")
    n, k = int(num_scenes), int(max_digits)
    rng = np.random.default_rng(seed)
    counts = rng.integers(int(min_digits), k + 1, size=n).astype(np.int32)  # (N,)
    valid = np.arange(k)[None, :] < counts[:, None]  # (N, K)
    picks = rng.integers(0, len(digits), size=(n, k))  # (N, K)
    sides = rng.integers(low, high + 1, size=(n, k))  # (N, K)
    # Top-left corners where the whole resized digit fits.
    top = np.floor(rng.uniform(size=(n, k)) * (size - sides + 1)).astype(int)  # (N, K)
    left = np.floor(rng.uniform(size=(n, k)) * (size - sides + 1)).astype(int)  # (N, K)

    images = np.zeros((n, size, size), np.float32)
    boxes = np.zeros((n, k, 4), np.float32)
    # One resize per digit side used (a handful), then pasting.
    resized = {}
    for side in np.unique(sides[valid]):
        chosen = np.unique(picks[valid & (sides == side)])
        small = tf.image.resize(digits[chosen], (int(side), int(side)), antialias=True)
        resized[int(side)] = dict(zip(chosen.tolist(),
                                      np.clip(small.numpy()[..., 0], 0.0, 1.0)))
    for i, j in zip(*np.nonzero(valid)):
        side = int(sides[i, j])
        patch = resized[side][int(picks[i, j])]  # (side, side)
        y, x = top[i, j], left[i, j]
        region = images[i, y:y + side, x:x + side]
        np.maximum(region, patch, out=region)  # an overlap is the union of strokes
        rows = np.nonzero((patch >= INK_THRESHOLD).any(axis=1))[0]
        cols = np.nonzero((patch >= INK_THRESHOLD).any(axis=0))[0]
        if len(rows):
            boxes[i, j] = (y + rows[0], x + cols[0], y + rows[-1] + 1, x + cols[-1] + 1)
        else:  # A blank digit: its whole patch.
            boxes[i, j] = (y, x, y + side, x + side)
    slot_labels = np.where(valid, labels[picks], -1).astype(np.int32)
    return SceneData(images=images[..., None], boxes=boxes, labels=slot_labels, valid=valid,
                     counts=counts)
