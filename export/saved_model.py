r"""Exports a trained model (a Painter, STAWM) as a SavedModel for TF Serving.

    bazel run //export:saved_model -- --checkpoint=/abs/runs/painter/mnist_20moves \
        --export_base=/abs/models
    bazel run //export:saved_model -- --checkpoint=/abs/runs/stawm/mnist_8x8_15min

writes `<export_base>/<model_name>/<version>/` (`saved_model.pb`,
`variables/`, `assets.extra/tfpaint.json`), the next integer version each
time, and `<export_base>/models.config` for
`tensorflow_model_server --model_config_file`. `--checkpoint` takes a run
directory of any `//trainers:<model>`, its `checkpoints/` dir or one
checkpoint prefix; the signatures are those of the model's family
(`export.serving`). `--model_name` defaults to the run's task ("painter",
"stawm").
"""

import sys

from absl import app
from absl import flags

from export import serving
from tfpaint import runs

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None, "Work dir, checkpoints/ dir or checkpoint prefix.")
flags.DEFINE_string("export_base", "runs/export", "Directory of exported models.")
flags.DEFINE_string("model_name", None,
                    "Model name for TF Serving (URL path); default: the run's task.")
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
    try:
        model, config, prefix = runs.restore_model(FLAGS.checkpoint)
    except (FileNotFoundError, runs.CheckpointUnreadableError) as error:
        sys.exit(f"Error: {error}")
    export_base = runs.resolve(FLAGS.export_base)
    model_name = FLAGS.model_name or config.get("task") or type(model).__name__.lower()
    path = serving.export_saved_model(
        model, export_base, model_name, version=FLAGS.version, jit=FLAGS.jit
    )
    config_path, names = serving.write_models_config(export_base, FLAGS.serving_base)
    print(f"Exported {config.get('name', type(model).__name__)} ({prefix}) to {path}")
    print(f"TF Serving config ({', '.join(names)}): {config_path}")
    print(f"Inspect: saved_model_cli show --dir {path} --all")


if __name__ == "__main__":
    app.run(main)
