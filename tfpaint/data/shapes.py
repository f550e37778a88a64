"""Synthetic shape datasets of the thesis, Appendix A (n-Rectangles, 2-Shapes, ...).

Every image is generated in NumPy, deterministically from a seed, together with its ground truth:
each shape's box, kind, colour and full mask, listed in paint order (index 0 is painted first, so
it lies at the bottom). The thesis shows these datasets in inverted grayscale; here the values are
stored the way a painter sees them: the background is 0.0, "black" shapes are 1.0 and "gray"
shapes 0.5, so images are bright shapes on a dark canvas that starts at 0.

Coordinates are continuous pixel coordinates: pixel `(i, j)` covers `[i, i + 1) x [j, j + 1)`, so
a box `(y0, x0, y1, x1)` covers rows `y0 .. y1 - 1` and columns `x0 .. x1 - 1` and its centre is
`((y0 + y1) / 2, (x0 + x1) / 2)`.
"""

import dataclasses

import numpy as np

SHAPE_DATASETS = (
    # Appendix A as the thesis describes it: shapes placed at random, overlap allowed.
    "2_rectangles",
    "4_rectangles",
    "2_shapes",
    "2_rectangles_occlusion",
    # n-Rectangles-Occlusion: n rectangles in n distinct tones, placed at random.
    "3_rectangles_occlusion",
    "4_rectangles_occlusion",
    # Kept apart (at least one empty pixel between shapes), for comparison.
    "2_rectangles_separated",
    "4_rectangles_separated",
    "2_shapes_separated",
    "0to2_rectangles",
    "2_rectangles_mixed",
    # Overlapping, but the bottom rectangle keeps at least 30% of its area visible.
    "2_rectangles_occlusion_visible",
)

RECTANGLE = 0
CIRCLE = 1
PADDING = -1

# Maximum number of shapes per image, i.e. the K of `ShapeData`.
_MAX_SHAPES = {
    "2_rectangles": 2,
    "4_rectangles": 4,
    "2_shapes": 2,
    "2_rectangles_occlusion": 2,
    "3_rectangles_occlusion": 3,
    "4_rectangles_occlusion": 4,
    "2_rectangles_separated": 2,
    "4_rectangles_separated": 4,
    "2_shapes_separated": 2,
    "0to2_rectangles": 2,
    "2_rectangles_mixed": 2,
    "2_rectangles_occlusion_visible": 2,
}

# Datasets whose shapes are placed independently, overlap allowed (appendix A).
_OVERLAPPING = ("2_rectangles", "4_rectangles", "2_shapes")
# Datasets of rectangles in distinct tones placed independently (appendix A's occlusion set and
# its n-rectangle extension): the tones are 1/n, 2/n, ..., 1 in a random order.
_TONED = ("2_rectangles_occlusion", "3_rectangles_occlusion", "4_rectangles_occlusion")

# Side ranges at the thesis' 28x28, scaled linearly with the image size.
_RECTANGLE_SIDES_28 = (5, 14)
_SHAPE_SIDES_28 = (6, 14)
# Non-overlapping shapes keep at least this many empty pixels between them.
_GAP = 1
# 2-Rectangles-Occlusion-Visible: the bottom rectangle keeps at least this fraction of its area
# visible.
_MIN_VISIBLE_FRACTION = 0.3
# 2-Rectangles-Occlusion-Visible: probability that the second rectangle is placed over the first.
_OVERLAP_PROBABILITY = 0.5
# Positions tried for each shape before its image is started again.
_PLACEMENT_TRIES = 50
# Give up (rather than loop forever) after this many restarts of an image, which only happens
# when the shapes cannot fit it.
_MAX_ROUNDS = 10_000

MIN_IMAGE_SIZE = 8


