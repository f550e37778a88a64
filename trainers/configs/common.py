"""The config fields every model shares, their one meaning, and the derived fields.

Every config of every model family starts from `base()`. A field that two
families use is declared here, once, with the meaning below; a family module
adds only the fields of its own model (tests/trainers/test_configs.py checks
both rules).

Run any config with its family's trainer and override single fields with
`--config.<field>=<value>` (ml_collections' config_flags) or the shorthand
`--<field>=<value>`:

    bazel run //trainers:painter -- --config=rectangles_2moves --config.steps=500

Fields whose value may be absent are placeholders of a fixed type, so a flag
can set them: `--config.data_dir=/abs/tfds`.

| field | meaning |
| --- | --- |
| `name` | the config's name (the default run directory is `runs/<task>/<name>`) |
| `task` | the task (model family) that trains it: a key of `trainers.tasks.TASKS` |
| `dataset` | a dataset of `tfpaint.data.registry.DATASETS` |
| `data_dir` | the tensorflow-datasets directory of a tfds dataset (None: none) |
| `num_train` | training images: generated (synthetic), or the first ones of the split (None: all) |
| `num_test` | held-out images evaluated: generated (synthetic), or the first ones of the split (None: all) |
| `image_size` | side of the images; only datasets that are generated or resized may change it (None: the dataset's own) |
| `max_shift`, `max_rotation`, `random_flip` | training augmentation: pixels, degrees, horizontal flips |
| `canvas` | the canvas rule: "over" (thesis eq 3.4), "additive" (eq 3.3, DRAW), "bernoulli" (STAWM eq 4) |
| `latent_units` | size of a latent code |
| `reconstruction` | reconstruction cost: "mse" or "ce" (Bernoulli cross-entropy) |
| `steps` | optimiser steps; None: `epochs` times `steps_per_epoch` (derived) |
| `epochs` | passes over `num_train` images, when `steps` is None |
| `steps_per_epoch` | derived: training images // `batch_size` |
| `batch_size` | global batch size (divided among replicas) |
| `learning_rate`, `lr_schedule`, `lr_final_fraction`, `lr_decay`, `lr_milestones`, `clipnorm` | Adam and its schedule (`trainers.optimization`) |
| `seed` | seed of data order, synthetic data, weights and noise |
| `jit` | compile the training step (and evaluation) with XLA |
| `log_every`, `eval_every`, `checkpoint_every` | steps between training scalars, held-out evaluations, checkpoints |
| `keep_checkpoints` | how many checkpoints to keep |
| `num_summary_images` | held-out images in the pictures |
| `max_train_seconds` | budget of training time (steps only; evaluation not counted); None or inf: none |
"""

import math

import ml_collections
from ml_collections import config_dict

from tfpaint.data import registry

LR_SCHEDULES = ("constant", "cosine", "step_exponential")
CANVASES = ("over", "additive", "bernoulli")
RECONSTRUCTIONS = ("mse", "ce")
# Fields that only steer how a run is watched, not what it computes: a resumed
# run may change them without --allow_config_change.
BOOKKEEPING = ("log_every", "eval_every", "checkpoint_every", "keep_checkpoints",
               "num_summary_images", "max_train_seconds")


