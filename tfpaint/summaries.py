"""Pictures of painting progress, for TensorBoard and for people.

The functions here build NumPy pictures from a model's output dict (the
canvas after each move, move outlines, glimpse boxes); `write_pictures` sends
them to the default TensorBoard writer.
"""

import io

import numpy as np
import tensorflow as tf

from tfpaint import files
from tfpaint.layers import spatial_transformer as st

# Distinct colours for successive moves and glimpses (RGB in [0, 1]).
_MOVE_COLOURS = np.array(
    [
        [0.90, 0.10, 0.10], [0.10, 0.60, 0.95], [0.15, 0.80, 0.20], [1.00, 0.60, 0.00],
        [0.70, 0.20, 0.90], [0.00, 0.85, 0.80], [0.95, 0.85, 0.10], [0.95, 0.30, 0.65],
        [0.55, 0.35, 0.15], [0.60, 0.60, 1.00], [0.60, 0.95, 0.60], [1.00, 0.75, 0.55],
        [0.40, 0.40, 0.40], [0.00, 0.45, 0.45], [0.55, 0.55, 0.00], [0.85, 0.45, 0.30],
    ],
    np.float32,
)


def _rgb(images):
    images = np.asarray(images, np.float32)
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def _tile(rows, pad=1, value=0.5):
    """Tiles `(R, Cols, H, W, 3)` pictures into one `(Hg, Wg, 3)` grid."""
    rows = np.asarray(rows, np.float32)
    n_rows, n_cols, h, w, c = rows.shape
    grid = np.full(
        (n_rows * (h + pad) + pad, n_cols * (w + pad) + pad, c), value, np.float32
    )
    for r in range(n_rows):
        for k in range(n_cols):
            y, x = pad + r * (h + pad), pad + k * (w + pad)
            grid[y:y + h, x:x + w] = rows[r, k]
    return grid


def progress_grid(canvases, targets=None, scale=2, boxes=None, box_colours=None):
    """The canvas after each move, then the target, one image per row.

    The layout of thesis figs 4.1 and 5.6: column t is the canvas after move t,
    the last column is the image the model was given (none for generation).

    Args:
        canvases: `(N, T, H, W, C)` canvases after each move.
        targets: `(N, H, W, C)` images, or None.
        scale: integer upscaling of every pixel, for legibility.
        boxes: optional `(N, T, 4)` pixel boxes `(x0, y0, x1, y1)`: move t's
            box is drawn on the canvas after move t (DRAW's write windows,
            the paper's figure of MNIST generation), in move t's colour.
        box_colours: optional `(N, T)` ints: box (n, t) in colour
            `box_colours[n, t]` of the palette instead (DM-VAE's boxes in
            the colour of their memory slot, as `memory_grid`'s rows).

    Returns:
        `(Hg, Wg, 3)` float32 picture in [0, 1].
    """
    canvases = np.clip(_rgb(canvases), 0.0, 1.0)
    if boxes is not None:
        canvases = canvases.copy()
        for n, t in np.ndindex(*canvases.shape[:2]):
            colour = t if box_colours is None else int(np.asarray(box_colours)[n, t])
            draw_box(canvases[n, t], np.asarray(boxes)[n, t],
                     _MOVE_COLOURS[colour % len(_MOVE_COLOURS)])
    rows = canvases
    if targets is not None:
        rows = np.concatenate([canvases, np.clip(_rgb(targets), 0.0, 1.0)[:, None]], axis=1)
    grid = _tile(rows)
    return np.kron(grid, np.ones((scale, scale, 1), np.float32)) if scale > 1 else grid


def memory_grid(samples, scale=2):
    """A memory of primitives, one row per slot (DM-VAE's fig 5).

    Each row starts with a swatch in the slot's colour (the colour of its
    boxes in `progress_grid(..., box_colours=slots)`), then the slot's
    samples.

    Args:
        samples: `(K, S, G, G, C)`: S primitives drawn from each of K slots.
        scale: integer upscaling of every pixel.

    Returns:
        `(Hg, Wg, 3)` float32 picture in [0, 1].
    """
    samples = np.clip(_rgb(samples), 0.0, 1.0)  # (K, S, G, G, 3)
    k = samples.shape[0]
    colours = _MOVE_COLOURS[np.arange(k) % len(_MOVE_COLOURS)]  # (K, 3)
    swatches = np.broadcast_to(colours[:, None, None, None, :],
                               (k, 1) + samples.shape[2:]).astype(np.float32)
    grid = _tile(np.concatenate([swatches, samples], axis=1))
    return np.kron(grid, np.ones((scale, scale, 1), np.float32)) if scale > 1 else grid


