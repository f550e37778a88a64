"""The optimiser every task trains with: Adam and its learning-rate schedules."""

import keras

from tfpaint import schedules


def learning_rate_schedule(config):
    """The learning rate a config describes (`config.lr_schedule`):

    - "constant": `learning_rate` (the Painter thesis);
    - "cosine": decayed to `lr_final_fraction` of itself over `steps`;
    - "step_exponential": `tfpaint.schedules.StepExponentialDecay` with
      `lr_decay` per epoch and `lr_milestones` (STAWM appendix D).
    """
    if config.lr_schedule == "constant":
        return config.learning_rate
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=config.steps, alpha=config.lr_final_fraction
        )
    if config.lr_schedule == "step_exponential":
        return schedules.StepExponentialDecay(config.learning_rate, config.steps_per_epoch,
                                              config.lr_decay, tuple(config.lr_milestones))
    raise ValueError(
        "`lr_schedule` must be 'constant', 'cosine' or 'step_exponential'. "
        f"Received: {config.lr_schedule!r}"
    )


def build_optimizer(config):
    """Adam with the config's schedule, clipped to global norm `clipnorm` if set.

    Betas (`adam_beta1`, 0.999): Keras' default (0.9, 0.999) unless a config
    says otherwise; the Painter thesis' "beta_1 = 0.999, beta_2 = 0.9"
    (section 1.3) reads as swapped. Configs written before `adam_beta1`
    existed read 0.9.
    """
    return keras.optimizers.Adam(learning_rate_schedule(config),
                                 beta_1=config.get("adam_beta1", 0.9),
                                 global_clipnorm=config.clipnorm)
