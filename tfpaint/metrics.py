"""Metrics of a painting against the ground truth of synthetic scenes (NumPy).

Moves are compared with shapes through their masks on the canvas and the
position of the template centre. Pixel coordinates here put the edges of the
canvas at 0 and W, so pixel i spans [i, i + 1) (the convention of
`ShapeData.boxes`).
"""

import collections
import dataclasses
import itertools

import numpy as np

from tfpaint.data import shapes as shapes_lib

# Template names that draw each ground-truth kind of shape.
KIND_TEMPLATES = {shapes_lib.RECTANGLE: ("square",), shapes_lib.CIRCLE: ("circle",)}


def mse_per_pixel(canvas, images):
    """Mean squared error per pixel, averaged over images."""
    return float(np.mean((np.asarray(canvas) - np.asarray(images)) ** 2))


def move_centres(where, canvas_size):
    """Canvas position of each move's template centre.

    `where` maps canvas to template coordinates, so the template centre (0, 0)
    sits where `A p + t = 0`, at `p = -A^-1 t`.

    Args:
        where: `(B, T, 6)` affine maps.
        canvas_size: `(height, width)`.

    Returns:
        `(B, T, 2)` centres `(y, x)` in pixels.
    """
    where = np.asarray(where, np.float64)
    a, b, c, d, e, f = np.moveaxis(where, -1, 0)
    det = a * e - b * d
    det = np.where(np.abs(det) < 1e-12, 1e-12, det)
    x = -(e * c - b * f) / det
    y = -(-d * c + a * f) / det
    height, width = canvas_size
    return np.stack([(y + 1.0) * height / 2.0, (x + 1.0) * width / 2.0], axis=-1)


def mask_iou(move_masks, shape_masks, threshold=0.5):
    """IoU of every move's mask with every shape's mask.

    Args:
        move_masks: `(B, T, H, W)` or `(B, T, H, W, 1)` in [0, 1].
        shape_masks: `(B, K, H, W)` binary.
        threshold: a move covers a pixel where its mask exceeds this.

    Returns:
        `(B, K, T)` IoU.
    """
    moves = np.asarray(move_masks)
    if moves.ndim == 5:
        moves = moves[..., 0]
    moves = (moves > threshold).astype(np.float32)
    shapes = (np.asarray(shape_masks) > 0.5).astype(np.float32)
    inter = np.einsum("bkhw,bthw->bkt", shapes, moves)
    union = shapes.sum((2, 3))[:, :, None] + moves.sum((2, 3))[:, None, :] - inter
    return inter / np.maximum(union, 1.0)


def own_move_assignment(move_masks, shape_data, min_iou=0.5):
    """Whether each shape of an image was painted by a move of its own.

    An image passes when the shapes can be given distinct moves so that every
    shape's mask and its move's mask overlap with IoU >= `min_iou`: the
    painting took the scene apart shape by shape, rather than covering two
    shapes with one move (the local minimum of thesis chapter 4).

    Args:
        move_masks: `(B, T, H, W[, 1])` masks of the moves.
        shape_data: the `ShapeData` of the same B images.
        min_iou: IoU a move needs to count as painting a shape.

    Returns:
        Tuple `(passed, assignment)`: `(B,)` bool, and `(B, K)` int, the move
        given to each shape (-1 for padding or an image that failed).
    """
    iou = mask_iou(move_masks, shape_data.masks)  # (B, K, T)
    batch, num_shapes, num_moves = iou.shape
    if num_moves < num_shapes:
        # Virtual empty moves, which no shape can use.
        iou = np.concatenate([iou, np.zeros((batch, num_shapes, num_shapes - num_moves))], 2)
    valid = shape_data.valid
    shape_index = np.arange(num_shapes)
    passed = np.zeros(batch, bool)
    best = np.full(batch, -np.inf)
    assignment = np.full((batch, num_shapes), -1, np.int64)
    for perm in itertools.permutations(range(iou.shape[2]), num_shapes):
        chosen = iou[:, shape_index, perm]  # (B, K)
        good = np.all((chosen >= min_iou) | ~valid, axis=1)
        score = np.where(valid, chosen, 0.0).sum(axis=1)
        better = good & (score > best)
        best = np.where(better, score, best)
        assignment[better] = perm
        passed |= good
    assignment[~valid] = -1
    return passed, assignment


