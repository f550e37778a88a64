"""TFLite conversion of an exported Painter and a checked LiteRT runner.

The converter reads the SavedModel written by `export.serving`, so the phone
runs the very graph TF Serving runs, with all its signatures
(`serving_default`, `moves`, `render`). Only TFLite builtin ops are allowed: a layer
that needs Select TF ops makes the conversion fail here rather than ship a
model that needs the Flex delegate.

TFLite has no Assert op: the converter drops the SavedModel's in-graph input
checks. `LitePainter` repeats them in Python before invoking the interpreter.
"""

import json
import os

import numpy as np
import tensorflow as tf

from export import serving
from tfpaint import files


def convert(saved_model_dir, output_path):
    """Converts a Painter SavedModel to a `.tflite` file (builtin ops only).

    Args:
        saved_model_dir: a version directory (or a model directory: its newest
            version is used).
        output_path: where to write the `.tflite` file (atomically).

    Returns:
        (output path, the SavedModel directory converted).

    Raises:
        FileNotFoundError: if there is no SavedModel at `saved_model_dir`.
        RuntimeError: naming the ops, if some op has no TFLite builtin.
    """
    saved_model_dir = serving.latest_version_dir(os.path.abspath(saved_model_dir))
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=["serving_default", "moves", "render"]
    )
    # Builtins only: no Flex (Select TF ops) delegate on the device.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        flatbuffer = converter.convert()
    except Exception as error:  # The converter raises ConverterError subclasses.
        raise RuntimeError(
            "TFLite conversion with builtin ops only failed; an op of the model "
            f"has no TFLite builtin:\n{error}"
        ) from error
    output_path = files.atomic_write(output_path, flatbuffer)
    metadata = os.path.join(saved_model_dir, serving.METADATA_FILE)
    if os.path.exists(metadata):  # The signature description travels along.
        with open(metadata) as f:
            meta = json.load(f)
        files.atomic_write(os.path.splitext(output_path)[0] + ".json",
                           json.dumps(meta, indent=2))
    return output_path, saved_model_dir


def op_names(model_path):
    """The op names of a `.tflite` model (for checking there is no Flex op)."""
    interpreter = _interpreter(model_path, num_threads=1)
    return sorted({op["op_name"] for op in interpreter._get_ops_details()})


def _interpreter(model_path, num_threads):
    # ai-edge-litert is the maintained LiteRT runtime (tf.lite.Interpreter is
    # deprecated).
    from ai_edge_litert import interpreter as litert

    if not os.path.exists(model_path):
        raise FileNotFoundError(f"No TFLite model at {model_path}: run //export:tflite first.")
    return litert.Interpreter(model_path=model_path, num_threads=num_threads)


class LitePainter:
    """Runs a converted Painter in the LiteRT interpreter, checking inputs.

    Args:
        model_path: the `.tflite` file.
        num_threads: interpreter threads.

    Call `paint(image)` for `serving_default`, `moves(image)` for `moves` and
    `render(where, what, which)` for the `render` signature; both return dicts of NumPy arrays named as
    in the SavedModel.
    """

    def __init__(self, model_path, num_threads=None):
        self.interpreter = _interpreter(model_path, num_threads or os.cpu_count())
        self._paint = self.interpreter.get_signature_runner("serving_default")
        self._moves = self.interpreter.get_signature_runner("moves")
        self._render = self.interpreter.get_signature_runner("render")
        details = self._paint.get_input_details()["image"]
        self.image_shape = tuple(int(d) for d in details["shape_signature"][1:])
        render_inputs = self._render.get_input_details()
        self._render_shapes = {
            name: tuple(int(d) for d in render_inputs[name]["shape_signature"][1:])
            for name in ("where", "what", "which")
        }

    @staticmethod
    def _check(array, shape, name, low=None, high=None):
        array = np.asarray(array)
        if array.dtype != np.float32:
            raise TypeError(f"`{name}` must be float32. Received: dtype={array.dtype}")
        if array.ndim != len(shape) + 1 or tuple(array.shape[1:]) != shape:
            dims = ", ".join(str(d) for d in shape)
            raise ValueError(
                f"`{name}` must have shape [batch, {dims}]. Received: {array.shape}"
            )
        if not np.all(np.isfinite(array)):
            raise ValueError(f"`{name}` values must be finite")
        if low is not None and (array.min(initial=low) < low or array.max(initial=high) > high):
            raise ValueError(f"`{name}` values must be finite and in [{low}, {high}]")
        return array

    def paint(self, image):
        """`serving_default`: paints a batch of images in [0, 1]."""
        image = self._check(image, self.image_shape, "image", 0.0, 1.0)
        return self._paint(image=image)

    def moves(self, image):
        """`moves`: the strokes and final canvas, without per-move canvases."""
        image = self._check(image, self.image_shape, "image", 0.0, 1.0)
        return self._moves(image=image)

    def render(self, where, what, which):
        """`render`: paints given moves (same checks as the SavedModel)."""
        where = self._check(where, self._render_shapes["where"], "where")
        what = self._check(what, self._render_shapes["what"], "what")
        which = self._check(which, self._render_shapes["which"], "which", 0.0, 1.0)
        if not len(where) == len(what) == len(which):
            raise ValueError("`where`, `what` and `which` must have the same batch size")
        return self._render(where=where, what=what, which=which)
