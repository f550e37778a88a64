"""Training, evaluation and checkpointing of STAWM (classification, drawing,
self-supervised classification, visual sketchpad).

`train(config, workdir)` is the whole job behind `bazel run //trainers:stawm`;
`build_model`, `load_data`, `train_pipeline` and `TrainState` are shared with
`trainers/benchmark_stawm.py` so the benchmark measures what users run.
"""

import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf
import tqdm

from tfpaint import files
from tfpaint import losses
from tfpaint import summaries
from tfpaint.data import digits
from tfpaint.data import pipelines
from tfpaint.layers import spatial_transformer as st
from tfpaint.models import stawm
from trainers import run_lib

TASKS = ("classify", "draw", "self_supervised", "sketchpad")
DATASETS = ("mnist", "mnist_full", "cifar10", "celeb_a")
# tfds name, number of classes (0: no labels used).
_TFDS = {"mnist_full": ("mnist", 10), "cifar10": ("cifar10", 10), "celeb_a": ("celeb_a", 0)}
MODEL_SPEC = "model.json"
# Outputs too big to keep for every held-out image.
_EVAL_DROP = ("memory", "context", "memory_inputs", "draw_latents", "class_latent")
_BOX_COLOURS = np.array(
    [[0.9, 0.1, 0.1], [0.1, 0.6, 0.95], [0.15, 0.8, 0.2], [1.0, 0.6, 0.0],
     [0.7, 0.2, 0.9], [0.0, 0.85, 0.8], [0.95, 0.85, 0.1], [0.95, 0.3, 0.65]], np.float32)


resolve_workdir = run_lib.resolve_workdir


def heads_of(task):
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}; choose from {TASKS}.")
    return {"classify": ("classify",), "draw": ("draw",)}.get(task, ("classify", "draw"))


def build_model(config, image_shape):
    """The STAWM a config describes, for images of `image_shape`."""
    return stawm.STAWM(
        image_shape=image_shape,
        num_glimpses=config.num_glimpses,
        glimpse_size=config.glimpse_size,
        memory_size=config.memory_size,
        rnn_units=config.rnn_units,
        context_filters=tuple(config.context_filters),
        context_kernel=config.context_kernel,
        context_strides=tuple(config.context_strides),
        glimpse_filters=tuple(config.glimpse_filters),
        glimpse_kernel=config.glimpse_kernel,
        glimpse_strides=tuple(config.glimpse_strides),
        padding=config.padding,
        affine_hidden=config.affine_hidden,
        heads=heads_of(config.task),
        num_classes=config.num_classes,
        canvas=config.canvas,
        latent_units=config.latent_units,
        temperature=config.temperature,
        dropout=config.dropout,
        eta=config.eta,
        delta=config.delta,
        theta=config.theta,
        learnable_rates=config.learnable_rates,
        kernel_initializer=config.kernel_initializer,
        seed=config.seed,
    )


class Data:
    """A split: in-memory `images` `(N, H, W, C)` and `labels` `(N,)`, or a
    streaming `tf_dataset` of `(image, label)` pairs."""

    def __init__(self, images=None, labels=None, tf_dataset=None, image_shape=None):
        self.images, self.labels, self.tf_dataset = images, labels, tf_dataset
        self.image_shape = tuple(images.shape[1:]) if images is not None else image_shape


def _tfds_split(config, split):
    name, _ = _TFDS[config.dataset]
    # CelebA's held-out split is called "validation".
    tfds_split = "validation" if (name, split) == ("celeb_a", "test") else split
    dataset = digits.load_tfds(name, tfds_split, config.data_dir, with_labels=True,
                               image_size=config.image_size)
    shape = {"mnist_full": (28, 28, 1), "cifar10": (32, 32, 3)}.get(
        config.dataset, (config.image_size, config.image_size, 3))
    return Data(tf_dataset=dataset, image_shape=shape)


