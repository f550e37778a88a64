"""A trained Painter as a SavedModel that TF Serving loads, and its signatures.

The SavedModel holds two signatures, both built on the model's own forward
pass and its `render` method (no second implementation to drift):

- `serving_default`: `image` `[batch, H, W, C]` float32 in [0, 1] ->
  `canvas` `[batch, H, W, C]`, `canvases` `[batch, T, H, W, C]` (the canvas
  after every move), `where` `[batch, T, 6]` (canvas -> template affine),
  `what` `[batch, T, C]` (colour) and `which` `[batch, T, K]` (template
  weights).
- `moves`: `image` -> `canvas`, `where`, `what`, `which`: the strokes and
  the final picture without the per-move canvases (a fifth of the reply,
  and faster under XLA, which then skips materialising them).
- `render`: `where`, `what`, `which` (as above, possibly edited by hand) ->
  `canvas` and `canvases`.

All three check their inputs inside the graph (shape, value range, finite values),
so TF Serving answers a bad request with an error that names the problem
instead of returning a wrong picture. dtype is checked by the signature.
Shapes are checked before the model runs; the image's values are reduced to
one bool in the same pass as the model and asserted before any output is
returned.

The versioned layout TF Serving watches is `<export_base>/<model_name>/<N>/`;
each export takes the next free integer N and appears atomically (it is
written under a hidden name and renamed), so a running server never sees a
half-written version and no version is ever overwritten.
"""

import json
import os
import re
import shutil

import keras
import tensorflow as tf

from tfpaint import files
from tfpaint.models import painter

SERVING_OUTPUTS = ("canvas", "canvases", "where", "what", "which")
MOVES_OUTPUTS = ("canvas", "where", "what", "which")
RENDER_OUTPUTS = ("canvas", "canvases")
# Extra files inside a version directory go to assets.extra/ (TF Serving's
# convention); this one describes the signatures for humans and clients.
METADATA_FILE = os.path.join("assets.extra", "tfpaint.json")
_VERSION = re.compile(r"^\d+$")


def _check_shape(tensor, shape, name):
    """An in-graph check that `tensor` has `shape` (None: any size)."""
    dims = ", ".join("batch" if d is None else str(d) for d in shape)
    message = f"`{name}` must have shape [{dims}]"
    actual = tf.shape(tensor)
    checks = [tf.debugging.assert_equal(tf.rank(tensor), len(shape), message=message)]
    with tf.control_dependencies(checks):
        for axis, size in enumerate(shape):
            if size is not None:
                checks.append(
                    tf.debugging.assert_equal(actual[axis], size, message=message)
                )
    return checks


def _check_range(tensor, low, high, name):
    message = f"`{name}` values must be finite and in [{low}, {high}]"
    return [
        tf.debugging.assert_greater_equal(tensor, tf.cast(low, tensor.dtype), message=message),
        tf.debugging.assert_less_equal(tensor, tf.cast(high, tensor.dtype), message=message),
    ]


def _in_range(tensor, low, high):
    """A scalar bool: every value of `tensor` is in [low, high] (NaN is not)."""
    return tf.reduce_all(
        tf.logical_and(tensor >= tf.cast(low, tensor.dtype), tensor <= tf.cast(high, tensor.dtype))
    )


def _check_finite(tensor, name):
    return [tf.debugging.assert_all_finite(tensor, f"`{name}` values must be finite")]


