"""The one training loop of tfpaint: every model family trains here.

`train(task, workdir)` is the job behind `bazel run //trainers:<model>`. A
`trainers.tasks` Task brings the model, data, loss, metrics, evaluation and
pictures; the loop owns checks, checkpoints and exact resume, the non-finite
guard, progress, TensorBoard, the evaluation cadence, `metrics.json`, the time
budget, `tf.distribute` and XLA (README, "Training").
"""

import contextlib
import json
import os
import random
import re
import shutil
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
import tqdm

from tfpaint import files
from tfpaint import runs
from tfpaint import summaries
from trainers.configs import common

STRATEGIES = ("mirrored", "one_device", "multi_worker")


class TrainingError(RuntimeError):
    """A run cannot go on; the message says why and what to do."""


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite."""


class ConfigChangedError(TrainingError):
    """A run directory holds a run of another config."""


class WorkerLostError(TrainingError):
    """Another worker of a multi-worker run died or stopped answering."""


def make_strategy(name="mirrored", timeout_seconds=300):
    """The `tf.distribute` strategy `name`: "mirrored" (the local devices),
    "one_device" (the first CPU) or "multi_worker" (the cluster `TF_CONFIG`
    describes; a collective op fails after `timeout_seconds`). Create it
    before any other TensorFlow op runs."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise TrainingError(
                "--strategy=multi_worker needs the TF_CONFIG environment variable, which "
                "lists the workers and says which one this is (see README, 'Several machines')."
            )
        options = tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=float(timeout_seconds))
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    raise ValueError(f"`strategy` must be one of {STRATEGIES}. Received: {name!r}")


