"""Pieces every trainer shares: work dirs, atomic files, batched prediction."""

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


def atomic_write(path, text):
    """Writes `text` to `path` so that readers see the old or the new file, never half."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def predict_in_batches(fn, images, batch_size=250):
    """Runs a dict-returning `fn` over `images` in batches; NumPy dict."""
    parts = []
    for i in range(0, len(images), batch_size):
        out = fn(tf.constant(images[i:i + batch_size]))
        parts.append({k: v.numpy() for k, v in out.items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
