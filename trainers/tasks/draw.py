"""DRAW's task: DRAW and T-DRAW on the one training loop.

Loss: the negative ELBO, `L_x + L_z` nats per image: the Bernoulli negative
log-likelihood of the image under the final canvas, and the KL of every
step's latent to N(0, I) (analytic). Held-out metrics: the negative ELBO and
an importance-weighted bound with `iwae_samples` samples of the whole latent
sequence, from fixed noise; on synthetic scenes also the Painter's own-move
rate. Pictures: reconstructions step by step and generation from the prior,
each step's write window drawn as a box.
"""

import numpy as np
import tensorflow as tf

from tfpaint import losses
from tfpaint import metrics
from tfpaint import summaries
from tfpaint.layers import template_bank
from tfpaint.models import draw
from trainers.configs import common
from trainers.tasks import base

# Steps shown in the pictures (of T, evenly spaced, the last always).
_PICTURE_STEPS = 16


def picture_steps(num_steps):
    """Indices of the steps the pictures show."""
    return np.unique(np.linspace(0, num_steps - 1, min(num_steps, _PICTURE_STEPS)).round()
                     ).astype(int)


class DrawTask(base.Task):
    """Trains `tfpaint.models.DRAW` (canvas "additive") or T-DRAW (canvas "over")."""

    name = "draw"
    progress_picture = "draw/reconstruction"

    def validate(self):
        c = self.config
        common.check_choice(c, "attention", draw.ATTENTIONS)
        common.check_choice(c, "canvas", ("additive", "over"))
        for name in ("num_steps", "rnn_units", "latent_units", "read_size", "write_size",
                     "iwae_samples", "unroll"):
            common.check_int(c, name, 1)
        common.check_int(c, "kl_warmup_steps", 0)
        if c.canvas == "over":
            unknown = set(c.templates) - set(template_bank.TEMPLATE_NAMES)
            if unknown:
                raise ValueError(f"`templates` must name templates from "
                                 f"{template_bank.TEMPLATE_NAMES}. Received: {tuple(c.templates)}")

    def describe(self):
        c = self.config
        kind = "T-DRAW" if c.canvas == "over" else "DRAW"
        return f"{kind}, {c.attention} attention, T={c.num_steps}, {c.dataset}"

    def build_model(self, image_shape):
        c = self.config
        return draw.DRAW(
            image_shape=image_shape,
            num_steps=c.num_steps,
            encoder_units=c.rnn_units,
            decoder_units=c.rnn_units,
            latent_units=c.latent_units,
            attention=c.attention,
            read_size=c.read_size,
            write_size=c.write_size,
            writer="template" if c.canvas == "over" else "additive",
            templates=tuple(c.templates),
            template_size=c.template_size,
            unroll=c.unroll,
            initial_scale=c.initial_scale,
            seed=c.seed,
        )

    def kl_weight(self):
        """The weight of L_z in the training loss: 1, or rising linearly from 0
        to 1 over the first `kl_warmup_steps` steps (a departure: KL warm-up,
        Sonderby et al. 2016). Evaluation always scores the full bound."""
        warmup = self.config.kl_warmup_steps
        if not warmup:
            return 1.0
        step = tf.cast(self.optimizer.iterations, tf.float32)
        return tf.minimum(1.0, step / float(warmup))

    def loss(self, model, batch, training=True):
        images = batch["image"]
        # Only the bound's terms: no pictures are collected in a training step.
        outputs = model(images, training=training, intermediates=False)
        nll = -losses.bernoulli_log_likelihood(outputs["logits"], images)  # (B,) L_x
        kl = outputs["kl"]  # (B,) L_z
        weight = self.kl_weight() if training else 1.0
        return nll + tf.cast(weight, kl.dtype) * kl, {"L_x": nll, "L_z": kl}

    def eval_function(self, model, jit):
        samples = self.config.iwae_samples

        def scores(images):
            # Posterior means: the reconstruction the pictures show.
            outputs = model(images, training=False, sample=False)

            # K samples of the whole latent sequence, in a loop (not K unrolled
            # copies of the model: the graph stays one model's size). Fixed
            # noise: every evaluation scores the same samples.
            def one_sample(k):
                sampled = model(images, training=False, noise_seed=tf.stack([7, 1000 * k]))
                log_px = losses.bernoulli_log_likelihood(sampled["logits"], images)  # (B,)
                log_w = log_px + losses.gaussian_log_ratio(
                    sampled["z"], sampled["mu"], sampled["sigma"])  # (B,)
                return {"log_w": log_w, "neg_elbo": sampled["kl"] - log_px}

            stacked = base.stack_samples(one_sample, samples, ("log_w", "neg_elbo"),
                                         images.dtype)  # (K, B) each
            keep = ("canvases", "canvas", "write_boxes", "read_boxes", "masks", "colors")
            result = {k: v for k, v in outputs.items() if k in keep}
            # The same samples from the prior in every batch: the pictures show the first.
            generated = model.generate(tf.shape(images)[0], seed=tf.constant([3, 5]))
            result["generated"] = generated["canvases"]
            result["generated_boxes"] = generated["write_boxes"]
            result["neg_elbo"] = tf.reduce_mean(stacked["neg_elbo"], axis=0)  # (B,)
            result["iwae"] = -losses.importance_weighted_bound(stacked["log_w"])  # (B,)
            return result

        return tf.function(scores, jit_compile=jit)

    def evaluate(self, outputs, examples):
        result = {"neg_elbo_nats": float(np.mean(outputs["neg_elbo"])),
                  f"iwae_{self.config.iwae_samples}_nats": float(np.mean(outputs["iwae"])),
                  "mse_per_pixel": metrics.mse_per_pixel(outputs["canvas"], examples.images)}
        if examples.shapes is not None and "masks" in outputs:
            result.update(base.move_rates(outputs["masks"], outputs["colors"], examples))
        return result

    def pictures(self, outputs, examples):
        steps = picture_steps(outputs["canvases"].shape[1])
        return {
            "draw/reconstruction": summaries.progress_grid(
                outputs["canvases"][:, steps], examples.images,
                boxes=outputs["write_boxes"][:, steps]),
            "draw/generation": summaries.progress_grid(
                outputs["generated"][:, steps], boxes=outputs["generated_boxes"][:, steps]),
        }
