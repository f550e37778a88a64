"""Run directories: what a trainer writes, and how export tools read it back.

A run directory (the trainer's `--workdir`) holds:

| file | what |
| --- | --- |
| `config.json` | the resolved training config |
| `model.json` | the model's Keras config: it rebuilds the trained architecture |
| `checkpoints/` | `tf.train.CheckpointManager` checkpoints (`ckpt-<step>`) |
| `metrics.json` | the final held-out metrics |
| `train/`, `eval/` | TensorBoard logs |
| `progress.png`, `progress.gif` | pictures of held-out examples |

`restore_model` rebuilds any trained tfpaint model from such a directory
without importing a trainer, so export tools (SavedModel, TFLite, SVG) work
for every model family the same way.
"""

import json
import os
import warnings

import keras
import ml_collections
import numpy as np
import tensorflow as tf

CONFIG_FILE = "config.json"
MODEL_FILE = "model.json"
METRICS_FILE = "metrics.json"
CHECKPOINTS = "checkpoints"

# What reading a damaged checkpoint raises: a truncated data file gives
# IndexError ("Read less bytes than requested"), a damaged index DataLossError.
READ_ERRORS = (tf.errors.OpError, IndexError, OSError, UnicodeDecodeError)


class CheckpointUnreadableError(RuntimeError):
    """No checkpoint of a run could be read; the message lists each one's error."""


class CheckpointMismatchError(RuntimeError):
    """A run's checkpoints do not fit the model they are restored into."""


def resolve(path):
    """An absolute path; relative paths are taken from where the user ran the
    command (`bazel run` starts programs inside their runfiles tree)."""
    if path is None or not str(path).strip():
        raise ValueError("A path is needed; received an empty one.")
    path = os.path.expanduser(os.fspath(path))
    if os.path.isabs(path):
        return os.path.normpath(path)
    base = os.environ.get("BUILD_WORKING_DIRECTORY", os.getcwd())
    return os.path.abspath(os.path.join(base, path))


def read_json(path):
    """A JSON file's content, or a ValueError naming the file if it is damaged."""
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON ({error}).") from error


