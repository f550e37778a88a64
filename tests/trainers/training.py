"""What the trainer tests share: a quiet training run and TensorBoard read-back."""

import contextlib
import io

import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from trainers import tasks
from trainers import train_lib


def train_quietly(config, workdir, task=None, **kwargs):
    """Trains `task` (default: the task `config` names) without a progress bar.

    Returns:
        (held-out metrics, `TrainState`, what it printed).
    """
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result, state = train_lib.train(task or tasks.get_task(config), workdir,
                                        progress=False, **kwargs)
    return result, state, out.getvalue()


def _accumulator(logdir):
    acc = event_accumulator.EventAccumulator(
        logdir, size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    return acc


def scalars(logdir, tag):
    """`{step: value}` of a scalar summary under `logdir`."""
    return {e.step: float(tf.make_ndarray(e.tensor_proto))
            for e in _accumulator(logdir).Tensors(tag)}


def summary_image(logdir, tag):
    """(width, height, encoded bytes) of the last image summary `tag`."""
    width, height, data = tf.make_ndarray(_accumulator(logdir).Tensors(tag)[-1].tensor_proto)
    return int(width), int(height), data
