r"""Converts an exported Painter SavedModel to TFLite and checks it in LiteRT.

    bazel run //export:tflite -- --saved_model=/abs/models/painter \
        --output=/abs/models/painter.tflite

`--saved_model` is a version directory or a model directory (its newest
version). Only TFLite builtin ops are allowed. After converting, the LiteRT
interpreter runs every signature on held-out MNIST digits (or random moves)
and the largest difference from the SavedModel is printed; it fails if the
difference exceeds --tolerance.
"""

import os

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from export import lite
from export import serving
from trainers import painter_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("saved_model", "runs/export/painter", "SavedModel (version or model dir).")
flags.DEFINE_string("output", None, "The .tflite file (default: <model dir>/<name>.tflite).")
flags.DEFINE_float("tolerance", 1e-4, "Largest allowed |TFLite - SavedModel|.")
flags.DEFINE_integer("num_images", 16, "Images checked for parity.")


def parity(saved_model_dir, tflite_path, num_images=16, seed=0):
    """Max abs difference between TFLite and SavedModel, per signature output."""
    signatures = tf.saved_model.load(saved_model_dir).signatures
    runner = lite.LitePainter(tflite_path)
    rng = np.random.default_rng(seed)
    height, width, channels = runner.image_shape
    images = rng.uniform(size=(num_images, height, width, channels)).astype(np.float32)
    if (height, width, channels) == (28, 28, 1):  # Real digits where they fit.
        from tfpaint.data import digits

        images = digits.load_offline_mnist("test")[0][:num_images].astype(np.float32)
    want = signatures["serving_default"](image=tf.constant(images))
    got = runner.paint(images)
    diffs = {f"serving_default/{k}": float(np.max(np.abs(got[k] - want[k].numpy())))
             for k in want}
    want_moves = signatures["moves"](image=tf.constant(images))
    got = runner.moves(images)
    diffs.update({f"moves/{k}": float(np.max(np.abs(got[k] - want_moves[k].numpy())))
                  for k in want_moves})
    moves = {k: want[k].numpy() for k in ("where", "what", "which")}
    want = signatures["render"](**{k: tf.constant(v) for k, v in moves.items()})
    got = runner.render(**moves)
    diffs.update({f"render/{k}": float(np.max(np.abs(got[k] - want[k].numpy())))
                  for k in want})
    return diffs


def main(argv):
    del argv
    source = painter_lib.resolve_workdir(FLAGS.saved_model)
    version_dir = serving.latest_version_dir(source)
    model_dir = os.path.dirname(version_dir)
    output = FLAGS.output or os.path.join(model_dir, os.path.basename(model_dir) + ".tflite")
    output, version_dir = lite.convert(version_dir, painter_lib.resolve_workdir(output))
    print(f"Converted {version_dir} -> {output} ({os.path.getsize(output) / 1e6:.2f} MB)")
    print("Ops:", ", ".join(lite.op_names(output)))
    diffs = parity(version_dir, output, FLAGS.num_images)
    for name, diff in diffs.items():
        print(f"  max |TFLite - SavedModel| {name:26s} {diff:.2e}")
    worst = max(diffs.values())
    if worst > FLAGS.tolerance:
        raise SystemExit(f"Parity check failed: {worst:.2e} > tolerance {FLAGS.tolerance}")
    print(f"Parity within {FLAGS.tolerance}: OK")


if __name__ == "__main__":
    app.run(main)
