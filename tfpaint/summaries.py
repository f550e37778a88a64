"""Pictures of painting progress, for TensorBoard and for people.

The functions here build NumPy pictures from a Painter's output dict;
`write_painting_summaries` sends them to the default TensorBoard writer.
"""

import io

import numpy as np
import tensorflow as tf

from tfpaint import files

# Distinct outline colours for successive moves (RGB in [0, 1]).
_MOVE_COLOURS = np.array(
    [
        [0.90, 0.10, 0.10], [0.10, 0.60, 0.95], [0.15, 0.80, 0.20], [1.00, 0.60, 0.00],
        [0.70, 0.20, 0.90], [0.00, 0.85, 0.80], [0.95, 0.85, 0.10], [0.95, 0.30, 0.65],
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


def progress_grid(canvases, targets, scale=2):
    """The canvas after each move, then the target, one image per row.

    The layout of thesis figs 4.1 and 5.6: column t is the canvas after move t,
    the last column is the image the Painter was given.

    Args:
        canvases: `(N, T, H, W, C)` canvases after each move.
        targets: `(N, H, W, C)` images.
        scale: integer upscaling of every pixel, for legibility.

    Returns:
        `(Hg, Wg, 3)` float32 picture in [0, 1].
    """
    canvases = np.clip(_rgb(canvases), 0.0, 1.0)
    targets = np.clip(_rgb(targets), 0.0, 1.0)
    rows = np.concatenate([canvases, targets[:, None]], axis=1)
    grid = _tile(rows)
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


def write_painting_summaries(outputs, images, step, max_images=8, prefix="painting"):
    """Writes the progress grid, its animation and the move outlines to the
    default writer.

    Args:
        outputs: a Painter's output dict for `images` (`canvases`, `masks`).
        images: `(N, H, W, C)` the images painted.
        step: the training step.
        max_images: how many images to show.
        prefix: tag prefix.

    Returns:
        (the progress grid `(Hg, Wg, 3)`, the animation as GIF bytes), also
        handy to save as `progress.png` and `progress.gif`.
    """
    n = min(max_images, len(images))
    canvases, targets = np.asarray(outputs["canvases"])[:n], np.asarray(images)[:n]
    grid = progress_grid(canvases, targets)
    outlines = outline_overlay(targets, np.asarray(outputs["masks"])[:n])
    frames = progress_frames(canvases, targets)
    gif = encode_gif(frames)
    tf.summary.image(f"{prefix}/progress", grid[None], step=step)
    tf.summary.image(f"{prefix}/move_outlines", outlines[None], step=step)
    write_gif_summary(f"{prefix}/progress_animation", gif, frames.shape[2], frames.shape[1],
                      step)
    return grid, gif


def save_png(picture, path):
    """Saves a `(H, W, 3)` float picture in [0, 1] as a PNG file."""
    data = tf.image.encode_png(
        tf.cast(tf.round(np.clip(picture, 0.0, 1.0) * 255.0), tf.uint8)
    )
    files.atomic_write(path, data.numpy())


def save_bytes(data, path):
    """Writes encoded bytes (a GIF) to `path` atomically."""
    files.atomic_write(path, bytes(data))
