r"""Speed and quality figures of the Painter, printed (no test times anything).

    bazel run //trainers:benchmark_painter                          # everything
    bazel run //trainers:benchmark_painter -- --only=throughput
    bazel run //trainers:benchmark_painter -- --only=mnist --mnist_seconds=300

Benchmarks (issue #2 targets in brackets):
  throughput   MNIST, 20 moves, batch 100: training images/s with and without
               XLA, side by side [>= 5,000 img/s].
  mnist        MNIST, 20 moves, circle: held-out MSE per pixel against training
               wall time, XLA on [<= 0.015 within 300 s].
  rectangles   2-Rectangles, 2 moves: held-out images whose rectangles were each
               painted by their own move [>= 98%].
  shapes       2-Shapes, 2 moves, square + circle: held-out template-choice
               accuracy, thesis section 5.5 [>= 97%].
  occlusion    2-Rectangles-Occlusion, 2 moves: occluded pairs painted in the
               right order, with and without the sorter [>= 95% with it].
"""

import json
import os
import time

from absl import app
from absl import flags
import numpy as np

from tfpaint import runs
from trainers import tasks
from trainers import train_lib
from trainers.configs import painter as configs

BENCHMARKS = ("throughput", "mnist", "rectangles", "shapes", "occlusion")

FLAGS = flags.FLAGS
flags.DEFINE_list("only", list(BENCHMARKS), f"Benchmarks to run, from {BENCHMARKS}.")
flags.DEFINE_integer("throughput_steps", 200, "Timed steps per throughput setting.")
flags.DEFINE_float("mnist_seconds", 300.0, "Training wall time of the MNIST benchmark.")
flags.DEFINE_float("mnist_eval_every", 30.0, "Seconds of training between MNIST evaluations.")
flags.DEFINE_integer("rectangles_steps", None, "Steps (default: the config's).")
flags.DEFINE_integer("shapes_steps", None, "Steps (default: the config's).")
flags.DEFINE_integer("occlusion_steps", None, "Steps (default: the config's).")
flags.DEFINE_integer("seed", 0, "Seed of every run.")
flags.DEFINE_string("output", None, "Optional JSON file for the figures.")


def _task(name, **overrides):
    config = configs.get_config(name)
    config.seed = FLAGS.seed
    for key, value in overrides.items():
        config[key] = value
    return tasks.get_task(config)


def _evaluate(task, state, test_set):
    examples = test_set.examples(task.config.num_test)
    return task.evaluate(state.predict(examples.images), examples)


def throughput():
    """Training images/s, MNIST 20 moves batch 100, without and with XLA."""
    return train_lib.throughput_table(lambda: _task("mnist_20moves"), FLAGS.throughput_steps,
                                      warmup=10, title="MNIST, 20 moves, batch 100")


def mnist():
    """Held-out MSE per pixel against training wall time (evaluation excluded)."""
    task = _task("mnist_20moves")
    state, iterator, test_set = train_lib.build(task)
    curve = []
    trained, steps = 0.0, 0
    print(f"\n== mnist: 20 moves, circle, {FLAGS.mnist_seconds:.0f} s of training ==")
    print(f"{'train s':>8s} {'steps':>7s} {'held-out MSE':>13s}")
    next_eval = 0.0
    while True:
        if trained >= next_eval or trained >= FLAGS.mnist_seconds:
            result = _evaluate(task, state, test_set)
            curve.append((trained, steps, result["mse_per_pixel"]))
            print(f"{trained:8.1f} {steps:7d} {result['mse_per_pixel']:13.5f}", flush=True)
            next_eval += FLAGS.mnist_eval_every
            if trained >= FLAGS.mnist_seconds:
                break
        t = time.perf_counter()
        for _ in range(50):
            logs = state.train_step(iterator)
        float(logs["loss"])
        trained += time.perf_counter() - t
        steps += 50
    return {"curve": curve, "final_mse": curve[-1][2], "steps": steps}


def _train_and_eval(name, steps):
    task = _task(name, **({"steps": steps} if steps else {}))
    state, iterator, test_set = train_lib.build(task)
    t = time.perf_counter()
    for _ in range(task.config.steps):
        logs = state.train_step(iterator)
    float(logs["loss"])
    seconds = time.perf_counter() - t
    result = _evaluate(task, state, test_set)
    result.update(steps=task.config.steps, train_seconds=seconds)
    return result


def _synthetic(name, steps, title, metrics):
    result = _train_and_eval(name, steps)
    print(f"\n== {title}, {result['steps']} steps ({result['train_seconds']:.0f} s) ==")
    print("  ".join(f"{label} {100 * result[key]:.1f}%" for label, key in metrics)
          + f"  held-out MSE {result['mse_per_pixel']:.5f}")
    return result


def rectangles():
    return _synthetic("rectangles_2moves", FLAGS.rectangles_steps,
                      "rectangles: 2-Rectangles, 2 moves", [("own-move rate", "own_move_rate")])


def shapes():
    return _synthetic("shapes_2moves", FLAGS.shapes_steps,
                      "shapes: 2-Shapes, 2 moves, square + circle",
                      [("template-choice accuracy", "template_accuracy"),
                       ("own-move rate", "own_move_rate")])


def occlusion():
    rows = {}
    for name in ("occlusion_2moves", "occlusion_sorter"):
        rows[name] = _train_and_eval(name, FLAGS.occlusion_steps)
    print("\n== occlusion: 2-Rectangles-Occlusion, 2 moves ==")
    print(f"{'':18s} {'right order':>12s} {'occluded pairs':>15s} {'own move':>9s} {'MSE':>8s}")
    for name, r in rows.items():
        print(f"{name:18s} {100 * r['occlusion_order_accuracy']:11.1f}% "
              f"{r['occluded_pairs']:15d} {100 * r['own_move_rate']:8.1f}% "
              f"{r['mse_per_pixel']:8.5f}")
    return rows


def main(argv):
    del argv
    unknown = set(FLAGS.only) - set(BENCHMARKS)
    if unknown:
        raise app.UsageError(f"Unknown benchmarks {sorted(unknown)}; choose from {BENCHMARKS}.")
    print(f"CPU cores: {os.cpu_count()}; seed {FLAGS.seed}")
    figures = {}
    for name in BENCHMARKS:
        if name in FLAGS.only:
            figures[name] = globals()[name]()
    if FLAGS.output:
        path = runs.resolve(FLAGS.output)
        with open(path, "w") as f:
            json.dump(figures, f, indent=2, default=float)
        print(f"\nFigures written to {path}")


if __name__ == "__main__":
    app.run(main)
