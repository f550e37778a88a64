r"""Trains any tfpaint model: the one main of every trainer.

    bazel run //trainers:painter                               # the family's default config
    bazel run //trainers:painter -- --config=rectangles_2moves --workdir=/abs/dir
    bazel run //trainers:painter -- --config=shapes_2moves --config.steps=5000 --config.seed=1
    bazel run //trainers:stawm -- --config=mnist_8x8 --dataset=mnist_full --data_dir=/tfds
    python -m trainers.train --config=trainers/configs/painter.py:mnist_20moves

`//trainers:<family>` is this program with `--family=<family>`: `--config=NAME`
names a config of `trainers/configs/<family>.py`, `--config=FILE.py:NAME` any
config file (ml_collections' config_flags); `--config.<field>=<value>`, or
`--<field>=<value>`, overrides one field. It writes the run directory (default
`runs/<task>/<config name>`; `tfpaint.runs`); the same command again resumes.
README: "Configs", "Training", "Several machines".
"""

import difflib
import importlib.util
import os
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from tfpaint import runs
from tfpaint.data import registry
from trainers import tasks
from trainers import train_lib

FLAGS = flags.FLAGS
CONFIGS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
# Flags of this program; a config field must not take one of these names.
PROGRAM_FLAGS = ("config", "family", "workdir", "strategy", "progress",
                 "allow_config_change", "worker_timeout")

flags.DEFINE_enum("family", None, sorted(tasks.TASKS),
                  "Config family: --config=NAME is looked up in trainers/configs/<family>.py.")
flags.DEFINE_string("workdir", None, "Run directory (default runs/<task>/<config name>).")
flags.DEFINE_enum("strategy", "mirrored", train_lib.STRATEGIES,
                  "tf.distribute strategy; multi_worker reads the cluster from TF_CONFIG.")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.DEFINE_bool("allow_config_change", False,
                  "Go on training a run directory whose config differs from this one.")
flags.DEFINE_float("worker_timeout", 300.0,
                   "multi_worker: seconds a worker waits for the others before failing.")


def _flag_value(argv, name):
    """The last `--name=value` / `--name value` in argv (None if absent)."""
    value = None
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg.startswith(f"--{name}="):
            value = arg.split("=", 1)[1]
        elif arg == f"--{name}" and i + 1 < len(argv):
            value = argv[i + 1]
    return value


def _load_module(path):
    spec = importlib.util.spec_from_file_location("tfpaint_config_file", path)
    if spec is None or not os.path.exists(path):
        raise app.UsageError(f"No config file at {path}.")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expand_argv(argv):
    """Turns the short forms into config_flags' own.

    `--config=NAME` becomes `--config=trainers/configs/<family>.py:NAME` (the
    family's default config when `--config` is absent), and `--<field>=<value>`,
    `--<field> <value>`, `--<bool field>` and `--no<bool field>` for a field of
    that config become `--config.<field>...`.
    """
    argv = list(argv)
    family = _flag_value(argv, "family")
    value = _flag_value(argv, "config")
    if value is None or ".py" not in value:
        if family is None:
            raise app.UsageError(
                "Name a config file (--config=trainers/configs/painter.py:mnist_20moves), "
                f"or a family with --family={{{','.join(sorted(tasks.TASKS))}}} to choose "
                "its configs by name."
            )
        path = os.path.join(CONFIGS_DIR, f"{family}.py")
        module = _load_module(path)
        name = value if value is not None else module.DEFAULT
        if name not in module.CONFIGS:
            raise app.UsageError(
                f"Unknown config {name!r} of {family}. Available: "
                f"{', '.join(sorted(module.CONFIGS))}."
            )
        value = f"{path}:{name}"
    else:
        path, _, name = value.partition(":")
        module = _load_module(runs.resolve(path))
        value = f"{runs.resolve(path)}:{name}" if name else runs.resolve(path)
    fields = module.get_config(*([name] if name else []))
    out = [argv[0]]
    rest = iter(argv[1:])
    for arg in rest:
        if arg == "--":
            out.append(arg)
            out.extend(rest)
            break
        key = arg[2:].split("=", 1)[0] if arg.startswith("--") else None
        if key == "config":
            if "=" not in arg:
                next(rest, None)
            continue
        if key and key.removeprefix("no").startswith("config."):
            field = key.removeprefix("no").split(".")[1]
            if field not in fields:
                close = difflib.get_close_matches(field, list(fields), n=1)
                raise app.UsageError(
                    f"--{key}: config {name or path!r} has no field {field!r}"
                    + (f"; did you mean {close[0]!r}?" if close else "."))
        if key in fields and key not in PROGRAM_FLAGS:
            if "=" in arg or isinstance(fields[key], bool):
                out.append("--config." + arg[2:])
            else:
                out += ["--config." + key, next(rest, "")]
        elif key and key.startswith("no") and isinstance(fields.get(key[2:]), bool):
            out.append("--noconfig." + key[2:])
        else:
            out.append(arg)
    return [out[0], f"--config={value}"] + out[1:]


def parse_flags(argv):
    """absl's flags parser, with the short forms of `expand_argv`; a bad flag
    ends the program with the reason (no traceback)."""
    try:
        argv = expand_argv(argv)
        config_flags.DEFINE_config_file(
            "config", help_string="The config: NAME or FILE.py:NAME.", sys_argv=argv)
        return FLAGS(argv)
    except (app.UsageError, flags.Error) as error:
        sys.exit(f"Error: {error}\nSee --helpfull for every flag.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    config = FLAGS.config
    # Thread pools, then a multi-worker strategy, before any other TensorFlow op.
    try:
        train_lib.set_threads(config)
    except ValueError as error:
        sys.exit(f"Error in config {config.name!r}: {error}")
    strategy = train_lib.make_strategy(FLAGS.strategy, FLAGS.worker_timeout)
    try:
        task = tasks.get_task(config)
        train_lib.resolve_config(task)
    except ValueError as error:
        sys.exit(f"Error in config {config.name!r}: {error}")
    workdir = runs.resolve(FLAGS.workdir or os.path.join("runs", config.task, config.name))
    print(f"Training {config.name} ({task.describe()}) in {workdir}")
    try:
        result, _ = train_lib.train(task, workdir, strategy=strategy, progress=FLAGS.progress,
                                    allow_config_change=FLAGS.allow_config_change)
    except (train_lib.TrainingError, registry.DatasetUnavailableError,
            runs.CheckpointUnreadableError, runs.CheckpointMismatchError) as error:
        sys.exit(f"Error: {error}")
    if not result:
        return
    print("Held-out: " + ", ".join(f"{k}={v:.4g}" for k, v in result.items()))
    print(f"Progress:    {workdir}/progress.png")
    print(f"TensorBoard: tensorboard --logdir={workdir}")
    print(f"Checkpoints: {workdir}/checkpoints")


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