def load_data(config):
    """Train and held-out `Data` of a config."""
    if config.dataset not in DATASETS:
        raise ValueError(f"Unknown dataset {config.dataset!r}; choose from {DATASETS}.")
    if config.dataset == "mnist":
        splits = []
        for split in ("train", "test"):
            d = pipelines.load_dataset("mnist", split)
            splits.append(Data(d.images, d.labels.astype(np.int32)))
        return tuple(splits)
    return _tfds_split(config, "train"), _tfds_split(config, "test")


def held_out(data, limit):
    """Up to `limit` held-out `(images, labels)` as arrays."""
    if data.images is not None:
        return data.images[:limit], data.labels[:limit]
    images, labels = [], []
    for image, label in data.tf_dataset.take(limit).as_numpy_iterator():
        images.append(image)
        labels.append(label)
    return np.stack(images), np.array(labels, np.int32)


def _rotation_thetas(batch, max_degrees, seed):
    angles = tf.random.stateless_uniform([batch], seed=seed, minval=-1.0, maxval=1.0)
    angles = angles * (max_degrees * math.pi / 180.0)
    cos, sin = tf.cos(angles), tf.sin(angles)
    zeros = tf.zeros_like(angles)
    return tf.stack([cos, -sin, zeros, sin, cos, zeros], axis=-1)  # (B, 6)


def train_pipeline(config, data):
    """Shuffled, repeated, augmented `(images, labels)` batches (appendix D:
    random rotation for MNIST, flips for CIFAR-10; plus optional shifts)."""
    if data.images is not None:
        ds = tf.data.Dataset.from_tensor_slices((data.images, data.labels)).cache()
        ds = ds.shuffle(len(data.images), seed=config.seed, reshuffle_each_iteration=True)
    else:
        ds = data.tf_dataset.shuffle(pipelines.STREAMING_SHUFFLE_BUFFER, seed=config.seed)
    ds = ds.repeat().batch(config.batch_size, drop_remainder=True)
    height, width = data.image_shape[:2]
    # Rotations go through the one sampler of tfpaint.
    rotate = st.SpatialTransformer((height, width), allow_skew=True)

    def augment(index, batch):
        images, labels = batch
        seed = tf.stack([tf.cast(config.seed, tf.int64), index])
        if config.max_rotation:
            thetas = _rotation_thetas(tf.shape(images)[0], config.max_rotation, seed)
            images = rotate(images, thetas)
        if config.max_shift:
            images = pipelines.random_shift(images, int(config.max_shift), seed=seed + 1)
        if config.random_flip:
            flip = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed=seed + 2)
            images = tf.where(flip < 0.5, images, tf.reverse(images, axis=[2]))
        return tf.clip_by_value(images, 0.0, 1.0), labels

    ds = ds.enumerate().map(augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


@keras.saving.register_keras_serializable(package="tfpaint")
class StepExponentialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`lr * decay^epoch / 10^(milestones passed)`: appendix D's "exponential of
    0.99 and divided by ten at epochs [...]", with fractional epochs."""

    def __init__(self, learning_rate, steps_per_epoch, decay=0.99, milestones=()):
        self.learning_rate = float(learning_rate)
        self.steps_per_epoch = float(steps_per_epoch)
        self.decay = float(decay)
        self.milestones = tuple(float(m) for m in milestones)

    def __call__(self, step):
        epoch = tf.cast(step, tf.float32) / self.steps_per_epoch
        lr = self.learning_rate * tf.pow(self.decay, epoch)
        for milestone in self.milestones:
            lr = tf.where(epoch >= milestone, lr * 0.1, lr)
        return lr

    def get_config(self):
        return {"learning_rate": self.learning_rate, "steps_per_epoch": self.steps_per_epoch,
                "decay": self.decay, "milestones": self.milestones}


def per_image_losses(config, outputs, images, labels):
    """The task's loss per image `(B,)` and its parts (dict of `(B,)`)."""
    parts = {}
    task = config.task
    if task in ("classify", "self_supervised", "sketchpad"):
        parts["cross_entropy"] = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels, outputs["logits"])
        parts["error"] = tf.cast(
            tf.not_equal(tf.argmax(outputs["logits"], -1, output_type=tf.int32), labels),
            tf.float32)
    if task in ("draw", "sketchpad"):
        parts["reconstruction"] = losses.reconstruction_loss(
            images, outputs["canvas"], config.reconstruction)
        parts["kl"] = outputs["kl"]
        parts["mse_per_pixel"] = tf.reduce_mean(tf.square(images - outputs["canvas"]),
                                                [1, 2, 3])
    if task in ("classify", "self_supervised"):
        total = parts["cross_entropy"]
    else:
        # eq 5/6: reconstruction + beta * joint KL of the glimpse latents.
        total = parts["reconstruction"] + config.beta * parts["kl"]
        if task == "sketchpad":
            # Per pixel, so that neither loss takes precedence (section 4.4).
            pixels = float(np.prod(images.shape[1:]))
            total = (config.class_weight * parts["cross_entropy"]
                     + config.draw_weight * total / pixels)
    return total, parts


