r"""Trains a Painter network (thesis chapter 5).

    bazel run //trainers:painter                       # MNIST, 20 moves, circle
    bazel run //trainers:painter -- --config=rectangles_2moves --workdir=/abs/dir
    bazel run //trainers:painter -- --config=shapes_2moves --steps=5000 --seed=1

Writes into the work dir: `config.json` (the resolved config), `checkpoints/`,
TensorBoard logs (`tensorboard --logdir=<workdir>`), `progress.png` (the
canvas after each move for held-out images) and `metrics.json`. Run it again
with the same work dir to resume.
"""

from absl import app
from absl import flags

from trainers import painter_lib
from trainers.configs import painter as configs

FLAGS = flags.FLAGS
flags.DEFINE_enum("config", "mnist_20moves", sorted(configs.CONFIGS), "Named config.")
flags.DEFINE_string("workdir", None, "Run directory (default runs/painter/<config>).")
flags.DEFINE_enum("model", None, painter_lib.MODELS, "Painter architecture.")
flags.DEFINE_string("dataset", None, "Dataset name (see tfpaint.data.DATASETS).")
flags.DEFINE_string("data_dir", None, "tensorflow-datasets dir for mnist_full, omniglot, cifar10.")
flags.DEFINE_integer("moves", None, "Number of moves T.")
flags.DEFINE_list("templates", None, "Templates: circle, square, line, curve, transparency.")
flags.DEFINE_integer("steps", None, "Training steps.")
flags.DEFINE_integer("batch_size", None, "Global batch size.")
flags.DEFINE_float("learning_rate", None, "Adam learning rate.")
flags.DEFINE_integer("seed", None, "Seed of data, weights and noise.")
flags.DEFINE_bool("jit", None, "Compile the training step with XLA.")
flags.DEFINE_enum("latent", None, ["none", "denoising", "variational", "custom"], "Latent variant.")
flags.DEFINE_bool("latent_stochastic", None, "Sample z (latent=custom).")
flags.DEFINE_float("latent_sigma", None, "Fixed sigma of z (latent=custom or denoising).")
flags.DEFINE_enum("latent_cost", None, ["none", "mu", "full"], "Latent cost (latent=custom).")
flags.DEFINE_enum("reconstruction", None, ["mse", "ce"], "Reconstruction cost.")
flags.DEFINE_bool("sorter", None, "Add the 2-move occlusion sorter.")
flags.DEFINE_bool("progress", True, "Show a progress bar.")

# Flag name -> config field, for the flags that override one field each.
_OVERRIDES = {
    "model": "model", "dataset": "dataset", "data_dir": "data_dir", "moves": "num_moves",
    "templates": "templates", "steps": "steps", "batch_size": "batch_size",
    "learning_rate": "learning_rate", "seed": "seed", "jit": "jit",
    "latent_stochastic": "latent_stochastic", "latent_sigma": "latent_sigma",
    "latent_cost": "latent_cost", "reconstruction": "reconstruction", "sorter": "sorter",
}


def resolved_config():
    config = configs.get_config(FLAGS.config)
    for flag, field in _OVERRIDES.items():
        value = FLAGS[flag].value
        if value is not None:
            config[field] = tuple(value) if field == "templates" else value
    if FLAGS.latent is not None:
        config.latent = None if FLAGS.latent == "none" else FLAGS.latent
    return config


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    config = resolved_config()
    workdir = painter_lib.resolve_workdir(FLAGS.workdir or f"runs/painter/{config.name}")
    print(f"Training {config.name} ({config.model} Painter, {config.num_moves} moves, "
          f"{config.dataset}) in {workdir}")
    result, _ = painter_lib.train(config, workdir, progress=FLAGS.progress)
    print("Held-out: " + ", ".join(f"{k}={v:.4g}" for k, v in result.items()))
    print(f"Painting progress: {workdir}/progress.png")
    print(f"TensorBoard:       tensorboard --logdir={workdir}")
    print(f"Checkpoints:       {workdir}/checkpoints")


if __name__ == "__main__":
    app.run(main)
