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
import time

from absl import app
from absl import flags

from trainers import stawm_lib
from trainers.configs import stawm as configs

FLAGS = flags.FLAGS
flags.DEFINE_enum("config", "mnist_8x8", sorted(configs.CONFIGS), "Named config.")
flags.DEFINE_integer("steps", 30, "Timed steps per setting.")
flags.DEFINE_integer("warmup", 5, "Untimed steps after the first (compiling) one.")
flags.DEFINE_list("jit", ["false", "true"], "Settings of XLA to measure.")
flags.DEFINE_string("output", None, "Optional JSON file for the figures.")


def throughput(config, jit, steps, warmup):
    """Training images/s of `config` with XLA on or off."""
    train_set, _ = stawm_lib.load_data(config)
    state = stawm_lib.TrainState(config, train_set.image_shape, jit=jit)
    iterator = state.distribute(stawm_lib.train_pipeline(config, train_set))
    t = time.perf_counter()
    float(state.train_step(iterator)["loss"])
    first = time.perf_counter() - t
    for _ in range(warmup):
        state.train_step(iterator)
    float(state.train_step(iterator)["loss"])
    load = os.getloadavg()[0]
    t = time.perf_counter()
    for _ in range(steps):
        logs = state.train_step(iterator)
    float(logs["loss"])
    step_s = (time.perf_counter() - t) / steps
    return {"ms_per_step": 1e3 * step_s, "images_per_second": config.batch_size / step_s,
            "first_step_s": first, "load_before": load, "load_after": os.getloadavg()[0]}


def main(argv):
    del argv
    config = configs.get_config(FLAGS.config)
    print(f"CPU cores: {os.cpu_count()}; config {config.name}: {config.num_glimpses} glimpses "
          f"of {config.glimpse_size}x{config.glimpse_size}, M={config.memory_size}, "
          f"LSTM {config.rnn_units}, batch {config.batch_size}, task {config.task}")
    rows = {}
    for jit in FLAGS.jit:
        jit = jit.lower() in ("1", "true", "yes")
        rows["xla" if jit else "no_xla"] = throughput(config, jit, FLAGS.steps, FLAGS.warmup)
    print(f"\n== throughput: {config.name}, training step ==")
    print(f"{'':8s} {'ms/step':>9s} {'images/s':>10s} {'first step (s)':>15s} "
          f"{'load (1 min) before/after':>27s}")
    for k, r in rows.items():
        print(f"{k:8s} {r['ms_per_step']:9.1f} {r['images_per_second']:10.1f} "
              f"{r['first_step_s']:15.1f} {r['load_before']:13.2f} / {r['load_after']:.2f}")
    if FLAGS.output:
        path = stawm_lib.resolve_workdir(FLAGS.output)
        with open(path, "w") as f:
            json.dump(rows, f, indent=2)
        print(f"\nFigures written to {path}")


if __name__ == "__main__":
    app.run(main)
