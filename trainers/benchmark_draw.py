r"""Speed and quality figures of DRAW, printed (no test times anything).

    bazel run //trainers:benchmark_draw                    # the paper model's speed, XLA off, on
    bazel run //trainers:benchmark_draw -- --jit=false --unroll=1,64   # loop, or all steps traced
    bazel run //trainers:benchmark_draw -- --nospeed --curves --minutes=15 --plot=$PWD/curves.png
    bazel run //trainers:benchmark_draw -- --nospeed --rectangles --rectangles_minutes=5
    bazel run //trainers:benchmark_draw -- --jit=false \
        --baseline_command="$PWD/torch/bin/python run_draw.py --seconds=120 --batch_size=100"

Speed: training images/s of a config's step (default the paper's MNIST model:
T = 64, read 2x2, write 5x5, LSTM 256, z 100, batch 100), without and with
XLA, side by side in one run, for each `--unroll` (the model's steps traced
per iteration of its loop over t). `--baseline_command` runs another DRAW right
after (for instance a public PyTorch one): its last `images/s=N` figure is
printed beside ours with the ratio, measured on the same machine in the same
run. The load average is printed with the figures: the machine may be shared.

Curves (`--curves`): trains one model per `--attentions` (Gaussian, spatial
transformer, none; the rest of the config as `--config`) for `--minutes` of
training time each, one after the other, and at `--points` evenly spaced
training times scores the same held-out digits: the negative ELBO and the
importance-weighted bound with `--iwae_samples` samples of the whole latent
sequence (the bound at the last `--iwae_points` points; evaluation time is
not counted). It prints one table and can draw the curves (`--plot`).

2-Rectangles (`--rectangles`): trains T-DRAW (`t_draw_rectangles`) and the
Painter (`rectangles_2moves`) on the one training loop for
`--rectangles_minutes` each and prints, on the same held-out images, both
own-move rates (the share of images where each rectangle has its own move)
and both covering-move rates (the share where one move, in the rectangles'
colour, covers both: the thesis found T-DRAW paints one move over both).
"""

import json
import os
import re
import shlex
import subprocess
import time

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from tfpaint import runs
from trainers import benchmark_lib
from trainers import tasks
from trainers import train_lib
from trainers.configs import draw as configs
from trainers.configs import painter as painter_configs

FLAGS = flags.FLAGS
flags.DEFINE_enum("config", "mnist_paper", sorted(configs.CONFIGS), "Named config.")
flags.DEFINE_bool("speed", True, "Measure the training throughput.")
flags.DEFINE_integer("steps", 10, "Timed steps per setting.")
flags.DEFINE_integer("warmup", 2, "Untimed steps after the first (tracing) one.")
flags.DEFINE_list("jit", ["false", "true"], "Settings of XLA to measure.")
flags.DEFINE_list("unroll", ["1"], "Settings of `config.unroll` (steps traced per iteration of "
                  "the model's while_loop) to measure; curves use the first.")
flags.DEFINE_string("baseline_command", None,
                    "A command that trains another DRAW and prints `images/s=N`; its last "
                    "figure is printed beside ours.")
flags.DEFINE_bool("curves", False, "Train per attention and score against training time.")
flags.DEFINE_list("attentions", ["gaussian", "stn", "none"], "Attentions of the curves.")
flags.DEFINE_float("minutes", 15.0, "Training minutes per attention.")
flags.DEFINE_integer("points", 5, "Evaluation points per curve, evenly spaced in time.")
flags.DEFINE_integer("iwae_samples", 100, "K of the importance-weighted bound.")
flags.DEFINE_integer("iwae_points", 2, "How many of the last points also get the K-sample bound.")
flags.DEFINE_bool("rectangles", False, "Own-move rates of T-DRAW and the Painter.")
flags.DEFINE_float("rectangles_minutes", 5.0, "Training minutes per model on 2-Rectangles.")
flags.DEFINE_integer("seed", 0, "Seed of the models and the data order.")
flags.DEFINE_multi_string("set", [], "A config field of the DRAW runs, `name=value` (the "
                          "value parsed as the field's type), e.g. --set=adam_beta1=0.5.")
flags.DEFINE_string("plot", None, "Optional PNG of the curves.")
flags.DEFINE_string("output", None, "Optional JSON file for the figures.")


def make_config(**overrides):
    config = configs.get_config(FLAGS.config)
    config.seed = FLAGS.seed
    config.unroll = int(FLAGS.unroll[0])
    for item in FLAGS.set:
        name, _, value = item.partition("=")
        if name not in config:
            raise ValueError(f"--set names no field of the {FLAGS.config} config: {item!r}")
        kind = type(config[name])
        config[name] = (value.lower() in ("1", "true", "yes")) if kind is bool else kind(value)
    for key, value in overrides.items():
        config[key] = value
    return config


