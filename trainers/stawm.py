r"""Trains STAWM (paper sections 3-4, appendix D).

    bazel run //trainers:stawm -- --config=mnist_8x8_15min      # MNIST, <= 15 min on a CPU
    bazel run //trainers:stawm -- --config=mnist_draw_6x6_cpu --workdir=/abs/dir
    bazel run //trainers:stawm -- --config=mnist_8x8 --dataset=mnist_full --data_dir=/tfds
    bazel run //trainers:stawm -- --config=tiny --workdir=/tmp/stawm_smoke

Writes into the work dir: `config.json` (the resolved config), `model.json`,
`checkpoints/`, TensorBoard logs (`tensorboard --logdir=<workdir>`: scalars,
and the glimpse boxes over the input with the canvas after each glimpse),
`progress.png` (the same picture) and `metrics.json`. Run it again with the
same work dir to resume.
"""

from absl import app
from absl import flags

from trainers import stawm_lib
from trainers.configs import stawm as configs

FLAGS = flags.FLAGS
flags.DEFINE_enum("config", "mnist_8x8_15min", sorted(configs.CONFIGS), "Named config.")
flags.DEFINE_string("workdir", None, "Run directory (default runs/stawm/<config>).")
flags.DEFINE_enum("dataset", None, stawm_lib.DATASETS, "Dataset.")
flags.DEFINE_string("data_dir", None, "tensorflow-datasets dir for mnist_full, cifar10, celeb_a.")
flags.DEFINE_integer("num_train", None, "Training images (to count epochs): 60000 for mnist_full.")
flags.DEFINE_integer("epochs", None, "Training epochs (sets steps).")
flags.DEFINE_integer("steps", None, "Training steps (overrides epochs).")
flags.DEFINE_integer("batch_size", None, "Global batch size.")
flags.DEFINE_float("learning_rate", None, "Adam learning rate.")
flags.DEFINE_float("max_train_seconds", None, "Stop training after this many seconds.")
flags.DEFINE_string("pretrained_workdir", None, "Drawing run for self_supervised.")
flags.DEFINE_integer("seed", None, "Seed of data order, weights and noise.")
flags.DEFINE_bool("jit", None, "Compile the training step with XLA.")
flags.DEFINE_bool("progress", True, "Show a progress bar.")

# Flag name -> config field, for the flags that override one field each.
_OVERRIDES = ("dataset", "data_dir", "num_train", "epochs", "batch_size", "learning_rate",
              "max_train_seconds", "pretrained_workdir", "seed", "jit")


def resolved_config():
    config = configs.get_config(FLAGS.config)
    for field in _OVERRIDES:
        if FLAGS[field].value is not None:
            config[field] = FLAGS[field].value
    if FLAGS.dataset == "mnist_full":
        # The whole test set is held out; epochs count the 60,000 digits.
        config.num_test = 10000
        if FLAGS.num_train is None:
            config.num_train = 60000
    steps = config.steps
    configs.derive(config)
    if FLAGS.steps is not None:
        config.steps = FLAGS.steps
    elif config.name.startswith("tiny"):
        config.steps = steps
    return config


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    config = resolved_config()
    workdir = stawm_lib.resolve_workdir(FLAGS.workdir or f"runs/stawm/{config.name}")
    print(f"Training {config.name} ({config.task}, {config.num_glimpses} glimpses of "
          f"{config.glimpse_size}x{config.glimpse_size}, M={config.memory_size}, "
          f"{config.dataset}, {config.steps} steps) in {workdir}")
    result, _ = stawm_lib.train(config, workdir, progress=FLAGS.progress)
    print("Held-out: " + ", ".join(f"{k}={v:.4g}" for k, v in result.items()))
    print(f"Glimpses and canvases: {workdir}/progress.png")
    print(f"TensorBoard:           tensorboard --logdir={workdir}")
    print(f"Checkpoints:           {workdir}/checkpoints")


if __name__ == "__main__":
    app.run(main)