def _support_boxes(size, sides):
    """Every box the generator can draw: `(M, 4)` int `(y0, x0, y1, x1)` and its prior `(M,)`.

    Sides are independently uniform in `sides`, the corner uniform among the places that keep
    the box inside a `size` image, so a box's prior is `1 / ((S - h + 1) (S - w + 1))` up to a
    constant.
    """
    lo, hi = sides
    boxes, prior = [], []
    for h in range(lo, hi + 1):
        for w in range(lo, hi + 1):
            y0, x0 = np.meshgrid(np.arange(size - h + 1), np.arange(size - w + 1), indexing="ij")
            y0, x0 = y0.ravel(), x0.ravel()
            boxes.append(np.stack([y0, x0, y0 + h, x0 + w], axis=1))
            prior.append(np.full(y0.size, 1.0 / ((size - h + 1) * (size - w + 1))))
    return np.concatenate(boxes), np.concatenate(prior)


def rectangle_pair_decompositions(foreground, boxes):
    """The ordered pairs of `boxes` whose union is exactly `foreground`.

    Args:
        foreground: `(S, S)` bool, the painted pixels of one image.
        boxes: `(M, 4)` int `(y0, x0, y1, x1)` boxes (end exclusive) inside the image.

    Returns:
        `(first, second)`: `(P,)` int indices into `boxes`, one entry per ordered pair.
    """
    size = foreground.shape[0]
    table = np.zeros((size + 1, size + 1), np.int64)
    table[1:, 1:] = foreground.cumsum(0).cumsum(1)
    y0, x0, y1, x1 = boxes.T
    area = (y1 - y0) * (x1 - x0)
    inside = np.nonzero(table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0] == area)[0]
    if inside.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    candidates = boxes[inside]  # (C, 4)
    pixels = np.arange(size)
    # What each candidate leaves of the foreground; the second box must cover its bounding box.
    rows = (pixels >= candidates[:, 0, None]) & (pixels < candidates[:, 2, None])  # (C, S)
    cols = (pixels >= candidates[:, 1, None]) & (pixels < candidates[:, 3, None])  # (C, S)
    rest = foreground[None] & ~(rows[:, :, None] & cols[:, None, :])  # (C, S, S)
    any_rows, any_cols = rest.any(2), rest.any(1)  # (C, S)
    empty = ~any_rows.any(1)
    r0 = np.where(empty, size, any_rows.argmax(1))
    r1 = np.where(empty, 0, size - any_rows[:, ::-1].argmax(1))
    c0 = np.where(empty, size, any_cols.argmax(1))
    c1 = np.where(empty, 0, size - any_cols[:, ::-1].argmax(1))
    fits = ((candidates[None, :, 0] <= r0[:, None]) & (candidates[None, :, 2] >= r1[:, None])
            & (candidates[None, :, 1] <= c0[:, None]) & (candidates[None, :, 3] >= c1[:, None]))
    first, second = np.nonzero(fits)  # (P,) each, into candidates
    return inside[first], inside[second]