class PainterSignatures:
    """The serving functions of a Painter (shared by SavedModel and TFLite).

    `serving_default`, `moves` and `render` are described in the module
    docstring.

    Args:
        model: a built Painter (`SimplePainter`, `ConvPainter` or
            `RecurrentPainter`).
        jit: compile the model's computation with XLA inside the SavedModel.
            The assertions stay outside the compiled part (XLA drops them);
            the image's value range is reduced to one bool inside it.

    Attributes:
        image_spec, where_spec, what_spec, which_spec: the input
            `tf.TensorSpec`s.
    """

    def __init__(self, model, jit=False):
        self.model = model
        self.jit = bool(jit)
        height, width, channels = model.image_shape
        moves = model.num_moves
        num_templates = len(model.templates)
        self.image_spec = tf.TensorSpec([None, height, width, channels], tf.float32, "image")
        self.where_spec = tf.TensorSpec([None, moves, 6], tf.float32, "where")
        self.what_spec = tf.TensorSpec([None, moves, channels], tf.float32, "what")
        self.which_spec = tf.TensorSpec([None, moves, num_templates], tf.float32, "which")
        # Over-canvas colours are sigmoid outputs in [0, 1]; additive-canvas
        # colours are unbounded logits.
        self._what_bounded = getattr(model, "canvas", "over") == "over"
        self._paint = tf.function(self._paint_fn, jit_compile=self.jit)
        self._moves = tf.function(self._moves_fn, jit_compile=self.jit)
        self._render = tf.function(self._render_fn, jit_compile=self.jit)
        self.serving_default = tf.function(self._serve, input_signature=[self.image_spec])
        self.moves = tf.function(self._serve_moves, input_signature=[self.image_spec])
        self.render = tf.function(
            self._render_checked,
            input_signature=[self.where_spec, self.what_spec, self.which_spec],
        )

    def _paint_fn(self, image):
        outputs = self.model(image, training=False)
        outputs = self._write_once({k: outputs[k] for k in SERVING_OUTPUTS})
        return outputs, _in_range(image, 0.0, 1.0)

    def _moves_fn(self, image):
        outputs = self.model(image, training=False)
        return {k: outputs[k] for k in MOVES_OUTPUTS}, _in_range(image, 0.0, 1.0)

    def _render_fn(self, where, what, which):
        canvases = self.model.render(where, what, which)  # (B, T, H, W, C)
        return self._write_once({"canvas": canvases[:, -1], "canvases": canvases})

    def _write_once(self, outputs):
        """Under XLA, makes the compiled function write each canvas once.

        See `painter.write_canvases_once` (at T = 20 the recomputation it
        avoids cost more than all the template placement). `_drop_extras`
        discards the per-move copies outside the compiled part.
        """
        if self.jit:
            outputs, per_move = painter.write_canvases_once(outputs)
            outputs["_per_move"] = per_move
        return outputs

    @staticmethod
    def _drop_extras(outputs):
        return {k: v for k, v in outputs.items() if not k.startswith("_")}

    def _checked_image(self, image):
        checks = _check_shape(image, self.image_spec.shape.as_list(), "image")
        with tf.control_dependencies(checks):
            return tf.identity(image)

    def _image_outputs(self, compiled, image):
        """Runs `compiled` on a shape-checked image; values are checked after.

        The shape must be checked first: a wrong shape would fail inside the
        model with a less helpful message. The value range is computed by the
        compiled function itself (one fused pass instead of five separate
        ops that the model would wait for) and asserted before any output is
        returned, so a bad image is still an error and never a picture.
        """
        outputs, in_range = compiled(self._checked_image(image))
        check = tf.debugging.Assert(
            in_range, ["`image` values must be finite and in [0.0, 1.0]"]
        )
        with tf.control_dependencies([check]):
            return {k: tf.identity(v) for k, v in self._drop_extras(outputs).items()}

    def _serve(self, image):
        return self._image_outputs(self._paint, image)

    def _serve_moves(self, image):
        return self._image_outputs(self._moves, image)

    def _render_checked(self, where, what, which):
        checks = []
        for tensor, spec in ((where, self.where_spec), (what, self.what_spec),
                             (which, self.which_spec)):
            checks += _check_shape(tensor, spec.shape.as_list(), spec.name)
        with tf.control_dependencies(checks):
            batch = [
                tf.debugging.assert_equal(
                    tf.shape(t)[0], tf.shape(where)[0],
                    message="`where`, `what` and `which` must have the same batch size",
                )
                for t in (what, which)
            ]
        with tf.control_dependencies(batch):
            checks = _check_finite(where, "where")
            checks += (_check_range(what, 0.0, 1.0, "what") if self._what_bounded
                       else _check_finite(what, "what"))
            checks += _check_range(which, 0.0, 1.0, "which")
        with tf.control_dependencies(checks):
            where, what, which = (tf.identity(t) for t in (where, what, which))
        return self._drop_extras(self._render(where, what, which))

    def metadata(self):
        """A JSON-able description of the signatures, for `assets.extra`."""

        def spec(s):
            return {"shape": [-1 if d is None else d for d in s.shape.as_list()],
                    "dtype": s.dtype.name}

        model = self.model
        return {
            "model": type(model).__name__,
            "templates": list(model.templates),
            "canvas": getattr(model, "canvas", "over"),
            "jit": self.jit,
            "signatures": {
                "serving_default": {
                    "inputs": {"image": spec(self.image_spec)},
                    "outputs": list(SERVING_OUTPUTS),
                },
                "moves": {
                    "inputs": {"image": spec(self.image_spec)},
                    "outputs": list(MOVES_OUTPUTS),
                },
                "render": {
                    "inputs": {s.name: spec(s) for s in
                               (self.where_spec, self.what_spec, self.which_spec)},
                    "outputs": list(RENDER_OUTPUTS),
                },
            },
        }


