"""What a model family brings to the one training loop.

A `Task` (TF Model Garden's `base_task.Task` is the model for it) builds the
model, its data, the per-example loss and metrics, the held-out evaluation and
the pictures. `trainers.train_lib` owns everything else: checkpoints with
every RNG state and exact resume, the progress bar, TensorBoard writers, the
evaluation cadence, `metrics.json`, the wall-clock budget, `tf.distribute`,
XLA on or off. A new model family is a subclass registered in
`trainers.tasks.TASKS`.
"""

import numpy as np
import tensorflow as tf

from tfpaint import metrics
from tfpaint.data import pipelines
from tfpaint.data import registry
from trainers import optimization


class Task:
    """The model-specific half of training. Subclasses override what they need.

    Attributes:
        name: the task's key in `trainers.tasks.TASKS` (a config's `task`).
        progress_picture: the picture tag also saved as `progress.png`.
        progress_animation: the animation tag also saved as `progress.gif`.
        config: the resolved config.
    """

    name = None
    progress_picture = None
    progress_animation = None

    def __init__(self, config):
        self.config = config


    def validate(self):
        """Raises a ValueError naming the first of the task's own fields with a
        bad value (the shared fields are checked by `configs.common`)."""

    def describe(self):
        """A few words on the model, printed when training starts."""
        return self.name


    @property
    def dataset_spec(self):
        return registry.spec(self.config.dataset)

    def data_options(self):
        """Further `registry.load` arguments of the task's dataset (e.g.
        Multi-MNIST's `max_objects`)."""
        return {}

    def load_data(self):
        """(training `Dataset`, held-out `Dataset`) from the data registry."""
        c = self.config
        common = dict(data_dir=c.data_dir, seed=c.seed, image_size=c.image_size,
                      **self.data_options())
        return (registry.load(c.dataset, "train", num_examples=c.num_train, **common),
                registry.load(c.dataset, "test", num_examples=c.num_test, **common))

    def train_pipeline(self, dataset):
        """Shuffled, repeated, augmented batches of the training set."""
        c = self.config
        return pipelines.make_pipeline(
            dataset, c.batch_size, shuffle=True, repeat=True, seed=c.seed,
            max_shift=c.max_shift, max_rotation=c.max_rotation, random_flip=c.random_flip,
        )


    def build_model(self, image_shape):
        """The model for images of `image_shape` `(H, W, C)`."""
        raise NotImplementedError

    def prepare_model(self, model):
        """Called once the model is built, before the optimiser sees its
        trainable weights (e.g. to freeze some)."""

    def initialize(self, model):
        """Called on a fresh run (no checkpoint yet), e.g. to load pretrained
        weights. Returns a line to print, or None."""

    def build_optimizer(self):
        """The optimiser, also kept as `self.optimizer` (a loss may read its
        step, e.g. for a warm-up or an annealed prior)."""
        self.optimizer = optimization.build_optimizer(self.config)
        return self.optimizer


    def loss(self, model, batch, training=True):
        """The per-example loss and metrics of one replica's batch.

        Args:
            model: the task's model.
            batch: a dict from `train_pipeline` (`image` `(B, H, W, C)`, ...).
            training: passed to the model.

        Returns:
            `(loss, metrics)`: `(B,)` per-example losses (the loop averages
            them over the global batch) and a dict of `(B,)` per-example
            metrics, logged as their mean.
        """
        raise NotImplementedError


    def eval_function(self, model, jit):
        """A function of an image batch returning the outputs `evaluate` and
        `pictures` read (a dict of tensors)."""
        return tf.function(lambda images: model(images, training=False), jit_compile=jit)

    def evaluate(self, outputs, examples):
        """Held-out metrics (a dict of floats) from the eval outputs (NumPy)
        of `examples` (`registry.Examples`)."""
        raise NotImplementedError

    def pictures(self, outputs, examples):
        """Pictures of the first held-out examples: a dict of TensorBoard tag
        -> `(H, W, 3)` picture, or `(T, H, W, 3)` frames of an animation."""
        return {}


def stack_samples(sample_fn, samples, keys, dtype):
    """Runs `sample_fn(k)` for k = 0..samples-1 in a `tf.while_loop`.

    One copy of the model stays in the graph, not `samples` unrolled copies
    (an importance-weighted bound of 100 samples).

    Args:
        sample_fn: a function of the sample index (a scalar int32 tensor) that
            returns a dict with `keys`, each a `(B,)` tensor.
        samples: K.
        keys: the keys `sample_fn` returns.
        dtype: their dtype.

    Returns:
        Dict of `(K, B)` tensors.
    """
    def body(k, arrays):
        values = sample_fn(k)
        return k + 1, {key: arrays[key].write(k, values[key]) for key in keys}

    arrays = {key: tf.TensorArray(dtype, size=samples) for key in keys}
    _, arrays = tf.while_loop(lambda k, _: k < samples, body, [tf.constant(0), arrays])
    return {key: array.stack() for key, array in arrays.items()}


def move_rates(masks, colors, examples):
    """The own-move rate of a model's moves on a shapes set and, on grayscale
    images, the covering-move rate (one move over every shape: thesis 4.1's
    local minimum). T-DRAW's and T-AIR's evaluation.

    Args:
        masks: `(B, T, H, W, 1)` each move's placed template.
        colors: `(B, T, C)` each move's colour.
        examples: the `Examples` of the same B images, with `shapes`.
    """
    own, _ = metrics.own_move_assignment(masks, examples.shapes)
    result = {"own_move_rate": float(np.mean(own))}
    if examples.images.shape[-1] == 1:
        covering = metrics.covering_move(masks, colors, examples.shapes)
        result["covering_move_rate"] = float(np.mean(covering))
    return result
