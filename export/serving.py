"""Trained tfpaint models as SavedModels that TF Serving loads, and their signatures.

Every signature is built on the model's own forward pass (and, for a Painter,
its `render` method): no second implementation to drift. Each model family
has a `Signatures` class; `signatures_for(model)` picks it:

Painters (`PainterSignatures`):
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

STAWM (`StawmSignatures`):
- `classify` (a model with the classification head): `image` -> `logits` and
  `probabilities` `[batch, classes]`, `boxes` `[batch, N, 4]` (each glimpse's
  `(x0, y0, x1, y1)` in pixels).
- `draw` (a model with the drawing head): `image` -> `canvas`, `canvases`
  `[batch, N, H, W, C]` (the picture after each glimpse), `boxes` and
  `write_boxes` (where each glimpse's sketch was written).
- `serving_default`: the first of the two the model has.

DRAW and T-DRAW (`DrawSignatures`):
- `reconstruct` (also `serving_default`): `image` -> `canvas`, `canvases`
  `[batch, T, H, W, C]` (the picture after each step), `write_boxes`.
- `generate`: `batch_size` (int32) and `seed` (int32 `[2]`) -> the same,
  painted from the prior.

AIR (`AirSignatures`):
- `scenes` (also `serving_default`): `image` -> `count` `[batch]` (objects
  found), `present` `[batch, N]` (1 for each step that found one, in order),
  `boxes` `[batch, N, 4]` (each object's window `(x0, y0, x1, y1)` in
  pixels; zeros where `present` is 0), `objects` `[batch, N, H, W, C]` (each
  object's own reconstruction, in place; zeros where `present` is 0) and
  `canvas` (their sum), from the posterior means.

DM-VAE (`DmVaeSignatures`):
- `scenes` (also `serving_default`): AIR's outputs and `slots` `[batch, N]`
  (int32: the memory slot each object was drawn from; -1 where `present` is
  0).
- `sample_slot`: `slot` (int32 scalar, 0..K-1), `num_samples` (int32 scalar,
  1..`MAX_SAMPLES`) and `seed` (int32 `[2]`) -> `primitives` `[num_samples,
  G, G, C]`: primitives drawn from that slot's generator (a row of the
  paper's fig 5).

WS-RAM (`WsRamSignatures`):
- `classify` (also `serving_default`): `image` -> `logits` and
  `probabilities` `[batch, classes]`, `boxes` `[batch, N, 4]` (each
  glimpse's window `(x0, y0, x1, y1)` in pixels), from the attention
  policy's mode (each location's mean and the likeliest scale): one answer
  per image, the same on every request.

All signatures check their inputs inside the graph (shape, value range,
finite values), so TF Serving answers a bad request with an error that names
the problem instead of returning a wrong picture. dtype is checked by the
signature. Shapes are checked before the model runs; an image's values are
reduced to one bool in the same pass as the model and asserted before any
output is returned.

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
from tfpaint.layers import spatial_transformer as st
from tfpaint.models import air
from tfpaint.models import dm_vae
from tfpaint.models import draw
from tfpaint.models import painter
from tfpaint.models import stawm
from tfpaint.models import ws_ram

SERVING_OUTPUTS = ("canvas", "canvases", "where", "what", "which")
MOVES_OUTPUTS = ("canvas", "where", "what", "which")
RENDER_OUTPUTS = ("canvas", "canvases")
CLASSIFY_OUTPUTS = ("logits", "probabilities", "boxes")
STAWM_DRAW_OUTPUTS = ("canvas", "canvases", "boxes", "write_boxes")
RECONSTRUCT_OUTPUTS = ("canvas", "canvases", "write_boxes")
SCENES_OUTPUTS = ("count", "present", "boxes", "objects", "canvas")
DM_VAE_SCENES_OUTPUTS = SCENES_OUTPUTS + ("slots",)
# Extra files inside a version directory go to assets.extra/ (TF Serving's
# convention); this one describes the signatures for humans and clients.
METADATA_FILE = os.path.join("assets.extra", "tfpaint.json")
_VERSION = re.compile(r"^\d+$")
# `.staging-<pid>-<version>`: an export in progress, by the process `pid`.
_STAGING = re.compile(r"^\.staging-(\d+)-\d+$")


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


def _spec_metadata(spec, value_range=None):
    meta = {"shape": [-1 if d is None else d for d in spec.shape.as_list()],
            "dtype": spec.dtype.name}
    if value_range is not None:
        meta["range"] = list(value_range)
    return meta


class Signatures:
    """The serving functions of a model, with their input checks.

    A subclass defines `endpoints()` (signature name -> `tf.function` with an
    input signature) and `metadata()`. This base class holds what every family
    shares: the image spec and the checked run of a compiled image function.

    Args:
        model: a built tfpaint model with an `image_shape`.
        jit: compile the model's computation with XLA inside the SavedModel.
            The assertions stay outside the compiled part (XLA drops them);
            the image's value range is reduced to one bool inside it.

    Attributes:
        image_spec: the `image` input's `tf.TensorSpec`.
    """

    def __init__(self, model, jit=False):
        self.model = model
        self.jit = bool(jit)
        height, width, channels = model.image_shape
        self.image_spec = tf.TensorSpec([None, height, width, channels], tf.float32, "image")

    def endpoints(self):
        """Signature name -> `tf.function` with its input signature."""
        raise NotImplementedError

    def _image_signature(self, fn, outputs):
        """A checked signature of `image` running `fn(image) -> dict` compiled."""
        compiled = tf.function(
            lambda image: ({k: v for k, v in fn(image).items() if k in outputs or
                            k.startswith("_")}, _in_range(image, 0.0, 1.0)),
            jit_compile=self.jit)
        return tf.function(lambda image: self._image_outputs(compiled, image),
                           input_signature=[self.image_spec])

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

    def _image_metadata(self, outputs):
        return {"inputs": {"image": _spec_metadata(self.image_spec, (0.0, 1.0))},
                "outputs": list(outputs)}

    def metadata(self):
        """A JSON-able description of the model and its signatures."""
        return {"model": type(self.model).__name__, "jit": self.jit}


class PainterSignatures(Signatures):
    """`serving_default`, `moves` and `render` of a Painter (module docstring).

    Args:
        model: a built Painter (`SimplePainter`, `ConvPainter` or
            `RecurrentPainter`).
        jit: as in `Signatures`.

    Attributes:
        image_spec, where_spec, what_spec, which_spec: the input
            `tf.TensorSpec`s.
    """

    def __init__(self, model, jit=False):
        super().__init__(model, jit)
        channels = model.image_shape[2]
        moves = model.num_moves
        num_templates = len(model.templates)
        self.where_spec = tf.TensorSpec([None, moves, 6], tf.float32, "where")
        self.what_spec = tf.TensorSpec([None, moves, channels], tf.float32, "what")
        self.which_spec = tf.TensorSpec([None, moves, num_templates], tf.float32, "which")
        # Over-canvas colours are sigmoid outputs in [0, 1]; additive-canvas
        # colours are unbounded logits.
        self._what_bounded = getattr(model, "canvas", "over") == "over"
        self._render = tf.function(self._render_fn, jit_compile=self.jit)
        self.serving_default = self._image_signature(self._paint_fn, SERVING_OUTPUTS)
        self.moves = self._image_signature(
            lambda image: self.model(image, training=False), MOVES_OUTPUTS)
        self.render = tf.function(
            self._render_checked,
            input_signature=[self.where_spec, self.what_spec, self.which_spec],
        )

    def endpoints(self):
        return {"serving_default": self.serving_default, "moves": self.moves,
                "render": self.render}

    def _paint_fn(self, image):
        outputs = self.model(image, training=False)
        return self._write_once({k: outputs[k] for k in SERVING_OUTPUTS})

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
        model = self.model
        what_range = (0.0, 1.0) if self._what_bounded else None
        return {
            **super().metadata(),
            "templates": list(model.templates),
            "canvas": getattr(model, "canvas", "over"),
            "signatures": {
                "serving_default": self._image_metadata(SERVING_OUTPUTS),
                "moves": self._image_metadata(MOVES_OUTPUTS),
                "render": {
                    "inputs": {"where": _spec_metadata(self.where_spec),
                               "what": _spec_metadata(self.what_spec, what_range),
                               "which": _spec_metadata(self.which_spec, (0.0, 1.0))},
                    "outputs": list(RENDER_OUTPUTS),
                },
            },
        }


class StawmSignatures(Signatures):
    """`classify` and / or `draw` of a STAWM model (module docstring).

    Args:
        model: a built `tfpaint.models.STAWM`.
        jit: as in `Signatures`.
    """

    def __init__(self, model, jit=False):
        super().__init__(model, jit)
        self._endpoints = {}
        if "classify" in model.heads:
            self._endpoints["classify"] = self._image_signature(self._classify_fn,
                                                                CLASSIFY_OUTPUTS)
        if "draw" in model.heads:
            self._endpoints["draw"] = self._image_signature(self._draw_fn, STAWM_DRAW_OUTPUTS)
        self._endpoints["serving_default"] = next(iter(self._endpoints.values()))

    def endpoints(self):
        return dict(self._endpoints)

    def _boxes(self, thetas):
        return st.affine_boxes(thetas, self.model.image_shape[:2])  # (B, N, 4)

    def _classify_fn(self, image):
        outputs = self.model(image, training=False)
        return {"logits": outputs["logits"],
                "probabilities": tf.nn.softmax(outputs["logits"], axis=-1),
                "boxes": self._boxes(outputs["thetas"])}

    def _draw_fn(self, image):
        outputs = self.model(image, training=False)
        return {"canvas": outputs["canvas"], "canvases": outputs["canvases"],
                "boxes": self._boxes(outputs["thetas"]),
                "write_boxes": self._boxes(outputs["write_thetas"])}

    def metadata(self):
        outputs = {"classify": CLASSIFY_OUTPUTS, "draw": STAWM_DRAW_OUTPUTS}
        names = {name: outputs[name] for name in self._endpoints if name in outputs}
        default = next(iter(names))
        return {
            **super().metadata(),
            "heads": list(self.model.heads),
            "serving_default": default,
            "signatures": {name: self._image_metadata(out) for name, out in
                           {**names, "serving_default": names[default]}.items()},
        }


def _every_step_traced(model):
    """The same DRAW with `unroll = num_steps` and the same weights: its steps
    are traced one after another, with no `tf.while_loop` and no TensorList,
    which TFLite lowers only with a static batch size."""
    if model.unroll >= model.num_steps:
        return model
    traced = model.__class__.from_config({**model.get_config(), "unroll": model.num_steps})
    traced(tf.zeros((1, *model.image_shape), model.compute_dtype))  # Creates the weights.
    traced.set_weights(model.get_weights())
    return traced


class DrawSignatures(Signatures):
    """`reconstruct` and `generate` of DRAW and T-DRAW.

    - `reconstruct` (also `serving_default`): `image` -> `canvas`, `canvases`
      `[batch, T, H, W, C]` (after each step, from the posterior means),
      `write_boxes` `[batch, T, 4]`.
    - `generate`: `batch_size` (int32 scalar, 1..`MAX_GENERATE`) and `seed`
      (int32 `[2]`) -> the same outputs, painted from the prior with the
      stateless noise of `seed`.
    """

    MAX_GENERATE = 4096

    def __init__(self, model, jit=False):
        super().__init__(_every_step_traced(model), jit)
        self.reconstruct = self._image_signature(self._reconstruct_fn, RECONSTRUCT_OUTPUTS)
        self._generate = tf.function(self._generate_fn, jit_compile=self.jit)
        self.generate = tf.function(
            self._generate_checked,
            input_signature=[tf.TensorSpec([], tf.int32, "batch_size"),
                             tf.TensorSpec([2], tf.int32, "seed")])

    def endpoints(self):
        return {"serving_default": self.reconstruct, "reconstruct": self.reconstruct,
                "generate": self.generate}

    def _reconstruct_fn(self, image):
        outputs = self.model(image, training=False, sample=False)
        return {k: outputs[k] for k in RECONSTRUCT_OUTPUTS}

    def _generate_fn(self, batch_size, seed):
        outputs = self.model.generate(batch_size, seed=seed)
        return {k: outputs[k] for k in RECONSTRUCT_OUTPUTS}

    def _generate_checked(self, batch_size, seed):
        check = tf.debugging.Assert(
            tf.logical_and(batch_size >= 1, batch_size <= self.MAX_GENERATE),
            [f"`batch_size` must be in [1, {self.MAX_GENERATE}]"])
        with tf.control_dependencies([check]):
            batch_size = tf.identity(batch_size)
        return self._generate(batch_size, seed)

    def metadata(self):
        generate = {"inputs": {"batch_size": {"shape": [], "dtype": "int32",
                                              "range": [1, self.MAX_GENERATE]},
                               "seed": {"shape": [2], "dtype": "int32"}},
                    "outputs": list(RECONSTRUCT_OUTPUTS)}
        return {
            **super().metadata(),
            "attention": self.model.attention,
            "writer": self.model.writer,
            "num_steps": self.model.num_steps,
            "signatures": {"serving_default": self._image_metadata(RECONSTRUCT_OUTPUTS),
                           "reconstruct": self._image_metadata(RECONSTRUCT_OUTPUTS),
                           "generate": generate},
        }


class AirSignatures(Signatures):
    """`scenes` of AIR (module docstring): per scene the count, the boxes and
    each object's reconstruction."""

    OUTPUTS = SCENES_OUTPUTS

    def __init__(self, model, jit=False):
        super().__init__(model, jit)
        self.scenes = self._image_signature(self._scenes_fn, self.OUTPUTS)

    def endpoints(self):
        return {"serving_default": self.scenes, "scenes": self.scenes}

    def _scenes_fn(self, image):
        return self._scene_outputs(self.model(image, training=False))

    @staticmethod
    def _scene_outputs(outputs):
        present = outputs["z_pres"]  # (B, N)
        return {"count": outputs["count"], "present": present,
                "boxes": outputs["boxes"] * present[..., None],
                "objects": outputs["objects"], "canvas": outputs["canvas"]}

    def metadata(self):
        return {
            **super().metadata(),
            "max_steps": self.model.max_steps,
            "signatures": {name: self._image_metadata(self.OUTPUTS)
                           for name in ("serving_default", "scenes")},
        }


