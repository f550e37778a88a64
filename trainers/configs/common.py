"""The config fields every model shares, each with its one meaning, and the derived fields.

Every config of every family starts from `base()`. A field that two families
use is declared here, once, with its meaning beside it (in `base()`, or in a
group such as `add_template_writer` for the families that need it); a family
module adds only its own model's fields (tests/trainers/test_configs.py checks
both).
Fields that may be absent are placeholders of a fixed type, so that a flag can
set them (`--config.data_dir=/abs/tfds`).
"""

import math

import ml_collections
from ml_collections import config_dict

from tfpaint.data import registry

LR_SCHEDULES = ("constant", "cosine", "step_exponential")
CANVASES = ("over", "additive", "bernoulli")
RECONSTRUCTIONS = ("mse", "ce")
# Fields that only steer how a run is watched or scheduled, not what it
# computes: a resumed run may change them without --allow_config_change.
BOOKKEEPING = ("log_every", "eval_every", "checkpoint_every", "keep_checkpoints",
               "num_summary_images", "max_train_seconds", "intra_op_threads",
               "inter_op_threads")


def base():
    """The shared fields, with defaults."""
    c = ml_collections.ConfigDict()
    c.name = "base"  # the config's name (default run directory: runs/<task>/<name>)
    c.task = config_dict.placeholder(str)  # the Task that trains it (trainers.tasks.TASKS)
    # Data.
    c.dataset = "mnist"  # a name of tfpaint.data.registry.DATASETS
    c.data_dir = config_dict.placeholder(str)  # the tensorflow-datasets dir of a tfds set
    # Training / held-out images: generated (synthetic sets) or the first ones
    # of the split (None: all).
    c.num_train = config_dict.placeholder(int)  # training images
    c.num_test = config_dict.placeholder(int)  # held-out images evaluated
    c.image_size = config_dict.placeholder(int)  # side; None: the dataset's own
    c.max_shift = 0  # augmentation: random shifts, in pixels
    c.max_rotation = 0.0  # augmentation: random rotations, in degrees
    c.random_flip = False  # augmentation: random left-right flips
    # Model fields that more than one family uses.
    c.canvas = "over"  # "over" (thesis eq 3.4), "additive" (eq 3.3, DRAW), "bernoulli" (STAWM eq 4)
    c.latent_units = 256  # size of a latent code
    c.rnn_units = 256  # width of the recurrent (LSTM) layers
    c.reconstruction = "mse"  # reconstruction cost: "mse" or "ce" (Bernoulli cross-entropy)
    # Training.
    c.steps = config_dict.placeholder(int)  # optimiser steps; None: epochs * steps_per_epoch
    c.epochs = config_dict.placeholder(int)  # passes over num_train images, if steps is None
    c.steps_per_epoch = config_dict.placeholder(int)  # derived: training images // batch_size
    c.batch_size = 100  # global batch size (divided among replicas)
    c.learning_rate = 1e-3  # Adam's (trainers.optimization)
    c.adam_beta1 = 0.9  # Adam's first-moment decay (Keras' default)
    c.lr_schedule = "constant"  # "constant", "cosine", "step_exponential"
    c.lr_final_fraction = 0.05  # "cosine": the last rate, as a fraction of the first
    c.lr_decay = 0.99  # "step_exponential": factor per epoch
    c.lr_milestones = ()  # "step_exponential": epochs where the rate is divided by ten
    c.clipnorm = config_dict.placeholder(float)  # global-norm gradient clipping (None: none)
    c.seed = 0  # seed of data order, synthetic data, weights and noise
    c.jit = True  # compile the training step and evaluation with XLA
    # TensorFlow's thread pools, set before its first op (train_lib.set_threads).
    c.intra_op_threads = 0  # threads one op may use (0: TensorFlow's default, the cores)
    c.inter_op_threads = 0  # ops that may run at once (0: TensorFlow's default)
    c.log_every = 50  # steps between training scalars
    c.eval_every = 1000  # steps between held-out evaluations and pictures
    c.checkpoint_every = 1000  # steps between checkpoints
    c.keep_checkpoints = 3  # checkpoints kept
    c.num_summary_images = 8  # held-out images in the pictures
    c.max_train_seconds = config_dict.placeholder(float)  # training-time budget (None, inf: none)
    return c