def progress_frames(canvases, targets, scale=4):
    """Frames of a painting-progress animation: frame t shows, for each image,
    the canvas after move t beside the target (one image per row).

    Each frame is the progress grid of that move, with a white bar in its top
    margin filled to (t + 1) / T of the width. The bar shows where a looping
    animation is, and keeps frames distinct: GIF writers merge identical
    consecutive frames, and a move that changes nothing (the transparency
    template) would otherwise cost the animation a frame.

    Args:
        canvases: `(N, T, H, W, C)` canvases after each move.
        targets: `(N, H, W, C)` images.
        scale: integer upscaling of every pixel.

    Returns:
        `(T, Hf, Wf, 3)` float32 frames in [0, 1].
    """
    canvases = np.asarray(canvases)
    if canvases.ndim != 5:
        raise ValueError(
            f"`canvases` must have shape (N, T, H, W, C). Received: {canvases.shape}"
        )
    moves = canvases.shape[1]
    frames = np.stack(
        [progress_grid(canvases[:, t:t + 1], targets, scale) for t in range(moves)]
    )  # (T, Hf, Wf, 3)
    width = frames.shape[2]
    for t in range(moves):
        # The top margin is one grid pixel, `scale` frame pixels, high.
        frames[t, :scale, :int(round(width * (t + 1) / moves))] = 1.0
    return frames


def encode_gif(frames, frame_ms=150, last_frame_ms=1200):
    """Encodes `(T, H, W, 3)` frames in [0, 1] as a looping GIF (bytes).

    The last frame, the finished painting, is held longer. Colours go through
    a palette of 256 (exact for gray pictures). Pillow merges a frame equal to
    the one before it into that one (adding the durations), so the GIF has
    fewer frames than `frames` only when some repeat.

    Args:
        frames: `(T, H, W, 3)` pictures in [0, 1].
        frame_ms: how long each frame but the last shows, in milliseconds.
        last_frame_ms: how long the last frame shows.

    Returns:
        The GIF file's bytes.
    """
    from PIL import Image

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"`frames` must have shape (T, H, W, 3). Received: {frames.shape}")
    pictures = [
        Image.fromarray(np.round(np.clip(f, 0.0, 1.0) * 255).astype(np.uint8))
        for f in frames
    ]
    durations = [frame_ms] * (len(pictures) - 1) + [last_frame_ms]
    buffer = io.BytesIO()
    pictures[0].save(
        buffer, format="GIF", save_all=True, append_images=pictures[1:],
        duration=durations, loop=0, disposal=1,
    )
    return buffer.getvalue()


def write_gif_summary(tag, gif, width, height, step):
    """Writes encoded GIF bytes as a TensorBoard image summary.

    The images plugin stores `[width, height, encoded image]` and hands the
    bytes to the browser, which plays a GIF as an animation.

    Args:
        tag: the summary's name.
        gif: the GIF file's bytes (`encode_gif`).
        width: its width in pixels.
        height: its height in pixels.
        step: the training step.

    Returns:
        Whether the summary was written (False without a default writer).
    """
    from tensorboard.plugins.image import metadata as image_metadata

    tensor = tf.constant([str(width), str(height), gif], dtype=tf.string)
    return tf.summary.write(
        tag, tensor, step=step,
        metadata=image_metadata.create_summary_metadata(
            display_name=tag, description="painting progress, one frame per move"
        ),
    )


def mask_outlines(masks, threshold=0.5):
    """Boundaries of thresholded masks: pixels inside with a neighbour outside.

    Args:
        masks: `(..., H, W)` in [0, 1].

    Returns:
        `(..., H, W)` bool.
    """
    inside = np.asarray(masks) > threshold
    padded = np.pad(inside, [(0, 0)] * (inside.ndim - 2) + [(1, 1), (1, 1)])
    all_in = (
        padded[..., :-2, 1:-1] & padded[..., 2:, 1:-1]
        & padded[..., 1:-1, :-2] & padded[..., 1:-1, 2:]
    )
    return inside & ~all_in


def outline_overlay(targets, masks, scale=3):
    """Each move drawn as a coloured outline over its target, one panel per image.

    Args:
        targets: `(N, H, W, C)` images.
        masks: `(N, T, H, W, 1)` moves' masks.
        scale: integer upscaling (outlines stay one upscaled pixel wide).

    Returns:
        `(Hg, Wg, 3)` float32 picture: a row of N panels.
    """
    targets = np.clip(_rgb(targets), 0.0, 1.0)
    # Dim the target so coloured outlines stand out on white strokes.
    panels = 0.35 * np.kron(targets, np.ones((1, scale, scale, 1), np.float32))
    masks = np.asarray(masks)[..., 0]
    big = np.kron(masks, np.ones((1, 1, scale, scale), np.float32))
    edges = mask_outlines(big)  # (N, T, sH, sW)
    for t in range(edges.shape[1]):
        colour = _MOVE_COLOURS[t % len(_MOVE_COLOURS)]
        panels = np.where(edges[:, t, ..., None], colour, panels)
    return _tile(panels[None])