def is_chief(strategy):
    """Whether this process writes the run's files (always, on one machine)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type in (None, "", "chief"):
        return True
    return ((resolver.task_type, resolver.task_id) == ("worker", 0)
            and "chief" not in resolver.cluster_spec().as_dict())


@contextlib.contextmanager
def _python_random_seed(seed):
    """Seeds Python's `random` for a while, then puts its state back.

    Keras draws the seeds of initialisers and `SeedGenerator`s created
    without one from Python's `random`: seeded, every run of a config starts
    from the same weights, whatever else ran in the process before. (TF's
    global seed is left alone: it would change every seeded `tf.data`
    shuffle.)
    """
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


def set_threads(config):
    """Sizes TensorFlow's thread pools as `config` asks.

    `intra_op_threads` is the threads one op may use, `inter_op_threads` the
    ops that may run at once; 0 leaves TensorFlow's default. TensorFlow takes
    them only before its first op: call this first (the trainer's main does).
    Afterwards a request that differs from the pools in use is reported and
    left unapplied.

    Returns:
        Whether the pools are as the config asks.
    """
    threading = tf.config.threading
    wanted = {"intra_op_threads": (threading.get_intra_op_parallelism_threads,
                                   threading.set_intra_op_parallelism_threads),
              "inter_op_threads": (threading.get_inter_op_parallelism_threads,
                                   threading.set_inter_op_parallelism_threads)}
    applied = True
    for name, (get, put) in wanted.items():
        value = int(config.get(name, 0) or 0)
        if value < 0:
            raise ValueError(f"`{name}` must be >= 0. Received: {value}")
        if value == get():
            continue
        try:
            put(value)
        except RuntimeError:
            applied = False
            print(f"Note: {name}={value} not applied: TensorFlow has already started "
                  f"(its pools are set before the first op). Speeds may differ from a "
                  f"fresh process.")
    return applied


def resolve_config(task):
    """Fills the derived fields and checks every field; returns the config."""
    config = common.derive(task.config)
    common.validate(config)
    task.validate()
    return config


def predict_in_batches(fn, images, batch_size=250):
    """Runs a dict-returning `fn` over `images` in batches; NumPy dict."""
    parts = []
    for i in range(0, len(images), batch_size):
        out = fn(tf.constant(images[i:i + batch_size]))
        parts.append({k: np.asarray(v) for k, v in out.items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


class TrainState:
    """Model, optimiser, step counter and their compiled, distributed step.

    The step runs under a `tf.distribute` strategy inside `tf.function`; with
    `jit` (default: the config's) the per-replica forward and backward pass is
    one XLA cluster. It records the first step whose loss was not finite
    (`bad_step`, -1 while all are).
    """

    def __init__(self, task, image_shape, strategy=None, jit=None):
        self.task, self.config = task, task.config
        config = task.config
        self.strategy = strategy or tf.distribute.MirroredStrategy()
        self.jit = config.jit if jit is None else bool(jit)
        replicas = self.strategy.num_replicas_in_sync
        if config.batch_size % replicas:
            raise ValueError(
                f"`batch_size` {config.batch_size} must be divisible by the "
                f"{replicas} replicas of the strategy."
            )
        with self.strategy.scope(), _python_random_seed(config.seed):
            self.model = task.build_model(tuple(image_shape))
            self.model(tf.zeros((1, *image_shape)))  # Creates every variable.
            task.prepare_model(self.model)
            self.optimizer = task.build_optimizer()
            self.optimizer.build(self.model.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.bad_step = tf.Variable(-1, dtype=tf.int64, trainable=False, name="bad_step")
        # One optimiser step on the next batch of an iterator; scalar metrics.
        self.train_step = self._make_train_step()
        self._eval_fn = task.eval_function(self.model, self.jit)

    def _make_train_step(self):
        model, optimizer, task = self.model, self.optimizer, self.task
        global_batch = self.config.batch_size

        def forward_backward(batch):
            with tf.GradientTape() as tape:
                per_example, metrics = task.loss(model, batch, training=True)
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            grads = tape.gradient(loss, model.trainable_variables)
            logs = {k: tf.reduce_sum(v) / global_batch for k, v in metrics.items()}
            logs["loss"] = loss
            return grads, logs

        if self.jit and isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            # XLA cannot compile collectives on CPUs: the gradients' all-reduce
            # across workers (in apply_gradients) runs outside the compiled part.
            compiled = tf.function(forward_backward, jit_compile=True)

            @tf.function
            def replica_step(batch):
                grads, logs = compiled(batch)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
                return logs
        else:
            @tf.function(jit_compile=self.jit)
            def replica_step(batch):
                grads, logs = forward_backward(batch)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
                return logs

        @tf.function
        def train_step(iterator):
            per_replica = self.strategy.run(replica_step, args=(next(iterator),))
            self.step.assign_add(1)
            logs = {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                    for k, v in per_replica.items()}
            first_bad = tf.logical_and(~tf.math.is_finite(logs["loss"]), self.bad_step < 0)
            self.bad_step.assign(tf.where(first_bad, self.step, self.bad_step))
            return logs

        return train_step

    def predict(self, images, batch_size=250):
        """The evaluation function's output dict (NumPy) for an array of images."""
        return predict_in_batches(self._eval_fn, images, batch_size)

    def distribute(self, dataset):
        """An iterator over `dataset`'s batches, split among the replicas."""
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA)
        dataset = dataset.with_options(options)
        return iter(self.strategy.experimental_distribute_dataset(dataset))

    def checkpoint(self):
        """A `tf.train.Checkpoint` of everything a resumed run needs.

        `tf.train.Checkpoint` does not reach Keras `SeedGenerator` states
        through the model: listed, a resumed run continues the noise streams
        (latent, input, exploration, dropout) instead of replaying them.
        """
        rng = [v.value for v in self.model.variables if "seed_generator" in v.path]
        return tf.train.Checkpoint(model=self.model, optimizer=self.optimizer,
                                   step=self.step, rng=rng)

    def all_finite(self):
        """Whether every model and optimiser variable is finite."""
        for variable in self.model.variables + self.optimizer.variables:
            value = np.asarray(variable)
            if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                return False
        return True


def _check_run_directory(workdir, config, allow_config_change):
    """Refuses a run directory that holds a run of another config; returns the
    previous config if it differs and the change is allowed, else None."""
    previous = runs.read_config(workdir)
    if previous is None:
        return None
    changes = runs.config_differences(previous.to_dict(), config.to_dict(), common.BOOKKEEPING)
    if not changes:
        return None
    lines = "\n  ".join(f"{k}: {old} -> {new}" for k, old, new in changes)
    if not allow_config_change:
        raise ConfigChangedError(
            f"{workdir} holds a run of config {previous.get('name')!r} that differs from "
            f"this one:\n  {lines}\nNothing was changed. Use another --workdir, or pass "
            "--allow_config_change to go on training this run with the new config (the "
            "old config.json is kept as config-previous-<step>.json)."
        )
    print(f"Continuing {workdir} with a changed config:\n  {lines}")
    return previous.to_dict()


def _format(result):
    return ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in result.items())


