r"""Speed and quality figures of STAWM, printed (no test times anything).

    bazel run //trainers:benchmark_stawm                        # throughput
    bazel run //trainers:benchmark_stawm -- --config=mnist_8x8 --steps=30

Training throughput (images/s) of a config's training step, without and with
XLA, side by side in one run (issue #4: the MNIST 8x8 classifier, 8
glimpses, M=256, LSTM 512, batch 128, at least 120 images/s on 2 CPU cores;
the authors' PyTorch code runs at about 80). The load average is printed with
the figures: the machine may be shared.
"""

import json
import os

from absl import app
from absl import flags

from tfpaint import runs
from trainers import tasks
from trainers import train_lib
from trainers.configs import common
from trainers.configs import stawm as configs

FLAGS = flags.FLAGS
flags.DEFINE_enum("config", "mnist_8x8", sorted(configs.CONFIGS), "Named config.")
flags.DEFINE_integer("steps", 30, "Timed steps per setting.")
flags.DEFINE_integer("warmup", 5, "Untimed steps after the first (compiling) one.")
flags.DEFINE_list("jit", ["false", "true"], "Settings of XLA to measure.")
flags.DEFINE_string("output", None, "Optional JSON file for the figures.")


def main(argv):
    del argv
    config = common.derive(configs.get_config(FLAGS.config))
    print(f"CPU cores: {os.cpu_count()}; config {config.name}: {config.num_glimpses} glimpses "
          f"of {config.glimpse_size}x{config.glimpse_size}, M={config.memory_size}, "
          f"LSTM {config.rnn_units}, batch {config.batch_size}, objective {config.objective}")
    rows = {}
    for jit in FLAGS.jit:
        jit = jit.lower() in ("1", "true", "yes")
        task = tasks.get_task(configs.get_config(FLAGS.config))
        rows["xla" if jit else "no_xla"] = train_lib.throughput(task, jit, FLAGS.steps,
                                                                FLAGS.warmup)
    print(f"\n== throughput: {config.name}, training step ==")
    print(f"{'':8s} {'ms/step':>9s} {'images/s':>10s} {'first step (s)':>15s} "
          f"{'load (1 min) before/after':>27s}")
    for k, r in rows.items():
        print(f"{k:8s} {r['ms_per_step']:9.1f} {r['images_per_second']:10.1f} "
              f"{r['first_step_s']:15.1f} {r['load_before']:13.2f} / {r['load_after']:.2f}")
    if FLAGS.output:
        path = runs.resolve(FLAGS.output)
        with open(path, "w") as f:
            json.dump(rows, f, indent=2)
        print(f"\nFigures written to {path}")


if __name__ == "__main__":
    app.run(main)
