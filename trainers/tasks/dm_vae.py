"""DM-VAE's task: AIR's task with a memory of primitives and the information loss.

Loss: AIR's (`AIR.loss_terms`: the negative ELBO, whose z_what KL is now the
z_type and eps KLs, and for discrete z_pres the score-function terms), plus
`information_weight` (gamma, eq 9) times the information loss of eq 8 on
`information_samples` primitives from each slot (`DMVAE.information_loss`),
added to every example's loss. Held-out metrics: AIR's (count accuracy,
matched box IoU, the negative ELBO and an importance-weighted bound), and
`slot_purity` (how often the objects one slot addresses are one digit class,
from the held-out labels, objects matched to digits by their boxes) with the
number of slots in use. Pictures: AIR's, the memory as fig 5 (`dm_vae/memory`:
one row per slot, samples of its generator) and the reconstructions with each
object's box in its slot's colour (`dm_vae/slots`, fig 4).
"""

import numpy as np
import tensorflow as tf

from tfpaint import metrics
from tfpaint import summaries
from tfpaint.models import dm_vae
from trainers.configs import common
from trainers.tasks import air as air_task


class DmVaeTask(air_task.AirTask):
    """Trains `tfpaint.models.DMVAE`."""

    name = "dm_vae"
    model_name = "DM-VAE"
    progress_picture = "dm_vae/slots"
    logged_outputs = air_task.AirTask.logged_outputs + ("kl_type", "kl_eps")
    eval_outputs = air_task.AirTask.eval_outputs + ("slot",)
    # The memory picture's samples per slot, and their fixed noise.
    memory_samples = 8

    def validate(self):
        c = self.config
        self.validate_scene_model()
        for name in ("num_slots", "slot_units", "information_samples"):
            common.check_int(c, name, 1)
        if c.num_slots < 2:
            raise ValueError(f"`num_slots` must be >= 2. Received: {c.num_slots}")
        for name in ("mlp_layers", "embedding_layers"):
            layers = tuple(c[name])
            if not layers or not all(isinstance(u, int) and u >= 1 for u in layers):
                raise ValueError(f"`{name}` must be one or more layer sizes >= 1. "
                                 f"Received: {layers}")
        for name in ("type_temperature", "similarity_scale"):
            common.check_positive(c, name)
        if not c.information_weight >= 0.0:
            raise ValueError("`information_weight` (gamma) must be >= 0. Received: "
                             f"{c.information_weight}")

    def describe(self):
        c = self.config
        return (f"DM-VAE, {c.num_slots} slots, gamma {c.information_weight:g}, N={c.max_steps} "
                f"steps, z_pres {c.z_pres}, glimpse {c.glimpse_size}, {c.dataset} with "
                f"0-{c.max_objects} digits")

    def build_model(self, image_shape):
        c = self.config
        return dm_vae.DMVAE(
            num_slots=c.num_slots,
            slot_units=c.slot_units,
            noise_units=c.latent_units,
            mlp_units=tuple(c.mlp_layers),
            embedding_units=tuple(c.embedding_layers),
            type_temperature=c.type_temperature,
            similarity_scale=c.similarity_scale,
            **self.scene_model_arguments(image_shape),
        )

    def loss(self, model, batch, training=True):
        loss, parts = super().loss(model, batch, training=training)
        gamma = self.config.information_weight
        if gamma > 0.0:
            info = model.information_loss(self.config.information_samples)["loss"]
            loss = loss + gamma * info
            parts["information_loss"] = tf.ones_like(loss) * info
        return loss, parts

    def eval_function(self, model, jit):
        self._model = model  # for the memory picture
        return super().eval_function(model, jit)

    def evaluate(self, outputs, examples):
        result = super().evaluate(outputs, examples)
        present = outputs["z_pres"] > 0.5  # (B, N)
        result["slots_used"] = float(len(np.unique(outputs["slot"][present])))
        scenes = examples.scenes
        if scenes is not None:
            scene, step, digit, _ = metrics.match_boxes(outputs["boxes"], present,
                                                        scenes.boxes, scenes.valid)
            if len(scene):
                result["slot_purity"] = metrics.slot_purity(outputs["slot"][scene, step],
                                                            scenes.labels[scene, digit])
        return result

    def pictures(self, outputs, examples):
        pictures = super().pictures(outputs, examples)
        boxes = np.where(outputs["z_pres"][..., None] > 0.5, outputs["boxes"], np.nan)
        pictures["dm_vae/slots"] = summaries.progress_grid(
            outputs["canvases"], examples.images, boxes=boxes, box_colours=outputs["slot"])
        samples = self._model.sample_memory(self.memory_samples,
                                            noise_seed=tf.constant([7, 7]))
        pictures["dm_vae/memory"] = summaries.memory_grid(samples.numpy())
        return pictures
