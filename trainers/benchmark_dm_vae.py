r"""DM-VAE against AIR on Multi-MNIST: the importance-weighted NLL, count accuracy, slot purity.

    bazel run //trainers:benchmark_dm_vae                      # seed 0, 20 minutes each
    bazel run //trainers:benchmark_dm_vae -- --seeds=0,1,2 --minutes=30 \
        --workdir=/abs/dmvae_bench --output=/abs/dmvae_bench/figures.json \
        --plot=/abs/dmvae_bench/fig3.png

Issue #12's comparison, in one run, on the same data and the same CPU budget:
AIR (`trainers/configs/air.py:multi_mnist_cpu`), DM-VAE
(`trainers/configs/dm_vae.py:multi_mnist_cpu`) and DM-VAE without the
information loss (`multi_mnist_cpu_no_information`, gamma = 0), each trained
for `--minutes` of training time (evaluations not counted) per seed, on the
same 20,000 training scenes, and scored on the same 1,000 held-out 0-2 digit
scenes (held-out digits only). The configs share everything AIR has (LSTM,
relaxed z_pres, window prior, optimiser, batch, steps): DM-VAE differs by its
memory, its slot-addressed generator and, unless gamma = 0, the information
loss.

Every `--eval_every` steps the run is scored (count accuracy, the negative
ELBO, a K = 10 bound, slot purity); at the end, the trained model once more
with the importance-weighted bound of `--iwae_samples` samples. Printed: per
model and seed the curve, then a table of the final figures (mean and worst
over seeds) and the paper's claims checked on them: DM-VAE's bound below
AIR's (the paper: 154.0 against 185.1 nats, Bernoulli likelihood; here a
Gaussian one, so only the order carries over), DM-VAE's count accuracy at
least 95%, slot purity higher with the information loss than without.
`--plot` draws the paper's fig 3 (the held-out bound and count accuracy
against training minutes).

`--summarize=a.json,b.json` prints the tables and claims of earlier runs'
`--output` files together (and `--plot`), without training.

`--speed` (with `--noquality` alone) times the training step of every model
without and with XLA, side by side (`train_lib.throughput_table`): the
figures the configs' `jit` setting is chosen by.
"""

import json
import os
import tempfile
import time

from absl import app
from absl import flags
import keras
import numpy as np

from trainers import tasks
from trainers import train_lib
from trainers.configs import air as air_configs
from trainers.configs import dm_vae as dm_vae_configs

FLAGS = flags.FLAGS
MODELS = {
    "air": (air_configs, "multi_mnist_cpu"),
    "dm_vae": (dm_vae_configs, "multi_mnist_cpu"),
    "dm_vae_no_info": (dm_vae_configs, "multi_mnist_cpu_no_information"),
}
flags.DEFINE_list("models", list(MODELS), f"Models to train, of {sorted(MODELS)}.")
flags.DEFINE_list("seeds", ["0"], "Seeds, one run of every model each.")
flags.DEFINE_float("minutes", 20.0, "Training-time budget of every run, minutes.")
flags.DEFINE_integer("eval_every", 1000, "Steps between held-out evaluations.")
flags.DEFINE_integer("iwae_samples", 100, "K of the final importance-weighted bound.")
flags.DEFINE_integer("num_train", None, "Training scenes (default: the configs').")
flags.DEFINE_float("gamma", None, "The information loss' weight of `dm_vae` (default: the "
                   "config's, 1); `dm_vae_no_info` keeps 0.")
flags.DEFINE_string("workdir", None, "Base of the runs' directories (default: a new "
                    "temporary directory).")
flags.DEFINE_string("output", None, "Optional JSON file for the figures.")
flags.DEFINE_string("plot", None, "Optional PNG of fig 3: bound and count accuracy against "
                    "minutes.")
flags.DEFINE_float("target", 0.95, "DM-VAE's count accuracy to reach.")
flags.DEFINE_list("summarize", [], "JSON files of earlier runs (--output): print their "
                  "tables and claims together (and --plot), without training.")
flags.DEFINE_bool("quality", True, "Train every model and score it (the comparison).")
flags.DEFINE_bool("speed", False, "The training step's speed of every model, without and "
                  "with XLA, side by side.")
