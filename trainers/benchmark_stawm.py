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
    rows = train_lib.throughput_table(
        lambda: tasks.get_task(configs.get_config(FLAGS.config)), FLAGS.steps, FLAGS.warmup,
        jits=[jit.lower() in ("1", "true", "yes") for jit in FLAGS.jit], title=config.name)
    if FLAGS.output:
        path = runs.resolve(FLAGS.output)
        with open(path, "w") as f:
            json.dump(rows, f, indent=2)
        print(f"\nFigures written to {path}")


if __name__ == "__main__":
    app.run(main)