class TrainState(run_lib.DistributedState):
    """Model, optimiser (Adam, gradient norm clipping), step counter and the
    distributed, optionally XLA-compiled training step."""

    def __init__(self, config, image_shape, strategy=None, jit=None):
        self.config = config
        self.strategy = strategy or tf.distribute.MirroredStrategy()
        self.jit = config.jit if jit is None else jit
        with self.strategy.scope():
            self.model = build_model(config, image_shape)
            self.model(tf.zeros((1, *image_shape)))
            if config.task == "self_supervised":
                self.model.freeze_for_self_supervision()
            schedule = StepExponentialDecay(
                config.learning_rate, config.steps_per_epoch, config.lr_decay,
                tuple(config.lr_milestones))
            self.optimizer = keras.optimizers.Adam(schedule, global_clipnorm=config.clipnorm)
            self.optimizer.build(self.model.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self._train_step = self._make_train_step()
        keep = lambda out: {k: v for k, v in out.items() if k not in _EVAL_DROP}
        self._eval_fn = tf.function(lambda x: keep(self.model(x, training=False)),
                                    jit_compile=self.jit)

    def _make_train_step(self):
        model, optimizer, config = self.model, self.optimizer, self.config
        global_batch = config.batch_size

        @tf.function(jit_compile=self.jit)
        def replica_step(images, labels):
            with tf.GradientTape() as tape:
                outputs = model(images, training=True)
                per_image, parts = per_image_losses(config, outputs, images, labels)
                loss = tf.nn.compute_average_loss(per_image, global_batch_size=global_batch)
            variables = model.trainable_variables
            grads = tape.gradient(loss, variables)
            optimizer.apply_gradients(zip(grads, variables))
            logs = {k: tf.reduce_sum(v) / global_batch for k, v in parts.items()}
            logs["loss"] = loss
            return logs

        @tf.function
        def train_step(iterator):
            images, labels = next(iterator)
            per_replica = self.strategy.run(replica_step, args=(images, labels))
            self.step.assign_add(1)
            return run_lib.sum_over_replicas(self.strategy, per_replica)

        return train_step


def evaluate(state, images, labels):
    """Held-out metrics: classification error and / or canvas MSE per pixel."""
    outputs = state.predict(images)
    result = {}
    if "logits" in outputs:
        result["error"] = float(np.mean(np.argmax(outputs["logits"], -1) != labels))
    if "canvas" in outputs:
        result["mse_per_pixel"] = float(np.mean(np.square(outputs["canvas"] - images)))
        result["kl"] = float(np.mean(outputs["kl"]))
    return result, outputs


def _draw_box(picture, box, colour):
    """Draws a 1-pixel rectangle outline on an `(H, W, 3)` picture in place."""
    height, width = picture.shape[:2]
    x0, y0, x1, y1 = box
    x0, x1 = int(np.clip(round(x0), 0, width - 1)), int(np.clip(round(x1) - 1, 0, width - 1))
    y0, y1 = int(np.clip(round(y0), 0, height - 1)), int(np.clip(round(y1) - 1, 0, height - 1))
    picture[y0, x0:x1 + 1] = colour
    picture[y1, x0:x1 + 1] = colour
    picture[y0:y1 + 1, x0] = colour
    picture[y0:y1 + 1, x1] = colour


def glimpse_grid(outputs, images, scale=3):
    """One row per image: the input with every glimpse box, then the canvas
    after each glimpse with that glimpse's sketch box (drawing), or each
    glimpse resized to the image with its box on the input (classification).

    Returns:
        `(Hg, Wg, 3)` float32 picture in [0, 1].
    """
    images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
    rgb = lambda x: np.repeat(x, 3, -1) if x.shape[-1] == 1 else x
    height, width = images.shape[1:3]
    boxes = stawm.glimpse_boxes(outputs["thetas"], (height, width))  # (B, N, 4)
    num = boxes.shape[1]
    rows = []
    for b in range(len(images)):
        first = rgb(images[b]).copy()
        for n in range(num):
            _draw_box(first, boxes[b, n], _BOX_COLOURS[n % len(_BOX_COLOURS)])
        row = [first]
        if "canvases" in outputs:
            write = stawm.glimpse_boxes(outputs["write_thetas"][b], (height, width))
            for n in range(num):
                pic = rgb(np.clip(outputs["canvases"][b, n], 0.0, 1.0)).copy()
                _draw_box(pic, write[n], _BOX_COLOURS[n % len(_BOX_COLOURS)])
                row.append(pic)
        else:
            for n in range(num):
                glimpse = tf.image.resize(outputs["glimpses"][b, n], (height, width),
                                          method="nearest").numpy()
                row.append(rgb(np.clip(glimpse, 0.0, 1.0)))
        rows.append(row)
    grid = summaries._tile(np.asarray(rows))  # pylint: disable=protected-access
    return np.kron(grid, np.ones((scale, scale, 1), np.float32)) if scale > 1 else grid


def restore_pretrained(state, config):
    """Loads a drawing run's weights for self-supervised classification."""
    path = config.pretrained_workdir
    if not path:
        raise ValueError(
            "task='self_supervised' needs config.pretrained_workdir: the work dir of a "
            "drawing run, e.g. --pretrained_workdir=runs/stawm/mnist_draw_6x6."
        )
    path = resolve_workdir(path)
    latest = tf.train.latest_checkpoint(os.path.join(path, "checkpoints"))
    if latest is None:
        raise FileNotFoundError(
            f"No checkpoint in {path}/checkpoints: train the drawing config first "
            "(bazel run //trainers:stawm -- --config=mnist_draw_6x6)."
        )
    # Only the shared attention and drawing weights exist there; the
    # classification head stays freshly initialised.
    before = [v.numpy() for v in state.model.weights]
    tf.train.Checkpoint(model=state.model).restore(latest).expect_partial()
    restored = sum(not np.array_equal(b, v.numpy()) for b, v in zip(before, state.model.weights))
    if not before or restored == 0:
        raise ValueError(
            f"Nothing in {latest} matched this model's weights: is {path} a STAWM drawing "
            "run with the same sizes (memory_size, rnn_units, glimpses)?"
        )
    return latest


def train(config, workdir, progress=True, stop_after=None):
    """Trains (or resumes) STAWM and writes logs, pictures and checkpoints.

    Args:
        config: a config from `trainers.configs.stawm`.
        workdir: directory for `config.json`, `model.json`, `checkpoints/`,
            TensorBoard logs (`train/`, `eval/`), `progress.png` and
            `metrics.json`.
        progress: whether to show a progress bar.
        stop_after: if set, stop (checkpointed) after this many steps of this
            invocation; running again resumes.

    Returns:
        (final held-out metrics, `TrainState`).
    """
    workdir = resolve_workdir(workdir)
    os.makedirs(workdir, exist_ok=True)
    files.atomic_write(os.path.join(workdir, "config.json"),
                  config.to_json_best_effort(indent=2, sort_keys=True))
    train_set, test_set = load_data(config)
    test_images, test_labels = held_out(test_set, config.num_test)
    state = TrainState(config, train_set.image_shape)
    files.atomic_write(os.path.join(workdir, MODEL_SPEC),
                  json.dumps(keras.saving.serialize_keras_object(state.model), indent=2))

    rng_states = [v.value for v in state.model.variables if "seed_generator" in v.path]
    checkpoint = tf.train.Checkpoint(model=state.model, optimizer=state.optimizer,
                                     step=state.step, rng=rng_states)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(workdir, "checkpoints"),
                                         max_to_keep=3)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        print(f"Resumed from {manager.latest_checkpoint} at step {int(state.step.numpy())}.")
    elif config.task == "self_supervised":
        print(f"Drawing weights from {restore_pretrained(state, config)}.")
    start = int(state.step.numpy())
    iterator = state.distribute(train_pipeline(config, train_set).skip(start))

    train_writer = tf.summary.create_file_writer(os.path.join(workdir, "train"))
    eval_writer = tf.summary.create_file_writer(os.path.join(workdir, "eval"))
    num_pictures = config.num_summary_images

    def run_eval(step):
        result, outputs = evaluate(state, test_images, test_labels)
        with eval_writer.as_default():
            for k, v in result.items():
                tf.summary.scalar(k, v, step=step)
            grid = glimpse_grid({k: v[:num_pictures] for k, v in outputs.items()},
                                test_images[:num_pictures])
            tf.summary.image("glimpses", grid[None], step=step)
        eval_writer.flush()
        summaries.save_png(grid, os.path.join(workdir, "progress.png"))
        return result

    bar = tqdm.tqdm(total=config.steps, initial=start, disable=not progress, unit="step",
                    desc=config.name, dynamic_ncols=True)
    trained = 0.0
    last = config.steps if stop_after is None else min(config.steps, start + stop_after)
    step = start
    for step in range(start + 1, last + 1):
        t = time.perf_counter()
        logs = state.train_step(iterator)
        if step % config.log_every == 0 or step == last:
            logs = {k: float(v) for k, v in logs.items()}
            trained += time.perf_counter() - t
            with train_writer.as_default():
                for k, v in logs.items():
                    tf.summary.scalar(k, v, step=step)
                tf.summary.scalar("images_per_second",
                                  config.batch_size * (step - start) / max(trained, 1e-9),
                                  step=step)
            bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()})
        else:
            trained += time.perf_counter() - t
        if step % config.checkpoint_every == 0 and step != last:
            manager.save(checkpoint_number=step)
        if step % config.eval_every == 0 and step != last:
            bar.write(f"step {step}: " + _format(run_eval(step)))
        bar.update(1)
        if config.max_train_seconds and trained >= config.max_train_seconds:
            bar.write(f"Training time budget of {config.max_train_seconds:.0f} s reached "
                      f"at step {step}.")
            break
    bar.close()
    if int(state.step.numpy()) > start or not manager.latest_checkpoint:
        manager.save(checkpoint_number=int(state.step.numpy()))
    train_writer.flush()
    final_step = int(state.step.numpy())
    result = run_eval(final_step)
    result["train_seconds"] = trained
    files.atomic_write(os.path.join(workdir, "metrics.json"),
                  json.dumps({"step": final_step, **result}, indent=2))
    return result, state


def _format(result):
    return ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in result.items())