flags.DEFINE_integer("speed_steps", 100, "Timed training steps per setting (--speed).")


def make_config(model, seed):
    module, name = MODELS[model]
    config = module.get_config(name)
    config.seed = seed
    config.max_train_seconds = 60.0 * FLAGS.minutes
    config.eval_every = FLAGS.eval_every
    config.checkpoint_every = FLAGS.eval_every
    if FLAGS.num_train:
        config.num_train = FLAGS.num_train
    if FLAGS.gamma is not None and model == "dm_vae":
        config.information_weight = FLAGS.gamma
    return config


def speed_task(model):
    config = make_config(model, 0)
    config.num_train, config.num_test = 2_000, 100
    return tasks.get_task(config)


def final_scores(task, model):
    """The held-out metrics of the trained model with `--iwae_samples` samples."""
    task.config.iwae_samples = FLAGS.iwae_samples
    test = task.load_data()[1].examples(task.config.num_test)
    outputs = train_lib.predict_in_batches(task.eval_function(model, jit=False), test.images,
                                           batch_size=100)
    return task.evaluate(outputs, test)


def run(model, seed, workdir):
    config = make_config(model, seed)
    task = tasks.get_task(config)
    rows = []
    started = time.perf_counter()

    def on_eval(step, metrics, seconds):
        rows.append({"step": step, "train_minutes": seconds / 60.0,
                     "wall_minutes": (time.perf_counter() - started) / 60.0,
                     **{k: float(v) for k, v in metrics.items()}})
        return False

    _, state = train_lib.train(task, workdir, on_eval=on_eval)
    began = time.perf_counter()
    final = final_scores(task, state.model)
    result = {"model": model, "config": config.name, "seed": seed, "workdir": workdir,
              "information_weight": config.get("information_weight"),
              "rows": rows, "final": final,
              "final_eval_minutes": (time.perf_counter() - began) / 60.0}
    keras.backend.clear_session()
    return result


def iwae_key():
    return f"iwae_{FLAGS.iwae_samples}_nats"


def label(result):
    """The model's name, with its gamma where `--gamma` changed it."""
    gamma = result.get("information_weight")
    if result["model"] == "dm_vae" and gamma is not None and gamma != 1.0:
        return f"dm_vae_gamma_{gamma:g}"
    return result["model"]


def print_run(result):
    print(f"\n== {label(result)} ({result['config']}), seed {result['seed']}: "
          f"{result['workdir']} ==")
    print(f"{'minutes':>8s} {'steps':>7s} {'count':>7s} {'2-digit':>8s} {'-ELBO':>8s} "
          f"{'K=10':>8s} {'purity':>7s} {'slots':>6s}")
    for row in result["rows"]:
        print(f"{row['train_minutes']:8.1f} {row['step']:7d} {row['count_accuracy']:7.1%} "
              f"{row.get('count_accuracy_2', float('nan')):8.1%} {row['neg_elbo_nats']:8.1f} "
              f"{row.get('iwae_10_nats', float('nan')):8.1f} "
              f"{row.get('slot_purity', float('nan')):7.1%} "
              f"{row.get('slots_used', float('nan')):6.0f}")
    final = result["final"]
    print(f"Final ({FLAGS.iwae_samples} samples, {result['final_eval_minutes']:.1f} min): "
          f"-IWAE {final[iwae_key()]:.1f} nats, -ELBO {final['neg_elbo_nats']:.1f}, count "
          f"{final['count_accuracy']:.1%}" + (f", slot purity {final['slot_purity']:.1%}"
                                              if "slot_purity" in final else ""), flush=True)