def own_move_ceiling(shape_data, sides, min_iou=0.5):
    """The best own-move rate a painter that reproduces each image exactly can expect.

    Appendix A's 2-Rectangles paints two same-coloured rectangles anywhere, so an image shows
    only their union, and several pairs of rectangles can draw the same union: one rectangle
    inside the other, a rectangle whose end lies inside the other, two that line up into one.
    Whatever two rectangles a painter paints, the generator drew one of the consistent pairs,
    each with the probability its prior gives. For each image this returns the largest, over
    the consistent pairs a painter could paint, of the posterior probability that
    `own_move_assignment` passes (each true rectangle matched by a move with IoU >= `min_iou`).
    Its mean bounds the own-move rate of any painter whose moves reproduce the image with
    rectangles the generator could draw.

    Args:
        shape_data: a `ShapeData` of 2 rectangles per image, both in one colour
            (`2_rectangles`, `2_rectangles_separated`).
        sides: the inclusive side range `(lo, hi)` the generator drew from
            (`shapes.rectangle_sides(image_size)`).
        min_iou: the IoU of `own_move_assignment`.

    Returns:
        `(B,)` float64 probabilities.

    Raises:
        ValueError: if `sides` or `min_iou` is out of range, an image does not hold exactly
            two rectangles of one colour, or its union is not that of two rectangles with
            sides in `sides`.
    """
    data = shape_data
    lo, hi = sides
    if not 1 <= lo <= hi <= data.image_size:
        raise ValueError(f"sides must be (lo, hi) with 1 <= lo <= hi <= {data.image_size} (the "
                         f"image side). Received: {sides}")
    if not 0.0 < min_iou <= 1.0:
        raise ValueError(f"min_iou must be in (0, 1]. Received: {min_iou}")
    if data.max_shapes != 2 or not data.valid.all() or np.any(data.kinds != shapes_lib.RECTANGLE):
        raise ValueError("own_move_ceiling needs exactly 2 rectangles in every image.")
    if np.any(data.colors[:, 0] != data.colors[:, 1]):
        raise ValueError("own_move_ceiling needs both rectangles of an image in one colour.")
    support, prior = _support_boxes(data.image_size, sides)
    masks = data.masks > 0.5
    result = np.zeros(len(data))
    for i in range(len(data)):
        first, second = rectangle_pair_decompositions(masks[i, 0] | masks[i, 1], support)
        if first.size == 0:
            raise ValueError(f"Image {i} is no union of two rectangles with sides in {sides}.")
        weight = prior[first] * prior[second]
        weight /= weight.sum()
        used, index = np.unique(np.concatenate([first, second]), return_inverse=True)
        a, b = index[:first.size], index[first.size:]
        close = box_iou(support[used][:, None], support[used][None, :]) >= min_iou  # (U, U)
        # passes[g, p]: the painter paints pair g and the generator drew pair p.
        passes = (close[a][:, a] & close[b][:, b]) | (close[a][:, b] & close[b][:, a])  # (P, P)
        result[i] = (passes @ weight).max()
    return result


def covering_move(move_masks, move_colors, shape_data, min_cover=0.9, threshold=0.5):
    """Whether one move painted every shape of an image at once (thesis 4.1).

    The local minimum the thesis found for T-DRAW on 2-Rectangles: "the
    network paints a large rectangle covering both rectangles in the first
    move and then tries to correct the white spaces using the second". An
    image with two or more shapes counts when one move's mask covers at least
    `min_cover` of every shape's pixels and its colour is nearer each shape's
    colour than the background's (a gray box over two white rectangles on
    black counts; a move that paints the background over the whole canvas
    does not).

    Args:
        move_masks: `(B, T, H, W[, 1])` masks of the moves, in [0, 1].
        move_colors: `(B, T)` or `(B, T, 1)` each move's gray value.
        shape_data: the `ShapeData` of the same B images.
        min_cover: the share of a shape's pixels the move must cover.
        threshold: a move covers a pixel where its mask exceeds this.

    Returns:
        `(B,)` bool; False for images with fewer than two shapes.
    """
    moves = np.asarray(move_masks)
    if moves.ndim == 5:
        moves = moves[..., 0]
    colors = np.asarray(move_colors, np.float64).reshape(moves.shape[:2])  # (B, T)
    moves = (moves > threshold).astype(np.float64)  # (B, T, H, W)
    shapes = (np.asarray(shape_data.masks) > 0.5).astype(np.float64)  # (B, K, H, W)
    inside = np.einsum("bkhw,bthw->bkt", shapes, moves)
    cover = inside / np.maximum(shapes.sum((2, 3)), 1.0)[:, :, None]  # (B, K, T)
    to_shape = np.abs(colors[:, None, :] - shape_data.colors[:, :, None])  # (B, K, T)
    to_background = np.abs(colors - shape_data.background[:, None])[:, None, :]  # (B, 1, T)
    near = to_shape < to_background
    valid = shape_data.valid[:, :, None]
    paints_all = np.all(((cover >= min_cover) & near) | ~valid, axis=1)  # (B, T)
    return np.any(paints_all, axis=1) & (shape_data.valid.sum(axis=1) >= 2)