def add_glimpse(c):
    """Adds the glimpse's side, for the families that read glimpses with the
    spatial transformer (STAWM, AIR). Returns `c`."""
    c.glimpse_size = 8  # side of an attention glimpse, in pixels
    return c


def add_glimpse_sequence(c):
    """Adds the glimpse's side and the number of glimpses, for the families
    that classify from a sequence of glimpses (STAWM, WS-RAM). Returns `c`."""
    c = add_glimpse(c)
    c.num_glimpses = 8  # glimpses taken of each image
    return c


def add_importance_weighted_bound(c):
    """Adds the held-out importance-weighted bound's field, for the families
    with a variational bound (DRAW, AIR). Returns `c`."""
    c.iwae_samples = 10  # K samples of every latent for the held-out bound (benchmarks: 100)
    return c


def add_scene_inference(c):
    """Adds the fields of AIR's scene inference (a variable number of objects,
    each attended, encoded and written back), for AIR and the models built on
    it (DM-VAE), with the glimpse's and the bound's fields. Returns `c`."""
    c = add_importance_weighted_bound(add_glimpse(c))
    c.max_objects = 2  # the most objects a scene holds (the data: counts 0..max_objects)
    c.max_steps = 3  # N: the most objects a scene is explained with, one per step
    # The count prior: each counted step is present with this probability
    # (pyro's tutorial: 0.01), annealed linearly to presence_prob_final over
    # presence_prob_anneal_steps (0: fixed).
    c.presence_prob = 0.01  # the count prior's presence probability q
    c.presence_prob_final = 0.01  # q at the end of the annealing
    c.presence_prob_anneal_steps = 0  # steps of the annealing (0: q fixed)
    c.where_prior = (math.log(0.4), 0.5, 1.0)  # z_where's (log-scale mean, log-scale sd, shift sd)
    c.likelihood_scale = 0.3  # sigma of the Gaussian likelihood per pixel
    c.decoder_bias = -2.0  # the glimpse decoder's starting logit bias (pyro's tutorial)
    # z_pres: "bernoulli" (score-function gradient, NVIL baseline), "concrete"
    # (relaxed, reparameterised, at presence_temperature) or "none" (every
    # step present: a fixed number of steps, as T-AIR).
    c.z_pres = "bernoulli"  # how z_pres is sampled and trained
    c.presence_temperature = 0.5  # the Concrete temperature of z_pres="concrete"
    # Divide z_pres' score-function signal (ELBO minus baseline, hundreds of
    # nats) by its batch standard deviation when above 1 (NVIL).
    c.normalize_signal = False  # NVIL's variance normalisation
    # (low, high): each window side as a fraction of the image's, squashed
    # into this range (None: free, exp of the log-scale latent).
    c.window_range = config_dict.placeholder(tuple)  # bounds of the window sides
    return c


def add_template_writer(c):
    """Adds the template writer's fields (thesis chapter 3), for the families
    that paint with it (the Painter, T-DRAW). Returns `c`."""
    c.templates = ("circle",)  # template names (tfpaint.layers.TEMPLATE_NAMES)
    c.template_size = 16  # side of the template masks, in pixels
    c.initial_scale = 1.0  # a template starts at this scale of the identity map (1: the canvas)
    return c


def named_configs(*functions, default):
    """A family's `(CONFIGS, get_config)` from its config functions.

    `get_config(name=default)` returns a fresh copy of the named config, with
    `name` set (the config functions leave it to this), or a ValueError
    listing the names. ml_collections' `config_flags` calls it for
    `--config=FILE.py:NAME`.
    """
    configs = {f.__name__: f for f in functions}

    def get_config(name=default):
        if name not in configs:
            raise ValueError(
                f"Unknown config {name!r}. Available: {', '.join(sorted(configs))}.")
        config = configs[name]()
        config.name = name
        return config

    return configs, get_config


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
        raise ValueError("`max_train_seconds` must be > 0 (or inf, or None for no budget). "
                         f"Received: {config.max_train_seconds}")
    for name in ("intra_op_threads", "inter_op_threads"):
        check_int(config, name, 0)
    if not 0.0 <= config.adam_beta1 < 1.0:
        raise ValueError(f"`adam_beta1` must be in [0, 1). Received: {config.adam_beta1}")
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

