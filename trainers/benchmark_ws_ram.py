r"""WS-RAM's benchmark (fig 2): four training algorithms on one model, data and budget.

    bazel run //trainers:benchmark_ws_ram                            # 6,000 steps each
    bazel run //trainers:benchmark_ws_ram -- --steps=6000 --seeds=0,1 \
        --workdir=/abs/ws_ram_bench --output=/abs/ws_ram_bench/figures.json \
        --plot=/abs/ws_ram_bench/fig2.png
    bazel run //trainers:benchmark_ws_ram -- --throughput_only

Issue #13: `var` (the variational method, REINFORCE with a learned
baseline), `ws_ram` (reweighted wake-sleep, the prior as proposal),
`ws_ram+q` (the inference network as proposal) and `ws_ram+q+c` (and the
control variates), each the CPU config of `trainers/configs/ws_ram.py` with
the same model, translated-scaled MNIST (60x60), M = 5 samples and the same
number of steps, scored at the same steps on the same 1,000 held-out scenes:
the held-out error (mode policy, and the prediction averaged over M prior
samples), the variance of the gradient estimate of the attention parameters
over 10 draws on one fixed batch of 100 held-out scenes, and the effective
sample size of the training proposal's weights. The paper's ordering is
checked and printed: the inference network lowers the gradient variance, the
control variates raise the ESS, `ws_ram+q+c` reaches the lowest error.

Each run is an ordinary training run (`trainers.train_lib.train`) under
`--workdir/<config>_seed<n>`, open in TensorBoard. The throughput of each
algorithm's training step, with and without XLA, is printed first.
"""

import json
import os
import tempfile
import time

from absl import app
from absl import flags
import keras
import numpy as np

from tfpaint import runs
from trainers import tasks
from trainers import train_lib
from trainers.configs import ws_ram as configs

FLAGS = flags.FLAGS
ALGORITHMS = {"var": "var", "ws_ram": "ws_ram_prior", "ws_ram+c": "ws_ram_c",
              "ws_ram+q": "ws_ram_q", "ws_ram+q+c": "ws_ram_q_c"}
flags.DEFINE_list("algorithms", ["var", "ws_ram", "ws_ram+q", "ws_ram+q+c"],
                  f"Algorithms to compare (names of fig 2): {', '.join(ALGORITHMS)}.")
flags.DEFINE_list("seeds", ["0"], "Seeds: one run of every algorithm each.")
flags.DEFINE_integer("steps", 6000, "Training steps of every run.")
flags.DEFINE_integer("eval_every", 500, "Steps between held-out evaluations.")
flags.DEFINE_float("learning_rate", None, "Adam's rate for every algorithm (default: the "
                   "configs' own, 1e-3); the paper tuned it per algorithm.")
flags.DEFINE_integer("throughput_steps", 20, "Timed steps per setting of the throughput table "
                     "(0: skip it).")
flags.DEFINE_bool("throughput_only", False, "Print the throughput table and stop.")
flags.DEFINE_string("workdir", None, "Base of the runs' directories (default: a new "
                    "temporary directory).")
flags.DEFINE_string("output", None, "Optional JSON file for the figures.")
flags.DEFINE_string("plot", None, "Optional PNG of fig 2's three panels.")
flags.DEFINE_string("summarize", None, "Print the tables (and --plot) of an earlier run's "
                    "--output JSON instead of training.")

# How many of the last evaluations a run's figures average (one held-out
# evaluation of 1,000 scenes moves by about a point from step to step).
LAST = 3
# Held-out errors whose first crossing is reported (how fast each trains).
THRESHOLDS = (0.3, 0.2, 0.15, 0.1)


def config_of(algorithm, seed=0):
    if algorithm not in ALGORITHMS:
        raise ValueError(f"Unknown algorithm {algorithm!r}; known: {', '.join(ALGORITHMS)}.")
    config = configs.get_config(ALGORITHMS[algorithm])
    config.seed = seed
    return config


def throughput():
    for algorithm in FLAGS.algorithms:
        def make(algorithm=algorithm):
            config = config_of(algorithm)
            config.num_train, config.num_test = 2000, 100
            return tasks.get_task(config)
        train_lib.throughput_table(make, FLAGS.throughput_steps, 5, title=algorithm)
        keras.backend.clear_session()