def train(task, workdir, *, strategy=None, progress=True, stop_after=None,
          allow_config_change=False, on_eval=None):
    """Trains (or resumes) a task's model and writes the run directory.

    Args:
        task: a `trainers.tasks` Task.
        workdir: the run directory (see `tfpaint.runs`); relative paths are
            taken from where the command was run.
        strategy: a `tf.distribute` strategy (default: mirrored).
        progress: whether to show a progress bar.
        stop_after: if set, stop (checkpointed, as a preempted job would)
            after this many steps of this invocation; running again resumes.
        allow_config_change: go on training a run directory whose config
            differs from this one (otherwise that is an error).
        on_eval: optional `on_eval(step, metrics, train_seconds) -> bool`,
            called on the chief after each held-out evaluation (metrics: the
            task's `evaluate` dict; train_seconds: training time so far in
            this invocation, evaluations excluded). Returning True stops
            training there, checkpointed (a benchmark's "stop at the target").
            Not with a multi-worker strategy.

    Returns:
        (final held-out metrics, `TrainState`). Workers other than the chief
        do not evaluate: their metrics are empty.

    Raises:
        ValueError: a config field with a bad value.
        ConfigChangedError: the run directory holds a run of another config.
        CheckpointMismatchError: the checkpoints do not fit the model.
        NonFiniteLossError: the loss became NaN or infinite.
        DatasetUnavailableError: a tensorflow-datasets set is not prepared.
    """
    # 1. Check everything; nothing of the run is written before this is done.
    config = resolve_config(task)
    set_threads(config)
    workdir = runs.resolve(workdir)
    strategy = strategy or tf.distribute.MirroredStrategy()
    if on_eval is not None and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        raise ValueError("`on_eval` stops one process; a multi-worker run would wait for it "
                         "forever. Use it on one machine.")
    chief = is_chief(strategy)
    previous = _check_run_directory(workdir, config, allow_config_change)
    train_set, test_set = task.load_data()
    held_out = test_set.examples(config.num_test)
    state = TrainState(task, train_set.image_shape, strategy)
    checkpoint_dir = os.path.join(workdir, runs.CHECKPOINTS)
    manager = tf.train.CheckpointManager(state.checkpoint(), checkpoint_dir,
                                         max_to_keep=config.keep_checkpoints)
    restored = runs.restore_checkpoint(state.checkpoint(), checkpoint_dir)
    start = int(state.step.numpy())
    note = None if restored else task.initialize(state.model)

    # 2. Write the run's files.
    if chief:
        if previous is not None:
            files.atomic_write(
                os.path.join(workdir, f"config-previous-{start}.json"),
                json.dumps(previous, indent=2, sort_keys=True))
        files.atomic_write(os.path.join(workdir, runs.CONFIG_FILE),
                           config.to_json_best_effort(indent=2, sort_keys=True))
        files.atomic_write(
            os.path.join(workdir, runs.MODEL_FILE),
            json.dumps(keras.saving.serialize_keras_object(state.model), indent=2))
    else:
        # Every worker saves (variables may be synchronised while saving);
        # only the chief's checkpoints are kept.
        manager = tf.train.CheckpointManager(
            state.checkpoint(), tempfile.mkdtemp(prefix="tfpaint-worker-"), max_to_keep=1)
    if restored:
        print(f"Resumed from {restored} at step {start}.")
    if note:
        print(note)

    iterator = state.distribute(task.train_pipeline(train_set).skip(start))
    writers = {name: tf.summary.create_file_writer(os.path.join(workdir, name)) if chief
               else tf.summary.create_noop_writer() for name in ("train", "eval")}
    num_pictures = config.num_summary_images

    def run_eval(step):
        if not chief:
            return {}
        outputs = state.predict(held_out.images)
        result = task.evaluate(outputs, held_out)
        first = {k: v[:num_pictures] for k, v in outputs.items()}
        pictures = task.pictures(first, held_out.head(num_pictures)) if num_pictures else {}
        with writers["eval"].as_default():
            for k, v in result.items():
                tf.summary.scalar(k, v, step=step)
            # Held-out metrics against training time, not only steps.
            tf.summary.scalar("train_seconds", trained, step=step)
            gifs = summaries.write_pictures(pictures, step)
        writers["eval"].flush()
        if task.progress_picture in pictures:
            summaries.save_png(pictures[task.progress_picture],
                               os.path.join(workdir, "progress.png"))
        if task.progress_animation in gifs:
            summaries.save_bytes(gifs[task.progress_animation],
                                 os.path.join(workdir, "progress.gif"))
        return result

    def save(step):
        bad = int(state.bad_step.numpy())
        if bad >= 0 or not state.all_finite():
            _raise_non_finite(bad if bad >= 0 else step, config, manager)
        manager.save(checkpoint_number=step)

    last = config.steps if stop_after is None else min(config.steps, start + stop_after)
    bar = tqdm.tqdm(total=config.steps, initial=start, disable=not (progress and chief),
                    unit="step", desc=config.name, dynamic_ncols=True)
    trained = 0.0
    budget = config.max_train_seconds
    evaluated = {}  # step -> metrics, of the last evaluation in the loop
    try:
        for step in range(start + 1, last + 1):
            t = time.perf_counter()
            logs = state.train_step(iterator)
            if step % config.log_every == 0 or step == last:
                logs = {k: float(v) for k, v in logs.items()}
                trained += time.perf_counter() - t
                bad = int(state.bad_step.numpy())
                if bad >= 0:
                    _raise_non_finite(bad, config, manager)
                with writers["train"].as_default():
                    for k, v in logs.items():
                        tf.summary.scalar(k, v, step=step)
                    tf.summary.scalar("images_per_second",
                                      config.batch_size * (step - start) / max(trained, 1e-9),
                                      step=step)
                bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()})
            else:
                trained += time.perf_counter() - t
            bar.update(1)
            out_of_time = budget is not None and _out_of_time(trained, budget, strategy, step,
                                                              config.log_every)
            if step != last and not out_of_time:
                if step % config.checkpoint_every == 0:
                    save(step)
                if step % config.eval_every == 0:
                    result = run_eval(step)
                    evaluated = {step: result}
                    bar.write(f"step {step}: " + _format(result))
                    if on_eval is not None and chief and on_eval(step, result, trained):
                        bar.write(f"Stopped at step {step}: `on_eval` asked to.")
                        break
            if out_of_time:
                bar.write(f"Training time budget of {budget:.0f} s reached at step {step}.")
                break
    except _PEER_ERRORS as error:
        if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            raise
        _raise_worker_lost(error, manager if chief else None)
    bar.close()
    final_step = int(state.step.numpy())
    if final_step > start or not manager.latest_checkpoint:
        save(final_step)
    writers["train"].flush()
    result = evaluated.get(final_step)
    if result is None:
        result = run_eval(final_step)
        if on_eval is not None and chief:
            on_eval(final_step, result, trained)
    if chief:
        result["train_seconds"] = trained
        files.atomic_write(os.path.join(workdir, runs.METRICS_FILE),
                           json.dumps({"step": final_step, **result}, indent=2))
    else:
        shutil.rmtree(manager.directory, ignore_errors=True)
    return result, state