def read_config(workdir):
    """The resolved training config of a run (`config.json`), or None if absent."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        return None
    return ml_collections.ConfigDict(read_json(path))


def checkpoint_prefixes(directory):
    """The checkpoint prefixes CheckpointManager lists in `directory`, oldest first."""
    state = tf.train.get_checkpoint_state(directory)
    if state is None:
        return []
    prefixes = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
    prefixes = [p if os.path.isabs(p) else os.path.join(directory, p) for p in prefixes]
    return [p for p in prefixes if tf.io.gfile.exists(p + ".index")]


def restore_newest_intact(restore, prefixes):
    """Restores the newest checkpoint that can be read, falling back to older ones.

    A checkpoint whose files are damaged (a disk filled up, a copy cut short)
    raises a read error; it is skipped with a warning that names it. An error
    of any other kind (the checkpoint does not fit the model) is raised at once.

    Args:
        restore: called with a prefix; restores it or raises.
        prefixes: checkpoint prefixes, oldest first.

    Returns:
        The prefix restored.

    Raises:
        CheckpointUnreadableError: if no checkpoint could be read (each one's
            error is listed).
    """
    errors = []
    for prefix in reversed(prefixes):
        try:
            restore(prefix)
        except READ_ERRORS as error:
            message = f"{type(error).__name__}: {str(error).strip().splitlines()[0]}"
            errors.append(f"{prefix}: {message}")
            warnings.warn(
                f"Checkpoint {prefix} cannot be read ({message}); trying the one before it.",
                RuntimeWarning, stacklevel=2,
            )
            continue
        return prefix
    raise CheckpointUnreadableError(
        "No checkpoint could be read:\n  " + "\n  ".join(errors)
    )


def restore_checkpoint(checkpoint, directory):
    """Restores the newest readable checkpoint of `directory` into `checkpoint`,
    every object of which must be matched.

    Args:
        checkpoint: a `tf.train.Checkpoint`.
        directory: a `checkpoints/` directory (it may not exist yet).

    Returns:
        The prefix restored, or None if the directory holds no checkpoint.

    Raises:
        CheckpointMismatchError: if the checkpoint does not fit `checkpoint`.
        CheckpointUnreadableError: if no checkpoint could be read.
    """
    prefixes = checkpoint_prefixes(directory)
    if not prefixes:
        return None

    def restore(prefix):
        checkpoint.restore(prefix).assert_existing_objects_matched()

    try:
        return restore_newest_intact(restore, prefixes)
    except (ValueError, AssertionError) as error:
        raise CheckpointMismatchError(
            f"The checkpoints in {directory} do not fit this model "
            f"({type(error).__name__}: {str(error).splitlines()[0]}). Was the model "
            "changed? A new model needs a new run directory."
        ) from error


def config_differences(previous, current, ignore=()):
    """`[(field, old, new)]` of the fields of two config dicts that differ.

    Values are compared and shown as JSON text ("(absent)" where one side
    lacks the field), so a tuple equals the list it was saved as.
    """
    old, new = json.loads(json.dumps(previous)), json.loads(json.dumps(current))
    show = lambda d, k: json.dumps(d[k]) if k in d else "(absent)"
    keys = sorted((set(old) | set(new)) - set(ignore))
    return [(k, show(old, k), show(new, k)) for k in keys if show(old, k) != show(new, k)]


def find_checkpoint(path):
    """The checkpoints a path names.

    Args:
        path: a run directory, its `checkpoints/` directory, or one checkpoint
            prefix (`.../checkpoints/ckpt-6000`).

    Returns:
        (list of checkpoint prefixes to try, newest last; run directory). A
        prefix names a list of one.

    Raises:
        FileNotFoundError: naming the path, if no checkpoint is there.
    """
    path = resolve(path)
    if tf.io.gfile.exists(path + ".index"):
        return [path], os.path.dirname(os.path.dirname(path))
    for directory in (os.path.join(path, CHECKPOINTS), path):
        prefixes = checkpoint_prefixes(directory)
        if prefixes:
            workdir = path if directory != path else os.path.dirname(path)
            return prefixes, workdir
    raise FileNotFoundError(
        f"No checkpoint at {path}: pass a run directory written by a tfpaint "
        "trainer (`bazel run //trainers:<model>`), its checkpoints/ directory, or a "
        "prefix such as <workdir>/checkpoints/ckpt-6000."
    )


def warm_start(model, path):
    """Loads into `model` the weights a trained run has in common with it.

    Args:
        model: a built model.
        path: anything `find_checkpoint` accepts.

    Returns:
        The checkpoint prefix read.

    Raises:
        ValueError: if the checkpoint holds none of the model's weights.
    """
    prefixes, workdir = find_checkpoint(path)
    before = [v.numpy() for v in model.weights]
    checkpoint = tf.train.Checkpoint(model=model)
    prefix = restore_newest_intact(lambda p: checkpoint.restore(p).expect_partial(), prefixes)
    if not any(not np.array_equal(b, v.numpy()) for b, v in zip(before, model.weights)):
        raise ValueError(
            f"Nothing in {prefix} matched this model's weights: is {workdir} a run of the "
            "same model with the same sizes?"
        )
    return prefix


def build_model(workdir):
    """The untrained model of a run, rebuilt from its `model.json`."""
    path = os.path.join(workdir, MODEL_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} is missing: the run has no model description beside its "
            "checkpoints, so its architecture is unknown. Train it with a current "
            "tfpaint trainer, which writes model.json."
        )
    import tfpaint.models  # pylint: disable=g-import-not-at-top,unused-import  (registers)

    model = keras.saving.deserialize_keras_object(read_json(path))
    # tfpaint models know their image shape; a plain Keras model its input's.
    shape = getattr(model, "image_shape", None) or tuple(model.input_shape[1:])
    model(tf.zeros((1, *shape)))  # Creates the variables.
    return model


def restore_model(path):
    """Rebuilds a trained model and loads its weights.

    The newest readable checkpoint is used: a damaged one is skipped with a
    warning naming it (see `restore_newest_intact`).

    Args:
        path: anything `find_checkpoint` accepts.

    Returns:
        (model, config, checkpoint prefix). `config` is the run's resolved
        training config (`config.json`; an empty ConfigDict if absent).
    """
    prefixes, workdir = find_checkpoint(path)
    model = build_model(workdir)
    config = read_config(workdir) or ml_collections.ConfigDict()

    def restore(prefix):
        status = tf.train.Checkpoint(model=model).restore(prefix).expect_partial()
        status.assert_existing_objects_matched()

    prefix = restore_newest_intact(restore, prefixes)
    return model, config, prefix
