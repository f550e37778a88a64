"""Tests for trainers/tasks/painter.py: the Painter on the one training loop.

Tests that train are named `test_slow_*`; each runs a few dozen steps of a tiny
2-Rectangles config (200 images, batch 20) in a couple of seconds.
"""

import os
import tempfile

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from tests.trainers import training
from tfpaint import losses
from tfpaint import metrics
from tfpaint import runs
from tfpaint.data import registry
from tfpaint.models import painter as painter_models
from trainers import tasks
from trainers import train_lib
from trainers.configs import painter as configs


def tiny_config(name="rectangles_2moves", steps=30, **overrides):
    """A config that trains in about a second without XLA."""
    config = configs.get_config(name)
    config.steps = steps
    config.num_train = 200
    config.num_test = 50
    config.batch_size = 20
    config.eval_every = 10
    config.checkpoint_every = 10
    config.log_every = 10
    config.jit = False
    for key, value in overrides.items():
        config[key] = value
    return config


def resolved_task(config):
    task = tasks.get_task(config)
    train_lib.resolve_config(task)
    return task


# Every synthetic set with two or more shapes reports these counts, and the own-move rate
# where shapes overlap and where they are apart when both kinds of image occur.
OVERLAP_COUNTS = {"overlapping_images", "images_with_an_unseen_shape"}
OVERLAP_RATES = {"own_move_rate_overlapping", "own_move_rate_apart"}


class TrainTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.workdir = tempfile.mkdtemp(dir=self.get_temp_dir())

    def test_slow_train_writes_pictures_and_restorable_model(self):
        # The one run with XLA, as configs default to it.
        result, state, _ = training.train_quietly(tiny_config(jit=True), self.workdir)
        eval_dir = os.path.join(self.workdir, "eval")

        # The progress grid: 8 held-out images, 2 moves and the target, scale 2.
        expected = (2 * (8 * 29 + 1), 2 * (3 * 29 + 1), 3)
        width, height, png = training.summary_image(eval_dir, "painting/progress")
        picture = tf.io.decode_png(png).numpy()
        self.assertEqual(picture.shape, expected)
        self.assertEqual((height, width), expected[:2])
        saved = tf.io.decode_png(tf.io.read_file(os.path.join(self.workdir, "progress.png")))
        # save_png rounds, tf.summary.image truncates: 0.5 gray is 128 in one, 127 in the other.
        self.assertAllClose(saved, picture, atol=1, rtol=0)
        training.summary_image(eval_dir, "painting/move_outlines")
        # The animation: one frame per move, each frame 8 canvases and targets.
        _, _, gif = training.summary_image(eval_dir, "painting/progress_animation")
        from PIL import Image

        with open(os.path.join(self.workdir, "progress.gif"), "rb") as f:
            self.assertEqual(f.read(), gif)
        with Image.open(os.path.join(self.workdir, "progress.gif")) as animation:
            self.assertEqual(animation.n_frames, 2)
            self.assertEqual(animation.size, (4 * (2 * 29 + 1), 4 * (8 * 29 + 1)))

        # model.json and the checkpoint rebuild the trained model exactly.
        model, config, prefix = runs.restore_model(self.workdir)
        self.assertIsInstance(model, painter_models.SimplePainter)
        self.assertEqual(model.get_config(), state.model.get_config())
        self.assertEqual(config.name, "rectangles_2moves")
        self.assertEqual(os.path.basename(prefix), "ckpt-30")
        x = registry.load("2_rectangles", "test", num_examples=4).images
        self.assertAllClose(model(x)["canvas"], state.model(x)["canvas"])
        self.assertEqual(set(result) - OVERLAP_RATES,
                         {"mse_per_pixel", "own_move_rate", "covering_move_rate",
                          "train_seconds"} | OVERLAP_COUNTS)

    def test_slow_loss_falls_on_a_fixed_batch(self):
        task = resolved_task(tiny_config(num_train=400, seed=3))
        train_set, _ = task.load_data()
        state = train_lib.TrainState(task, train_set.image_shape)
        batch = {"image": train_set.images[:50]}
        loss = lambda: float(tf.reduce_mean(task.loss(state.model, batch, training=False)[0]))
        before = loss()
        iterator = state.distribute(task.train_pipeline(train_set))
        for _ in range(80):
            state.train_step(iterator)
        self.assertLess(loss(), 0.75 * before)

    def test_missing_tfds_dataset_raises_before_writing(self):
        data_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
        config = tiny_config(dataset="mnist_full", data_dir=data_dir)
        with self.assertRaisesRegex(registry.DatasetUnavailableError, "data_dir=" + data_dir):
            training.train_quietly(config, self.workdir)
        self.assertEqual(os.listdir(self.workdir), [])


class ResumeTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(
        ("plain", "rectangles_2moves"),
        # The latent's noise stream resumes where it stopped.
        ("latent_noise", "denoising_2moves"),
        # Shifted batches are keyed by batch index, so a resumed run sees them again.
        ("shifts", "rectangles_2moves", dict(max_shift=2)),
    )
    def test_slow_resumed_run_equals_uninterrupted_run(self, name, overrides=None):
        overrides = overrides or {}
        base = self.get_temp_dir()
        workdir = os.path.join(base, f"{name}_{len(overrides)}_resumed")
        _, first, _ = training.train_quietly(tiny_config(name, **overrides), workdir,
                                             stop_after=20)
        self.assertEqual(int(first.step.numpy()), 20)
        _, resumed, out = training.train_quietly(tiny_config(name, **overrides), workdir)
        self.assertIn("ckpt-20 at step 20.", out)
        _, straight, _ = training.train_quietly(tiny_config(name, **overrides),
                                       os.path.join(base, f"{name}_{len(overrides)}_straight"))
        for a, b in zip(resumed.model.weights, straight.model.weights):
            self.assertAllClose(a, b, atol=1e-5, rtol=0, msg=a.path)


class BuildModelTest(tf.test.TestCase, parameterized.TestCase):

    BASE_KEYS = {
        "canvas", "canvases", "where", "what", "which", "which_logits", "masks", "latent_cost",
    }

    @parameterized.named_parameters(
        ("simple", dict(model="simple"), painter_models.SimplePainter, set()),
        ("conv", dict(model="conv"), painter_models.SimplePainter, set()),
        ("recurrent", dict(model="recurrent"), painter_models.RecurrentPainter, set()),
        ("canvas_recurrent", dict(model="canvas_recurrent"), painter_models.RecurrentPainter,
         set()),
        ("sorter", dict(sorter=True), painter_models.SimplePainter, {"order", "unsorted_canvas"}),
        ("depth_sorter", dict(depth_sorter=True), painter_models.SimplePainter,
         {"depth", "paint_order"}),
        ("denoising", dict(latent="denoising", latent_sigma=0.1), painter_models.SimplePainter,
         {"mu", "sigma"}),
        ("variational", dict(latent="variational", latent_cost="full"),
         painter_models.SimplePainter, {"mu", "sigma"}),
        ("custom", dict(latent="custom", latent_stochastic=False, latent_cost="mu"),
         painter_models.SimplePainter, {"mu", "sigma"}),
    )
    def test_model_kinds(self, overrides, cls, extra_keys):
        config = tiny_config(hidden_units=16, rnn_units=16, latent_units=8, template_size=8,
                             **overrides)
        model = resolved_task(config).build_model((16, 16, 1))
        self.assertIsInstance(model, cls)
        self.assertEqual(model.num_moves, 2)
        self.assertEqual(model.templates, ("square",))
        if config.model in ("simple", "conv"):
            self.assertEqual(model.encoder, "dense" if config.model == "simple" else "conv")
            conv_layers = [l for l in model.encoder_net.layers
                           if isinstance(l, keras.layers.Conv2D)]
            self.assertLen(conv_layers, 2 if config.model == "conv" else 0)
            self.assertEqual(model.use_sorter, bool(config.sorter))
            self.assertEqual(model.latent, None if config.latent == "none" else config.latent)
        else:
            self.assertEqual(model.canvas_feedback, config.model == "canvas_recurrent")
        out = model(np.zeros((3, 16, 16, 1), np.float32))
        self.assertEqual(set(out), self.BASE_KEYS | extra_keys)
        self.assertEqual(out["canvases"].shape, (3, 2, 16, 16, 1))

    @parameterized.named_parameters(
        ("model", dict(model="mlp"), r"`model` must be one of 'simple', 'conv'"),
        ("latent", dict(latent="gauss"), r"`latent` must be one of 'none', 'denoising'"),
        ("canvas", dict(canvas="bernoulli"), r"`canvas` must be one of 'over', 'additive'"),
        ("template", dict(templates=("circle", "star")), r"`templates` must name templates"),
        ("moves", dict(num_moves=0), r"`num_moves` must be an integer >= 1"),
        ("recurrent_sorter", dict(model="recurrent", sorter=True),
         "Latent and sorter variants are built on the simple Painter"),
        ("recurrent_latent", dict(model="recurrent", latent="denoising"),
         "Latent and sorter variants are built on the simple Painter"),
        ("recurrent_depth", dict(model="recurrent", depth_sorter=True),
         "Latent and sorter variants are built on the simple Painter"),
        ("both_sorters", dict(sorter=True, depth_sorter=True),
         r"Choose one occlusion sorter: `sorter` \(2 moves"),
        ("depth_additive", dict(depth_sorter=True, canvas="additive"),
         r"The depth sorter orders moves of the \"over\" canvas. Received: canvas='additive'"),
        ("depth_temperature", dict(depth_sorter=True, depth_temperature=0.0),
         r"`depth_temperature` must be > 0. Received: 0.0"),
        ("blur_sigma", dict(blur_sigmas=(2.0, 0.0)),
         r"`blur_sigmas` must all be > 0 and `blur_weight` >= 0\. Received: "
         r"blur_sigmas=\(2.0, 0.0\)"),
        ("blur_sigma_text", dict(blur_sigmas=("wide",)),
         r"`blur_sigmas` must all be > 0 and `blur_weight` >= 0\. Received: "
         r"blur_sigmas=\('wide',\)"),
        ("blur_weight", dict(blur_sigmas=(1.0,), blur_weight=-1.0),
         r"`blur_weight` >= 0\. Received: blur_sigmas=\(1.0,\), blur_weight=-1.0"),
    )
    def test_bad_fields_raise(self, overrides, message):
        with self.assertRaisesRegex(ValueError, message):
            resolved_task(tiny_config(**overrides))


