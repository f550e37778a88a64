"""Tests for export.serving: signatures, input checks, versions, models.config."""

import json
import os
import subprocess
import sys
import tempfile
import textwrap

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from export import serving
from tests.export import fixtures
from tfpaint.layers import spatial_transformer as st
from tfpaint.layers import template_bank
from tfpaint.models import draw


class SignatureTest(parameterized.TestCase, tf.test.TestCase):
    """Exported signatures give the Keras model's numbers."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.base = tempfile.mkdtemp()
        cls.models, cls.signatures = {}, {}
        for name in fixtures.VARIANTS:
            model = fixtures.make_model(name)
            path = serving.export_saved_model(model, cls.base, name)
            cls.models[name] = model
            cls.signatures[name] = tf.saved_model.load(path).signatures

    @parameterized.named_parameters((name, name) for name in fixtures.VARIANTS)
    def test_serving_default_matches_keras(self, name):
        model = self.models[name]
        x = fixtures.images(model.image_shape)
        want = model(x, training=False)
        got = self.signatures[name]["serving_default"](image=tf.constant(x))
        self.assertCountEqual(got.keys(), serving.SERVING_OUTPUTS)
        for key in serving.SERVING_OUTPUTS:
            self.assertAllClose(got[key], want[key], atol=1e-5, rtol=0, msg=key)

    def test_moves_signature_matches_keras(self):
        model = self.models["gray_over"]
        x = fixtures.images(model.image_shape)
        want = model(x, training=False)
        got = self.signatures["gray_over"]["moves"](image=tf.constant(x))
        self.assertCountEqual(got.keys(), serving.MOVES_OUTPUTS)
        for key in serving.MOVES_OUTPUTS:
            self.assertAllClose(got[key], want[key], atol=1e-5, rtol=0, msg=key)
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "`image` values must be"):
            self.signatures["gray_over"]["moves"](image=tf.constant(x - 1.0))

    @parameterized.named_parameters((name, name) for name in fixtures.VARIANTS)
    def test_render_reproduces_the_painting(self, name):
        model = self.models[name]
        sigs = self.signatures[name]
        out = sigs["serving_default"](image=tf.constant(fixtures.images(model.image_shape)))
        again = sigs["render"](where=out["where"], what=out["what"], which=out["which"])
        self.assertAllClose(again["canvases"], out["canvases"], atol=1e-5)
        self.assertAllClose(again["canvas"], again["canvases"][:, -1])

    def test_render_one_centred_move_paints_the_template(self):
        # Identity affine, template as large as the canvas: the canvas is the
        # template mask in the move's colour, the rest stays background 0.
        model = fixtures.make_model("gray_over")
        model_12 = type(model)(**{**fixtures.VARIANTS["gray_over"][1], "template_size": 12})
        model_12(tf.zeros((1, *fixtures.GRAY)))
        path = serving.export_saved_model(model_12, tempfile.mkdtemp(), "centred")
        render = tf.saved_model.load(path).signatures["render"]
        identity = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0], np.float32)
        where = np.tile(identity, (1, 3, 1))
        # Two invisible moves (colour 0 on a 0 background), then the circle in 0.7.
        what = np.array([[[0.0], [0.0], [0.7]]], np.float32)
        which = np.array([[[1.0, 0.0]] * 3], np.float32)
        canvas = render(where=where, what=what, which=which)["canvas"].numpy()
        circle = template_bank.make_template("circle", 12)
        self.assertAllClose(canvas[0, ..., 0], 0.7 * circle, atol=1e-5)

    def test_unknown_batch_size(self):
        sig = self.signatures["gray_over"]["serving_default"]
        spec = sig.structured_input_signature[1]["image"]
        self.assertEqual(spec.shape.as_list(), [None, *fixtures.GRAY])
        self.assertEqual(spec.dtype, tf.float32)
        for batch in (1, 5):
            out = sig(image=tf.zeros((batch, *fixtures.GRAY)))
            self.assertEqual(out["canvases"].shape, (batch, 3, *fixtures.GRAY))

    @parameterized.named_parameters(
        ("above_one", lambda x: x + 1.0, r"`image` values must be finite and in \[0.0, 1.0\]"),
        ("negative", lambda x: x - 1.0, r"`image` values must be finite and in \[0.0, 1.0\]"),
        ("nan", lambda x: x * np.nan, r"`image` values must be finite"),
        ("wrong_height", lambda x: x[:, :11], r"`image` must have shape \[batch, 12, 12, 1\]"),
        ("wrong_channels", lambda x: np.concatenate([x, x], -1),
         r"`image` must have shape \[batch, 12, 12, 1\]"),
    )
    def test_bad_image_raises(self, corrupt, message):
        sig = self.signatures["gray_over"]["serving_default"]
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, message):
            sig(image=tf.constant(corrupt(fixtures.images(fixtures.GRAY)), tf.float32))

    def test_wrong_dtype_raises(self):
        sig = self.signatures["gray_over"]["serving_default"]
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "float"):
            sig(image=tf.zeros((1, *fixtures.GRAY), tf.float64))

    @parameterized.named_parameters(
        ("negative_which", "which", lambda v: v - 2.0, r"`which` values must be finite and in"),
        ("bright_what", "what", lambda v: v + 2.0, r"`what` values must be finite and in"),
        ("nan_where", "where", lambda v: v * np.nan, r"`where` values must be finite"),
        ("short_where", "where", lambda v: v[:, :2], r"`where` must have shape \[batch, 3, 6\]"),
        ("batch_mismatch", "what", lambda v: v[:1], "same batch size"),
    )
    def test_bad_moves_raise(self, key, corrupt, message):
        sigs = self.signatures["gray_over"]
        out = sigs["serving_default"](image=tf.constant(fixtures.images(fixtures.GRAY)))
        moves = {k: out[k].numpy() for k in ("where", "what", "which")}
        moves[key] = corrupt(moves[key]).astype(np.float32)
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, message):
            sigs["render"](**{k: tf.constant(v) for k, v in moves.items()})

    def test_additive_canvas_accepts_unbounded_colours(self):
        sigs = self.signatures["gray_additive"]
        where = np.tile(np.array([1.0, 0, 0, 0, 1.0, 0], np.float32), (2, 3, 1))
        out = sigs["render"](where=where, what=np.full((2, 3, 1), 5.0, np.float32),
                             which=np.tile(np.array([1.0, 0.0], np.float32), (2, 3, 1)))
        self.assertAllInRange(out["canvas"], 0.0, 1.0)

    def test_xla_export_matches(self):
        model = self.models["gray_over"]
        path = serving.export_saved_model(model, tempfile.mkdtemp(), "xla", jit=True)
        sigs = tf.saved_model.load(path).signatures
        x = fixtures.images(fixtures.GRAY)
        want = model(x, training=False)
        got = sigs["serving_default"](image=tf.constant(x))
        # Only the signature's outputs: the per-move copies that make XLA
        # write each canvas once stay inside.
        self.assertCountEqual(got.keys(), serving.SERVING_OUTPUTS)
        for key in serving.SERVING_OUTPUTS:
            self.assertAllClose(got[key], want[key], atol=1e-4, rtol=0, msg=key)
        moves = sigs["moves"](image=tf.constant(x))
        self.assertCountEqual(moves.keys(), serving.MOVES_OUTPUTS)
        self.assertAllClose(moves["canvas"], want["canvas"], atol=1e-4, rtol=0)
        again = sigs["render"](where=got["where"], what=got["what"], which=got["which"])
        self.assertCountEqual(again.keys(), serving.RENDER_OUTPUTS)
        self.assertAllClose(again["canvases"], want["canvases"], atol=1e-4, rtol=0)
        # The checks run outside the compiled part (XLA drops assertions), so
        # they still fire.
        for name in ("serving_default", "moves"):
            for bad, message in ((x + 2.0, r"values must be finite and in \[0.0, 1.0\]"),
                                 (x * np.nan, "values must be finite")):
                with self.assertRaisesRegex(tf.errors.InvalidArgumentError, message):
                    sigs[name](image=tf.constant(bad, tf.float32))
            with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                        r"`image` must have shape \[batch, 12, 12, 1\]"):
                sigs[name](image=tf.constant(x[:, :11]))

    def test_metadata_describes_signatures(self):
        path = os.path.join(self.base, "gray_over", "1", serving.METADATA_FILE)
        with open(path) as f:
            meta = json.load(f)
        self.assertEqual(meta["signatures"]["serving_default"]["inputs"]["image"]["shape"],
                         [-1, 12, 12, 1])
        self.assertEqual(meta["signatures"]["render"]["inputs"]["which"]["shape"], [-1, 3, 2])
        self.assertEqual(meta["signatures"]["moves"]["outputs"], list(serving.MOVES_OUTPUTS))
        self.assertEqual(meta["templates"], ["circle", "square"])

    def test_loads_and_runs_without_tfpaint(self):
        # TF Serving has no tfpaint: a fresh process with only TensorFlow must
        # load the SavedModel and give the Keras numbers.
        model = self.models["gray_over"]
        x = fixtures.images(fixtures.GRAY)
        got = run_without_tfpaint(os.path.join(self.base, "gray_over", "1"), "serving_default", x)
        want = model(x, training=False)
        for key in serving.SERVING_OUTPUTS:
            self.assertAllClose(got[key], want[key], atol=1e-5, msg=key)


# Every STAWM variant without XLA; with XLA the sketchpad, whose two heads carry both signatures
# (each export costs seconds).
_STAWM_EXPORTS = [(name, False) for name in fixtures.STAWM_VARIANTS] + [("stawm_sketchpad", True)]


class StawmSignatureTest(parameterized.TestCase, tf.test.TestCase):
    """STAWM's `classify` and `draw` give the Keras model's numbers."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.base = tempfile.mkdtemp()
        cls.models, cls.signatures = {}, {}
        for name, jit in _STAWM_EXPORTS:
            if name not in cls.models:
                cls.models[name] = fixtures.make_model(name)
            path = serving.export_saved_model(cls.models[name], cls.base, f"{name}_{int(jit)}",
                                              jit=jit)
            cls.signatures[name, jit] = tf.saved_model.load(path).signatures

    @parameterized.named_parameters(
        (f"{name}{'_xla' if jit else ''}", name, jit) for name, jit in _STAWM_EXPORTS)
    def test_signatures_match_keras(self, name, jit):
        model = self.models[name]
        sigs = self.signatures[name, jit]
        x = fixtures.images(fixtures.GRAY)
        want = model(x, training=False)
        boxes = st.affine_boxes(want["thetas"], fixtures.GRAY[:2])
        expected = {}
        if "classify" in model.heads:
            expected["classify"] = {"logits": want["logits"], "boxes": boxes,
                                    "probabilities": tf.nn.softmax(want["logits"])}
        if "draw" in model.heads:
            expected["draw"] = {"canvas": want["canvas"], "canvases": want["canvases"],
                                "boxes": boxes,
                                "write_boxes": st.affine_boxes(want["write_thetas"],
                                                               fixtures.GRAY[:2])}
        default = "classify" if "classify" in model.heads else "draw"
        expected["serving_default"] = expected[default]
        self.assertCountEqual(sigs.keys(), expected.keys())
        for signature, outputs in expected.items():
            got = sigs[signature](image=tf.constant(x))
            self.assertCountEqual(got.keys(), outputs.keys())
            for key, value in outputs.items():
                self.assertAllClose(got[key], value, atol=1e-5, rtol=1e-5,
                                    msg=f"{signature}/{key}")

    def test_boxes_are_where_the_glimpses_read(self):
        # The classifier's probabilities sum to one and its boxes lie where
        # the pose heads put them: identity poses read the whole 12x12 image.
        sigs = self.signatures["stawm_classify", False]
        out = sigs["classify"](image=tf.zeros((2, *fixtures.GRAY)))
        self.assertAllClose(tf.reduce_sum(out["probabilities"], -1), [1.0, 1.0])
        self.assertAllClose(out["boxes"][:, 0], [[0.0, 0.0, 12.0, 12.0]] * 2, atol=1e-4)

    @parameterized.named_parameters(
        ("range", lambda x: x + 1.0, r"`image` values must be finite and in \[0.0, 1.0\]"),
        ("nan", lambda x: x * np.nan, r"`image` values must be finite"),
        ("shape", lambda x: x[:, :11], r"`image` must have shape \[batch, 12, 12, 1\]"),
    )
    def test_bad_image_raises(self, corrupt, message):
        for jit in (False, True):
            sigs = self.signatures["stawm_sketchpad", jit]
            for name in ("classify", "draw"):
                with self.assertRaisesRegex(tf.errors.InvalidArgumentError, message):
                    sigs[name](image=tf.constant(corrupt(fixtures.images(fixtures.GRAY)),
                                                 tf.float32))

    def test_metadata_describes_signatures(self):
        path = os.path.join(self.base, "stawm_sketchpad_0", "1", serving.METADATA_FILE)
        with open(path) as f:
            meta = json.load(f)
        self.assertEqual(meta["model"], "STAWM")
        self.assertEqual(meta["serving_default"], "classify")
        self.assertEqual(sorted(meta["signatures"]), ["classify", "draw", "serving_default"])
        self.assertEqual(meta["signatures"]["draw"]["outputs"], list(serving.STAWM_DRAW_OUTPUTS))
        self.assertEqual(meta["signatures"]["classify"]["inputs"]["image"],
                         {"shape": [-1, 12, 12, 1], "dtype": "float32", "range": [0.0, 1.0]})

    def test_loads_and_runs_without_tfpaint(self):
        model = self.models["stawm_sketchpad"]
        x = fixtures.images(fixtures.GRAY)
        path = os.path.join(self.base, "stawm_sketchpad_0", "1")
        got = run_without_tfpaint(path, "draw", x)
        self.assertAllClose(got["canvases"], model(x, training=False)["canvases"], atol=1e-5)

    def test_unknown_model_type_raises(self):
        with self.assertRaisesRegex(TypeError, "No serving signatures for Sequential"):
            serving.signatures_for(tf.keras.Sequential())


