"""What the benchmark scripts share: the thesis' 2-Rectangles own-move comparison.

`own_move_comparison` trains each named config on the one training loop for
the same training time, evaluates once on the same held-out images (every
config's `seed` and `num_test` are set alike, so the images are the same), and
prints one table: the own-move rate (each rectangle painted by a move of its
own) and the covering-move rate (one move, in the rectangles' colour, over
both: the local minimum of thesis chapter 4).
"""

import tempfile

from trainers import tasks
from trainers import train_lib


def own_move_comparison(named_configs, minutes, seed, num_test=1000):
    """Trains and scores each config; returns `{name: row}` and prints the table.

    Args:
        named_configs: `{label: config}` of models with move masks on a
            shapes dataset (T-DRAW, T-AIR, the Painter).
        minutes: training minutes of each (evaluation not counted).
        seed: the seed of every run (weights, data order, the data itself).
        num_test: held-out images scored.
    """
    rows = {}
    for label, config in named_configs.items():
        config.seed = seed
        config.num_test = num_test
        config.max_train_seconds = 60.0 * minutes
        config.eval_every = config.checkpoint_every = config.steps  # once, at the end
        print(f"\n== {label} ({config.name}) on {config.dataset}, {minutes:g} minutes ==",
              flush=True)
        result, state = train_lib.train(tasks.get_task(config), tempfile.mkdtemp(
            prefix=f"tfpaint-{config.name}-"), progress=False)
        rows[label] = {"config": config.name,
                       "own_move_rate": result["own_move_rate"],
                       "covering_move_rate": result.get("covering_move_rate", float("nan")),
                       "mse_per_pixel": result["mse_per_pixel"],
                       "steps": int(state.step.numpy()),
                       "train_seconds": result["train_seconds"]}
    datasets = sorted({c.dataset for c in named_configs.values()})
    print(f"\n== {', '.join(datasets)}: the same {num_test:,} held-out images ==")
    width = max(len(label) for label in rows)
    print(f"{'model':{width}s} {'own-move rate':>14s} {'one move over both':>19s} "
          f"{'MSE/pixel':>10s} {'steps':>7s} {'minutes':>8s}")
    for label, row in rows.items():
        print(f"{label:{width}s} {row['own_move_rate']:14.1%} {row['covering_move_rate']:19.1%} "
              f"{row['mse_per_pixel']:10.4f} {row['steps']:7d} {row['train_seconds'] / 60:8.1f}")
    return rows