@dataclasses.dataclass(frozen=True, eq=False)
class ShapeData:
    """Images of a synthetic shape dataset with their per-shape ground truth.

    N is the number of images, K the maximum number of shapes per image and S the image side.
    Shapes are listed in paint order: shape 0 is painted first (bottom), shape K - 1 last (top).
    Slots beyond an image's number of shapes are padding (`valid` False, `kinds` -1, zeros
    elsewhere).

    Attributes:
        images: `(N, S, S, 1)` float32 in [0, 1]: the background overpainted by each shape in order.
        boxes: `(N, K, 4)` float32 `(y0, x0, y1, x1)` in pixels, end exclusive; a circle's
            bounding box.
        kinds: `(N, K)` int32: 0 rectangle or square, 1 circle, -1 padding.
        colors: `(N, K)` float32: the value each shape is painted with.
        valid: `(N, K)` bool: whether the slot holds a shape.
        masks: `(N, K, S, S)` float32 in {0, 1}: each shape's full mask, before occlusion.
        background: `(N,)` float32: the value of the background.
    """

    images: np.ndarray
    boxes: np.ndarray
    kinds: np.ndarray
    colors: np.ndarray
    valid: np.ndarray
    masks: np.ndarray
    background: np.ndarray

    def __post_init__(self):
        n, k = self.kinds.shape
        s = self.images.shape[1]
        expected = {
            "images": (n, s, s, 1),
            "boxes": (n, k, 4),
            "kinds": (n, k),
            "colors": (n, k),
            "valid": (n, k),
            "masks": (n, k, s, s),
            "background": (n,),
        }
        for field, shape in expected.items():
            actual = getattr(self, field).shape
            if actual != shape:
                raise ValueError(
                    f"ShapeData.{field} has shape {actual}, expected {shape} "
                    f"(N={n} images, K={k} shapes, size {s})."
                )

    def __len__(self):
        return self.kinds.shape[0]

    @property
    def image_size(self):
        """Side S of the square images."""
        return self.images.shape[1]

    @property
    def max_shapes(self):
        """K: the number of shape slots per image."""
        return self.kinds.shape[1]

    @property
    def num_shapes(self):
        """`(N,)` int32: the number of shapes in each image."""
        return self.valid.sum(axis=1).astype(np.int32)

    @property
    def centers(self):
        """`(N, K, 2)` float32: each shape's centre `(y, x)` in pixels (zeros for padding)."""
        return np.stack(
            [
                (self.boxes[..., 0] + self.boxes[..., 2]) / 2,
                (self.boxes[..., 1] + self.boxes[..., 3]) / 2,
            ],
            axis=-1,
        ).astype(np.float32)

    @property
    def sizes(self):
        """`(N, K, 2)` float32: each shape's `(height, width)` in pixels (zeros for padding)."""
        return np.stack(
            [
                self.boxes[..., 2] - self.boxes[..., 0],
                self.boxes[..., 3] - self.boxes[..., 1],
            ],
            axis=-1,
        ).astype(np.float32)

    def visible_masks(self):
        """Each shape's mask less the parts covered by shapes painted after it.

        Returns:
            `(N, K, S, S)` float32 in {0, 1}.
        """
        masks = self.masks > 0
        visible = np.empty_like(masks)
        covered = np.zeros_like(masks[:, 0])
        for k in reversed(range(self.max_shapes)):
            visible[:, k] = masks[:, k] & ~covered
            covered |= masks[:, k]
        return visible.astype(np.float32)

    def take(self, indices):
        """Returns the images at `indices` (an int array, slice or boolean mask) with their truth.

        Args:
            indices: anything NumPy accepts to index the first axis.

        Returns:
            A new `ShapeData`.
        """
        if np.isscalar(indices):
            indices = [indices]
        return ShapeData(
            **{f.name: getattr(self, f.name)[indices] for f in dataclasses.fields(self)}
        )