def build_archive(model, jit=False):
    """A `keras.export.ExportArchive` with the two Painter signatures."""
    signatures = PainterSignatures(model, jit=jit)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", signatures.serving_default)
    archive.add_endpoint("moves", signatures.moves)
    archive.add_endpoint("render", signatures.render)
    return archive, signatures


def existing_versions(model_dir):
    """The integer versions already under `model_dir` (sorted)."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(n) for n in os.listdir(model_dir) if _VERSION.match(n))


def export_saved_model(model, export_base, model_name="painter", version=None, jit=False):
    """Writes `model` as version `version` (default: the next) of `model_name`.

    Args:
        model: a built Painter.
        export_base: the directory TF Serving's `--model_config_file` points
            into (its models live at `<export_base>/<model_name>/<version>`).
        model_name: the model's name for TF Serving (and its URL).
        version: a positive integer, or None for one more than the largest
            existing version (1 for the first export).
        jit: compile the model's computation with XLA in the SavedModel.

    Returns:
        The path of the new version directory.

    Raises:
        ValueError: on a bad model name or version.
        FileExistsError: if `version` already exists (versions are never
            overwritten).
    """
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", model_name or ""):
        raise ValueError(
            "`model_name` must be letters, digits, '_', '.' or '-' (it becomes a "
            f"directory and a URL path segment). Received: {model_name!r}"
        )
    model_dir = os.path.join(os.path.abspath(export_base), model_name)
    os.makedirs(model_dir, exist_ok=True)
    if version is None:
        version = (existing_versions(model_dir) or [0])[-1] + 1
    elif int(version) < 1:
        raise ValueError(f"`version` must be a positive integer. Received: {version}")
    version = int(version)
    final = os.path.join(model_dir, str(version))
    if os.path.exists(final):
        raise FileExistsError(
            f"{final} already exists; versions are never overwritten. Omit "
            "--version to write the next one."
        )
    # TF Serving ignores directories whose name is not an integer, so the
    # version is invisible to it until the rename below.
    staging = os.path.join(model_dir, f".staging-{version}-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    archive, signatures = build_archive(model, jit=jit)
    archive.write_out(staging, verbose=False)
    extra = os.path.join(staging, METADATA_FILE)
    os.makedirs(os.path.dirname(extra), exist_ok=True)
    with open(extra, "w") as f:
        json.dump(signatures.metadata(), f, indent=2)
    try:
        os.rename(staging, final)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        raise FileExistsError(f"{final} appeared while exporting; not overwritten.")
    return final


def write_models_config(export_base, serving_base="/models"):
    """Writes `<export_base>/models.config` listing every exported model.

    The file is TF Serving's `--model_config_file` (a `ModelServerConfig` text
    proto). Paths in it are where the server sees `export_base`: `/models`
    when the directory is mounted there in the `tensorflow/serving` container.

    Args:
        export_base: the directory holding `<model_name>/<version>/` trees.
        serving_base: `export_base` as the server sees it.

    Returns:
        (path of models.config, list of model names).

    Raises:
        FileNotFoundError: if no exported model is under `export_base`.
    """
    export_base = os.path.abspath(export_base)
    names = []
    if os.path.isdir(export_base):
        for name in sorted(os.listdir(export_base)):
            model_dir = os.path.join(export_base, name)
            if any(os.path.exists(os.path.join(model_dir, str(v), "saved_model.pb"))
                   for v in existing_versions(model_dir)):
                names.append(name)
    if not names:
        raise FileNotFoundError(
            f"No exported model under {export_base} (expected "
            "<model_name>/<version>/saved_model.pb): run //export:saved_model first."
        )
    lines = ["model_config_list {"]
    for name in names:
        base_path = f"{serving_base.rstrip('/')}/{name}"
        lines += [
            "  config {",
            f'    name: "{name}"',
            f'    base_path: "{base_path}"',
            '    model_platform: "tensorflow"',
            "  }",
        ]
    lines.append("}")
    path = files.atomic_write(os.path.join(export_base, "models.config"),
                              "\n".join(lines) + "\n")
    return path, names


def latest_version_dir(path):
    """The newest version directory under a model dir, or `path` itself if it
    already is a SavedModel directory."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    versions = existing_versions(path)
    if not versions:
        raise FileNotFoundError(
            f"No SavedModel at {path}: expected saved_model.pb there or integer "
            "version directories under it (written by //export:saved_model)."
        )
    return os.path.join(path, str(versions[-1]))
