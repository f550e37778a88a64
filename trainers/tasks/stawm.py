"""STAWM's task: classification, drawing, self-supervised classification and
the visual sketchpad (paper sections 3-4, appendix D) on the one training loop.

Objectives: "classify" (cross-entropy of the terminal memory's class logits),
"draw" (reconstruction + beta times the KL of the glimpse latents, eqs 5-6),
"sketchpad" (both, per pixel, section 4.4) and "self_supervised" (classify
from a frozen drawing run's memory, section 4.2). Held-out metrics: error
rate, MSE per pixel and KL. Pictures: the glimpse boxes over each input beside
the canvas after each glimpse (or each glimpse, when classifying).
"""

import numpy as np
import tensorflow as tf

from tfpaint import losses
from tfpaint import metrics
from tfpaint import runs
from tfpaint import summaries
from tfpaint.models import stawm
from trainers.configs import common
from trainers.tasks import base

OBJECTIVES = ("classify", "draw", "self_supervised", "sketchpad")
# Outputs too big to keep for every held-out image.
_EVAL_DROP = ("memory", "context", "memory_inputs", "draw_latents", "class_latent")


def heads_of(objective):
    """The model heads an objective trains."""
    return {"classify": ("classify",), "draw": ("draw",)}.get(objective, ("classify", "draw"))


class StawmTask(base.Task):
    """Trains `tfpaint.models.STAWM`."""

    name = "stawm"
    progress_picture = "glimpses"

    def validate(self):
        c = self.config
        common.check_choice(c, "objective", OBJECTIVES)
        common.check_choice(c, "canvas", stawm.CANVASES)
        if c.objective != "draw" and not self.dataset_spec.num_classes:
            raise ValueError(
                f"objective={c.objective!r} classifies, but dataset {c.dataset!r} has no "
                "class labels: use objective='draw'."
            )
        if c.objective == "self_supervised" and not c.pretrained_workdir:
            raise ValueError(
                "objective='self_supervised' needs config.pretrained_workdir: the run "
                "directory of a drawing run, e.g. --pretrained_workdir=runs/stawm/mnist_draw_6x6."
            )

    def describe(self):
        c = self.config
        return (f"{c.objective}, {c.num_glimpses} glimpses of {c.glimpse_size}x"
                f"{c.glimpse_size}, M={c.memory_size}, {c.dataset}, {c.steps} steps")

    def build_model(self, image_shape):
        c = self.config
        return stawm.STAWM(
            image_shape=image_shape,
            num_glimpses=c.num_glimpses,
            glimpse_size=c.glimpse_size,
            memory_size=c.memory_size,
            rnn_units=c.rnn_units,
            context_filters=tuple(c.context_filters),
            context_kernel=c.context_kernel,
            context_strides=tuple(c.context_strides),
            glimpse_filters=tuple(c.glimpse_filters),
            glimpse_kernel=c.glimpse_kernel,
            glimpse_strides=tuple(c.glimpse_strides),
            padding=c.padding,
            affine_hidden=c.affine_hidden,
            heads=heads_of(c.objective),
            num_classes=self.dataset_spec.num_classes or 1,
            canvas=c.canvas,
            latent_units=c.latent_units,
            temperature=c.temperature,
            dropout=c.dropout,
            eta=c.eta,
            delta=c.delta,
            theta=c.theta,
            learnable_rates=c.learnable_rates,
            kernel_initializer=c.kernel_initializer,
            seed=c.seed,
        )

    def prepare_model(self, model):
        if self.config.objective == "self_supervised":
            model.freeze_for_self_supervision()

    def initialize(self, model):
        if self.config.objective == "self_supervised":
            # The drawing run holds the shared attention and drawing weights;
            # the classification head stays freshly initialised.
            return f"Drawing weights from {runs.warm_start(model, self.config.pretrained_workdir)}."
        return None

    def loss(self, model, batch, training=True):
        c = self.config
        images = batch["image"]
        outputs = model(images, training=training)
        parts = {}
        if c.objective != "draw":
            labels = batch["label"]
            parts["cross_entropy"] = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels, outputs["logits"])
            parts["error"] = tf.cast(
                tf.not_equal(tf.argmax(outputs["logits"], -1, output_type=tf.int32), labels),
                tf.float32)
        if c.objective in ("draw", "sketchpad"):
            parts["reconstruction"] = losses.reconstruction_loss(
                images, outputs["canvas"], c.reconstruction)
            parts["kl"] = outputs["kl"]
            parts["mse_per_pixel"] = tf.reduce_mean(tf.square(images - outputs["canvas"]),
                                                    [1, 2, 3])
        if c.objective in ("classify", "self_supervised"):
            return parts["cross_entropy"], parts
        # eqs 5-6: reconstruction + beta * joint KL of the glimpse latents.
        total = parts["reconstruction"] + c.beta * parts["kl"]
        if c.objective == "sketchpad":
            # Per pixel, so that neither loss takes precedence (section 4.4).
            pixels = float(np.prod(images.shape[1:]))
            total = c.class_weight * parts["cross_entropy"] + c.draw_weight * total / pixels
        return total, parts

    def eval_function(self, model, jit):
        keep = lambda out: {k: v for k, v in out.items() if k not in _EVAL_DROP}
        return tf.function(lambda images: keep(model(images, training=False)),
                           jit_compile=jit)

    def evaluate(self, outputs, examples):
        result = {}
        if "logits" in outputs and examples.labels is not None:
            result["error"] = float(np.mean(np.argmax(outputs["logits"], -1) != examples.labels))
        if "canvas" in outputs:
            result["mse_per_pixel"] = metrics.mse_per_pixel(outputs["canvas"], examples.images)
            result["kl"] = float(np.mean(outputs["kl"]))
        return result

    def pictures(self, outputs, examples):
        return {"glimpses": summaries.glimpse_grid(outputs, examples.images)}
