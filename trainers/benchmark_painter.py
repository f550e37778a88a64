r"""Speed and quality figures of the Painter, printed (no test times anything).

    bazel run //trainers:benchmark_painter                          # everything
    bazel run //trainers:benchmark_painter -- --only=throughput
    bazel run //trainers:benchmark_painter -- --only=mnist --mnist_seconds=300
    bazel run //trainers:benchmark_painter -- --only=rectangles,shapes --seeds=0,1,2
    bazel run //trainers:benchmark_painter -- --only=grid --grid_seeds=0

Benchmarks (targets in brackets; the synthetic ones run on every seed of --seeds
and print each seed, the mean and the worst):
  throughput   MNIST, 20 moves, batch 100: training images/s with and without
               XLA, side by side [>= 5,000 img/s].
  mnist        MNIST, 20 moves, circle: held-out MSE per pixel against training
               wall time, XLA on [<= 0.015 within 300 s].
  ceiling      The own-move ceiling alone on each seed's held-out 2-Rectangles
               images (no training; see rectangles).
  rectangles   2-Rectangles as appendix A draws it (overlap allowed), 2 moves:
               held-out images whose rectangles were each painted by their own
               move [>= 97% of all images, >= 90% of those that overlap], and
               the ceiling: the best rate a painter that reproduces each image
               exactly can expect, as the union hides where rectangles end
               (`metrics.own_move_ceiling`). --rectangles_config picks the config.
  shapes       2-Shapes (overlap allowed), 2 moves, square + circle: held-out
               template-choice accuracy, thesis section 5.5 [>= 97%].
  occlusion    2-Rectangles-Occlusion (no visibility floor), 2 moves: occluded
               pairs painted in the right order, with the sorter of section 5.6
               [>= 95%, worst seed] and without; pairs whose bottom rectangle is
               hidden entirely are counted apart and not judged.
  occlusion_n  4-Rectangles-Occlusion, 4 moves: images whose occluded pairs are
               all in the right order, with the depth sorter [>= 90%] and with
               the fixed-order Painter.
  grid         Fig 5.9: the ten latent settings (stochastic or not; latent cost
               none, mu or full; MSE or cross-entropy) on 2-Rectangles with the
               same budget, the own-move rate beside the thesis' verdict.
  costs        What each synthetic config's training takes: ms per step without
               and with XLA, side by side, and the minutes of its steps.
"""

import json
import os
import time

from absl import app
from absl import flags
import numpy as np
import tqdm

from tfpaint import metrics
from tfpaint import runs
from tfpaint.data import registry
from tfpaint.data import shapes as shapes_lib
from trainers import tasks
from trainers import train_lib
from trainers.configs import painter as configs

BENCHMARKS = ("throughput", "mnist", "ceiling", "rectangles", "shapes", "occlusion",
              "occlusion_n", "grid", "costs")
# The configs whose training time `costs` measures.
COST_CONFIGS = ("rectangles_2moves", "shapes_2moves", "occlusion_sorter", "occlusion4_fixed",
                "occlusion4_depth")

FLAGS = flags.FLAGS
flags.DEFINE_list("only", list(BENCHMARKS), f"Benchmarks to run, from {BENCHMARKS}.")
flags.DEFINE_integer("throughput_steps", 200, "Timed steps per throughput setting.")
flags.DEFINE_float("mnist_seconds", 300.0, "Training wall time of the MNIST benchmark.")
flags.DEFINE_float("mnist_eval_every", 30.0, "Seconds of training between MNIST evaluations.")
flags.DEFINE_integer("rectangles_steps", None, "Steps (default: the config's).")
flags.DEFINE_string("rectangles_config", "rectangles_2moves",
                    "Config of the 2-Rectangles benchmark (e.g. canvas_recurrent_2moves).")