def summarize(results):
    by_model = {}
    for result in results:
        by_model.setdefault(label(result), []).append(result)
    print(f"\n== Final figures, {FLAGS.minutes:g} training minutes each, held-out scenes; "
          f"mean (worst) over seeds {','.join(FLAGS.seeds)} ==")
    print(f"{'model':16s} {'-IWAE nats':>18s} {'count accuracy':>18s} {'slot purity':>18s} "
          f"{'steps':>7s}")
    table = {}
    for model, runs in by_model.items():
        iwae = [r["final"][iwae_key()] for r in runs]
        count = [r["final"]["count_accuracy"] for r in runs]
        purity = [r["final"].get("slot_purity", float("nan")) for r in runs]
        steps = [r["rows"][-1]["step"] for r in runs]
        table[model] = {"iwae": iwae, "count": count, "purity": purity}
        print(f"{model:16s} {np.mean(iwae):9.1f} ({max(iwae):6.1f}) "
              f"{np.mean(count):10.1%} ({min(count):5.1%}) "
              f"{np.mean(purity):10.1%} ({min(purity):5.1%}) {int(np.mean(steps)):7d}")
    print("\nThe paper's claims, per seed:")
    seeds = [int(s) for s in FLAGS.seeds]

    def per_seed(model, key, index):
        return table[model][key][index] if model in table else None

    for i, seed in enumerate(seeds):
        air, dm = per_seed("air", "iwae", i), per_seed("dm_vae", "iwae", i)
        if air is not None and dm is not None:
            print(f"  seed {seed}: DM-VAE's bound below AIR's: {dm < air} ({dm:.1f} against "
                  f"{air:.1f})")
        count = per_seed("dm_vae", "count", i)
        if count is not None:
            print(f"  seed {seed}: DM-VAE's count accuracy >= {FLAGS.target:.0%}: "
                  f"{count >= FLAGS.target} ({count:.1%})")
        with_info, without = per_seed("dm_vae", "purity", i), per_seed("dm_vae_no_info",
                                                                        "purity", i)
        if with_info is not None and without is not None:
            print(f"  seed {seed}: slot purity higher with the information loss: "
                  f"{with_info > without} ({with_info:.1%} against {without:.1%})")


def plot(results, path):
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(10, 4), dpi=120)
    for result in results:
        rows = result["rows"]
        minutes = [r["train_minutes"] for r in rows]
        name = f"{label(result)}, seed {result['seed']}"
        left.plot(minutes, [r["iwae_10_nats"] for r in rows], "o-", markersize=3, label=name)
        right.plot(minutes, [r["count_accuracy"] for r in rows], "o-", markersize=3,
                   label=name)
    left.set_xlabel("training minutes")
    left.set_ylabel("held-out -IWAE (K = 10), nats")
    right.axhline(FLAGS.target, color="gray", linestyle="--", linewidth=1)
    right.set_xlabel("training minutes")
    right.set_ylabel("held-out count accuracy")
    right.legend(fontsize=7)
    figure.suptitle("DM-VAE and AIR on Multi-MNIST (the paper's fig 3)")
    figure.tight_layout()
    figure.savefig(path)
    print(f"Plot: {path}")


def main(argv):
    del argv
    unknown = sorted(set(FLAGS.models) - set(MODELS))
    if unknown:
        raise app.UsageError(f"Unknown --models {unknown}; known: {sorted(MODELS)}.")
    if FLAGS.summarize:
        results = []
        missing = [path for path in FLAGS.summarize if not os.path.isfile(path)]
        if missing:
            raise app.UsageError(f"--summarize: no such file {', '.join(missing)} (the "
                                 "--output of an earlier run).")
        for path in FLAGS.summarize:
            with open(path) as f:
                results.extend(json.load(f))
        FLAGS.seeds = sorted({str(r["seed"]) for r in results}, key=int)
        summarize(results)
        if FLAGS.plot:
            plot(results, FLAGS.plot)
        return
    if FLAGS.speed:
        for model in FLAGS.models:
            train_lib.throughput_table(lambda m=model: speed_task(m), FLAGS.speed_steps,
                                       warmup=10, title=f"{model} ({MODELS[model][1]})")
    if not FLAGS.quality:
        return
    base = os.path.abspath(FLAGS.workdir or tempfile.mkdtemp(prefix="dm_vae_bench-"))
    results = []
    for seed in (int(s) for s in FLAGS.seeds):
        for model in FLAGS.models:
            workdir = os.path.join(base, f"{model}_seed_{seed}")
            if os.path.exists(workdir):
                raise app.UsageError(f"{workdir} exists: give a new --workdir.")
            results.append(run(model, seed, workdir))
            print_run(results[-1])
            if FLAGS.output:
                with open(FLAGS.output, "w") as f:
                    json.dump(results, f, indent=1)
    summarize(results)
    if FLAGS.plot:
        plot(results, FLAGS.plot)


if __name__ == "__main__":
    app.run(main)
