"""Pieces every trainer shares: work dirs, batched prediction, distribution.

Files are written with `tfpaint.files.atomic_write`.
"""

import os

import numpy as np
import tensorflow as tf


def resolve_workdir(path):
    """An absolute work dir; relative paths are taken from where the user ran
    the command (`bazel run` starts programs inside its runfiles tree)."""
    if os.path.isabs(path):
        return path
    base = os.environ.get("BUILD_WORKING_DIRECTORY", os.getcwd())
    return os.path.abspath(os.path.join(base, path))


def predict_in_batches(fn, images, batch_size=250):
    """Runs a dict-returning `fn` over `images` in batches; NumPy dict."""
    parts = []
    for i in range(0, len(images), batch_size):
        out = fn(tf.constant(images[i:i + batch_size]))
        parts.append({k: v.numpy() for k, v in out.items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def sum_over_replicas(strategy, per_replica):
    """Sums a dict of per-replica scalars across replicas."""
    return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
            for k, v in per_replica.items()}


class DistributedState:
    """What every trainer's state shares: its strategy, the compiled step
    (`self._train_step`), batched evaluation (`self._eval_fn`) and input
    distribution. Subclasses build the model, optimiser and both functions."""

    def train_step(self, iterator):
        """One optimiser step on the next batch; returns scalar metrics."""
        return self._train_step(iterator)

    def predict(self, images, batch_size=250):
        """The evaluation function's output dict (NumPy) for an array of images."""
        return predict_in_batches(self._eval_fn, images, batch_size)

    def distribute(self, dataset):
        return iter(self.strategy.experimental_distribute_dataset(dataset))
