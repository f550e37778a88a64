r"""AIR's counting benchmark: held-out count accuracy against training time.

    bazel run //trainers:benchmark_air                               # seeds 0, 1, 2
    bazel run //trainers:benchmark_air -- --seeds=0 --minutes=60 \
        --workdir=/abs/air_bench --output=/abs/air_bench/figures.json
    bazel run //trainers:benchmark_air -- --config.where_prior="(-0.8,0.2,1.0)"
    bazel run //trainers:benchmark_air -- --nocount --rectangles --rectangles_minutes=10

Issue #11's target: a count accuracy of at least 95% on 1,000 held-out 0-2
digit Multi-MNIST scenes (held-out digits only) within 60 minutes of training
on this 2-core CPU, seed 0, and the rate of seeds that get there. Each seed is
an ordinary training run (`trainers.train_lib.train`, its run directory under
`--workdir/seed_<n>`, open in TensorBoard), scored every `--eval_every` steps;
a seed has reached the target when `--confirm` evaluations in a row are at or
above it (one lucky evaluation is not enough), and stops there. The minutes
are training time: evaluations are not counted.

Printed: per seed, the count accuracy (and per true count) at every
evaluation against minutes and steps, the minute the target was first met,
how the held-out scenes were miscounted at the end, and the number of seeds
that met it. `--plot` draws the curves.

2-Rectangles (`--rectangles`): T-AIR with free windows (`t_air_rectangles`),
T-AIR with windows constrained to the rectangles' sides
(`t_air_rectangles_window`) and the Painter (`rectangles_2moves`), each
trained for `--rectangles_minutes` with `--rectangles_seed`, scored on the
same held-out images: own-move and covering-move rates (thesis 4.2: T-AIR
paints one move over both rectangles unless its windows are constrained).
"""

import json
import os
import time

from absl import app
from absl import flags
import keras
import numpy as np
from ml_collections import config_flags

from tfpaint import runs
from trainers import benchmark_lib
from trainers import tasks
from trainers import train_lib
from trainers.configs import air as air_configs
from trainers.configs import painter as painter_configs

FLAGS = flags.FLAGS
CONFIG_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "air.py")
config_flags.DEFINE_config_file(
    "config", f"{CONFIG_FILE}:multi_mnist_cpu",
    "AIR config: trainers/configs/air.py:NAME; override fields with --config.<field>=<value>.")
flags.DEFINE_bool("count", True, "Run the counting benchmark (Multi-MNIST).")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds to train, one run each.")
flags.DEFINE_float("minutes", 60.0, "Training-time budget of each seed, minutes.")
flags.DEFINE_float("target", 0.95, "Held-out count accuracy to reach.")
flags.DEFINE_integer("confirm", 2, "Evaluations in a row at or above the target.")
flags.DEFINE_integer("eval_every", 500, "Steps between held-out evaluations.")
flags.DEFINE_string("workdir", None, "Base of the seeds' run directories (default: a new "
                    "temporary directory).")
flags.DEFINE_bool("resume", False, "Go on training existing run directories under --workdir "
                  "(otherwise they must not exist); the budget and the table then count "
                  "this invocation only.")
flags.DEFINE_string("output", None, "Optional JSON file for the figures.")
flags.DEFINE_string("plot", None, "Optional PNG of count accuracy against minutes.")
flags.DEFINE_bool("rectangles", False, "Own-move rates of T-AIR (free and constrained "
                  "windows) and the Painter on 2-Rectangles.")
flags.DEFINE_float("rectangles_minutes", 10.0, "Training minutes per model on 2-Rectangles.")
flags.DEFINE_integer("rectangles_seed", 0, "Seed of the 2-Rectangles runs.")


def run_seed(seed, workdir):
    """Trains one seed to the target or the budget; returns its evaluations."""
    config = FLAGS.config.copy_and_resolve_references()
    config.seed = seed
    config.max_train_seconds = 60.0 * FLAGS.minutes
    config.eval_every = FLAGS.eval_every
    config.checkpoint_every = FLAGS.eval_every
    task = tasks.get_task(config)
    rows = []
    started = time.perf_counter()

    def on_eval(step, metrics, seconds):
        row = {"step": step, "train_minutes": seconds / 60.0,
               "wall_minutes": (time.perf_counter() - started) / 60.0,
               **{k: float(v) for k, v in metrics.items()}}
        rows.append(row)
        return reached(rows) is not None

    _, state = train_lib.train(task, workdir, on_eval=on_eval)
    met = reached(rows)
    result = {"seed": seed, "config": config.name, "workdir": workdir, "rows": rows,
              "target_minutes": None if met is None else rows[met]["train_minutes"],
              "target_step": None if met is None else rows[met]["step"],
              "confusion": confusion(task, state.model)}
    keras.backend.clear_session()
    return result


def reached(rows):
    """Index of the first of `--confirm` evaluations in a row at the target."""
    accuracy = [r["count_accuracy"] for r in rows]
    for i in range(len(accuracy) - FLAGS.confirm + 1):
        if min(accuracy[i:i + FLAGS.confirm]) >= FLAGS.target:
            return i
    return None


def confusion(task, model):
    """Rows: the true count; columns: the inferred count (0..N), on the held-out
    scenes, with the trained model."""
    test = task.load_data()[1].examples(task.config.num_test)
    count = train_lib.predict_in_batches(
        lambda x: {"count": model(x, training=False)["count"]}, test.images)["count"]
    table = np.zeros((task.config.max_objects + 1, task.config.max_steps + 1), int)
    np.add.at(table, (test.scenes.counts, count.astype(int)), 1)
    return table.tolist()


