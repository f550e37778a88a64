"""Training, evaluation and checkpointing of Painter networks.

`train(config, workdir)` is the whole job behind `bazel run //trainers:painter`;
the pieces (`build_model`, `TrainState`, `evaluate`) are shared with the
benchmarks so they measure exactly what users run.
"""

import json
import os
import time

import keras
import ml_collections
import numpy as np
import tensorflow as tf
import tqdm

from tfpaint import files
from tfpaint import losses
from tfpaint import metrics
from tfpaint import summaries
from tfpaint.data import pipelines
from tfpaint.models import painter
from trainers import run_lib

MODELS = ("simple", "conv", "recurrent", "canvas_recurrent")
# Written into the work dir next to `config.json`: the Keras config of the
# model, so export tools rebuild exactly the trained architecture without
# loading the dataset to learn the image shape.
MODEL_SPEC = "model.json"


resolve_workdir = run_lib.resolve_workdir


def build_model(config, image_shape):
    """The Painter a config describes, for images of `image_shape`."""
    if config.model not in MODELS:
        raise ValueError(f"Unknown model {config.model!r}; choose from {MODELS}.")
    common = dict(
        num_moves=config.num_moves,
        image_shape=image_shape,
        templates=tuple(config.templates),
        template_size=config.template_size,
        allow_skew=config.allow_skew,
        canvas=config.canvas,
        sharpening=config.sharpening,
        exploration_noise=config.exploration_noise,
        learnable_templates=config.learnable_templates,
        initial_scale=config.initial_scale,
        seed=config.seed,
    )
    if config.model in ("recurrent", "canvas_recurrent"):
        if config.latent is not None or config.sorter:
            raise ValueError(
                "Latent and sorter variants are built on the simple Painter; "
                f"model={config.model!r} supports neither."
            )
        return painter.RecurrentPainter(
            lstm_units=config.lstm_units,
            canvas_feedback=config.model == "canvas_recurrent",
            **common,
        )
    return painter.SimplePainter(
        encoder="conv" if config.model == "conv" else "dense",
        hidden_units=config.hidden_units,
        hidden_layers=config.hidden_layers,
        conv_filters=tuple(config.conv_filters),
        latent=config.latent,
        latent_units=config.latent_units,
        latent_sigma=config.latent_sigma,
        latent_stochastic=config.latent_stochastic,
        latent_cost=config.latent_cost,
        input_noise=config.input_noise,
        sorter=config.sorter,
        **common,
    )


def load_data(config):
    """Train and held-out `Dataset`s of a config."""
    kwargs = dict(
        data_dir=config.data_dir,
        seed=config.seed,
        num_train=config.num_train,
        num_test=config.num_test,
        image_size=config.image_size,
    )
    return (
        pipelines.load_dataset(config.dataset, "train", **kwargs),
        pipelines.load_dataset(config.dataset, "test", **kwargs),
    )


def train_pipeline(config, train_set):
    """The training `tf.data` pipeline of a config (shared by trainer and
    benchmarks, so both see the same augmentation)."""
    return pipelines.make_pipeline(
        train_set, config.batch_size, shuffle=True, repeat=True, seed=config.seed,
        max_shift=config.max_shift,
    )


def held_out_images(dataset, limit):
    """Up to `limit` held-out images as an array (streams are read once)."""
    if dataset.images is not None:
        return dataset.images[:limit], dataset.shapes
    images = np.stack(list(dataset.tf_dataset.take(limit).as_numpy_iterator()))
    return images, None


def learning_rate_schedule(config):
    """Adam's learning rate: constant (the thesis), or cosine-decayed to
    `config.lr_final_fraction` of itself over `config.steps`."""
    if config.lr_schedule == "constant":
        return config.learning_rate
    if config.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=config.steps, alpha=config.lr_final_fraction
        )
    raise ValueError(
        f"Unknown lr_schedule {config.lr_schedule!r}; choose 'constant' or 'cosine'."
    )