def template_choice_accuracy(where, which, shape_data, templates, radius=4.0):
    """Template-choice accuracy as thesis section 5.5 defines it.

    An image is correct when every shape in it has a move whose template
    centre lies within `radius` pixels of the shape's centre and whose largest
    template weight picks the shape's template.

    Args:
        where: `(B, T, 6)` moves' affine maps.
        which: `(B, T, K)` template weights (or logits: only the argmax counts).
        shape_data: the `ShapeData` of the B images.
        templates: the template names of the Painter, in bank order.
        radius: distance allowed between centres, in pixels.

    Returns:
        `(B,)` bool: whether each image is correct.
    """
    size = shape_data.image_size
    centres = move_centres(where, (size, size))  # (B, T, 2)
    chosen = np.asarray(templates)[np.argmax(np.asarray(which), axis=-1)]  # (B, T)
    truth = shape_data.centers  # (B, K, 2)
    dist = np.linalg.norm(truth[:, :, None, :] - centres[:, None, :, :], axis=-1)  # (B, K, T)
    right_kind = np.zeros(dist.shape, bool)
    for kind, names in KIND_TEMPLATES.items():
        kind_match = np.isin(chosen, names)[:, None, :]  # (B, 1, T)
        right_kind |= (shape_data.kinds == kind)[:, :, None] & kind_match
    found = np.any((dist <= radius) & right_kind, axis=-1)  # (B, K)
    return np.all(found | ~shape_data.valid, axis=1)


def shapes_overlap(shape_data):
    """Whether any two shapes of each image share a pixel.

    Args:
        shape_data: a `ShapeData`.

    Returns:
        `(B,)` bool.
    """
    masks = (shape_data.masks > 0.5) & shape_data.valid[:, :, None, None]
    return masks.sum(axis=1).max(axis=(1, 2)) > 1


def unseen_shapes(shape_data):
    """Which shapes no pixel of which can be told apart in the image.

    A shape is unseen when every pixel of it is covered by shapes painted after it or by other
    shapes of its own colour: the image is the same with it or without it (a rectangle inside
    another of 2-Rectangles, or the bottom one of 2-Rectangles-Occlusion hidden by the top one).
    No painting can find such a shape.

    Args:
        shape_data: a `ShapeData`.

    Returns:
        `(B, K)` bool (False for padding).
    """
    masks = (shape_data.masks > 0.5) & shape_data.valid[:, :, None, None]
    colors = shape_data.colors
    num_shapes = masks.shape[1]
    unseen = np.zeros(masks.shape[:2], bool)
    for k in range(num_shapes):
        cover = np.zeros_like(masks[:, k])
        for j in range(num_shapes):
            if j == k:
                continue
            hides = np.full(len(masks), j > k) | (np.abs(colors[:, j] - colors[:, k]) < 1e-6)
            cover |= masks[:, j] & hides[:, None, None]
        unseen[:, k] = ~np.any(masks[:, k] & ~cover, axis=(1, 2))
    return unseen & shape_data.valid