flags.DEFINE_integer("shapes_steps", None, "Steps (default: the config's).")
flags.DEFINE_integer("occlusion_steps", None, "Steps (default: the config's).")
flags.DEFINE_integer("occlusion_n_steps", None, "Steps (default: the config's).")
flags.DEFINE_list("reference_seeds", None, "Seeds of the references without a sorter "
                  "(occlusion_2moves, occlusion4_fixed); default: --seeds; empty: none.")
flags.DEFINE_integer("seed", 0, "Seed of the throughput and MNIST runs.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of the synthetic benchmarks.")
flags.DEFINE_integer("grid_steps", None, "Steps of each fig 5.9 cell (default: the config's).")
flags.DEFINE_list("grid_seeds", ["0"], "Seeds of each fig 5.9 cell.")
flags.DEFINE_list("grid_cells", [], "Only these cells, e.g. 'stochastic/mu/mse' (default all).")
flags.DEFINE_float("grid_sigma", 0.1, "The fixed sigma of the stochastic cells without a "
                   "learned sigma (the denoising Painter's).")
flags.DEFINE_float("grid_solved", 0.5, "A cell solves 2-Rectangles when at least this share "
                   "of held-out images has a move per rectangle.")
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


def _train_and_eval(name, steps, seed=None, **overrides):
    """Trains config `name` for `steps` (None: the config's) and scores the held-out set.

    Returns:
        `(result, outputs, examples)`: the task's held-out metrics with `steps` and
        `train_seconds`, the model's outputs on the held-out images, and the images.
    """
    if steps:
        overrides["steps"] = steps
    task = _task(name, **overrides, **({} if seed is None else {"seed": seed}))
    state, iterator, test_set = train_lib.build(task)
    t = time.perf_counter()
    for _ in tqdm.trange(task.config.steps, desc=f"{name} seed {task.config.seed}",
                         leave=False, mininterval=10):
        logs = state.train_step(iterator)
    float(logs["loss"])
    seconds = time.perf_counter() - t
    examples = test_set.examples(task.config.num_test)
    outputs = state.predict(examples.images)
    result = task.evaluate(outputs, examples)
    result.update(steps=task.config.steps, train_seconds=seconds)
    return result, outputs, examples


def _seeds():
    return [int(s) for s in FLAGS.seeds]


def _reference_seeds():
    if FLAGS.reference_seeds is None:
        return _seeds()
    return [int(s) for s in FLAGS.reference_seeds]


def _summary(rows, keys):
    """Mean and worst (lowest) of each key over seeds."""
    out = {}
    for key in keys:
        values = [r[key] for r in rows.values() if not np.isnan(r.get(key, np.nan))]
        if values:
            out[key] = {"mean": float(np.mean(values)), "worst": float(np.min(values))}
    return out


def _seed_table(title, rows, columns):
    """Prints one row per seed, then the mean and the worst over seeds."""
    if not rows:
        return {}
    print(f"\n== {title} ==")
    header = "".join(f"{label:>{max(10, len(label) + 2)}s}" for label, _ in columns)
    print(f"{'seed':>6s}{header}{'steps':>8s}{'train s':>9s}")

    def line(label, values):
        cells = "".join(
            f"{100 * v:{max(10, len(c) + 2) - 1}.1f}%" for (c, _), v in zip(columns, values))
        return f"{label:>6s}{cells}"

    for seed, r in rows.items():
        print(line(str(seed), [r.get(key, np.nan) for _, key in columns])
              + f"{r['steps']:8d}{r['train_seconds']:9.0f}")
    summary = _summary(rows, [key for _, key in columns])
    for stat in ("mean", "worst"):
        print(line(stat, [summary.get(key, {}).get(stat, np.nan) for _, key in columns]))
    return summary