def run(algorithm, seed, workdir):
    """One training run; returns its held-out evaluations and, for a model
    with the inference network, the gradient variance of every WS-RAM
    estimator on its final weights."""
    config = config_of(algorithm, seed)
    if FLAGS.learning_rate is not None:
        config.learning_rate = FLAGS.learning_rate
    config.steps = FLAGS.steps
    config.eval_every = FLAGS.eval_every
    config.checkpoint_every = FLAGS.eval_every
    rows = []

    def on_eval(step, metrics, seconds):
        rows.append({"step": step, "train_minutes": seconds / 60.0,
                     **{k: float(v) for k, v in metrics.items()}})
        return False

    print(f"\n== {algorithm} (config {config.name}), seed {seed}: {workdir} ==")
    task = tasks.get_task(config)
    train_lib.train(task, workdir, on_eval=on_eval)
    variances = None
    if config.algorithm == "ws_ram" and config.proposal == "q":
        test = task.load_data()[1].examples(config.grad_variance_images)
        variances = task.estimator_variances(test.images, test.labels)
    keras.backend.clear_session()
    return rows, variances


def summary(rows):
    last = rows[-LAST:]
    mean = lambda key, part=rows: float(np.mean([r[key] for r in part]))
    return {"error": mean("error", last), "error_sampled": mean("error_sampled", last),
            "final_error": rows[-1]["error"], "grad_variance": mean("grad_variance"),
            "ess": mean("ess"), "nll_bound": mean("nll_bound", last),
            "train_minutes": rows[-1]["train_minutes"],
            "updates_to": [next((r["step"] for r in rows if r["error"] <= t), None)
                           for t in THRESHOLDS]}


def print_curves(rows, seed):
    names = list(rows)
    steps = [r["step"] for r in rows[names[0]]]
    for key, fmt in (("error", "{:10.1%}"), ("grad_variance", "{:10.2e}"), ("ess", "{:10.2f}")):
        print(f"\n{key}, seed {seed}, held-out, by step")
        print(f"{'step':>7s} " + " ".join(f"{n:>10s}" for n in names))
        for i, step in enumerate(steps):
            print(f"{step:7d} " + " ".join(
                fmt.format(rows[n][i][key]) if i < len(rows[n]) else f"{'':>10s}"
                for n in names))


def ordering(summaries):
    """The paper's three claims, each True / False (None if a run is missing)."""
    have = lambda *names: all(n in summaries for n in names)
    claims = {}
    if have("ws_ram", "ws_ram+q"):
        claims["q lowers the gradient variance (ws_ram+q < ws_ram)"] = (
            summaries["ws_ram+q"]["grad_variance"] < summaries["ws_ram"]["grad_variance"])
    if have("ws_ram+q", "ws_ram+q+c"):
        claims["c raises the ESS (ws_ram+q+c > ws_ram+q)"] = (
            summaries["ws_ram+q+c"]["ess"] > summaries["ws_ram+q"]["ess"])
    if have("ws_ram+q+c") and len(summaries) > 1:
        best = min(summaries, key=lambda n: summaries[n]["error"])
        claims["ws_ram+q+c has the lowest held-out error"] = best == "ws_ram+q+c"
    return claims