class DrawSignatureTest(parameterized.TestCase, tf.test.TestCase):
    """DRAW's `reconstruct` and `generate` give the Keras model's numbers."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.base = tempfile.mkdtemp()
        cls.models = {
            "gaussian": draw.DRAW(fixtures.GRAY, num_steps=3, encoder_units=8, decoder_units=8,
                                  latent_units=2, read_size=2, write_size=3, seed=1),
            "t_draw": draw.DRAW(fixtures.GRAY, num_steps=2, encoder_units=8, decoder_units=8,
                                latent_units=2, writer="template", templates=("square",),
                                template_size=8, seed=2),
        }
        cls.signatures = {}
        for name, model in cls.models.items():
            model(fixtures.images(fixtures.GRAY))
            path = serving.export_saved_model(model, cls.base, name)
            cls.signatures[name] = tf.saved_model.load(path).signatures

    @parameterized.named_parameters(("gaussian", "gaussian"), ("t_draw", "t_draw"))
    def test_reconstruct_and_generate_match_keras(self, name):
        model, sigs = self.models[name], self.signatures[name]
        x = fixtures.images(fixtures.GRAY)
        want = model(x, training=False, sample=False)
        for signature in ("reconstruct", "serving_default"):
            got = sigs[signature](image=tf.constant(x))
            self.assertCountEqual(got.keys(), serving.RECONSTRUCT_OUTPUTS)
            for key in serving.RECONSTRUCT_OUTPUTS:
                self.assertAllClose(got[key], want[key], atol=1e-5, msg=f"{signature}/{key}")
        seed = tf.constant([4, 2], tf.int32)
        got = sigs["generate"](batch_size=tf.constant(5), seed=seed)
        want = model.generate(5, seed=seed)
        self.assertEqual(got["canvases"].shape, (5, model.num_steps, *fixtures.GRAY))
        for key in serving.RECONSTRUCT_OUTPUTS:
            self.assertAllClose(got[key], want[key], atol=1e-5, msg=f"generate/{key}")
        other = sigs["generate"](batch_size=tf.constant(5), seed=seed + 1)
        self.assertNotAllClose(other["canvas"], got["canvas"])

    @parameterized.named_parameters(("zero", 0), ("too_many", 4097))
    def test_bad_batch_size_raises(self, batch_size):
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                    r"`batch_size` must be in \[1, 4096\]"):
            self.signatures["gaussian"]["generate"](batch_size=tf.constant(batch_size),
                                                    seed=tf.constant([0, 0]))

    def test_metadata_describes_generate(self):
        with open(os.path.join(self.base, "gaussian", "1", serving.METADATA_FILE)) as f:
            meta = json.load(f)
        self.assertEqual(meta["model"], "DRAW")
        self.assertEqual(meta["attention"], "gaussian")
        self.assertEqual(sorted(meta["signatures"]),
                         ["generate", "reconstruct", "serving_default"])
        self.assertEqual(meta["signatures"]["generate"]["inputs"]["seed"],
                         {"shape": [2], "dtype": "int32"})


def run_without_tfpaint(path, signature, x):
    """Runs `signature` of the SavedModel at `path` on `x` in a fresh process
    that imports only TensorFlow (as TF Serving has no tfpaint)."""
    work = tempfile.mkdtemp()
    np.save(os.path.join(work, "x.npy"), x)
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import tensorflow as tf
        sig = tf.saved_model.load({path!r}).signatures[{signature!r}]
        out = sig(image=tf.constant(np.load({os.path.join(work, "x.npy")!r})))
        np.savez({os.path.join(work, "out.npz")!r}, **{{k: v.numpy() for k, v in out.items()}})
        assert not any(m.split(".")[0] == "tfpaint" for m in sys.modules), "tfpaint imported"
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", script], cwd=work, env=env,
                            capture_output=True, text=True, timeout=300)
    if result.returncode:
        raise AssertionError(result.stderr[-3000:])
    return dict(np.load(os.path.join(work, "out.npz")))


class LayoutTest(tf.test.TestCase):
    """The directory layout and config TF Serving reads."""

    def setUp(self):
        super().setUp()
        self.model = fixtures.make_model("gray_over")
        self.base = self.get_temp_dir()

    def test_versions_count_up_and_are_never_overwritten(self):
        first = serving.export_saved_model(self.model, self.base, "painter")
        second = serving.export_saved_model(self.model, self.base, "painter")
        self.assertEqual(os.path.basename(first), "1")
        self.assertEqual(os.path.basename(second), "2")
        for path in (first, second):
            self.assertTrue(os.path.exists(os.path.join(path, "saved_model.pb")))
            self.assertTrue(os.path.isdir(os.path.join(path, "variables")))
        stamp = os.path.getmtime(os.path.join(first, "saved_model.pb"))
        with self.assertRaisesRegex(FileExistsError, "never overwritten"):
            serving.export_saved_model(self.model, self.base, "painter", version=1)
        self.assertEqual(stamp, os.path.getmtime(os.path.join(first, "saved_model.pb")))
        # Only the integer versions remain: no staging directories.
        self.assertEqual(sorted(os.listdir(os.path.join(self.base, "painter"))), ["1", "2"])
        third = serving.export_saved_model(self.model, self.base, "painter", version=7)
        self.assertEqual(serving.latest_version_dir(os.path.dirname(third)), third)

    def test_models_config_parses_as_model_server_config(self):
        from google.protobuf import text_format
        from tensorflow_serving.config import model_server_config_pb2

        serving.export_saved_model(self.model, self.base, "painter")
        serving.export_saved_model(self.model, self.base, "digits")
        os.makedirs(os.path.join(self.base, "not_a_model"))
        path, names = serving.write_models_config(self.base, "/models")
        self.assertEqual(names, ["digits", "painter"])
        with open(path) as f:
            config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
        entries = config.model_config_list.config
        self.assertEqual([c.name for c in entries], ["digits", "painter"])
        self.assertEqual([c.base_path for c in entries], ["/models/digits", "/models/painter"])
        self.assertEqual({c.model_platform for c in entries}, {"tensorflow"})

    def test_models_config_without_models_raises(self):
        with self.assertRaisesRegex(FileNotFoundError, "No exported model under"):
            serving.write_models_config(self.base)

    def test_bad_name_and_version_raise(self):
        with self.assertRaisesRegex(ValueError, "`model_name` must be"):
            serving.export_saved_model(self.model, self.base, "a/b")
        with self.assertRaisesRegex(ValueError, "`version` must be a positive integer"):
            serving.export_saved_model(self.model, self.base, "painter", version=0)

    def test_a_killed_exports_staging_directory_is_removed(self):
        model_dir = os.path.join(self.base, "painter")
        # An export killed midway by a process that no longer exists...
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout.strip()
        stale = os.path.join(model_dir, f".staging-{dead}-1")
        os.makedirs(os.path.join(stale, "variables"))
        # ... and one still running (this process).
        live = os.path.join(model_dir, f".staging-{os.getppid()}-9")
        os.makedirs(live)
        serving.export_saved_model(self.model, self.base, "painter")
        self.assertFalse(os.path.exists(stale))
        self.assertTrue(os.path.exists(live))
        self.assertEqual(sorted(n for n in os.listdir(model_dir) if not n.startswith(".")),
                         ["1"])

    def test_latest_version_dir_without_model_raises(self):
        with self.assertRaisesRegex(FileNotFoundError, "No SavedModel at"):
            serving.latest_version_dir(self.base)


if __name__ == "__main__":
    tf.test.main()