def _out_of_time(trained, budget, strategy, step, every):
    """Whether the budget is spent. Workers of a cluster decide together (the
    slowest one's time), every `every` steps, or they would stop at different
    steps and wait for each other forever."""
    if getattr(strategy, "cluster_resolver", None) is None:
        return trained >= budget
    if step % every:
        return False
    elapsed = strategy.reduce(
        tf.distribute.ReduceOp.MAX,
        strategy.run(lambda: tf.constant(trained, tf.float32)), axis=None)
    return float(elapsed) >= budget


# What a collective operation raises when another worker died or hangs.
_PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.AbortedError,
                tf.errors.DeadlineExceededError, tf.errors.CancelledError)


def _raise_worker_lost(error, manager):
    message = str(error).strip()
    peers = sorted(set(re.findall(r"/job:\w+/replica:\d+/task:\d+", message)))
    reason = next((line for line in message.splitlines()
                   if line.strip() and not line.startswith(("Graph execution", "Detected at",
                                                             "  File", "\t"))), message[:200])
    latest = manager.latest_checkpoint if manager is not None else None
    raise WorkerLostError(
        f"A worker of the cluster stopped answering ({', '.join(peers) or 'a peer'}: "
        f"{reason.strip()}). Training stopped; "
        + (f"the newest checkpoint is {latest}. " if latest else "")
        + "Start every worker again with the same command to resume."
    ) from error