def plot(data, path):
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel
    figure, axes = pyplot.subplots(1, 3, figsize=(13, 3.8), dpi=110)
    panels = (("error", "held-out error (mode policy)", False),
              ("grad_variance", "variance of the attention gradient", True),
              ("ess", f"effective sample size (max {configs.get_config('var').samples})", False))
    colours = dict(zip(ALGORITHMS, ("tab:blue", "tab:orange", "tab:purple", "tab:green",
                                    "tab:red")))
    first_seed = min(data["seeds"], key=int)
    results = [(a, seed, rows) for seed, run_rows in data["seeds"].items()
               for a, rows in run_rows["rows"].items()]
    for axis, (key, title, log) in zip(axes, panels):
        for algorithm, seed, rows in results:
            first = seed == first_seed  # Further seeds: fainter, unlabelled.
            axis.plot([r["step"] / 1000 for r in rows], [r[key] for r in rows], "-",
                      color=colours.get(algorithm), alpha=1.0 if first else 0.4,
                      label=algorithm if first else None)
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("thousands of updates")
        if log:
            axis.set_yscale("log")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle("WS-RAM fig 2 on translated-scaled MNIST 60x60, 1,000 held-out scenes "
                    "(2-core CPU)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path)
    print(f"\nCurves drawn in {path}")


def main(argv):
    del argv
    if FLAGS.summarize:
        with open(runs.resolve(FLAGS.summarize)) as f:
            data = json.load(f)
        report(data)
        if FLAGS.plot:
            plot(data, runs.resolve(FLAGS.plot))
        return
    for algorithm in FLAGS.algorithms:
        config_of(algorithm)  # Unknown names fail before any training.
    print(f"CPU cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.2f}")
    if FLAGS.throughput_steps:
        throughput()
    if FLAGS.throughput_only:
        return
    base = runs.resolve(FLAGS.workdir) if FLAGS.workdir else tempfile.mkdtemp(
        prefix="tfpaint-ws-ram-benchmark-")
    seeds = [int(s) for s in FLAGS.seeds]
    for seed in seeds:
        for algorithm in FLAGS.algorithms:
            workdir = os.path.join(base, f"{ALGORITHMS[algorithm]}_seed{seed}")
            if os.path.exists(workdir):
                raise ValueError(f"{workdir} exists: choose a new --workdir.")
    results, fixed, started = {}, {}, time.perf_counter()
    for seed in seeds:
        for algorithm in FLAGS.algorithms:
            results[(algorithm, seed)], variances = run(
                algorithm, seed, os.path.join(base, f"{ALGORITHMS[algorithm]}_seed{seed}"))
            if variances:
                fixed[(algorithm, seed)] = variances
    print(f"\nAll runs: {(time.perf_counter() - started) / 60:.1f} minutes (with evaluations).")
    data = {"steps": FLAGS.steps, "algorithms": list(FLAGS.algorithms),
            "learning_rate": FLAGS.learning_rate or config_of(FLAGS.algorithms[0]).learning_rate,
            "seeds": {str(seed): {
                "rows": {a: results[(a, seed)] for a in FLAGS.algorithms},
                "same_weight_variances": {a: v for (a, s), v in fixed.items() if s == seed}}
                for seed in seeds}}
    figures = report(data)
    if FLAGS.output:
        path = runs.resolve(FLAGS.output)
        with open(path, "w") as f:
            json.dump({**data, "figures": figures}, f, indent=2)
        print(f"\nFigures written to {path}")
    if FLAGS.plot:
        plot(data, runs.resolve(FLAGS.plot))


def report(data):
    """Prints the curves, each seed's table and the paper's claims from the
    runs' evaluations (`data` as written by --output); returns the figures."""
    seeds = sorted(data["seeds"], key=int)
    algorithms = data.get("algorithms") or list(data["seeds"][seeds[0]]["rows"])
    figures = {}
    for seed in seeds:
        rows = data["seeds"][seed]["rows"]
        print_curves(rows, seed)
        summaries = {a: summary(rows[a]) for a in algorithms}
        rate = data.get("learning_rate")
        print(f"\n== seed {seed}: {data['steps']} steps each"
              f"{'' if rate is None else f', Adam {rate:g}'}; error and bound: mean of the "
              f"last {LAST} evaluations; gradient variance and ESS: mean over all ==")
        print(f"{'algorithm':>11s} {'error':>7s} {'sampled':>8s} {'NLL bound':>10s} "
              f"{'grad var':>10s} {'ESS':>6s} {'minutes':>8s}   updates to an error of "
              + " ".join(f"{t:.0%}" for t in THRESHOLDS))
        for name, s in summaries.items():
            print(f"{name:>11s} {s['error']:7.1%} {s['error_sampled']:8.1%} "
                  f"{s['nll_bound']:10.3f} {s['grad_variance']:10.2e} {s['ess']:6.2f} "
                  f"{s['train_minutes']:8.1f}   " + " ".join(
                      f"{'-' if n is None else n:>6}" for n in s["updates_to"]))
        claims = ordering(summaries)
        for claim, holds in claims.items():
            print(f"  {'holds' if holds else 'FAILS'}: {claim}")
        for algorithm, variances in data["seeds"][seed].get("same_weight_variances",
                                                             {}).items():
            print(f"Gradient variance of each estimator on the final weights of {algorithm} "
                  "(same batch, same draws):")
            print("  " + "  ".join(f"{k} {v:.2e}" for k, v in variances.items()))
        figures[seed] = {"summaries": summaries, "claims": claims}
    if len(seeds) > 1:
        print(f"\n== over {len(seeds)} seeds: mean (worst .. best) ==")
        for key, fmt in (("error", "{:.1%}"), ("grad_variance", "{:.2e}"), ("ess", "{:.2f}")):
            print(f"{key}:")
            for algorithm in algorithms:
                values = [figures[s]["summaries"][algorithm][key] for s in seeds]
                worst, best = (max, min) if key != "ess" else (min, max)
                print(f"  {algorithm:>11s} {fmt.format(np.mean(values))} "
                      f"({fmt.format(worst(values))} .. {fmt.format(best(values))})")
        for claim in figures[seeds[0]]["claims"]:
            held = sum(bool(figures[s]["claims"].get(claim)) for s in seeds)
            print(f"  {claim}: holds on {held} of {len(seeds)} seeds")
    return figures

if __name__ == "__main__":
    app.run(main)