def _over_seeds(name, steps, title, columns, extra=None, seeds=None, **overrides):
    rows = {}
    for seed in _seeds() if seeds is None else seeds:
        result, outputs, examples = _train_and_eval(name, steps, seed=seed, **overrides)
        if extra is not None:
            result.update(extra(outputs, examples))
        rows[seed] = result
        # Each seed as it ends, so that a long run stopped early keeps what it measured.
        print(f"  {name} seed {seed}: " + ", ".join(
            f"{label} {100 * result.get(key, np.nan):.1f}%" for label, key in columns)
            + f" ({result['train_seconds']:.0f} s)", flush=True)
    summary = _seed_table(title, rows, columns)
    return {"config": name, "seeds": rows, "summary": summary}


# The sets whose images `metrics.own_move_ceiling` can score.
_CEILING_DATASETS = ("2_rectangles", "2_rectangles_separated")


def _ceiling(data):
    """`(per-image ceiling, summary)` of a 2-Rectangles `ShapeData`."""
    ceiling = metrics.own_move_ceiling(data, shapes_lib.rectangle_sides(data.image_size))
    overlapping = metrics.shapes_overlap(data)
    return ceiling, {"ceiling": float(ceiling.mean()),
                     "ceiling_overlapping": float(ceiling[overlapping].mean())}


def _own_move_ceiling(outputs, examples):
    """The ceiling of these images, and the painter's rate where the ceiling is 1."""
    ceiling, result = _ceiling(examples.shapes)
    # The images with one answer (up to IoU 0.5): the painter's misses there are its own.
    own, _ = metrics.own_move_assignment(outputs["masks"], examples.shapes)
    sure = ceiling > 1.0 - 1e-9
    result.update(own_move_rate_sure=float(own[sure].mean()), sure_images=int(sure.sum()))
    return result


def ceiling():
    """The own-move ceiling of each seed's held-out 2-Rectangles images, with no training."""
    rows = {}
    for seed in _seeds():
        config = _task(FLAGS.rectangles_config, seed=seed).config
        data = registry.load(config.dataset, "test", seed=seed,
                             num_examples=config.num_test).examples(config.num_test).shapes
        t = time.perf_counter()
        _, rows[seed] = _ceiling(data)
        rows[seed]["seconds"] = time.perf_counter() - t
        rows[seed]["images"] = len(data)
    print("\n== ceiling: the best own-move rate a painter that reproduces each held-out "
          "2-Rectangles image exactly can expect ==")
    print(f"{'seed':>6s}{'images':>8s}{'all':>9s}{'overlapping':>13s}{'seconds':>9s}")
    for seed, r in rows.items():
        print(f"{seed:6d}{r['images']:8d}{r['ceiling']:9.2%}{r['ceiling_overlapping']:13.2%}"
              f"{r['seconds']:9.0f}")
    return rows


def rectangles():
    """2-Rectangles as appendix A draws it: each rectangle its own move."""
    return _over_seeds(
        FLAGS.rectangles_config, FLAGS.rectangles_steps,
        f"rectangles: 2-Rectangles (overlap allowed), {FLAGS.rectangles_config} "
        "[>= 97% all, >= 90% overlapping]",
        [("own move, all", "own_move_rate"), ("overlapping", "own_move_rate_overlapping"),
         ("apart", "own_move_rate_apart"), ("where ceiling 1", "own_move_rate_sure"),
         ("ceiling, all", "ceiling"), ("ceiling, overlapping", "ceiling_overlapping")],
        extra=_own_move_ceiling)


def shapes():
    """2-Shapes as appendix A draws it: template choice."""
    return _over_seeds(
        "shapes_2moves", FLAGS.shapes_steps,
        "shapes: 2-Shapes (overlap allowed), square + circle [template choice >= 97%]",
        [("template choice", "template_accuracy"), ("own move", "own_move_rate"),
         ("own, overlapping", "own_move_rate_overlapping")])


