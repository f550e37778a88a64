r"""Exports paintings of held-out images as SVG strokes.

    bazel run //export:svg -- --checkpoint=/abs/runs/painter/mnist_20moves \
        --output_dir=/abs/strokes --num_images=8

For each image writes `painting-<i>.svg` (every move its template, placed by
its affine and filled with its colour, in painting order) and
`painting-<i>.png`: the target, the canvas the model painted and the SVG as
resvg renders it, side by side. Prints how far each rendered SVG is from the
canvas (mean absolute difference per pixel).
"""

import io
import os
import sys

from absl import app
from absl import flags
import numpy as np

from tfpaint import runs
from tfpaint import strokes
from tfpaint import summaries
from tfpaint.data import registry
from tfpaint.models import painter

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None, "Work dir, checkpoints/ dir or checkpoint prefix.")
flags.DEFINE_string("output_dir", None, "Where to write (default <workdir>/strokes).")
flags.DEFINE_integer("num_images", 8, "Held-out images to paint.")
flags.mark_flag_as_required("checkpoint")


def rasterise(svg):
    """The SVG as resvg renders it, `(H, W, 3)` float32 in [0, 1]."""
    import resvg_py
    from PIL import Image

    png = bytes(resvg_py.svg_to_bytes(svg_string=svg))
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.float32) / 255.0


def main(argv):
    del argv
    try:
        model, config, prefix = runs.restore_model(FLAGS.checkpoint)
    except (FileNotFoundError, runs.CheckpointUnreadableError) as error:
        sys.exit(f"Error: {error}")
    if not isinstance(model, (painter.SimplePainter, painter.RecurrentPainter)):
        sys.exit(f"Error: SVG strokes need a Painter run; {FLAGS.checkpoint} holds a "
                 f"{type(model).__name__}, which paints no template moves.")
    _, workdir = runs.find_checkpoint(FLAGS.checkpoint)
    output_dir = runs.resolve(FLAGS.output_dir or os.path.join(workdir, "strokes"))
    test_set = registry.load(config.dataset, "test", data_dir=config.get("data_dir"),
                             seed=config.get("seed", 0), num_examples=FLAGS.num_images,
                             image_size=config.get("image_size"))
    images = test_set.examples(FLAGS.num_images).images
    outputs = {k: v.numpy() for k, v in model(images, training=False).items()}
    print(f"{config.name} ({prefix}): {model.num_moves} moves, templates "
          f"{', '.join(model.templates)}")
    for i in range(len(images)):
        svg = strokes.painting_to_svg(model, outputs, i, title=f"{config.name} painting {i}")
        path = os.path.join(output_dir, f"painting-{i}.svg")
        strokes.save_svg(svg, path)
        rendered = rasterise(svg)
        canvas = np.repeat(outputs["canvas"][i], 3 // outputs["canvas"].shape[-1], axis=-1)
        target = np.repeat(images[i], 3 // images.shape[-1], axis=-1)
        summaries.save_png(np.concatenate([target, canvas, rendered], axis=1),
                           os.path.join(output_dir, f"painting-{i}.png"))
        gap = float(np.abs(rendered - np.clip(canvas, 0.0, 1.0)).mean())
        print(f"  {path}  |SVG - canvas| = {gap:.4f}")
    print(f"PNGs beside each SVG show target | canvas | rendered SVG ({output_dir}).")


if __name__ == "__main__":
    app.run(main)
