"""WS-RAM's task: a stochastic hard-attention classifier on the one training loop.

Loss: the model's `loss_terms` for its algorithm (the variational method with
a learned baseline, or reweighted wake-sleep with the prior or the inference
network as proposal, with or without control variates); logged with the
bound `nll_bound` (eq 9), the effective sample size `ess` and the training
error of the M sequences' averaged prediction (with the inference network as
proposal, glimpses placed knowing the label: fig 2's training error, not a
test error).
Held-out metrics: the error of the mode policy (`error`) and of the class
probabilities averaged over M prior samples (`error_sampled`), the bound's
negative log-likelihood under the prior, the ESS of the training proposal,
and the variance of the gradient estimate of the attention parameters over
repeated draws on a fixed batch (fig 2). Pictures: each held-out scene with
its glimpse boxes and the glimpses, the prior's beside the inference
network's (`ws_ram/glimpses`).
"""

import numpy as np
import tensorflow as tf

from tfpaint import estimators
from tfpaint import summaries
from tfpaint.models import ws_ram
from trainers.configs import common
from trainers.tasks import base


class WsRamTask(base.Task):
    """Trains `tfpaint.models.WSRAM`."""

    name = "ws_ram"
    progress_picture = "ws_ram/glimpses"

    def validate(self):
        c = self.config
        if not self.dataset_spec.num_classes:
            raise ValueError(f"WS-RAM classifies: dataset {c.dataset!r} has no class labels "
                             "(use translated_mnist or mnist).")
        common.check_choice(c, "algorithm", ws_ram.ALGORITHMS)
        common.check_choice(c, "proposal", ws_ram.PROPOSALS)
        for name in ("samples", "num_glimpses", "glimpse_size", "low_res_size", "rnn_units",
                     "eval_samples", "grad_variance_repeats", "grad_variance_images"):
            common.check_int(c, name, 1)
        if c.grad_variance_repeats < 2:
            raise ValueError("`grad_variance_repeats` must be >= 2 (a variance over draws). "
                             f"Received: {c.grad_variance_repeats}")
        common.check_positive(c, "location_sd")
        if not c.scales or min(c.scales) <= 0:
            raise ValueError(f"`scales` must be window fractions > 0. Received: {c.scales}")
        ws_ram.check_algorithm(c.algorithm, c.proposal, c.control_variates)

    def describe(self):
        c = self.config
        method = "VAR" if c.algorithm == "var" else "WS-RAM"
        method += "+q" if c.proposal == "q" else ""
        method += "+c" if c.control_variates else ""
        return (f"WS-RAM model trained by {method}, M={c.samples} samples, {c.num_glimpses} "
                f"glimpses of {c.glimpse_size}x{c.glimpse_size} at scales {tuple(c.scales)}, "
                f"{c.dataset}")

    def build_model(self, image_shape):
        c = self.config
        self.model = ws_ram.WSRAM(
            image_shape=image_shape,
            num_classes=self.dataset_spec.num_classes,
            num_glimpses=c.num_glimpses,
            glimpse_size=c.glimpse_size,
            scales=tuple(c.scales),
            low_res_size=c.low_res_size,
            units=c.rnn_units,
            location_sd=c.location_sd,
            algorithm=c.algorithm,
            proposal=c.proposal,
            control_variates=c.control_variates,
            samples=c.samples,
            seed=c.seed,
        )
        self._label_fns = None
        return self.model

    def loss(self, model, batch, training=True):
        labels = batch["label"]
        outputs = model(batch["image"], labels=labels, training=training)
        loss, parts = model.loss_terms(outputs)
        wrong = tf.argmax(outputs["probabilities"], axis=-1, output_type=tf.int32) != labels
        parts["error"] = tf.cast(wrong, loss.dtype)
        return loss, parts

    def eval_function(self, model, jit):
        samples = self.config.eval_samples

        def scores(images):
            mode = model(images, training=False)  # one sequence: each action's mode
            sampled = model(images, noise_seed=tf.constant([17, 3]), samples=samples)
            first = lambda t: t[:, 0]
            return {"logits": first(mode["logits"]), "thetas": first(mode["thetas"]),
                    "glimpses": first(mode["glimpses"]),
                    "probabilities_sampled": sampled["probabilities"]}

        return tf.function(scores, jit_compile=jit)

    def _label_functions(self):
        """Compiled functions of images and labels: the training proposal's
        bound and ESS, and the attention parameters' gradient."""
        if self._label_fns is None:
            model, jit = self.model, self.config.jit

            def weights(images, labels, seed):
                outputs = model(images, labels=labels, noise_seed=seed)
                _, parts = model.loss_terms(outputs)
                prior = model(images, labels=labels, noise_seed=seed, use_proposal=False)
                bound = -estimators.reweighted_wake_sleep(
                    prior["log_likelihood"], prior["log_prior"])["log_bound"]
                return {"ess": parts["ess"], "nll_bound_prior": bound}

            def gradient(images, labels, seed, use_proposal=True, control_variates=None):
                with tf.GradientTape() as tape:
                    outputs = model(images, labels=labels, noise_seed=seed,
                                    use_proposal=use_proposal)
                    loss = tf.reduce_mean(model.loss_terms(outputs, control_variates)[0])
                grads = tape.gradient(loss, model.attention_variables)
                return tf.concat([tf.reshape(g, [-1]) for g in grads], axis=0)

            self._label_fns = (tf.function(weights, jit_compile=jit),
                               tf.function(gradient, jit_compile=jit))
        return self._label_fns

    def gradient_variance(self, images, labels, use_proposal=True, control_variates=None):
        """Mean over the attention parameters of the variance of their
        gradient estimate over `grad_variance_repeats` draws of the M
        sequences on one fixed batch (fig 2, middle). `use_proposal` and
        `control_variates` choose another WS-RAM estimator on the same
        weights (default: the model's own)."""
        _, gradient = self._label_functions()
        draws = np.stack([gradient(tf.constant(images), tf.constant(labels),
                                   tf.constant([29, r]), use_proposal, control_variates).numpy()
                          for r in range(self.config.grad_variance_repeats)])  # (R, P)
        return float(np.mean(np.var(draws, axis=0, ddof=1)))

    def estimator_variances(self, images, labels):
        """The gradient variance of every WS-RAM estimator on the model's own
        weights: `{"ws_ram", "ws_ram+c"[, "ws_ram+q", "ws_ram+q+c"]: variance}`
        (the proposals other than the prior need the inference network).
        Unlike fig 2's curves, which compare runs at different weights, this
        isolates the estimators."""
        if self.config.algorithm != "ws_ram":
            raise ValueError("estimator_variances compares WS-RAM's estimators: the model "
                             f"must be trained with algorithm='ws_ram', not {self.config.algorithm!r}.")
        proposals = [("ws_ram", False)] + ([("ws_ram+q", True)]
                                          if self.config.proposal == "q" else [])
        result = {}
        for name, use_proposal in proposals:
            for suffix, cv in (("", False), ("+c", True)):
                result[name + suffix] = self.gradient_variance(images, labels, use_proposal, cv)
        return result

    def evaluate(self, outputs, examples):
        c = self.config
        labels = examples.labels
        result = {
            "error": float(np.mean(np.argmax(outputs["logits"], -1) != labels)),
            "error_sampled": float(np.mean(np.argmax(outputs["probabilities_sampled"], -1)
                                           != labels)),
        }
        weights, _ = self._label_functions()
        parts = []
        for i in range(0, len(labels), 250):
            out = weights(tf.constant(examples.images[i:i + 250]),
                          tf.constant(labels[i:i + 250]), tf.constant([23, i]))
            parts.append({k: v.numpy() for k, v in out.items()})
        result["ess"] = float(np.mean(np.concatenate([p["ess"] for p in parts])))
        result["nll_bound"] = float(np.mean(np.concatenate([p["nll_bound_prior"]
                                                            for p in parts])))
        n = min(c.grad_variance_images, len(labels))
        result["grad_variance"] = self.gradient_variance(examples.images[:n], labels[:n])
        return result

    def pictures(self, outputs, examples):
        grids = [summaries.glimpse_grid(outputs, examples.images)]
        if self.config.proposal == "q":
            # Where the inference network, told the label, would look.
            q = self.model(tf.constant(examples.images), labels=tf.constant(examples.labels))
            grids.append(summaries.glimpse_grid(
                {"thetas": q["thetas"][:, 0].numpy(), "glimpses": q["glimpses"][:, 0].numpy()},
                examples.images))
            gap = np.ones((grids[0].shape[0], 6, 3), np.float32)
            grids = [grids[0], gap, grids[1]]
        return {"ws_ram/glimpses": np.concatenate(grids, axis=1)}