def write_pictures(pictures, step):
    """Writes pictures to the default TensorBoard writer.

    Args:
        pictures: dict of tag -> `(H, W, 3)` picture in [0, 1] (an image
            summary) or `(T, H, W, 3)` frames (a GIF animation).
        step: the training step.

    Returns:
        Dict of tag -> the encoded GIF bytes, for the animations.
    """
    gifs = {}
    for tag, picture in pictures.items():
        picture = np.asarray(picture, np.float32)
        if picture.ndim == 4:
            gifs[tag] = encode_gif(picture)
            write_gif_summary(tag, gifs[tag], picture.shape[2], picture.shape[1], step)
        elif picture.ndim == 3:
            tf.summary.image(tag, picture[None], step=step)
        else:
            raise ValueError(
                f"Picture {tag!r} must have shape (H, W, 3) or (T, H, W, 3). "
                f"Received: {picture.shape}"
            )
    return gifs


def draw_box(picture, box, colour):
    """Draws a 1-pixel rectangle outline on an `(H, W, 3)` picture in place.

    Args:
        picture: `(H, W, 3)` float array.
        box: `(x0, y0, x1, y1)` in pixels, end exclusive (clipped to the
            picture); a box with a NaN draws nothing (a step with no object).
        colour: `(3,)` RGB in [0, 1].
    """
    if not np.all(np.isfinite(box)):
        return
    height, width = picture.shape[:2]
    x0, y0, x1, y1 = box
    x0, x1 = int(np.clip(round(x0), 0, width - 1)), int(np.clip(round(x1) - 1, 0, width - 1))
    y0, y1 = int(np.clip(round(y0), 0, height - 1)), int(np.clip(round(y1) - 1, 0, height - 1))
    picture[y0, x0:x1 + 1] = colour
    picture[y1, x0:x1 + 1] = colour
    picture[y0:y1 + 1, x0] = colour
    picture[y0:y1 + 1, x1] = colour


def glimpse_grid(outputs, images, scale=3):
    """Where a glimpse model looked: one row per image.

    The input with every glimpse box (coloured by glimpse), then the canvas
    after each glimpse with the box its sketch was written into (a drawing
    model), or each glimpse resized to the image (a classifier).

    Args:
        outputs: a STAWM-like output dict with `thetas` `(N, G, 6)` (glimpse
            poses, output-to-input maps) and either `canvases`
            `(N, G, H, W, C)` with `write_thetas` `(N, G, 6)`, or `glimpses`
            `(N, G, h, w, C)`.
        images: `(N, H, W, C)` the inputs.
        scale: integer upscaling of every pixel.

    Returns:
        `(Hg, Wg, 3)` float32 picture in [0, 1].
    """
    images = np.clip(_rgb(images), 0.0, 1.0)
    height, width = images.shape[1:3]
    boxes = np.asarray(st.affine_boxes(outputs["thetas"], (height, width)))  # (N, G, 4)
    num = boxes.shape[1]
    colour = lambda n: _MOVE_COLOURS[n % len(_MOVE_COLOURS)]
    rows = []
    for b in range(len(images)):
        first = images[b].copy()
        for n in range(num):
            draw_box(first, boxes[b, n], colour(n))
        row = [first]
        if "canvases" in outputs:
            write = np.asarray(st.affine_boxes(outputs["write_thetas"][b], (height, width)))
            for n in range(num):
                picture = np.clip(_rgb(outputs["canvases"][b, n]), 0.0, 1.0).copy()
                draw_box(picture, write[n], colour(n))
                row.append(picture)
        else:
            for n in range(num):
                glimpse = tf.image.resize(outputs["glimpses"][b, n], (height, width),
                                          method="nearest").numpy()
                row.append(np.clip(_rgb(glimpse), 0.0, 1.0))
        rows.append(row)
    grid = _tile(np.asarray(rows))
    return np.kron(grid, np.ones((scale, scale, 1), np.float32)) if scale > 1 else grid


def save_png(picture, path):
    """Saves a `(H, W, 3)` float picture in [0, 1] as a PNG file."""
    data = tf.image.encode_png(
        tf.cast(tf.round(np.clip(picture, 0.0, 1.0) * 255.0), tf.uint8)
    )
    files.atomic_write(path, data.numpy())


def save_bytes(data, path):
    """Writes encoded bytes (a GIF) to `path` atomically."""
    files.atomic_write(path, bytes(data))
