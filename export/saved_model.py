r"""Exports a trained Painter as a SavedModel for TF Serving.

    bazel run //export:saved_model -- --checkpoint=/abs/runs/painter/mnist_20moves \
        --export_base=/abs/models

writes `<export_base>/<model_name>/<version>/` (`saved_model.pb`,
`variables/`, `assets.extra/tfpaint.json`), the next integer version each
time, and `<export_base>/models.config` for
`tensorflow_model_server --model_config_file`. `--checkpoint` takes a work
dir of `//trainers:painter`, its `checkpoints/` dir or one checkpoint prefix.
"""

from absl import app
from absl import flags

from export import serving
from trainers import painter_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None, "Work dir, checkpoints/ dir or checkpoint prefix.")
flags.DEFINE_string("export_base", "runs/export", "Directory of exported models.")
flags.DEFINE_string("model_name", "painter", "Model name for TF Serving (URL path).")
flags.DEFINE_integer("version", None, "Version number (default: next free one).")
flags.DEFINE_bool(
    "jit", False,
    "Compile the model with XLA inside the SavedModel (TF Serving then needs "
    "--xla_cpu_compilation_enabled=true).",
)
flags.DEFINE_string("serving_base", "/models", "export_base as the server sees it.")
flags.mark_flag_as_required("checkpoint")


def main(argv):
    del argv
    model, config, prefix = painter_lib.restore_model(FLAGS.checkpoint)
    export_base = painter_lib.resolve_workdir(FLAGS.export_base)
    path = serving.export_saved_model(
        model, export_base, FLAGS.model_name, version=FLAGS.version, jit=FLAGS.jit
    )
    config_path, names = serving.write_models_config(export_base, FLAGS.serving_base)
    print(f"Exported {config.name} ({prefix}) to {path}")
    print(f"TF Serving config ({', '.join(names)}): {config_path}")
    print(f"Inspect: saved_model_cli show --dir {path} --all")


if __name__ == "__main__":
    app.run(main)