def print_seed(result):
    counts = sorted(k for k in result["rows"][0] if k.startswith("count_accuracy_"))
    print(f"\n== seed {result['seed']} ({result['config']}): {result['workdir']} ==")
    print(f"{'minutes':>8s} {'steps':>7s} {'accuracy':>9s}  " + " ".join(
        f"{'n=' + k.rsplit('_', 1)[1]:>6s}" for k in counts) + f" {'-ELBO':>8s}")
    for row in result["rows"]:
        print(f"{row['train_minutes']:8.1f} {row['step']:7d} {row['count_accuracy']:9.1%}  "
              + " ".join(f"{row[k]:6.1%}" for k in counts)
              + f" {row['neg_elbo_nats']:8.1f}")
    if result["target_minutes"] is None:
        last = result["rows"][-1]
        print(f"Target {FLAGS.target:.0%} not met: training ended at step {last['step']}, "
              f"{last['train_minutes']:.1f} of {FLAGS.minutes:g} minutes.")
    else:
        print(f"Target {FLAGS.target:.0%} met at {result['target_minutes']:.1f} minutes "
              f"(step {result['target_step']}), held for {FLAGS.confirm} evaluations.")
    print("Held-out scenes by true count (rows) and inferred count (columns), at the end:")
    for n, row in enumerate(result["confusion"]):
        print(f"  {n} digits: " + " ".join(f"{v:5d}" for v in row))


def plot(results, path):
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel
    figure, axis = pyplot.subplots(figsize=(6, 4), dpi=120)
    for result in results:
        rows = result["rows"]
        axis.plot([r["train_minutes"] for r in rows], [r["count_accuracy"] for r in rows],
                  "o-", markersize=3, label=f"seed {result['seed']}")
    axis.axhline(FLAGS.target, color="gray", linestyle="--", linewidth=1,
                 label=f"target {FLAGS.target:.0%}")
    axis.axhline(1.0 / 3.0, color="gray", linestyle=":", linewidth=1, label="chance (1/3)")
    axis.set_xlabel("training minutes (2-core CPU)")
    axis.set_ylabel("held-out count accuracy")
    axis.set_ylim(0.0, 1.0)
    axis.set_title(f"AIR ({results[0]['config']}) on 1,000 held-out Multi-MNIST scenes")
    axis.legend(fontsize=7)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    print(f"\nCurves drawn in {path}")


def count_benchmark():
    """Issue #11's counting benchmark over `--seeds`; returns the per-seed results."""
    base = runs.resolve(FLAGS.workdir) if FLAGS.workdir else None
    if base is None:
        import tempfile  # pylint: disable=import-outside-toplevel
        base = tempfile.mkdtemp(prefix="tfpaint-air-benchmark-")
    print(f"CPU cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.2f}; "
          f"config {FLAGS.config.name}; runs in {base}")
    seeds = [int(s) for s in FLAGS.seeds]
    for seed in seeds:  # Before any training.
        workdir = os.path.join(base, f"seed_{seed}")
        if os.path.exists(workdir) and not FLAGS.resume:
            raise app.UsageError(f"{workdir} exists: remove it, or pass --resume.")
    results = []
    for seed in seeds:
        results.append(run_seed(seed, os.path.join(base, f"seed_{seed}")))
        print_seed(results[-1])
        if FLAGS.output:  # after every seed: a long run killed keeps what it measured
            with open(runs.resolve(FLAGS.output), "w") as f:
                json.dump({"count": results}, f, indent=2)
    met = [r for r in results if r["target_minutes"] is not None]
    print(f"\n== {len(met)} of {len(results)} seeds reached {FLAGS.target:.0%} within "
          f"{FLAGS.minutes:g} minutes ==")
    for r in results:
        final = r["rows"][-1]
        when = ("not met" if r["target_minutes"] is None
                else f"met at {r['target_minutes']:.1f} min")
        print(f"seed {r['seed']}: {when}; last {final['count_accuracy']:.1%} at "
              f"{final['train_minutes']:.1f} min (step {final['step']})")
    if FLAGS.plot:
        plot(results, runs.resolve(FLAGS.plot))
    return results


def main(argv):
    del argv
    train_lib.set_threads(FLAGS.config)
    if FLAGS.confirm < 1 or FLAGS.eval_every < 1 or FLAGS.minutes <= 0:
        raise app.UsageError("--confirm and --eval_every must be >= 1, --minutes > 0.")
    figures = {}
    if FLAGS.count:
        figures["count"] = count_benchmark()
    if FLAGS.rectangles:
        figures["rectangles"] = benchmark_lib.own_move_comparison(
            {"T-AIR": air_configs.get_config("t_air_rectangles"),
             "T-AIR, windows 0.15-0.55": air_configs.get_config("t_air_rectangles_window"),
             "Painter": painter_configs.get_config("rectangles_2moves")},
            FLAGS.rectangles_minutes, FLAGS.rectangles_seed)
    if FLAGS.output:
        with open(runs.resolve(FLAGS.output), "w") as f:
            json.dump(figures, f, indent=2)
        print(f"\nFigures written to {runs.resolve(FLAGS.output)}")


if __name__ == "__main__":
    app.run(main)
