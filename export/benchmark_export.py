r"""Serving speed of the 20-move MNIST Painter: SavedModel and TFLite.

    bazel run //export:benchmark_export
    bazel run //export:benchmark_export -- --checkpoint=/abs/runs/painter/mnist_20moves

Exports the model twice (plain graph, and with the model compiled by XLA
inside the SavedModel), converts the plain one to TFLite, and prints in one
table, for the `serving_default` and `moves` signatures:
- single-image latency (median over calls, milliseconds);
- batched throughput (images per second at --batch_size, one caller);
- for the SavedModel, the same with --callers threads calling at once, as a
  server's request threads would.
Calls go through `tf.saved_model.load(...).signatures[...]` and the LiteRT
interpreter's signature runner. Without --checkpoint the weights are the
untrained initial ones: the computation, and so the speed, is the same.
Parity against the Keras model is printed too, and the targets of issue 3
beside the table (printed, never asserted).
"""

import os
import statistics
import tempfile
import threading
import time

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from export import lite
from export import serving
from tfpaint import runs
from tfpaint.models import painter

FLAGS = flags.FLAGS
# Issue 3's targets, printed beside the figures (never asserted).
TARGET_IMAGES_PER_S = 20_000
TARGET_LITE_MS = 1.0
flags.DEFINE_string("checkpoint", None, "A trained mnist_20moves run (optional).")
flags.DEFINE_integer("batch_size", 256, "Batch size of the throughput figure.")
flags.DEFINE_float("seconds", 3.0, "Timing budget per measurement.")
flags.DEFINE_integer("threads", None, "LiteRT threads (default: all cores).")
flags.DEFINE_integer("callers", 2, "Concurrent callers of the SavedModel throughput column "
                     "(0: leave it out). One LiteRT interpreter serves one caller at a time.")


def default_model():
    """The untrained Painter of `//trainers:painter`'s default config,
    mnist_20moves (a test checks that the two agree)."""
    model = painter.SimplePainter(num_moves=20, image_shape=(28, 28, 1), templates=("circle",),
                                  template_size=16, initial_scale=3.0, seed=0)
    model(tf.zeros((1, 28, 28, 1)))
    return model


def _median_ms(fn, seconds):
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 20:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def _throughput(fn, batch, seconds, callers=1):
    """Images/s of `callers` threads calling `fn` at once (one: the caller
    alone), as a server's request threads would; TensorFlow releases the GIL
    while it runs."""
    counts = [0] * callers
    start = time.perf_counter()

    def work(i):
        while time.perf_counter() - start < seconds or counts[i] < 5:
            fn()
            counts[i] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(1, callers)]
    for thread in threads:
        thread.start()
    work(0)
    for thread in threads:
        thread.join()
    return batch * sum(counts) / (time.perf_counter() - start)


def measure(name, call, images, batch_size, seconds, callers=None):
    """(name, single-image ms, batched images/s, same with `callers` threads)."""
    one, batch = images[:1], images[:batch_size]
    for _ in range(5):  # Warm-up: tracing, XLA compilation, allocations.
        call(one)
        call(batch)
    concurrent = None
    if callers:
        concurrent = _throughput(lambda: call(batch), batch_size, seconds, callers)
    return (name, _median_ms(lambda: call(one), seconds),
            _throughput(lambda: call(batch), batch_size, seconds), concurrent)


def main(argv):
    del argv
    if FLAGS.checkpoint:
        model, config, _ = runs.restore_model(FLAGS.checkpoint)
        name = config.get("name", "trained")
    else:
        model, name = default_model(), "mnist_20moves"
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(FLAGS.batch_size, *model.image_shape)).astype(np.float32)
    reference = model(images[:16], training=False)
    rows, parity = [], {}
    with tempfile.TemporaryDirectory() as base:
        for jit in (False, True):
            path = serving.export_saved_model(model, base, f"painter_jit{int(jit)}", jit=jit)
            signatures = tf.saved_model.load(path).signatures
            signature = signatures["serving_default"]
            got = signature(image=tf.constant(images[:16]))
            parity[f"SavedModel{' XLA' if jit else ''} vs Keras"] = max(
                float(np.max(np.abs(got[k] - reference[k]))) for k in got)
            label = "SavedModel, XLA" if jit else "SavedModel, no XLA"
            rows.append(measure(label, lambda x, s=signature: s(image=tf.constant(x)),
                                images, FLAGS.batch_size, FLAGS.seconds, FLAGS.callers))
            rows.append(measure(label.replace("SavedModel", "SavedModel moves"),
                                lambda x, s=signatures["moves"]: s(image=tf.constant(x)),
                                images, FLAGS.batch_size, FLAGS.seconds, FLAGS.callers))
            if not jit:
                tflite_path, _ = lite.convert(path, os.path.join(base, "painter.tflite"))
                runner = lite.LitePainter(tflite_path, num_threads=FLAGS.threads)
                lite_out = runner.paint(images[:16])
                parity["TFLite vs SavedModel"] = max(
                    float(np.max(np.abs(lite_out[k] - got[k].numpy()))) for k in got)
                rows.append(measure("TFLite (LiteRT)", runner.paint, images,
                                    FLAGS.batch_size, FLAGS.seconds))
                rows.append(measure("TFLite moves", runner.moves, images,
                                    FLAGS.batch_size, FLAGS.seconds))
    print(f"\n20-move MNIST Painter ({name}, {'trained' if FLAGS.checkpoint else 'initial'}"
          f" weights), {os.cpu_count()} CPU cores")
    print("(moves: the `moves` signature, without the per-move canvases)")
    print(f"target: SavedModel >= {TARGET_IMAGES_PER_S:,} img/s at batch 256 (one caller); "
          f"TFLite <= {TARGET_LITE_MS} ms per image")
    header = f"{'':28s} {'1 image (ms)':>13s} {f'batch {FLAGS.batch_size} (img/s)':>20s}"
    if FLAGS.callers:
        header += f" {f'{FLAGS.callers} callers (img/s)':>20s}"
    print(header)
    for name, latency, throughput, concurrent in rows:
        line = f"{name:28s} {latency:13.3f} {throughput:20,.0f}"
        if FLAGS.callers:
            line += f" {concurrent:20,.0f}" if concurrent else f" {'-':>20s}"
        print(line)
    print("\nmax |difference| over all outputs:")
    for name, diff in parity.items():
        print(f"  {name:28s} {diff:.2e}")


if __name__ == "__main__":
    app.run(main)
