"""AIR's task: AIR and T-AIR on the one training loop.

Loss: AIR's `loss_terms`: the negative ELBO (a Gaussian likelihood, the KLs of
z_what and z_where over present steps, and log q(z_pres) - log p(z_pres) under
the geometric count prior), and for discrete z_pres the score-function
surrogate with the data-dependent baseline and the baseline's squared error.
Held-out metrics: the negative ELBO and an importance-weighted bound, and
the mean squared error per pixel; on Multi-MNIST the count accuracy (overall
and per true count) and the IoU of matched boxes; on a shapes set with the
template decoder (T-AIR) the own-move rate and the rate of one move covering
every shape (thesis 4.1-4.2). Pictures: the canvas after each step with that
step's box, beside the scene (`air/steps`), and each step's own writing
(`air/objects`).
"""

import math

import numpy as np
import tensorflow as tf

from tfpaint import losses
from tfpaint import metrics
from tfpaint import summaries
from tfpaint.data import shapes
from tfpaint.models import air
from trainers.configs import common
from trainers.tasks import base


class AirTask(base.Task):
    """Trains `tfpaint.models.AIR`."""

    name = "air"
    model_name = "AIR"  # in messages
    progress_picture = "air/steps"
    # Model outputs logged as training metrics, and kept from the evaluation.
    logged_outputs = ("kl_what", "kl_where", "kl_pres", "count")
    eval_outputs = ("canvases", "canvas", "objects", "boxes", "z_pres", "count", "masks",
                    "colors")

    def validate(self):
        c = self.config
        self.validate_scene_model()
        common.check_choice(c, "decoder", air.DECODERS)
        common.check_int(c, "template_size", 1)
        common.check_int(c, "mlp_units", 1)

    def validate_scene_model(self):
        """The fields AIR shares with the models built on it (DM-VAE)."""
        c = self.config
        if c.dataset != "multi_mnist" and c.dataset not in shapes.SHAPE_DATASETS:
            raise ValueError(f"{self.model_name} trains on multi_mnist or a synthetic shapes set. "
                             f"Received: dataset={c.dataset!r}")
        common.check_choice(c, "z_pres", air.Z_PRES)
        common.check_positive(c, "presence_temperature")
        air.check_window_range(c.window_range)
        for name in ("max_objects", "max_steps", "glimpse_size", "rnn_units",
                     "latent_units", "iwae_samples"):
            common.check_int(c, name, 1)
        common.check_int(c, "presence_prob_anneal_steps", 0)
        for name in ("presence_prob", "presence_prob_final"):
            if not 0.0 < c[name] < 1.0:
                raise ValueError(f"`{name}` must be in (0, 1). Received: {c[name]}")
        common.check_positive(c, "likelihood_scale")
        prior = tuple(c.where_prior)
        if (len(prior) != 3 or not all(math.isfinite(v) for v in prior)
                or min(prior[1:]) <= 0.0):
            raise ValueError("`where_prior` must be (log-scale mean, log-scale sd > 0, shift "
                             f"sd > 0), finite. Received: {prior}")
        if not math.isfinite(c.decoder_bias):
            raise ValueError(f"`decoder_bias` must be finite. Received: {c.decoder_bias}")
        if c.dataset == "multi_mnist" and c.z_pres != "none" and c.max_steps < c.max_objects:
            raise ValueError(f"`max_steps` ({c.max_steps}) must be at least `max_objects` "
                             f"({c.max_objects}): {self.model_name} explains one digit per step.")

    def describe(self):
        c = self.config
        model = "T-AIR" if c.decoder == "template" else "AIR"
        data = (f"{c.dataset} with 0-{c.max_objects} digits" if c.dataset == "multi_mnist"
                else c.dataset)
        window = "" if c.window_range is None else f", windows {tuple(c.window_range)}"
        return (f"{model}, N={c.max_steps} steps, z_pres {c.z_pres}, glimpse "
                f"{c.glimpse_size}{window}, {data}")

    def data_options(self):
        if self.config.dataset == "multi_mnist":
            return {"max_objects": self.config.max_objects}
        return {}

    def scene_model_arguments(self, image_shape):
        """The constructor arguments AIR shares with the models built on it."""
        c = self.config
        return dict(
            image_shape=image_shape,
            max_steps=c.max_steps,
            glimpse_size=c.glimpse_size,
            rnn_units=c.rnn_units,
            presence_prob=c.presence_prob,
            where_prior=tuple(c.where_prior),
            likelihood_scale=c.likelihood_scale,
            decoder_bias=c.decoder_bias,
            z_pres=c.z_pres,
            presence_temperature=c.presence_temperature,
            window_range=c.window_range,
            seed=c.seed,
        )

    def build_model(self, image_shape):
        c = self.config
        return air.AIR(
            hidden_units=c.mlp_units,
            what_units=c.latent_units,
            decoder=c.decoder,
            templates=tuple(c.templates),
            template_size=c.template_size,
            **self.scene_model_arguments(image_shape),
        )

    def presence_prob(self):
        """The count prior's q at this step: `presence_prob`, or annealed
        linearly to `presence_prob_final` over `presence_prob_anneal_steps`."""
        c = self.config
        if not c.presence_prob_anneal_steps:
            return tf.constant(c.presence_prob, tf.float32)
        step = tf.cast(self.optimizer.iterations, tf.float32)
        frac = tf.minimum(1.0, step / float(c.presence_prob_anneal_steps))
        return c.presence_prob + frac * (c.presence_prob_final - c.presence_prob)

    def loss(self, model, batch, training=True):
        if training and self.config.presence_prob_anneal_steps:
            model.presence_prob.assign(self.presence_prob())
        outputs = model(batch["image"], training=training)
        loss, parts = model.loss_terms(outputs, normalize_signal=self.config.normalize_signal)
        parts.update({k: outputs[k] for k in self.logged_outputs})
        return loss, parts

    def eval_function(self, model, jit):
        samples = self.config.iwae_samples

        def scores(images):
            outputs = model(images, training=False)  # means; z_pres = rho > 0.5
            # K samples of every latent, fixed noise: each sample's ELBO is its
            # log importance weight log p(x, z) - log q(z).
            stacked = base.stack_samples(
                lambda k: {"elbo": model(images, noise_seed=tf.stack([11, 1000 * k]))["elbo"]},
                samples, ("elbo",), images.dtype)["elbo"]  # (K, B)
            result = {k: outputs[k] for k in self.eval_outputs if k in outputs}
            result["neg_elbo"] = -tf.reduce_mean(stacked, axis=0)
            result["iwae"] = -losses.importance_weighted_bound(stacked)
            return result

        return tf.function(scores, jit_compile=jit)

    def evaluate(self, outputs, examples):
        result = {"neg_elbo_nats": float(np.mean(outputs["neg_elbo"])),
                  f"iwae_{self.config.iwae_samples}_nats": float(np.mean(outputs["iwae"])),
                  "mse_per_pixel": metrics.mse_per_pixel(outputs["canvas"], examples.images)}
        if examples.shapes is not None and "masks" in outputs:
            result.update(base.move_rates(outputs["masks"], outputs["colors"], examples))
        scenes = examples.scenes
        if scenes is None:
            return result
        result["count_accuracy"] = metrics.count_accuracy(outputs["count"], scenes.counts)
        iou, pairs = metrics.matched_box_iou(outputs["boxes"], outputs["z_pres"] > 0.5,
                                             scenes.boxes, scenes.valid)
        if pairs:
            result["matched_box_iou"] = iou
        for n in range(scenes.max_objects + 1):
            chosen = scenes.counts == n
            if chosen.any():
                result[f"count_accuracy_{n}"] = metrics.count_accuracy(
                    outputs["count"][chosen], scenes.counts[chosen])
        return result

    def pictures(self, outputs, examples):
        # Each step's box only where that step drew an object.
        boxes = np.where(outputs["z_pres"][..., None] > 0.5, outputs["boxes"], np.nan)
        return {"air/steps": summaries.progress_grid(outputs["canvases"], examples.images,
                                                     boxes=boxes),
                "air/objects": summaries.progress_grid(outputs["objects"], examples.images,
                                                       boxes=boxes)}