def _raise_non_finite(step, config, manager):
    latest = manager.latest_checkpoint
    raise NonFiniteLossError(
        f"The training loss of {config.name} became NaN or infinite at step {step}; "
        f"training stopped and no checkpoint with non-finite values was saved (the "
        f"newest is {latest or 'none'}). Lower the learning rate "
        f"(--config.learning_rate, now {config.learning_rate}) or check the data."
    )


def build(task, jit=None, strategy=None):
    """(`TrainState`, training iterator, held-out `Dataset`) of a task, without
    a run directory: benchmarks measure exactly what `train` runs."""
    resolve_config(task)
    set_threads(task.config)
    train_set, test_set = task.load_data()
    state = TrainState(task, train_set.image_shape, strategy, jit=jit)
    iterator = state.distribute(task.train_pipeline(train_set))
    return state, iterator, test_set


def throughput_table(make_task, steps, warmup, jits=(False, True), title=""):
    """Measures `throughput` of a fresh `make_task()` for each XLA setting and
    prints the rows side by side; returns `{"no_xla" | "xla": figures}`."""
    rows = {"xla" if jit else "no_xla": throughput(make_task(), jit, steps, warmup)
            for jit in jits}
    print(f"\n== throughput: {title}, training step ==")
    print(f"{'':8s} {'ms/step':>9s} {'images/s':>10s} {'first step (s)':>15s} "
          f"{'load (1 min) before/after':>27s}")
    for k, r in rows.items():
        print(f"{k:8s} {r['ms_per_step']:9.2f} {r['images_per_second']:10.1f} "
              f"{r['first_step_s']:15.2f} {r['load_before']:13.2f} / {r['load_after']:.2f}")
    return rows


def throughput(task, jit, steps, warmup):
    """Training speed of a task's step, XLA on or off: `ms_per_step`,
    `images_per_second`, `first_step_s` (tracing, compiling) and the 1-minute
    load average before and after (the machine may be shared). The first
    step and `warmup` more are not timed."""
    state, iterator, _ = build(task, jit=jit)
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
    return {"ms_per_step": 1e3 * step_s, "images_per_second": task.config.batch_size / step_s,
            "first_step_s": first, "load_before": load, "load_after": os.getloadavg()[0]}