def make_shapes(name, num_images, seed=0, image_size=28):
    """Generates a synthetic shape dataset of the thesis, Appendix A.

    Datasets as appendix A describes them (each shape placed uniformly at random inside the
    image, independently of the others, so shapes may overlap and either may be painted first):
        2_rectangles: two axis-aligned rectangles of value 1 on 0; where they overlap the image
            shows their union (same colour).
        4_rectangles: four such rectangles.
        2_shapes: two shapes, each a square or a circle with equal odds (section 5.5).
        2_rectangles_occlusion: one rectangle of value 1 and one of 0.5, in random paint order;
            the top one may hide any part of the bottom one, all of it included (section 5.6).
        3_rectangles_occlusion, 4_rectangles_occlusion: n rectangles in the n distinct tones
            1/n, 2/n, ..., 1, in random order (not in the thesis: the n-move sorter's data).
    Variants kept apart, each shape at least one empty pixel from the others, so each is
    painted by a move of its own:
        2_rectangles_separated, 4_rectangles_separated, 2_shapes_separated: as above.
        0to2_rectangles: 0, 1 or 2 rectangles, equally likely (thesis section 5.4).
        2_rectangles_mixed: 2_rectangles_separated where half of the images are inverted,
            rectangles 0 on a background of 1 (thesis section 5.2).
        2_rectangles_occlusion_visible: 2_rectangles_occlusion where half of the images place
            the second rectangle over the first, and the bottom one keeps at least 30% of its
            area visible (this library's first occlusion set).

    Rectangle sides are independently uniform integers in [5, 14] at 28x28; square sides and
    circle diameters in [6, 14]; both ranges scale with `image_size`. Separated placement is by
    rejection sampling (see `_separated_boxes`).

    Args:
        name: one of `SHAPE_DATASETS`.
        num_images: number of images N, at least 1.
        seed: seed of the NumPy generator; equal seeds give equal datasets.
        image_size: side S of the square images, at least 8.

    Returns:
        A `ShapeData`.

    Raises:
        ValueError: on an unknown name, `num_images < 1` or `image_size < 8`.
        RuntimeError: if the shapes could not be placed (does not happen for S >= 8).
    """
    if name not in SHAPE_DATASETS:
        raise ValueError(
            f"Unknown shape dataset {name!r}; valid names are: {', '.join(SHAPE_DATASETS)}."
        )
    if isinstance(num_images, bool) or not isinstance(num_images, (int, np.integer)):
        raise ValueError(f"num_images must be an integer, got {num_images!r}.")
    if num_images < 1:
        raise ValueError(f"num_images must be at least 1, got {num_images}.")
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)):
        raise ValueError(f"image_size must be an integer, got {image_size!r}.")
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be at least {MIN_IMAGE_SIZE}, got {image_size}.")

    n, size = int(num_images), int(image_size)
    k = _MAX_SHAPES[name]
    rng = np.random.default_rng(seed)
    rect_sides = _scaled_range(_RECTANGLE_SIDES_28, size)
    shape_sides = _scaled_range(_SHAPE_SIDES_28, size)

    kinds = np.full((n, k), RECTANGLE, np.int32)
    colors = np.ones((n, k), np.float32)
    background = np.zeros((n,), np.float32)
    valid = np.ones((n, k), bool)

    square = name in ("2_shapes", "2_shapes_separated")
    sides = shape_sides if square else rect_sides
    if name in _OVERLAPPING or name in _TONED:
        boxes = _random_boxes(rng, (n, k), sides, size, square=square)
    elif name == "2_rectangles_occlusion_visible":
        boxes, colors = _occluding_pair(rng, n, rect_sides, size)
    else:
        if name == "0to2_rectangles":
            counts = rng.integers(0, k + 1, n)
            valid = np.arange(k)[None, :] < counts[:, None]
        boxes = _separated_boxes(rng, valid, sides, size, square=square)
        if name == "2_rectangles_mixed":
            # Half of the images are black rectangles on white: background 1, shapes 0.
            background = rng.integers(0, 2, n).astype(np.float32)
            colors = np.repeat(1.0 - background[:, None], k, axis=1).astype(np.float32)
    if square:
        kinds = rng.integers(0, 2, (n, k)).astype(np.int32)
    if name in _TONED:
        # Tones 1/k ... 1 in a random order per image: argsort of uniform keys is a uniform
        # random permutation.
        tones = np.arange(1, k + 1, dtype=np.float32) / k
        colors = tones[np.argsort(rng.random((n, k)), axis=1)]

    boxes = np.where(valid[..., None], boxes, 0).astype(np.float32)
    kinds = np.where(valid, kinds, PADDING).astype(np.int32)
    colors = np.where(valid, colors, 0.0).astype(np.float32)
    masks = _render_masks(boxes, kinds, valid, size)
    images = _composite(masks, colors, background)
    return ShapeData(
        images=images,
        boxes=boxes,
        kinds=kinds,
        colors=colors,
        valid=valid,
        masks=masks.astype(np.float32),
        background=background,
    )