def _visibility_split(outputs, examples):
    """Occlusion order where the bottom rectangle shows >= 30% of its area, and below."""
    right, occluded, _ = metrics.occlusion_order(outputs["canvas"], outputs["masks"],
                                                 examples.shapes)
    data = examples.shapes
    shown = data.visible_masks()[:, 0].sum(axis=(1, 2)) / data.masks[:, 0].sum(axis=(1, 2))
    split = {}
    for name, where in (("order_visible_30", shown >= 0.3), ("order_visible_below_30",
                                                             shown < 0.3)):
        pairs = occluded & where
        split[name] = float(right[pairs].mean()) if pairs.any() else float("nan")
        split[name + "_pairs"] = int(pairs.sum())
    return split


_OCCLUSION_COLUMNS = [("right order", "occlusion_order_accuracy"),
                      ("bottom >= 30%", "order_visible_30"),
                      ("bottom < 30%", "order_visible_below_30"),
                      ("own move", "own_move_rate")]


def occlusion():
    """2-Rectangles-Occlusion as appendix A draws it: the 2-move sorter and no sorter."""
    rows = {}
    for name, seeds in (("occlusion_sorter", None), ("occlusion_2moves", _reference_seeds())):
        rows[name] = _over_seeds(
            name, FLAGS.occlusion_steps,
            f"occlusion: 2-Rectangles-Occlusion (no visibility floor), {name} "
            "[sorter: >= 95% of occluded pairs, worst seed]",
            _OCCLUSION_COLUMNS, extra=_visibility_split, seeds=seeds)
        if not rows[name]["seeds"]:
            continue
        last = list(rows[name]["seeds"].values())[-1]
        print(f"  (held-out: {last['occluded_images']} occluded pairs judged, "
              f"{last['hidden_pair_images']} with the bottom rectangle hidden entirely, "
              "not judged)")
    return rows


def occlusion_n():
    """4-Rectangles-Occlusion: the depth sorter against the fixed-order Painter."""
    rows = {}
    for name, seeds in (("occlusion4_depth", None), ("occlusion4_fixed", _reference_seeds())):
        rows[name] = _over_seeds(
            name, FLAGS.occlusion_n_steps,
            f"occlusion_n: 4-Rectangles-Occlusion, {name} "
            "[depth sorter: every occluded pair right on >= 90% of images]",
            [("all pairs right", "occlusion_order_accuracy"), ("own move", "own_move_rate")],
            seeds=seeds)
        if not rows[name]["seeds"]:
            continue
        last = list(rows[name]["seeds"].values())[-1]
        print(f"  (held-out: {last['occluded_images']} images with a judged pair, "
              f"{last['hidden_pair_images']} with a rectangle hidden entirely)")
    return rows


# Fig 5.9's settings: (stochastic, latent cost, reconstruction) and the thesis' verdict
# (section 5.3: only 5.9e, 5.9i and 5.9j solve 2-Rectangles).
GRID = (
    ("deterministic", "none", "mse", "solves (5.9j)"),
    ("deterministic", "none", "ce", "solves (5.9e)"),
    ("deterministic", "mu", "mse", "stuck"),
    ("deterministic", "mu", "ce", "stuck"),
    ("stochastic", "none", "mse", "solves (5.9i)"),
    ("stochastic", "none", "ce", "stuck"),
    ("stochastic", "mu", "mse", "stuck"),
    ("stochastic", "mu", "ce", "stuck"),
    ("stochastic", "full", "mse", "stuck"),
    ("stochastic", "full", "ce", "stuck"),
)


def _grid_overrides(stochastic, cost, reconstruction):
    """Config fields of one fig 5.9 cell on `rectangles_2moves`."""
    fixed_sigma = stochastic == "stochastic" and cost != "full"
    return dict(latent="custom", latent_stochastic=stochastic == "stochastic",
                latent_sigma=FLAGS.grid_sigma if fixed_sigma else None, latent_cost=cost,
                reconstruction=reconstruction)