OcclusionOrder = collections.namedtuple("OcclusionOrder", ["right", "occluded", "hidden"])


def occlusion_order(canvas, move_masks, shape_data, min_iou=0.5):
    """Whether the occluded pairs of shapes of each image were painted in the right order.

    A pair (shape i painted before shape j) is judged where j visibly covers part of i: on the
    pixels `R_ij` of i's mask where j is the topmost shape, as long as some of i still shows
    elsewhere and the two colours differ. The pair is right when the mean painted colour over
    `R_ij` is closer to j's colour than to i's, which is what an observer of the painting would
    judge. An image is right when every judged pair in it is right and every shape that shows
    was painted by a move of its own (`own_move_assignment` over the visible shapes).

    Pairs that cannot be told apart are not judged: pairs of equal colour, and pairs whose
    bottom shape is hidden entirely (no pixel of it shows, so nothing in the image says it is
    there). Images with such a hidden pair are flagged in `hidden`; they are judged on their
    other pairs, if any. A pair whose overlap is covered entirely by a third shape is not judged
    either (its order is invisible).

    Args:
        canvas: `(B, H, W, 1)` final paintings.
        move_masks: `(B, T, H, W[, 1])` masks of the moves.
        shape_data: `ShapeData` of the same B images, any number of shapes.
        min_iou: as in `own_move_assignment`.

    Returns:
        `OcclusionOrder(right, occluded, hidden)`, each `(B,)` bool: `occluded` where an image
        has at least one judged pair, `right` (meaningful where `occluded`) where all of them
        are right, `hidden` where some pair's bottom shape is hidden entirely.
    """
    masks = shape_data.masks > 0.5  # (B, K, H, W)
    visible = shape_data.visible_masks() > 0.5  # (B, K, H, W)
    shows = visible.any(axis=(2, 3)) & shape_data.valid  # (B, K)
    colors = shape_data.colors
    paint = np.asarray(canvas)[..., 0]  # (B, H, W)
    num_shapes = masks.shape[1]
    judged = np.zeros(len(paint), bool)
    all_right = np.ones(len(paint), bool)
    hidden = np.zeros(len(paint), bool)
    for i in range(num_shapes):
        for j in range(i + 1, num_shapes):
            differ = (
                shape_data.valid[:, i] & shape_data.valid[:, j]
                & (np.abs(colors[:, i] - colors[:, j]) > 1e-6)
            )
            overlap = (masks[:, i] & masks[:, j]).any(axis=(1, 2))
            hidden |= differ & overlap & ~shows[:, i]
            region = masks[:, i] & visible[:, j]  # (B, H, W): j on top of i
            area = region.sum(axis=(1, 2))
            pair = differ & shows[:, i] & (area > 0)
            mean = (paint * region).sum(axis=(1, 2)) / np.maximum(area, 1)
            closer_to_top = np.abs(mean - colors[:, j]) < np.abs(mean - colors[:, i])
            judged |= pair
            all_right &= closer_to_top | ~pair
    showing = dataclasses.replace(shape_data, valid=shows)
    own, _ = own_move_assignment(move_masks, showing, min_iou)
    return OcclusionOrder(own & all_right & judged, judged, hidden)


def count_accuracy(predicted, true):
    """The share of scenes whose inferred number of objects is right.

    Args:
        predicted: `(N,)` inferred counts (AIR: the present steps).
        true: `(N,)` true counts.

    Returns:
        A float in [0, 1].
    """
    predicted = np.rint(np.asarray(predicted)).astype(int)
    true = np.asarray(true).astype(int)
    if predicted.shape != true.shape or predicted.ndim != 1:
        raise ValueError(f"Expected two (N,) count vectors. Received: {predicted.shape} and "
                         f"{true.shape}")
    return float(np.mean(predicted == true))