class DmVaeSignatures(AirSignatures):
    """`scenes` with each object's memory slot, and `sample_slot` (module
    docstring) of DM-VAE."""

    MAX_SAMPLES = 1024
    OUTPUTS = DM_VAE_SCENES_OUTPUTS

    def __init__(self, model, jit=False):
        super().__init__(model, jit)
        self._sample = tf.function(self._sample_fn, jit_compile=self.jit)
        self.sample_slot = tf.function(
            self._sample_checked,
            input_signature=[tf.TensorSpec([], tf.int32, "slot"),
                             tf.TensorSpec([], tf.int32, "num_samples"),
                             tf.TensorSpec([2], tf.int32, "seed")])

    def endpoints(self):
        return {**super().endpoints(), "sample_slot": self.sample_slot}

    def _scenes_fn(self, image):
        outputs = self.model(image, training=False)
        result = self._scene_outputs(outputs)
        result["slots"] = tf.where(outputs["z_pres"] > 0.5, outputs["slot"], -1)
        return result

    def _sample_fn(self, slot, num_samples, seed):
        weights = tf.one_hot(tf.fill([num_samples], slot), self.model.num_slots)
        noise = tf.random.stateless_normal([num_samples, self.model.noise_units], seed)
        return {"primitives": self.model.generate_glimpses(weights, noise)}

    def _sample_checked(self, slot, num_samples, seed):
        k = self.model.num_slots
        checks = [
            tf.debugging.Assert(tf.logical_and(slot >= 0, slot < k),
                                [f"`slot` must be in [0, {k - 1}]"]),
            tf.debugging.Assert(
                tf.logical_and(num_samples >= 1, num_samples <= self.MAX_SAMPLES),
                [f"`num_samples` must be in [1, {self.MAX_SAMPLES}]"]),
        ]
        with tf.control_dependencies(checks):
            slot, num_samples = tf.identity(slot), tf.identity(num_samples)
        return self._sample(slot, num_samples, seed)

    def metadata(self):
        meta = super().metadata()
        sample = {"inputs": {"slot": {"shape": [], "dtype": "int32",
                                      "range": [0, self.model.num_slots - 1]},
                             "num_samples": {"shape": [], "dtype": "int32",
                                             "range": [1, self.MAX_SAMPLES]},
                             "seed": {"shape": [2], "dtype": "int32"}},
                  "outputs": ["primitives"]}
        meta.update({"num_slots": self.model.num_slots,
                     "signatures": {**meta["signatures"], "sample_slot": sample}})
        return meta


