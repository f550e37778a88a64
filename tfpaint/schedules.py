"""Learning-rate schedules of the papers that Keras does not have."""

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