class TrainState(run_lib.DistributedState):
    """Model, optimiser, step counter and their distributed training step.

    The step runs under a `tf.distribute` strategy (the default one finds
    every local device), inside `tf.function`, with XLA when `jit` is set: the
    per-replica forward and backward pass is one compiled cluster.
    """

    def __init__(self, config, image_shape, strategy=None, jit=None):
        self.config = config
        self.strategy = strategy or tf.distribute.MirroredStrategy()
        self.jit = config.jit if jit is None else jit
        with self.strategy.scope():
            self.model = build_model(config, image_shape)
            self.optimizer = keras.optimizers.Adam(learning_rate_schedule(config))
            self.optimizer.build(self.model.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.global_batch = config.batch_size
        self._train_step = self._make_train_step()
        if self.jit:  # See painter.write_canvases_once.
            compiled = tf.function(
                lambda x: painter.write_canvases_once(self.model(x, training=False)),
                jit_compile=True,
            )
            self._eval_fn = lambda x: compiled(x)[0]
        else:
            self._eval_fn = tf.function(lambda x: self.model(x, training=False))

    def _make_train_step(self):
        model, optimizer, config = self.model, self.optimizer, self.config
        global_batch = self.global_batch

        @tf.function(jit_compile=self.jit)
        def replica_step(images):
            with tf.GradientTape() as tape:
                outputs = model(images, training=True)
                per_image, _, _ = losses.per_image_loss(
                    outputs, images, config.reconstruction, config.latent_weight
                )
                loss = tf.nn.compute_average_loss(per_image, global_batch_size=global_batch)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            mse = tf.reduce_sum(tf.reduce_mean(tf.square(images - outputs["canvas"]), [1, 2, 3]))
            return {
                "loss": loss,
                "mse_per_pixel": mse / global_batch,
                "latent_cost": tf.reduce_sum(outputs["latent_cost"]) / global_batch,
            }

        @tf.function
        def train_step(iterator):
            per_replica = self.strategy.run(replica_step, args=(next(iterator),))
            self.step.assign_add(1)
            return run_lib.sum_over_replicas(self.strategy, per_replica)

        return train_step


def evaluate(state, images, shape_data=None):
    """Held-out metrics of a trained Painter.

    Args:
        state: a `TrainState`.
        images: `(N, H, W, C)` held-out images.
        shape_data: their `ShapeData` for synthetic sets, else None.

    Returns:
        (metrics dict of floats, model outputs dict).
    """
    outputs = state.predict(images)
    result = {"mse_per_pixel": metrics.mse_per_pixel(outputs["canvas"], images)}
    if shape_data is not None:
        own, _ = metrics.own_move_assignment(outputs["masks"], shape_data)
        result["own_move_rate"] = float(np.mean(own))
        templates = tuple(state.config.templates)
        if len(templates) > 1:
            correct = metrics.template_choice_accuracy(
                outputs["where"], outputs["which"], shape_data, templates
            )
            result["template_accuracy"] = float(np.mean(correct))
        if shape_data.max_shapes == 2 and "occlusion" in state.config.dataset:
            right, occluded = metrics.occlusion_order(
                outputs["canvas"], outputs["masks"], shape_data
            )
            result["occluded_pairs"] = int(occluded.sum())
            result["occlusion_order_accuracy"] = float(
                right[occluded].mean() if occluded.any() else float("nan")
            )
    return result, outputs


def train(config, workdir, progress=True, stop_after=None):
    """Trains (or resumes) a Painter and writes logs, pictures and checkpoints.

    Args:
        config: a config from `trainers.configs.painter`.
        workdir: directory for `config.json`, `checkpoints/`, TensorBoard logs
            (`train/`, `eval/`), `progress.png` and `progress.gif`.
        progress: whether to show a progress bar.
        stop_after: if set, stop (checkpointed, like a preempted job) after
            this many steps of this invocation; running again resumes.

    Returns:
        The final held-out metrics.
    """
    workdir = resolve_workdir(workdir)
    os.makedirs(workdir, exist_ok=True)
    files.atomic_write(os.path.join(workdir, "config.json"),
                       config.to_json_best_effort(indent=2, sort_keys=True))

    train_set, test_set = load_data(config)
    test_images, test_shapes = held_out_images(test_set, config.num_test)
    state = TrainState(config, train_set.image_shape)
    files.atomic_write(
        os.path.join(workdir, MODEL_SPEC),
        json.dumps(keras.saving.serialize_keras_object(state.model), indent=2),
    )

    # Keras SeedGenerator states are model variables that tf.train.Checkpoint
    # does not reach through the model; list them so a resumed run continues
    # the noise streams (latent, input, exploration) instead of replaying them.
    rng_states = [v.value for v in state.model.variables if "seed_generator" in v.path]
    checkpoint = tf.train.Checkpoint(
        model=state.model, optimizer=state.optimizer, step=state.step, rng=rng_states
    )
    manager = tf.train.CheckpointManager(
        checkpoint, os.path.join(workdir, "checkpoints"), max_to_keep=3
    )
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        print(f"Resumed from {manager.latest_checkpoint} at step {int(state.step.numpy())}.")
    start = int(state.step.numpy())
    pipeline = train_pipeline(config, train_set)
    # A resumed run skips the batches the interrupted one consumed, so it sees
    # the data in the same order as an uninterrupted run.
    iterator = state.distribute(pipeline.skip(start))

    train_writer = tf.summary.create_file_writer(os.path.join(workdir, "train"))
    eval_writer = tf.summary.create_file_writer(os.path.join(workdir, "eval"))
    summary_images = test_images[: config.num_summary_images]

    def run_eval(step):
        result, outputs = evaluate(state, test_images, test_shapes)
        with eval_writer.as_default():
            for k, v in result.items():
                tf.summary.scalar(k, v, step=step)
            sub = {k: v[: len(summary_images)] for k, v in outputs.items()}
            grid, gif = summaries.write_painting_summaries(sub, summary_images, step)
        eval_writer.flush()
        summaries.save_png(grid, os.path.join(workdir, "progress.png"))
        summaries.save_bytes(gif, os.path.join(workdir, "progress.gif"))
        return result

    bar = tqdm.tqdm(
        total=config.steps, initial=start, disable=not progress, unit="step",
        desc=config.name, dynamic_ncols=True,
    )
    t0 = time.time()
    last = config.steps if stop_after is None else min(config.steps, start + stop_after)
    for step in range(start + 1, last + 1):
        logs = state.train_step(iterator)
        if step % config.log_every == 0 or step == config.steps:
            logs = {k: float(v) for k, v in logs.items()}
            with train_writer.as_default():
                for k, v in logs.items():
                    tf.summary.scalar(k, v, step=step)
                tf.summary.scalar("images_per_second",
                                  config.batch_size * (step - start) / (time.time() - t0),
                                  step=step)
            bar.set_postfix(loss=f"{logs['loss']:.3f}", mse=f"{logs['mse_per_pixel']:.4f}")
        if step % config.checkpoint_every == 0 and step != config.steps:
            manager.save(checkpoint_number=step)
        if step % config.eval_every == 0 and step != config.steps:
            result = run_eval(step)
            bar.write(f"step {step}: " + _format(result))
        bar.update(1)
    bar.close()
    if int(state.step.numpy()) > start or not manager.latest_checkpoint:
        manager.save(checkpoint_number=int(state.step.numpy()))
    train_writer.flush()
    result = run_eval(int(state.step.numpy()))
    files.atomic_write(os.path.join(workdir, "metrics.json"),
                       json.dumps({"step": int(state.step.numpy()), **result}, indent=2))
    return result, state


def find_checkpoint(path):
    """The checkpoint prefix that `path` names.

    Args:
        path: a work dir, its `checkpoints/` dir, or a checkpoint prefix
            (`.../checkpoints/ckpt-6000`).

    Returns:
        (checkpoint prefix, work dir).

    Raises:
        FileNotFoundError: naming the path, if no checkpoint is there.
    """
    path = resolve_workdir(path)
    if tf.io.gfile.exists(path + ".index"):
        return path, os.path.dirname(os.path.dirname(path))
    for directory in (os.path.join(path, "checkpoints"), path):
        latest = tf.train.latest_checkpoint(directory)
        if latest:
            workdir = path if directory != path else os.path.dirname(path)
            return latest, workdir
    raise FileNotFoundError(
        f"No checkpoint at {path}: pass a work dir written by "
        "`bazel run //trainers:painter`, its checkpoints/ dir, or a prefix "
        "such as <workdir>/checkpoints/ckpt-6000."
    )


def restore_model(path):
    """Rebuilds a trained Painter and loads its weights from a checkpoint.

    Args:
        path: anything `find_checkpoint` accepts.

    Returns:
        (model, config, checkpoint prefix). `config` is the resolved training
        config read from the work dir.
    """
    prefix, workdir = find_checkpoint(path)
    config_path = os.path.join(workdir, "config.json")
    if not os.path.exists(config_path):
        raise FileNotFoundError(
            f"{config_path} is missing: the checkpoint {prefix} has no training "
            "config beside it, so its architecture is unknown."
        )
    with open(config_path) as f:
        config = ml_collections.ConfigDict(json.load(f))
    spec_path = os.path.join(workdir, MODEL_SPEC)
    if os.path.exists(spec_path):
        with open(spec_path) as f:
            model = keras.saving.deserialize_keras_object(json.load(f))
    else:  # Runs from before model.json: the dataset tells the image shape.
        model = build_model(config, load_data(config)[1].image_shape)
    model(tf.zeros((1, *model.image_shape)))  # Creates the variables.
    tf.train.Checkpoint(model=model).restore(prefix).expect_partial().assert_existing_objects_matched()
    return model, config, prefix


def _format(result):
    return ", ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()
    )