def measure_speed():
    config = make_config()
    print(f"CPU cores: {os.cpu_count()}; config {config.name}: T={config.num_steps}, "
          f"read {config.read_size}x{config.read_size}, write {config.write_size}x"
          f"{config.write_size}, LSTM {config.rnn_units}, z {config.latent_units}, "
          f"batch {config.batch_size}, {config.attention} attention; TensorFlow threads per "
          f"op {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}, ops at "
          f"once {tf.config.threading.get_inter_op_parallelism_threads() or 'default'}")
    rows = {}
    for unroll in (int(u) for u in FLAGS.unroll):
        table = train_lib.throughput_table(
            lambda u=unroll: tasks.get_task(make_config(unroll=u)), FLAGS.steps, FLAGS.warmup,
            jits=[jit.lower() in ("1", "true", "yes") for jit in FLAGS.jit],
            title=f"{config.name}, unroll={unroll}")
        rows.update({f"{name}, unroll={unroll}": row for name, row in table.items()})
    if FLAGS.baseline_command:
        print(f"\nBaseline: {FLAGS.baseline_command}")
        load = os.getloadavg()[0]
        run = subprocess.run(shlex.split(FLAGS.baseline_command), capture_output=True,
                             text=True, check=False)
        found = re.findall(r"images/s=\s*([0-9.]+)", run.stdout)
        if run.returncode or not found:
            raise RuntimeError(f"The baseline command exited with {run.returncode} and printed "
                               f"no `images/s=N`:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
        baseline = float(found[-1])
        rows["baseline"] = {"images_per_second": baseline, "load_before": load,
                            "load_after": os.getloadavg()[0]}
        print(f"{'baseline':8s} {baseline:10.1f} images/s  (load {load:.2f} / "
              f"{os.getloadavg()[0]:.2f})")
        for name, row in rows.items():
            if name != "baseline":
                print(f"{name:18s} / baseline: {row['images_per_second'] / baseline:.2f}x")
    return rows


def measure_curve(attention):
    """Trains one model for `--minutes`, scoring the held-out digits at the points."""
    config = make_config(attention=attention, iwae_samples=1, max_train_seconds=None)
    task = tasks.get_task(config)
    state, iterator, test_set = train_lib.build(task)
    held_out = test_set.examples(config.num_test)
    bound_task = tasks.get_task(make_config(attention=attention,
                                            iwae_samples=FLAGS.iwae_samples))
    bound_fn = bound_task.eval_function(state.model, state.jit)
    budget = 60.0 * FLAGS.minutes
    marks = [budget * (i + 1) / FLAGS.points for i in range(FLAGS.points)]
    rows, trained, steps = [], 0.0, 0
    print(f"\n== {attention} attention: {config.name}, {FLAGS.minutes:g} minutes ==")
    for index, mark in enumerate(marks):
        while trained < mark:
            start = time.perf_counter()
            float(state.train_step(iterator)["loss"])
            trained += time.perf_counter() - start
            steps += 1
        outputs = state.predict(held_out.images, batch_size=config.batch_size)
        row = {"train_seconds": trained, "steps": steps,
               "neg_elbo_nats": float(np.mean(outputs["neg_elbo"]))}
        if index >= FLAGS.points - FLAGS.iwae_points:
            scored = train_lib.predict_in_batches(bound_fn, held_out.images, config.batch_size)
            row[f"iwae_{FLAGS.iwae_samples}_nats"] = float(np.mean(scored["iwae"]))
        rows.append(row)
        print(json.dumps({k: round(v, 2) for k, v in row.items()}), flush=True)
    return rows


def print_curves(curves):
    key = f"iwae_{FLAGS.iwae_samples}_nats"
    print(f"\n== held-out digits ({FLAGS.config}): negative ELBO / {FLAGS.iwae_samples}-sample "
          f"bound, nats, against training time ==")
    print(f"{'attention':10s} {'minutes':>8s} {'steps':>7s} {'-ELBO':>9s} {'-IWAE':>9s}")
    for attention, rows in curves.items():
        for row in rows:
            bound = f"{row[key]:9.2f}" if key in row else f"{'':9s}"
            print(f"{attention:10s} {row['train_seconds'] / 60:8.1f} {row['steps']:7d} "
                  f"{row['neg_elbo_nats']:9.2f} {bound}")


def plot_curves(curves, path):
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel
    key = f"iwae_{FLAGS.iwae_samples}_nats"
    figure, axis = pyplot.subplots(figsize=(6, 4), dpi=120)
    for attention, rows in curves.items():
        minutes = [r["train_seconds"] / 60 for r in rows]
        line, = axis.plot(minutes, [r["neg_elbo_nats"] for r in rows], "o-",
                          label=f"{attention}: -ELBO")
        bound = [(m, r[key]) for m, r in zip(minutes, rows) if key in r]
        if bound:
            axis.plot(*zip(*bound), "s--", color=line.get_color(),
                      label=f"{attention}: -IWAE (K={FLAGS.iwae_samples})")
    axis.set_xlabel("training minutes")
    axis.set_ylabel("held-out nats per digit")
    axis.set_title(f"DRAW ({FLAGS.config}) on 500 held-out binarized digits")
    axis.legend(fontsize=7)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    print(f"\nCurves drawn in {path}")


def measure_rectangles():
    """Own-move rates of T-DRAW and the Painter, trained for the same time."""
    return benchmark_lib.own_move_comparison(
        {"T-DRAW": configs.get_config("t_draw_rectangles"),
         "Painter": painter_configs.get_config("rectangles_2moves")},
        FLAGS.rectangles_minutes, FLAGS.seed)


def main(argv):
    del argv
    # The DRAW config's thread pools, for the whole process (TensorFlow sets
    # them once, before its first op).
    train_lib.set_threads(make_config())
    figures = {}
    if FLAGS.speed:
        figures["speed"] = measure_speed()
    if FLAGS.curves:
        figures["curves"] = {a: measure_curve(a) for a in FLAGS.attentions}
        print_curves(figures["curves"])
        if FLAGS.plot:
            plot_curves(figures["curves"], runs.resolve(FLAGS.plot))
    if FLAGS.rectangles:
        figures["rectangles"] = measure_rectangles()
    if FLAGS.output:
        path = runs.resolve(FLAGS.output)
        with open(path, "w") as f:
            json.dump(figures, f, indent=2)
        print(f"\nFigures written to {path}")


if __name__ == "__main__":
    app.run(main)
