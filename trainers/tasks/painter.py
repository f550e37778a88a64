"""The Painter's task: thesis chapter 5 on the one training loop.

Loss: the reconstruction cost of the final canvas (MSE, or cross-entropy for
the variational models) plus `latent_weight` times the latent cost, plus
`blur_weight` times the blurred squared error at each of `blur_sigmas` (a
coarse-to-fine option, off by default). Held-out
metrics: MSE per pixel; on synthetic scenes also the own-move rate (5.2),
template-choice accuracy (5.5) and occlusion order (5.6). Pictures: the canvas
after every move (figs 4.1, 5.6), each move's outline, and the animation.
"""

import numpy as np
import tensorflow as tf

from tfpaint import losses
from tfpaint import metrics
from tfpaint import summaries
from tfpaint.layers import template_bank
from tfpaint.models import painter
from trainers.configs import common
from trainers.tasks import base

MODELS = ("simple", "conv", "recurrent", "canvas_recurrent")
LATENTS = ("none", "denoising", "variational", "custom")


class PainterTask(base.Task):
    """Trains `SimplePainter`, `ConvPainter` or `RecurrentPainter`."""

    name = "painter"
    progress_picture = "painting/progress"
    progress_animation = "painting/progress_animation"

    def validate(self):
        c = self.config
        common.check_choice(c, "model", MODELS)
        common.check_choice(c, "latent", LATENTS)
        common.check_choice(c, "canvas", ("over", "additive"))
        common.check_choice(c, "latent_cost", ("none", "mu", "full"))
        common.check_int(c, "num_moves", 1)
        for name in c.templates:
            if name not in template_bank.TEMPLATE_NAMES:
                raise ValueError(
                    f"`templates` must name templates from {template_bank.TEMPLATE_NAMES}. "
                    f"Received: {tuple(c.templates)}"
                )
        sorted_ = c.sorter or c.depth_sorter
        if c.model in ("recurrent", "canvas_recurrent") and (c.latent != "none" or sorted_):
            raise ValueError(
                "Latent and sorter variants are built on the simple Painter; "
                f"model={c.model!r} supports neither."
            )
        # Checked here too, before the run directory is written.
        painter.check_sorters(c.sorter, c.depth_sorter, c.canvas)
        if not c.depth_temperature > 0:
            raise ValueError(f"`depth_temperature` must be > 0. Received: {c.depth_temperature}")
        numbers = [v for v in (*c.blur_sigmas, c.blur_weight)
                   if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if (len(numbers) != len(c.blur_sigmas) + 1 or not all(s > 0 for s in c.blur_sigmas)
                or not c.blur_weight >= 0):
            raise ValueError(
                "`blur_sigmas` must all be > 0 and `blur_weight` >= 0. Received: "
                f"blur_sigmas={tuple(c.blur_sigmas)}, blur_weight={c.blur_weight}")

    def describe(self):
        c = self.config
        return f"{c.model} Painter, {c.num_moves} moves, {c.dataset}"

    def build_model(self, image_shape):
        c = self.config
        shared = dict(
            num_moves=c.num_moves,
            image_shape=image_shape,
            templates=tuple(c.templates),
            template_size=c.template_size,
            allow_skew=c.allow_skew,
            canvas=c.canvas,
            sharpening=c.sharpening,
            exploration_noise=c.exploration_noise,
            learnable_templates=c.learnable_templates,
            initial_scale=c.initial_scale,
            seed=c.seed,
        )
        if c.model in ("recurrent", "canvas_recurrent"):
            return painter.RecurrentPainter(
                lstm_units=c.rnn_units, canvas_feedback=c.model == "canvas_recurrent", **shared)
        return painter.SimplePainter(
            encoder="conv" if c.model == "conv" else "dense",
            hidden_units=c.hidden_units,
            hidden_layers=c.hidden_layers,
            conv_filters=tuple(c.conv_filters),
            latent=None if c.latent == "none" else c.latent,
            latent_units=c.latent_units,
            latent_sigma=c.latent_sigma,
            latent_stochastic=c.latent_stochastic,
            latent_cost=c.latent_cost,
            input_noise=c.input_noise,
            sorter=c.sorter,
            depth_sorter=c.depth_sorter,
            depth_temperature=c.depth_temperature,
            **shared,
        )

    def loss(self, model, batch, training=True):
        images = batch["image"]
        outputs = model(images, training=training)
        per_image, _, latent = losses.per_image_loss(
            outputs, images, self.config.reconstruction, self.config.latent_weight)
        if self.config.blur_sigmas:
            per_image += self.config.blur_weight * losses.blurred_reconstruction_loss(
                images, outputs["canvas"], tuple(self.config.blur_sigmas))
        mse = tf.reduce_mean(tf.square(images - outputs["canvas"]), [1, 2, 3])  # (B,)
        return per_image, {"mse_per_pixel": mse, "latent_cost": latent}

    def eval_function(self, model, jit):
        if not jit:
            return tf.function(lambda images: model(images, training=False))
        # See painter.write_canvases_once: XLA would otherwise recompute the
        # chain of moves for every canvas it stacks.
        compiled = tf.function(
            lambda images: painter.write_canvases_once(model(images, training=False)),
            jit_compile=True)
        return lambda images: compiled(images)[0]

    def evaluate(self, outputs, examples):
        c = self.config
        result = {"mse_per_pixel": metrics.mse_per_pixel(outputs["canvas"], examples.images)}
        shapes = examples.shapes
        if shapes is None:
            return result
        own, _ = metrics.own_move_assignment(outputs["masks"], shapes)
        result["own_move_rate"] = float(np.mean(own))
        if shapes.max_shapes >= 2:
            # Appendix A's sets let shapes overlap: the rate where they do and where they are
            # apart, and the share of images with a shape no pixel of which can be seen.
            overlapping = metrics.shapes_overlap(shapes)
            for name, where in (("overlapping", overlapping), ("apart", ~overlapping)):
                if where.any():
                    result[f"own_move_rate_{name}"] = float(np.mean(own[where]))
            result["overlapping_images"] = int(overlapping.sum())
            result["images_with_an_unseen_shape"] = int(metrics.unseen_shapes(shapes).any(1).sum())
        if c.canvas == "over" and outputs["what"].shape[-1] == 1 and shapes.max_shapes >= 2:
            # Thesis 4.1's local minimum (T-DRAW's): one move over every shape.
            covering = metrics.covering_move(outputs["masks"], outputs["what"], shapes)
            result["covering_move_rate"] = float(np.mean(covering))
        if len(c.templates) > 1:
            correct = metrics.template_choice_accuracy(
                outputs["where"], outputs["which"], shapes, tuple(c.templates))
            result["template_accuracy"] = float(np.mean(correct))
        if "occlusion" in c.dataset:
            right, occluded, hidden = metrics.occlusion_order(
                outputs["canvas"], outputs["masks"], shapes)
            # With two shapes an occluded image is one occluded pair.
            result["occluded_images"] = int(occluded.sum())
            result["hidden_pair_images"] = int(hidden.sum())
            result["occlusion_order_accuracy"] = float(
                right[occluded].mean() if occluded.any() else float("nan"))
        return result

    def pictures(self, outputs, examples):
        canvases, images = outputs["canvases"], examples.images
        return {
            "painting/progress": summaries.progress_grid(canvases, images),
            "painting/move_outlines": summaries.outline_overlay(images, outputs["masks"]),
            "painting/progress_animation": summaries.progress_frames(canvases, images),
        }
