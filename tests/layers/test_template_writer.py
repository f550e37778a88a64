"""Tests for tfpaint.layers.template_writer: moves from features, and their painting."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tests import testing
from tfpaint.layers import canvas as canvas_lib
from tfpaint.layers import spatial_transformer as st
from tfpaint.layers import template_bank as tb
from tfpaint.layers import template_writer as tw

_KEYS = ("canvases", "masks", "what", "where", "which", "which_logits")

_VARIANTS = (
    ("grayscale", dict(channels=1, templates=("square",))),
    ("rgb_skew_templates", dict(channels=3, templates=("circle", "square"), allow_skew=True)),
    (
        "additive_learnable",
        dict(
            channels=1,
            templates=("circle", "line", "square"),
            canvas="additive",
            what_activation="linear",
            learnable_templates=True,
        ),
    ),
)


def writer_kwargs(**overrides):
    kwargs = dict(num_moves=3, canvas_size=(10, 12), template_size=8, initial_scale=1.5, seed=1)
    kwargs.update(overrides)
    return kwargs


class TemplateWriterTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        testing.set_seeds()
        self.rng = np.random.default_rng(0)
        self.h = self.rng.normal(size=(4, 16)).astype(np.float32)

    @parameterized.named_parameters(*_VARIANTS)
    def test_layer_harness(self, overrides):
        channels = overrides["channels"]
        k = len(overrides["templates"])
        testing.run_layer_test(
            self,
            tw.TemplateWriter,
            writer_kwargs(**overrides),
            (self.h,),
            expected_output_shape={
                "canvases": (4, 3, 10, 12, channels),
                "masks": (4, 3, 10, 12, 1),
                "what": (4, 3, channels),
                "where": (4, 3, 6),
                "which": (4, 3, k),
                "which_logits": (4, 3, k),
            },
        )

    @parameterized.named_parameters(*_VARIANTS)
    def test_output_keys_and_shapes(self, overrides):
        writer = tw.TemplateWriter(**writer_kwargs(**overrides))
        out = writer(self.h)
        self.assertCountEqual(out.keys(), _KEYS)
        c, k = overrides["channels"], len(overrides["templates"])
        self.assertEqual(out["where"].shape, (4, 3, 6))
        self.assertEqual(out["what"].shape, (4, 3, c))
        self.assertEqual(out["which"].shape, (4, 3, k))
        self.assertEqual(out["which_logits"].shape, (4, 3, k))
        self.assertEqual(out["masks"].shape, (4, 3, 10, 12, 1))
        self.assertEqual(out["canvases"].shape, (4, 3, 10, 12, c))

    @parameterized.named_parameters(*_VARIANTS)
    def test_which_is_convex(self, overrides):
        out = tw.TemplateWriter(**writer_kwargs(**overrides, exploration_noise=0.3))(
            self.h, training=True
        )
        self.assertAllClose(tf.reduce_sum(out["which"], -1), np.ones((4, 3)), atol=1e-6)
        self.assertTrue(np.all(out["which"].numpy() >= 0.0))

    def test_exploration_noise_only_in_training(self):
        writer = tw.TemplateWriter(
            **writer_kwargs(templates=("circle", "square"), exploration_noise=0.5)
        )
        clean = writer(self.h)["which"]
        self.assertAllEqual(writer(self.h, training=False)["which"], clean)
        self.assertGreater(
            np.abs(writer(self.h, training=True)["which"] - clean).max(), 1e-3
        )

    @parameterized.named_parameters(("grayscale", 1), ("rgb", 3))
    def test_canvases_are_over_canvas_of_masks_and_what(self, channels):
        writer = tw.TemplateWriter(
            **writer_kwargs(channels=channels, templates=("circle", "square"))
        )
        out = writer(self.h)
        expected = canvas_lib.OverCanvas(channels)(out["masks"], out["what"])
        self.assertAllClose(out["canvases"], expected, atol=1e-6)
        self.assertAllClose(out["canvases"][:, -1], expected[:, -1], atol=1e-6)

    def test_additive_canvases(self):
        writer = tw.TemplateWriter(
            **writer_kwargs(canvas="additive", what_activation="linear")
        )
        out = writer(self.h)
        self.assertIsInstance(writer.canvas_layer, canvas_lib.AdditiveCanvas)
        hidden = -6.0 + np.cumsum(out["what"].numpy()[:, :, None, None, :] * out["masks"], axis=1)
        self.assertAllClose(out["canvases"], 1.0 / (1.0 + np.exp(-hidden)), atol=1e-6)

    def test_initial_canvas_is_painted_over(self):
        writer = tw.TemplateWriter(**writer_kwargs(channels=3, templates=("circle",)))
        initial = self.rng.uniform(size=(4, 10, 12, 3)).astype(np.float32)
        out = writer(self.h, initial=initial)
        expected = canvas_lib.OverCanvas(3)(out["masks"], out["what"], initial=initial)
        self.assertAllClose(out["canvases"], expected, atol=1e-6)

    @parameterized.named_parameters(
        ("no_skew_circle", False, ("circle",)),
        ("skew_circle", True, ("circle",)),
        ("no_skew_square", False, ("square",)),
    )
    def test_bias_theta_renders_the_transformed_template(self, allow_skew, templates):
        # With a zero kernel, `where` is the bias: the rendered mask must be the
        # spatial transformer applied to the template itself.
        writer = tw.TemplateWriter(**writer_kwargs(templates=templates, allow_skew=allow_skew))
        writer(self.h)
        theta = np.array(
            [
                [1.6, 0.0, 0.2, 0.0, 1.3, -0.3],
                [2.5, 0.0, -1.0, 0.0, 2.0, 0.5],
                [0.9, 0.0, 0.1, 0.0, 1.1, 0.0],
            ],
            np.float32,
        )
        if allow_skew:
            theta[:, 1] = [0.3, -0.2, 0.1]
            theta[:, 3] = [-0.1, 0.4, 0.0]
            bias = theta.reshape(-1)
        else:
            bias = theta[:, [0, 2, 4, 5]].reshape(-1)
        writer.where_dense.kernel.assign(np.zeros(writer.where_dense.kernel.shape, np.float32))
        writer.where_dense.bias.assign(bias)
        out = writer(self.h)
        self.assertAllClose(out["where"], np.broadcast_to(theta, (4, 3, 6)), atol=1e-7)
        template = tb.make_template(templates[0], 8)
        sampler = st.SpatialTransformer((10, 12), allow_skew=allow_skew)
        images = np.broadcast_to(template[None, :, :, None], (3, 8, 8, 1))
        expected = sampler(images, theta)  # (3, 10, 12, 1): one per move
        for b in range(4):
            self.assertAllClose(out["masks"][b], expected, atol=1e-5)
        self.assertGreater(float(tf.reduce_sum(expected)), 1.0)

    @parameterized.named_parameters(("no_skew", False), ("skew", True))
    def test_where_starts_at_scaled_identity(self, allow_skew):
        writer = tw.TemplateWriter(**writer_kwargs(allow_skew=allow_skew, initial_scale=2.0))
        writer(self.h)
        writer.where_dense.kernel.assign(np.zeros(writer.where_dense.kernel.shape, np.float32))
        where = writer(self.h)["where"]
        self.assertAllClose(
            where, np.broadcast_to([2.0, 0.0, 0.0, 0.0, 2.0, 0.0], (4, 3, 6)), atol=1e-7
        )

    def test_no_skew_gives_zero_skew_entries(self):
        writer = tw.TemplateWriter(**writer_kwargs(allow_skew=False))
        where = writer(self.h * 10.0)["where"].numpy()
        self.assertAllEqual(where[..., 1], np.zeros((4, 3)))
        self.assertAllEqual(where[..., 3], np.zeros((4, 3)))
        self.assertGreater(np.abs(where[..., [0, 2, 4, 5]] - [1.5, 0.0, 1.5, 0.0]).max(), 1e-3)
        skewed = tw.TemplateWriter(**writer_kwargs(allow_skew=True))(self.h * 10.0)["where"]
        self.assertGreater(np.abs(skewed.numpy()[..., [1, 3]]).min(), 0.0)

    def test_single_template_has_no_which_head(self):
        writer = tw.TemplateWriter(**writer_kwargs(templates="circle"))
        out = writer(self.h)
        self.assertIsNone(writer.which_dense)
        self.assertAllEqual(out["which"], np.ones((4, 3, 1)))
        self.assertLen(writer.trainable_weights, 4)  # where and what: kernel, bias

    def test_render_matches_call(self):
        writer = tw.TemplateWriter(**writer_kwargs(templates=("circle", "square", "line")))
        out = writer(self.h)
        self.assertAllClose(writer.render(out["where"], out["which"]), out["masks"], atol=1e-6)
        self.assertAllClose(writer.paint(out["masks"], out["what"]), out["canvases"], atol=1e-6)

    # Checked inputs of render and paint --------------------------------------

    def writer_and_moves(self, **overrides):
        writer = tw.TemplateWriter(
            **writer_kwargs(templates=("circle", "square"), channels=3, **overrides)
        )
        out = writer(self.h)
        return writer, {k: out[k].numpy() for k in ("where", "which", "what", "masks")}

    @parameterized.named_parameters(
        ("where_batch_of_one", lambda m: (m["where"][:1], m["which"]),
         r"`where` and `which` must have the same batch size.*"
         r"where.shape=\(1, 3, 6\), which.shape=\(4, 3, 2\)"),
        ("which_batch_of_one", lambda m: (m["where"], m["which"][:1]),
         "`where` and `which` must have the same batch size"),
        ("moves", lambda m: (m["where"], m["which"][:, :2]),
         r"`where` and `which` must have the same number of moves"),
        ("where_four_numbers", lambda m: (m["where"][..., :4], m["which"]),
         r"`where` must have shape \(batch, moves, 6\).*Received: where.shape=\(4, 3, 4\)"),
        ("which_templates", lambda m: (m["where"], m["which"][..., :1]),
         r"`which` must have shape \(batch, moves, 2\) \(2 templates\)"),
        ("where_rank", lambda m: (m["where"][:, 0], m["which"]),
         r"`where` must have shape \(batch, moves, 6\).*where.shape=\(4, 6\)"),
    )
    def test_render_rejects_bad_shapes(self, corrupt, message):
        writer, moves = self.writer_and_moves()
        with self.assertRaisesRegex(ValueError, message):
            writer.render(*corrupt(moves))

    @parameterized.named_parameters(
        ("negative_which", "which", -0.25,
         r"`which` values must be finite and in \[0, 1\]. Received: 1 of 24 values are not, "
         r"e.g. which\[2, 1, 0\]=-0.25"),
        ("which_above_one", "which", 1.5, r"`which` values must be finite and in \[0, 1\]"),
        ("nan_which", "which", np.nan, r"`which` values must be finite.*which\[2, 1, 0\]=nan"),
        ("nan_where", "where", np.nan, r"`where` values must be finite. Received: 1 of 72"),
        ("inf_where", "where", np.inf, r"`where` values must be finite"),
    )
    def test_render_rejects_bad_values_eagerly(self, name, value, message):
        writer, moves = self.writer_and_moves()
        moves[name][2, 1, 0] = value
        with self.assertRaisesRegex(ValueError, message):
            writer.render(moves["where"], moves["which"])

    @parameterized.named_parameters(
        ("what_batch_of_one", lambda m: (m["masks"], m["what"][:1]),
         r"`masks` and `what` must have the same batch size.*what.shape=\(1, 3, 3\)"),
        ("masks_batch_of_one", lambda m: (m["masks"][:1], m["what"]),
         "`masks` and `what` must have the same batch size"),
        ("moves", lambda m: (m["masks"], m["what"][:, :1]),
         "`masks` and `what` must have the same number of moves"),
        ("channels", lambda m: (m["masks"], m["what"][..., :1]),
         r"`what` must have shape \(batch, moves, 3\) \(3 channels\)"),
    )
    def test_paint_rejects_bad_shapes(self, corrupt, message):
        writer, moves = self.writer_and_moves()
        with self.assertRaisesRegex(ValueError, message):
            writer.paint(*corrupt(moves))

    def test_paint_rejects_non_finite_what_eagerly(self):
        writer, moves = self.writer_and_moves()
        moves["what"][1, 2, 0] = np.nan
        with self.assertRaisesRegex(
            ValueError, r"`what` values must be finite. Received: 1 of 36.*what\[1, 2, 0\]=nan"
        ):
            writer.paint(moves["masks"], moves["what"])

    def test_render_batch_mismatch_in_tf_function(self):
        writer, moves = self.writer_and_moves()

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 3, 6], tf.float32),
                tf.TensorSpec([None, 3, 2], tf.float32),
            ]
        )
        def render(where, which):
            return writer.render(where, which)

        self.assertAllClose(render(moves["where"], moves["which"]), moves["masks"], atol=1e-6)
        with self.assertRaisesRegex(
            tf.errors.InvalidArgumentError, "`where` and `which` must have the same batch size"
        ):
            render(moves["where"][:1], moves["which"])

    def test_paint_batch_mismatch_in_tf_function(self):
        writer, moves = self.writer_and_moves()

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 3, 10, 12, 1], tf.float32),
                tf.TensorSpec([None, None, 3], tf.float32),
            ]
        )
        def paint(masks, what):
            canvases = writer.paint(masks, what)
            # The asserts make the number of moves of `what` static (3, as for
            # `masks`), which the canvas needs to unroll its loop.
            self.assertEqual(canvases.shape.as_list(), [None, 3, 10, 12, 3])
            return canvases

        paint(moves["masks"], moves["what"])
        with self.assertRaisesRegex(
            tf.errors.InvalidArgumentError, "`masks` and `what` must have the same batch size"
        ):
            paint(moves["masks"], moves["what"][:1])
        with self.assertRaisesRegex(
            tf.errors.InvalidArgumentError, "`masks` and `what` must have the same number of moves"
        ):
            paint(moves["masks"], moves["what"][:, :2])

    @parameterized.named_parameters(("static_batch", 4), ("unknown_batch", None))
    def test_training_graph_has_no_value_checks(self, batch):
        # The writer runs in every training step: shapes may be asserted (as
        # scalars, and only where unknown), values never.
        writer = tw.TemplateWriter(**writer_kwargs(templates=("circle", "square")))
        writer(self.h)
        call = tf.function(lambda h: writer(h, training=True))
        graph = call.get_concrete_function(tf.TensorSpec([batch, 16], tf.float32)).graph
        types = [op.type for op in graph.get_operations()]
        self.assertNotIn("IsFinite", types)
        asserts = [op for op in graph.get_operations() if op.type == "Assert"]
        if batch is None:
            self.assertNotEmpty(asserts)  # The batch sizes are compared at run time.
        else:
            self.assertEmpty(asserts)
        for op in asserts:
            # Each condition compares two scalar sizes: All(Equal(size, size)).
            condition = op.inputs[0].op
            self.assertEqual(condition.type, "All")
            self.assertEqual(condition.inputs[0].op.type, "Equal")
            self.assertEqual(condition.inputs[0].shape.rank, 0)

    @parameterized.named_parameters(*_VARIANTS)
    def test_gradients_reach_every_weight(self, overrides):
        writer = tw.TemplateWriter(**writer_kwargs(**overrides))
        with tf.GradientTape() as tape:
            out = writer(self.h, training=True)
            loss = tf.reduce_mean(tf.square(out["canvases"][:, -1] - 0.7))
        grads = tape.gradient(loss, writer.trainable_weights)
        expected = 4 + (2 if len(overrides["templates"]) > 1 else 0)
        expected += int(overrides.get("learnable_templates", False))
        expected += int(overrides.get("canvas") == "additive")
        self.assertLen(writer.trainable_weights, expected)
        testing.assert_gradients_reach_weights(self, writer.trainable_weights, grads)

    def test_unknown_batch_in_tf_function(self):
        writer = tw.TemplateWriter(**writer_kwargs(templates=("circle", "square"), channels=3))
        expected = writer(self.h)

        @tf.function(input_signature=[tf.TensorSpec([None, 16], tf.float32)])
        def write(h):
            return writer(h)

        out = write(self.h)
        for key in _KEYS:
            self.assertAllClose(out[key], expected[key], atol=1e-5, msg=key)

    def test_seed_makes_weights_repeatable(self):
        a = tw.TemplateWriter(**writer_kwargs(seed=3))
        b = tw.TemplateWriter(**writer_kwargs(seed=3))
        self.assertAllClose(a(self.h)["canvases"], b(self.h)["canvases"])

    @parameterized.named_parameters(
        ("moves", dict(num_moves=0), "`num_moves` must be >= 1"),
        ("canvas", dict(canvas="oil"), r"`canvas` must be one of \('over', 'additive'\)"),
        ("template", dict(templates=("star",)), "Unknown template 'star'"),
        ("sampler", dict(canvas_size=(0, 4)), "positive entries"),
    )
    def test_bad_arguments_raise(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            tw.TemplateWriter(**writer_kwargs(**kwargs))

    def test_bad_feature_rank_raises(self):
        writer = tw.TemplateWriter(**writer_kwargs())
        writer(self.h)
        with self.assertRaisesRegex(ValueError, r"`h` must have shape \(batch, features\)"):
            writer.moves(np.zeros((4, 2, 8), np.float32))

    def test_make_canvas(self):
        self.assertIsInstance(tw.make_canvas("over", 3), canvas_lib.OverCanvas)
        self.assertIsInstance(tw.make_canvas("additive", 1), canvas_lib.AdditiveCanvas)
        with self.assertRaisesRegex(ValueError, "`canvas` must be one of"):
            tw.make_canvas("oil", 1)


if __name__ == "__main__":
    tf.test.main()