class LossTest(tf.test.TestCase):

    def test_blurred_error_is_added_with_its_weight(self):
        plain = resolved_task(tiny_config())
        blurred = resolved_task(tiny_config(blur_sigmas=(1.0, 2.0), blur_weight=3.0))
        images = registry.load("2_rectangles", "test", num_examples=4).images
        model = plain.build_model(images.shape[1:])
        batch = {"image": tf.constant(images)}
        base_loss, _ = plain.loss(model, batch, training=False)
        loss, _ = blurred.loss(model, batch, training=False)
        canvas = model(images, training=False)["canvas"]
        expected = base_loss + 3.0 * losses.blurred_reconstruction_loss(
            images, canvas, (1.0, 2.0))
        self.assertAllClose(loss, expected, rtol=1e-5)
        self.assertTrue(np.all(loss.numpy() > base_loss.numpy()))


class EvaluateTest(tf.test.TestCase, parameterized.TestCase):

    OCCLUSION = {"occluded_images", "hidden_pair_images", "occlusion_order_accuracy"}

    @parameterized.named_parameters(
        ("rectangles", "rectangles_2moves", {"mse_per_pixel", "own_move_rate"}),
        ("shapes", "shapes_2moves", {"mse_per_pixel", "own_move_rate", "template_accuracy"}),
        ("occlusion", "occlusion_sorter", {"mse_per_pixel", "own_move_rate"} | OCCLUSION),
        ("occlusion4", "occlusion4_depth", {"mse_per_pixel", "own_move_rate"} | OCCLUSION),
    )
    def test_metrics_of_synthetic_sets(self, name, keys):
        task = resolved_task(tiny_config(name, hidden_units=16))
        _, test_set = task.load_data()
        state = train_lib.TrainState(task, test_set.image_shape)
        examples = test_set.examples()
        outputs = state.predict(examples.images)
        result = task.evaluate(outputs, examples)
        # The "over" canvas also scores thesis 4.1's one move over every shape.
        self.assertEqual(set(result), keys | {"covering_move_rate"} | OVERLAP_COUNTS
                         | OVERLAP_RATES)
        overlapping = metrics.shapes_overlap(examples.shapes)
        own, _ = metrics.own_move_assignment(outputs["masks"], examples.shapes)
        self.assertEqual(result["overlapping_images"], int(overlapping.sum()))
        self.assertAllClose(result["own_move_rate_overlapping"], np.mean(own[overlapping]))
        self.assertAllClose(result["own_move_rate_apart"], np.mean(own[~overlapping]))
        self.assertAllClose(result["covering_move_rate"], np.mean(metrics.covering_move(
            outputs["masks"], outputs["what"], examples.shapes)))
        self.assertAllClose(result["mse_per_pixel"],
                            np.mean((outputs["canvas"] - examples.images) ** 2))
        moves = task.config.num_moves
        self.assertEqual(outputs["canvases"].shape, (50, moves, 28, 28, 1))
        if "occluded_images" in result:
            right, occluded, hidden = metrics.occlusion_order(
                outputs["canvas"], outputs["masks"], examples.shapes)
            self.assertEqual(result["occluded_images"], int(occluded.sum()))
            self.assertEqual(result["hidden_pair_images"], int(hidden.sum()))
            self.assertAllClose(result["occlusion_order_accuracy"], np.mean(right[occluded]))

    def test_real_images_have_only_mse(self):
        task = resolved_task(tiny_config("mnist_20moves", hidden_units=16))
        state = train_lib.TrainState(task, (28, 28, 1))
        examples = registry.load("mnist", "test", num_examples=7).examples()
        result = task.evaluate(state.predict(examples.images), examples)
        self.assertEqual(set(result), {"mse_per_pixel"})

    def test_xla_evaluation_equals_plain(self):
        task = resolved_task(tiny_config("mnist_20moves", num_moves=4))
        state = train_lib.TrainState(task, (28, 28, 1), jit=False)
        images = registry.load("mnist", "test", num_examples=6).images
        plain = state.predict(images)
        compiled = train_lib.predict_in_batches(task.eval_function(state.model, True), images)
        self.assertEqual(set(plain), set(compiled))
        for key in plain:
            self.assertAllClose(compiled[key], plain[key], atol=1e-5, msg=key)


if __name__ == "__main__":
    tf.test.main()
