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

from absl import app
from absl import flags
import numpy as np

from tfpaint import strokes
from tfpaint import summaries
from trainers import painter_lib

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
    model, config, prefix = painter_lib.restore_model(FLAGS.checkpoint)
    _, workdir = painter_lib.find_checkpoint(FLAGS.checkpoint)
    output_dir = painter_lib.resolve_workdir(FLAGS.output_dir or os.path.join(workdir, "strokes"))
    _, test_set = painter_lib.load_data(config)
    images, _ = painter_lib.held_out_images(test_set, FLAGS.num_images)
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
