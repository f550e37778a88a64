r"""Converts an exported SavedModel to TFLite and checks it in LiteRT.

    bazel run //export:tflite -- --saved_model=/abs/models/painter \
        --output=/abs/models/painter.tflite

`--saved_model` is a version directory or a model directory (its newest
version). Only TFLite builtin ops are allowed. After converting, the LiteRT
interpreter runs every signature on held-out MNIST digits (random images of
other sizes; a Painter's `render` gets the moves `serving_default` painted)
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
from tfpaint import runs

FLAGS = flags.FLAGS
flags.DEFINE_string("saved_model", "runs/export/painter", "SavedModel (version or model dir).")
flags.DEFINE_string("output", None, "The .tflite file (default: <model dir>/<name>.tflite).")
flags.DEFINE_float("tolerance", 1e-4, "Largest allowed |TFLite - SavedModel|.")
flags.DEFINE_integer("num_images", 16, "Images checked for parity.")


def _test_images(shape, num_images, rng):
    if tuple(shape) == (28, 28, 1):  # Real digits where they fit.
        from tfpaint.data import digits  # pylint: disable=g-import-not-at-top

        return digits.load_offline_mnist("test")[0][:num_images].astype(np.float32)
    return rng.uniform(size=(num_images, *shape)).astype(np.float32)


def parity(saved_model_dir, tflite_path, num_images=16, seed=0):
    """Max abs difference between TFLite and SavedModel, per signature output.

    Each signature gets images (inputs named `image`), or the outputs of
    `serving_default` of the same names (a Painter's `render` gets the moves
    it painted).
    """
    signatures = tf.saved_model.load(saved_model_dir).signatures
    runner = lite.LiteModel(tflite_path)
    rng = np.random.default_rng(seed)
    images = _test_images(runner.image_shape, num_images, rng)
    default = {k: v.numpy() for k, v in signatures["serving_default"](
        image=tf.constant(images)).items()}
    diffs = {}
    for name, (_, shapes) in runner.signatures.items():
        inputs = {k: images if k == "image" else default[k] for k in shapes}
        want = signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
        got = runner.run(name, **inputs)
        diffs.update({f"{name}/{k}": float(np.max(np.abs(got[k] - want[k].numpy())))
                      for k in want})
    return diffs


def main(argv):
    del argv
    source = runs.resolve(FLAGS.saved_model)
    version_dir = serving.latest_version_dir(source)
    model_dir = os.path.dirname(version_dir)
    output = FLAGS.output or os.path.join(model_dir, os.path.basename(model_dir) + ".tflite")
    output, version_dir = lite.convert(version_dir, runs.resolve(output))
    print(f"Converted {version_dir} -> {output} ({os.path.getsize(output) / 1e6:.2f} MB)")
    print("Ops:", ", ".join(lite.op_names(output)))
    for name, reason in lite.not_converted(output).items():
        print(f"Signature {name!r} left out: it {reason}")
    diffs = parity(version_dir, output, FLAGS.num_images)
    for name, diff in diffs.items():
        print(f"  max |TFLite - SavedModel| {name:26s} {diff:.2e}")
    worst = max(diffs.values())
    if worst > FLAGS.tolerance:
        raise SystemExit(f"Parity check failed: {worst:.2e} > tolerance {FLAGS.tolerance}")
    print(f"Parity within {FLAGS.tolerance}: OK")


if __name__ == "__main__":
    app.run(main)
