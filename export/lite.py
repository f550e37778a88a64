"""TFLite conversion of an exported model and a checked LiteRT runner.

The converter reads the SavedModel written by `export.serving`, so the phone
runs the very graph TF Serving runs, with all its signatures (a Painter's
`serving_default`, `moves` and `render`; STAWM's `classify` and / or `draw`).
Only TFLite builtin ops are allowed: a layer that needs Select TF ops makes
the conversion fail here rather than ship a model that needs the Flex
delegate.

TFLite has no Assert op: the converter drops the SavedModel's in-graph input
checks. `LiteModel` repeats them in Python, from the signature description
(`assets.extra/tfpaint.json`, copied beside the `.tflite` file), before
invoking the interpreter.
"""

import json
import os

import numpy as np
import tensorflow as tf

from export import serving
from tfpaint import files


def convert(saved_model_dir, output_path):
    """Converts an exported SavedModel to a `.tflite` file (builtin ops only).

    Every signature that converts with builtin ops goes into the file. A
    signature that needs other ops (DRAW's `generate` draws stateless random
    numbers, which TFLite has no builtin for) is left out, and the side JSON
    names it with the ops it needs under `not_converted`.

    Args:
        saved_model_dir: a version directory (or a model directory: its newest
            version is used).
        output_path: where to write the `.tflite` file (atomically).

    Returns:
        (output path, the SavedModel directory converted).

    Raises:
        FileNotFoundError: if there is no SavedModel at `saved_model_dir`.
        RuntimeError: naming the ops, if no signature converts with builtin
            ops only.
    """
    saved_model_dir = serving.latest_version_dir(os.path.abspath(saved_model_dir))
    keys = list(tf.saved_model.load(saved_model_dir).signatures)
    flatbuffer, error = _convert(saved_model_dir, keys)
    skipped = {}
    if error is not None and len(keys) > 1:
        for key in keys:  # Which signatures need ops that TFLite lacks?
            if _convert(saved_model_dir, [key])[1] is not None:
                skipped[key] = _missing_ops(_convert(saved_model_dir, [key])[1])
        kept = [key for key in keys if key not in skipped]
        if kept:
            flatbuffer, error = _convert(saved_model_dir, kept)
    if error is not None:
        raise RuntimeError(
            "TFLite conversion with builtin ops only failed; an op of the model "
            f"has no TFLite builtin:\n{error}"
        ) from error
    output_path = files.atomic_write(output_path, flatbuffer)
    metadata = os.path.join(saved_model_dir, serving.METADATA_FILE)
    meta = {}
    if os.path.exists(metadata):  # The signature description travels along.
        with open(metadata) as f:
            meta = json.load(f)
    if skipped:
        meta["not_converted"] = skipped
    if meta:
        files.atomic_write(metadata_path(output_path), json.dumps(meta, indent=2))
    return output_path, saved_model_dir


def not_converted(model_path):
    """`{signature: reason}` of the SavedModel signatures `convert` left out."""
    path = metadata_path(model_path)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f).get("not_converted", {})


def _convert(saved_model_dir, keys):
    """(flatbuffer, None) or (None, the converter's error) for `keys`."""
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=keys)
    # Builtins only: no Flex (Select TF ops) delegate on the device.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        return converter.convert(), None
    except Exception as error:  # pylint: disable=broad-except  (ConverterError subclasses)
        return None, error


def _missing_ops(error):
    """The converter's "TF Select ops: ..." line, or its first line."""
    lines = str(error).splitlines()
    found = [line.strip() for line in lines if line.strip().startswith("TF Select ops:")]
    return "needs ops TFLite has no builtin for: " + (
        found[0].split(":", 1)[1].strip() if found else lines[0][:200])


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


def metadata_path(model_path):
    """The signature description that `convert` writes beside a `.tflite` file."""
    return os.path.splitext(model_path)[0] + ".json"


class LiteModel:
    """Runs a converted model in the LiteRT interpreter, checking inputs.

    The checks are those of the SavedModel's signatures: float32, the
    signature's shape, finite values, the value range of each input that has
    one, and one batch size for all inputs of a call.

    Args:
        model_path: the `.tflite` file (its `.json` description beside it).
        num_threads: interpreter threads.

    Call `run(signature, **inputs)`; it returns a dict of NumPy arrays named
    as in the SavedModel.
    """

    def __init__(self, model_path, num_threads=None):
        self.interpreter = _interpreter(model_path, num_threads or os.cpu_count())
        self.signatures = {}
        self.ranges = {}
        description = {}
        if os.path.exists(metadata_path(model_path)):
            with open(metadata_path(model_path)) as f:
                description = json.load(f).get("signatures", {})
        for name in self.interpreter.get_signature_list():
            runner = self.interpreter.get_signature_runner(name)
            inputs = runner.get_input_details()
            self.signatures[name] = (runner, {
                key: tuple(int(d) for d in details["shape_signature"][1:])
                for key, details in inputs.items()})
            described = description.get(name, {}).get("inputs", {})
            self.ranges[name] = {key: described.get(key, {}).get("range") for key in inputs}

    @staticmethod
    def _check(array, shape, name, value_range=None):
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
        if value_range is not None:
            low, high = value_range
            if array.min(initial=low) < low or array.max(initial=high) > high:
                raise ValueError(f"`{name}` values must be finite and in [{low}, {high}]")
        return array

    def run(self, signature, **inputs):
        """Runs `signature` on checked inputs; a dict of NumPy outputs."""
        if signature not in self.signatures:
            raise ValueError(
                f"No signature {signature!r} in this model; it has "
                f"{', '.join(sorted(self.signatures))}."
            )
        runner, shapes = self.signatures[signature]
        if set(inputs) != set(shapes):
            raise ValueError(
                f"Signature {signature!r} takes {sorted(shapes)}. Received: {sorted(inputs)}")
        checked = {k: self._check(v, shapes[k], k, self.ranges[signature][k])
                   for k, v in inputs.items()}
        if len({len(v) for v in checked.values()}) > 1:
            raise ValueError(f"`{'`, `'.join(sorted(checked))}` must have the same batch size")
        return runner(**checked)

    @property
    def image_shape(self):
        """`(H, W, C)` of the `image` input of `serving_default`."""
        return self.signatures["serving_default"][1]["image"]


class LitePainter(LiteModel):
    """A converted Painter: `paint(image)` runs `serving_default`,
    `moves(image)` runs `moves` and `render(where, what, which)` runs
    `render`; each returns a dict of NumPy arrays named as in the SavedModel.
    """

    def paint(self, image):
        """`serving_default`: paints a batch of images in [0, 1]."""
        return self.run("serving_default", image=image)

    def moves(self, image):
        """`moves`: the strokes and final canvas, without per-move canvases."""
        return self.run("moves", image=image)

    def render(self, where, what, which):
        """`render`: paints given moves (same checks as the SavedModel)."""
        return self.run("render", where=where, what=what, which=which)