class WsRamSignatures(Signatures):
    """`classify` of WS-RAM (module docstring): the class and the glimpse boxes."""

    def __init__(self, model, jit=False):
        super().__init__(model, jit)
        self.classify = self._image_signature(self._classify_fn, CLASSIFY_OUTPUTS)

    def endpoints(self):
        return {"serving_default": self.classify, "classify": self.classify}

    def _classify_fn(self, image):
        outputs = self.model(image, training=False)  # the mode policy: one sequence
        logits = outputs["logits"][:, 0]  # (B, K)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1),
                "boxes": outputs["boxes"][:, 0]}

    def metadata(self):
        return {
            **super().metadata(),
            "num_glimpses": self.model.num_glimpses,
            "signatures": {name: self._image_metadata(CLASSIFY_OUTPUTS)
                           for name in ("serving_default", "classify")},
        }


def signatures_for(model, jit=False):
    """The `Signatures` of a model's family.

    Raises:
        TypeError: naming the model's class, if no family exports it.
    """
    if isinstance(model, (painter.SimplePainter, painter.RecurrentPainter)):
        return PainterSignatures(model, jit=jit)
    if isinstance(model, stawm.STAWM):
        return StawmSignatures(model, jit=jit)
    if isinstance(model, draw.DRAW):
        return DrawSignatures(model, jit=jit)
    if isinstance(model, dm_vae.DMVAE):  # before AIR: DM-VAE is an AIR
        return DmVaeSignatures(model, jit=jit)
    if isinstance(model, air.AIR):
        return AirSignatures(model, jit=jit)
    if isinstance(model, ws_ram.WSRAM):
        return WsRamSignatures(model, jit=jit)
    raise TypeError(
        f"No serving signatures for {type(model).__name__}: export knows Painters "
        "(SimplePainter, ConvPainter, RecurrentPainter), STAWM, DRAW, AIR, DM-VAE and WS-RAM."
    )


