"""The optimiser every task trains with: Adam and its learning-rate schedules."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfpaint")
class StepExponentialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`lr * decay^epoch / 10^(milestones passed)`, with fractional epochs.

    STAWM appendix D: "exponential of 0.99 and divided by ten at epochs [...]".

    Args:
        learning_rate: the rate at step 0.
        steps_per_epoch: optimiser steps in one epoch.
        decay: the factor per epoch.
        milestones: epochs at which the rate is divided by ten.
    """

    def __init__(self, learning_rate, steps_per_epoch, decay=0.99, milestones=()):
        self.learning_rate = float(learning_rate)
        self.steps_per_epoch = float(steps_per_epoch)
        self.decay = float(decay)
        self.milestones = tuple(float(m) for m in milestones)

    def __call__(self, step):
        epoch = tf.cast(step, tf.float32) / self.steps_per_epoch
        lr = self.learning_rate * tf.pow(self.decay, epoch)
        for milestone in self.milestones:
            lr = tf.where(epoch >= milestone, lr * 0.1, lr)
        return lr

    def get_config(self):
        return {"learning_rate": self.learning_rate, "steps_per_epoch": self.steps_per_epoch,
                "decay": self.decay, "milestones": self.milestones}


def learning_rate_schedule(config):
    """The learning rate a config describes (`config.lr_schedule`):

    - "constant": `learning_rate` (the Painter thesis);
    - "cosine": decayed to `lr_final_fraction` of itself over `steps`;
    - "step_exponential": `StepExponentialDecay` with `lr_decay` per epoch and
      `lr_milestones` (STAWM appendix D).
    """
    if config.lr_schedule == "constant":
        return config.learning_rate
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=config.steps, alpha=config.lr_final_fraction
        )
    if config.lr_schedule == "step_exponential":
        return StepExponentialDecay(config.learning_rate, config.steps_per_epoch,
                                    config.lr_decay, tuple(config.lr_milestones))
    raise ValueError(
        "`lr_schedule` must be 'constant', 'cosine' or 'step_exponential'. "
        f"Received: {config.lr_schedule!r}"
    )


def build_optimizer(config):
    """Adam with the config's schedule, clipped to global norm `clipnorm` if set.

    Keras' default betas (0.9, 0.999); the Painter thesis' "beta_1 = 0.999,
    beta_2 = 0.9" (section 1.3) reads as swapped.
    """
    return keras.optimizers.Adam(learning_rate_schedule(config), global_clipnorm=config.clipnorm)