def grid():
    """Fig 5.9: the ten settings on 2-Rectangles, same budget, own-move rate per cell."""
    cells = [c for c in GRID if not FLAGS.grid_cells or _cell_name(c) in FLAGS.grid_cells]
    rows = {}
    for cell in cells:
        for seed in [int(s) for s in FLAGS.grid_seeds]:
            result, _, _ = _train_and_eval("rectangles_2moves", FLAGS.grid_steps, seed=seed,
                                           **_grid_overrides(*cell[:3]))
            solved = result["own_move_rate"] >= FLAGS.grid_solved
            rows.setdefault(_cell_name(cell), {})[seed] = dict(
                result, thesis=cell[3], solved=bool(solved),
                agrees=bool(solved == cell[3].startswith("solves")))
            r = rows[_cell_name(cell)][seed]
            print(f"  {_cell_name(cell):28s} seed {seed}: own move {r['own_move_rate']:6.1%}, "
                  f"one move over both {r.get('covering_move_rate', np.nan):6.1%} "
                  f"({r['train_seconds']:.0f} s)", flush=True)
    print(f"\n== grid: fig 5.9 on 2-Rectangles, {FLAGS.grid_steps or 'the config'} steps; "
          f"'solves' = own move >= {FLAGS.grid_solved:.0%} ==")
    print(f"{'setting':28s} {'seed':>4s} {'own move':>9s} {'over both':>10s} {'MSE':>8s} "
          f"{'this run':>9s} {'thesis':>14s} {'agrees':>7s}")
    for name, seeds in rows.items():
        for seed, r in seeds.items():
            print(f"{name:28s} {seed:4d} {r['own_move_rate']:9.1%} "
                  f"{r.get('covering_move_rate', np.nan):10.1%} {r['mse_per_pixel']:8.4f} "
                  f"{'solves' if r['solved'] else 'stuck':>9s} {r['thesis']:>14s} "
                  f"{'yes' if r['agrees'] else 'NO':>7s}")
    return rows


def costs():
    """Training time of each synthetic config: ms per step without and with XLA."""
    rows = {}
    for name in COST_CONFIGS:
        # The step does not depend on the size of the training set: keep it small.
        table = train_lib.throughput_table(
            lambda name=name: _task(name, num_train=2000, num_test=100),
            FLAGS.throughput_steps, warmup=10, title=name)
        steps = configs.get_config(name).steps
        rows[name] = dict(table, steps=steps, **{
            f"minutes_{k}": steps * v["ms_per_step"] / 6e4 for k, v in table.items()})
    print("\n== costs: training time of each config's steps (evaluation not counted) ==")
    print(f"{'config':20s} {'steps':>7s} {'no XLA ms':>10s} {'XLA ms':>8s} "
          f"{'no XLA min':>11s} {'XLA min':>8s}")
    for name, r in rows.items():
        print(f"{name:20s} {r['steps']:7d} {r['no_xla']['ms_per_step']:10.2f} "
              f"{r['xla']['ms_per_step']:8.2f} {r['minutes_no_xla']:11.1f} {r['minutes_xla']:8.1f}")
    return rows


def _cell_name(cell):
    return "/".join(cell[:3])


def main(argv):
    del argv
    unknown = set(FLAGS.only) - set(BENCHMARKS)
    if unknown:
        raise app.UsageError(f"Unknown benchmarks {sorted(unknown)}; choose from {BENCHMARKS}.")
    if {"ceiling", "rectangles"} & set(FLAGS.only):
        # Checked before any training: the ceiling scores 2-Rectangles images only.
        try:
            dataset = configs.get_config(FLAGS.rectangles_config).dataset
        except ValueError as e:
            raise app.UsageError(f"--rectangles_config: {e}") from None
        if dataset not in _CEILING_DATASETS:
            raise app.UsageError(
                f"--rectangles_config={FLAGS.rectangles_config} trains on {dataset!r}; the "
                f"rectangles and ceiling benchmarks need one of {_CEILING_DATASETS}.")
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