def rectangle_sides(image_size=28):
    """The inclusive range `(lo, hi)` of a rectangle's sides at `image_size` (both sides
    independently uniform in it, as `make_shapes` draws them)."""
    return _scaled_range(_RECTANGLE_SIDES_28, int(image_size))


def _scaled_range(sides_28, size):
    """Scales an inclusive side range given at 28x28 to `size`, keeping sides >= 2."""
    lo, hi = (max(2, int(round(side * size / 28))) for side in sides_28)
    return lo, max(lo, hi)


def _random_boxes(rng, shape, sides, size, square):
    """Uniform integer boxes `(..., 4)` with sides in `sides`, fully inside a `size` image."""
    lo, hi = sides
    height = rng.integers(lo, hi + 1, shape)
    width = height if square else rng.integers(lo, hi + 1, shape)
    y0 = rng.integers(0, size - height + 1)
    x0 = rng.integers(0, size - width + 1)
    return np.stack([y0, x0, y0 + height, x0 + width], axis=-1)


def _apart(a, b, gap):
    """Whether boxes `a` and `b` (broadcastable `(..., 4)`) are at least `gap` pixels apart."""
    return (
        (a[..., 2] + gap <= b[..., 0])
        | (b[..., 2] + gap <= a[..., 0])
        | (a[..., 3] + gap <= b[..., 1])
        | (b[..., 3] + gap <= a[..., 1])
    )


def _rejection_sample(draw, accept, n):
    """Draws `n` samples `(n, ...)`, redrawing each rejected one until accepted.

    Args:
        draw: `draw(indices)` returns candidates for the images at `indices`.
        accept: `accept(candidates, indices)` returns a bool per candidate.
        n: number of samples.

    Returns:
        The accepted candidates, in image order.
    """
    todo = np.arange(n)
    out = None
    for _ in range(_MAX_ROUNDS):
        candidates = draw(todo)
        if out is None:
            out = np.zeros((n,) + candidates.shape[1:], candidates.dtype)
        ok = accept(candidates, todo)
        out[todo[ok]] = candidates[ok]
        todo = todo[~ok]
        if todo.size == 0:
            return out
    raise RuntimeError(
        f"Could not place the shapes of {todo.size} images after {_MAX_ROUNDS} tries each; "
        "the image is too small for them."
    )


def _separated_boxes(rng, valid, sides, size, square):
    """Boxes `(N, K, 4)` whose valid entries are pairwise at least `_GAP` pixels apart.

    Shapes are placed one after another: each draws its sides once, then up to `_PLACEMENT_TRIES`
    positions, and takes the first one clear of the shapes already placed. An image where some
    shape finds no room is started again. Redrawing positions rather than whole images keeps the
    sides close to uniform (whole-image rejection favours small shapes: mean side 8.2 instead of
    9.5 for 4-Rectangles).
    """
    n, k = valid.shape
    lo, hi = sides
    boxes = np.zeros((n, k, 4), np.int64)
    todo = np.arange(n)
    for _ in range(_MAX_ROUNDS):
        m = todo.size
        slot_valid = valid[todo]
        placed = np.zeros((m, k, 4), np.int64)
        ok = np.ones(m, bool)
        for j in range(k):
            height = rng.integers(lo, hi + 1, (m, 1))
            width = height if square else rng.integers(lo, hi + 1, (m, 1))
            y0 = rng.integers(0, size - height + 1, (m, _PLACEMENT_TRIES))
            x0 = rng.integers(0, size - width + 1, (m, _PLACEMENT_TRIES))
            candidates = np.stack(
                np.broadcast_arrays(y0, x0, y0 + height, x0 + width), axis=-1
            )  # (m, tries, 4)
            free = np.ones((m, _PLACEMENT_TRIES), bool)
            for i in range(j):
                free &= _apart(candidates, placed[:, i, None], _GAP) | ~slot_valid[:, i, None]
            placed[:, j] = candidates[np.arange(m), free.argmax(axis=1)]
            ok &= free.any(axis=1) | ~slot_valid[:, j]
        boxes[todo[ok]] = placed[ok]
        todo = todo[~ok]
        if todo.size == 0:
            return boxes
    raise RuntimeError(
        f"Could not place the shapes of {todo.size} images after {_MAX_ROUNDS} restarts each; "
        "the image is too small for them."
    )