def box_iou(a, b):
    """IoU of boxes `(x0, y0, x1, y1)` (end exclusive), broadcasting over leading axes."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    width = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    height = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = width * height
    area = lambda box: (np.clip(box[..., 2] - box[..., 0], 0, None)
                        * np.clip(box[..., 3] - box[..., 1], 0, None))
    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def match_boxes(pred_boxes, pred_valid, true_boxes, true_valid):
    """Pairs the inferred and true boxes of each scene one to one.

    In each scene the present inferred boxes and the true boxes are paired to
    maximise the summed IoU (the Hungarian method); unpaired boxes are left
    out.

    Args:
        pred_boxes: `(N, K, 4)` inferred `(x0, y0, x1, y1)` (AIR's `boxes`).
        pred_valid: `(N, K)` whether each inferred box is present.
        true_boxes: `(N, M, 4)` true `(y0, x0, y1, x1)` (`SceneData.boxes`,
            `ShapeData.boxes`).
        true_valid: `(N, M)`.

    Returns:
        `(scene, pred, true, iou)`: four `(P,)` arrays, one entry per pair:
        the scene, the inferred box's index, the true box's index, their IoU.
    """
    from scipy import optimize  # pylint: disable=import-outside-toplevel

    pred_boxes, true_boxes = np.asarray(pred_boxes), np.asarray(true_boxes)
    true_xy = true_boxes[..., [1, 0, 3, 2]]  # (N, M, 4) as (x0, y0, x1, y1)
    pairs = []
    for n in range(len(pred_boxes)):
        pred_index = np.flatnonzero(np.asarray(pred_valid[n], bool))
        true_index = np.flatnonzero(np.asarray(true_valid[n], bool))
        if len(pred_index) == 0 or len(true_index) == 0:
            continue
        table = box_iou(pred_boxes[n][pred_index][:, None], true_xy[n][true_index][None])
        rows, cols = optimize.linear_sum_assignment(-table)  # (P, T) maximised
        pairs.extend(zip([n] * len(rows), pred_index[rows], true_index[cols],
                         table[rows, cols]))
    if not pairs:
        return (np.zeros(0, int), np.zeros(0, int), np.zeros(0, int), np.zeros(0))
    scene, pred, true, iou = (np.asarray(v) for v in zip(*pairs))
    return scene.astype(int), pred.astype(int), true.astype(int), iou.astype(np.float64)


def matched_box_iou(pred_boxes, pred_valid, true_boxes, true_valid):
    """Mean IoU of the inferred and true boxes, matched one to one per scene
    (`match_boxes`). Scenes without a pair do not count.

    Returns:
        `(mean IoU over matched pairs, number of pairs)`; NaN with no pair.
    """
    iou = match_boxes(pred_boxes, pred_valid, true_boxes, true_valid)[3]
    return (float(np.mean(iou)) if len(iou) else float("nan")), len(iou)


def slot_purity(slots, labels):
    """How often each memory slot holds one class: cluster purity.

    Each slot is given the class most of its objects have; the purity is the
    share of objects whose class is their slot's (1: every slot holds one
    class; a single slot for everything scores the largest class's share).
    DM-VAE's claim that a slot is a "shared template" (its fig 5), measured
    with the held-out digits' labels.

    Args:
        slots: `(P,)` the slot each object was addressed with.
        labels: `(P,)` each object's true class.

    Returns:
        A float in [0, 1], NaN when there is no object.

    Raises:
        ValueError: unless `slots` and `labels` are two vectors of one length.
    """
    slots, labels = np.asarray(slots).astype(int), np.asarray(labels).astype(int)
    if slots.shape != labels.shape or slots.ndim != 1:
        raise ValueError(f"Expected two (P,) vectors. Received: {slots.shape} and "
                         f"{labels.shape}")
    if not len(slots):
        return float("nan")
    majority = 0
    for slot in np.unique(slots):
        majority += np.bincount(labels[slots == slot]).max()
    return float(majority / len(slots))