def base():
    """The shared fields, with defaults (see the module docstring)."""
    c = ml_collections.ConfigDict()
    c.name = "base"
    c.task = config_dict.placeholder(str)
    # Data.
    c.dataset = "mnist"
    c.data_dir = config_dict.placeholder(str)
    c.num_train = config_dict.placeholder(int)
    c.num_test = config_dict.placeholder(int)
    c.image_size = config_dict.placeholder(int)
    c.max_shift = 0
    c.max_rotation = 0.0
    c.random_flip = False
    # Model fields more than one family uses.
    c.canvas = "over"
    c.latent_units = 256
    c.reconstruction = "mse"
    # Training.
    c.steps = config_dict.placeholder(int)
    c.epochs = config_dict.placeholder(int)
    c.steps_per_epoch = config_dict.placeholder(int)
    c.batch_size = 100
    c.learning_rate = 1e-3
    c.lr_schedule = "constant"
    c.lr_final_fraction = 0.05
    c.lr_decay = 0.99
    c.lr_milestones = ()
    c.clipnorm = config_dict.placeholder(float)
    c.seed = 0
    c.jit = True
    c.log_every = 50
    c.eval_every = 1000
    c.checkpoint_every = 1000
    c.keep_checkpoints = 3
    c.num_summary_images = 8
    c.max_train_seconds = config_dict.placeholder(float)
    return c


def train_size(config):
    """Training images a config uses."""
    return registry.spec(config.dataset).num_examples("train", config.num_train)


def derive(config):
    """Fills the derived fields: `steps_per_epoch`, and `steps` from `epochs`.

    Idempotent: a config whose `steps` is set keeps it. Call it after every
    override (the trainer does).

    Returns:
        `config`, changed in place.
    """
    check_choice(config, "dataset", tuple(registry.DATASETS))
    check_int(config, "batch_size", 1)
    if config.num_train is not None:
        check_int(config, "num_train", 1)
    config.steps_per_epoch = max(1, train_size(config) // config.batch_size)
    if config.steps is None:
        if config.epochs is None:
            raise ValueError(
                f"Config {config.name!r} sets neither `steps` nor `epochs`: set one "
                "(--config.steps=N or --config.epochs=N)."
            )
        check_int(config, "epochs", 1)
        config.steps = int(config.epochs) * config.steps_per_epoch
    return config


def validate(config):
    """Raises a ValueError naming the first shared field with a bad value."""
    check_choice(config, "dataset", tuple(registry.DATASETS))
    registry.spec(config.dataset).side(config.image_size)  # Raises if it does not fit.
    for name, low in (("steps", 1), ("batch_size", 1), ("log_every", 1), ("eval_every", 1),
                      ("checkpoint_every", 1), ("keep_checkpoints", 1),
                      ("num_summary_images", 0), ("max_shift", 0)):
        check_int(config, name, low)
    for name in ("num_train", "num_test", "epochs"):
        if config[name] is not None:
            check_int(config, name, 1)
    check_positive(config, "learning_rate")
    check_choice(config, "lr_schedule", LR_SCHEDULES)
    check_choice(config, "canvas", CANVASES)
    check_choice(config, "reconstruction", RECONSTRUCTIONS)
    if config.clipnorm is not None:
        check_positive(config, "clipnorm")
    if config.max_train_seconds is not None and not config.max_train_seconds > 0:
        raise ValueError(
            f"`max_train_seconds` must be > 0 (or inf, or None for no budget). "
            f"Received: {config.max_train_seconds}"
        )
    if not 0.0 <= config.lr_final_fraction <= 1.0:
        raise ValueError(
            f"`lr_final_fraction` must be in [0, 1]. Received: {config.lr_final_fraction}")
    if not (math.isfinite(config.max_rotation) and config.max_rotation >= 0):
        raise ValueError(f"`max_rotation` must be >= 0 degrees. Received: {config.max_rotation}")


def check_int(config, name, low):
    """Raises a ValueError unless `config[name]` is an integer >= `low`."""
    value = config[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"`{name}` must be an integer >= {low}. Received: {value!r}")


def check_positive(config, name):
    """Raises a ValueError unless `config[name]` is a finite number > 0."""
    value = config[name]
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` must be a finite number > 0. Received: {value!r}")


def check_choice(config, name, choices):
    """Raises a ValueError unless `config[name]` is one of `choices`."""
    if config[name] not in choices:
        raise ValueError(
            f"`{name}` must be one of {', '.join(map(repr, choices))}. "
            f"Received: {config[name]!r}"
        )