def build_archive(model, jit=False):
    """A `keras.export.ExportArchive` with the signatures of `model`'s family."""
    signatures = signatures_for(model, jit=jit)
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, function in signatures.endpoints().items():
        archive.add_endpoint(name, function)
    return archive, signatures


def existing_versions(model_dir):
    """The integer versions already under `model_dir` (sorted)."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(n) for n in os.listdir(model_dir) if _VERSION.match(n))


def _remove_stale_staging(model_dir):
    """Removes the staging directories of exports whose process is gone (a
    killed export leaves one behind; TF Serving never reads them)."""
    for name in os.listdir(model_dir):
        match = _STAGING.match(name)
        if not match:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
            alive = pid != os.getpid()
        except ProcessLookupError:
            alive = False
        except PermissionError:  # Another user's live process.
            alive = True
        if not alive:
            shutil.rmtree(os.path.join(model_dir, name), ignore_errors=True)


def export_saved_model(model, export_base, model_name="painter", version=None, jit=False):
    """Writes `model` as version `version` (default: the next) of `model_name`.

    Args:
        model: a built tfpaint model of a family `signatures_for` knows.
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
    _remove_stale_staging(model_dir)
    staging = os.path.join(model_dir, f".staging-{os.getpid()}-{version}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        archive, signatures = build_archive(model, jit=jit)
        archive.write_out(staging, verbose=False)
        files.atomic_write(os.path.join(staging, METADATA_FILE),
                           json.dumps(signatures.metadata(), indent=2))
        os.rename(staging, final)
    except OSError as error:
        if os.path.exists(final):
            raise FileExistsError(f"{final} appeared while exporting; not overwritten.") \
                from error
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
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