def _intersection_area(a, b):
    """Area of the intersection of boxes `a` and `b`, both `(..., 4)`."""
    height = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    width = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    return np.maximum(height, 0) * np.maximum(width, 0)


def _area(box):
    return (box[..., 2] - box[..., 0]) * (box[..., 3] - box[..., 1])


def _occluding_pair(rng, n, sides, size):
    """Boxes and colours of 2-Rectangles-Occlusion-Visible, in paint order."""
    # Decided once per image, so that rejections do not change the share of overlapping images.
    overlap_mode = rng.random(n) < _OVERLAP_PROBABILITY
    lo, hi = sides

    def draw(idx):
        m = idx.size
        first = _random_boxes(rng, (m,), sides, size, square=False)
        second = _random_boxes(rng, (m,), sides, size, square=False)
        # Place the second over the first: its top-left corner anywhere that makes them intersect.
        height = rng.integers(lo, hi + 1, m)
        width = rng.integers(lo, hi + 1, m)
        y_lo = np.maximum(0, first[:, 0] - height + 1)
        y_hi = np.minimum(size - height, first[:, 2] - 1)
        x_lo = np.maximum(0, first[:, 1] - width + 1)
        x_hi = np.minimum(size - width, first[:, 3] - 1)
        y0 = rng.integers(y_lo, y_hi + 1)
        x0 = rng.integers(x_lo, x_hi + 1)
        over = np.stack([y0, x0, y0 + height, x0 + width], axis=-1)
        second = np.where(overlap_mode[idx, None], over, second)
        # Which of the two is painted first is independent of how they were placed.
        swap = rng.random(m) < 0.5
        bottom = np.where(swap[:, None], second, first)
        top = np.where(swap[:, None], first, second)
        return np.stack([bottom, top], axis=1)

    def accept(boxes, idx):
        del idx
        bottom, top = boxes[:, 0], boxes[:, 1]
        visible = _area(bottom) - _intersection_area(bottom, top)
        return visible >= _MIN_VISIBLE_FRACTION * _area(bottom)

    boxes = _rejection_sample(draw, accept, n)
    bottom_is_black = rng.random(n) < 0.5
    colors = np.where(
        bottom_is_black[:, None], [[1.0, 0.5]], [[0.5, 1.0]]
    ).astype(np.float32)
    return boxes, colors


def _render_masks(boxes, kinds, valid, size):
    """Renders each shape's full mask `(N, K, S, S)` bool with broadcasting."""
    y0, x0, y1, x1 = (boxes[..., i, None] for i in range(4))
    pixels = np.arange(size, dtype=np.float32)
    rows = (pixels >= y0) & (pixels < y1)  # (N, K, S)
    cols = (pixels >= x0) & (pixels < x1)
    masks = rows[..., :, None] & cols[..., None, :]
    is_circle = kinds == CIRCLE
    if is_circle.any():
        # A circle covers the pixels whose centres lie within its radius of its centre.
        n_idx, k_idx = np.nonzero(is_circle)
        circle_boxes = boxes[n_idx, k_idx]
        cy = (circle_boxes[:, 0] + circle_boxes[:, 2]) / 2
        cx = (circle_boxes[:, 1] + circle_boxes[:, 3]) / 2
        radius = (circle_boxes[:, 2] - circle_boxes[:, 0]) / 2
        centres = pixels + 0.5
        dy2 = (centres[None, :] - cy[:, None]) ** 2
        dx2 = (centres[None, :] - cx[:, None]) ** 2
        masks[n_idx, k_idx] = (
            dy2[:, :, None] + dx2[:, None, :] <= (radius**2)[:, None, None]
        )
    masks &= valid[..., None, None]
    return masks


def _composite(masks, colors, background):
    """Paints each shape (bool masks) over the background in order: `(N, S, S, 1)` float32."""
    n, k, size, _ = masks.shape
    images = np.empty((n, size, size), np.float32)
    images[:] = background[:, None, None]
    for i in range(k):
        np.copyto(images, colors[:, i, None, None], where=masks[:, i])
    return images[..., None]
