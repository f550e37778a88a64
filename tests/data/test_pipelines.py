"""Tests for tfpaint.data.pipelines: load_dataset and make_pipeline."""

import os
import shutil
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfpaint.data import pipelines
from tfpaint.data import shapes


def _batches(pipeline, num):
    return [batch.numpy() for batch in pipeline.take(num)]


class LoadDatasetTest(tf.test.TestCase, parameterized.TestCase):

    def test_dataset_names(self):
        self.assertEqual(
            pipelines.DATASETS,
            shapes.SHAPE_DATASETS + ("mnist", "faces", "mnist_full", "omniglot", "cifar10"),
        )

    @parameterized.named_parameters(*((name, name) for name in shapes.SHAPE_DATASETS))
    def test_synthetic(self, name):
        train = pipelines.load_dataset(name, "train", num_train=60, num_test=20, seed=7)
        test = pipelines.load_dataset(name, "test", num_train=60, num_test=20, seed=7)
        self.assertEqual(train.image_shape, (28, 28, 1))
        self.assertEqual(train.num_examples, 60)
        self.assertEqual(test.num_examples, 20)
        self.assertIsNone(train.tf_dataset)
        self.assertIs(train.images, train.shapes.images)
        self.assertLen(train.shapes, 60)
        # Held-out images are not the first training images again.
        self.assertFalse(np.array_equal(train.images[:20], test.images))
        again = pipelines.load_dataset(name, "train", num_train=60, seed=7)
        np.testing.assert_array_equal(train.images, again.images)

    def test_image_size(self):
        data = pipelines.load_dataset("2_shapes", "train", num_train=10, image_size=40)
        self.assertEqual(data.image_shape, (40, 40, 1))

    def test_offline_mnist(self):
        train = pipelines.load_dataset("mnist", "train")
        test = pipelines.load_dataset("mnist", "test")
        self.assertEqual(train.images.shape, (4500, 28, 28, 1))
        self.assertEqual(test.images.shape, (500, 28, 28, 1))
        self.assertEqual(train.labels.shape, (4500,))
        self.assertIsNone(train.shapes)

    def test_offline_faces(self):
        data = pipelines.load_dataset("faces", "train")
        self.assertEqual(data.image_shape, (25, 25, 1))
        self.assertEqual(data.num_examples, 80)

    def test_unknown_name(self):
        with self.assertRaisesRegex(
            ValueError, "Unknown dataset 'rectangles'; valid names are: 2_rectangles.*cifar10"
        ):
            pipelines.load_dataset("rectangles", "train")

    def test_unknown_split(self):
        with self.assertRaisesRegex(ValueError, "Unknown split 'valid'"):
            pipelines.load_dataset("mnist", "valid")

    @parameterized.named_parameters(
        ("mnist_full", "mnist_full", "mnist"),
        ("omniglot", "omniglot", "omniglot"),
        ("cifar10", "cifar10", "cifar10"),
    )
    def test_tfds_without_data(self, name, tfds_name):
        with self.assertRaisesRegex(
            pipelines.DatasetUnavailableError, f"data_dir=None.*tfds build {tfds_name}"
        ):
            pipelines.load_dataset(name, "train")
        data_dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, data_dir)
        with self.assertRaisesRegex(FileNotFoundError, f"data_dir={data_dir}.*tfds build"):
            pipelines.load_dataset(name, "train", data_dir=data_dir)

    @parameterized.named_parameters(
        ("mnist_full", "mnist_full", "mnist", (28, 28, 1)),
        ("cifar10", "cifar10", "cifar10", (32, 32, 1)),
    )
    def test_tfds_streaming(self, name, tfds_name, shape):
        data_dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, data_dir)
        os.makedirs(os.path.join(data_dir, tfds_name))
        with tfds.testing.mock_data(num_examples=10):
            data = pipelines.load_dataset(name, "test", data_dir=data_dir)
            self.assertIsNone(data.images)
            self.assertIsNone(data.num_examples)
            self.assertEqual(data.image_shape, shape)
            batches = _batches(pipelines.make_pipeline(data, 4, seed=1), 5)
        for batch in batches:
            self.assertEqual(batch.shape, (4,) + shape)
            self.assertEqual(batch.dtype, np.float32)

    def test_dataset_needs_images_or_stream(self):
        with self.assertRaisesRegex(ValueError, "exactly one of images and tf_dataset"):
            pipelines.Dataset(name="mnist", split="train")


class MakePipelineTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        # Image i is filled with i / 100, so a batch shows which images it holds.
        self.images = np.broadcast_to(
            (np.arange(20, dtype=np.float32) / 100)[:, None, None, None], (20, 4, 4, 1)
        ).copy()

    def _ids(self, batches):
        return [np.round(batch[:, 0, 0, 0] * 100).astype(int).tolist() for batch in batches]

    def test_batch_shapes(self):
        data = pipelines.load_dataset("2_rectangles", "train", num_train=50)
        pipeline = pipelines.make_pipeline(data, 16)
        self.assertEqual(pipeline.element_spec.shape, (16, 28, 28, 1))
        self.assertEqual(pipeline.element_spec.dtype, tf.float32)
        for batch in _batches(pipeline, 5):  # more than one epoch
            self.assertEqual(batch.shape, (16, 28, 28, 1))

    def test_no_shuffle_keeps_order(self):
        pipeline = pipelines.make_pipeline(self.images, 6, shuffle=False)
        self.assertEqual(
            self._ids(_batches(pipeline, 4)),
            [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11], [12, 13, 14, 15, 16, 17],
             [18, 19, 0, 1, 2, 3]],
        )
        np.testing.assert_array_equal(_batches(pipeline, 1)[0], self.images[:6])

    def test_shuffle_is_seeded_and_reshuffles(self):
        epochs = self._ids(_batches(pipelines.make_pipeline(self.images, 20, seed=3), 2))
        again = self._ids(_batches(pipelines.make_pipeline(self.images, 20, seed=3), 2))
        other = self._ids(_batches(pipelines.make_pipeline(self.images, 20, seed=4), 1))
        self.assertEqual(epochs, again)
        self.assertNotEqual(epochs[0], other[0])
        self.assertNotEqual(epochs[0], list(range(20)))
        self.assertNotEqual(epochs[0], epochs[1])  # reshuffled each epoch
        for epoch in epochs:
            self.assertCountEqual(epoch, range(20))  # each epoch is a permutation

    @parameterized.named_parameters(("drop", True, [6, 6, 6]), ("keep", False, [6, 6, 6, 2]))
    def test_finite(self, drop_remainder, sizes):
        pipeline = pipelines.make_pipeline(
            self.images, 6, shuffle=False, repeat=False, drop_remainder=drop_remainder, cache=False
        )
        batches = list(pipeline.as_numpy_iterator())
        self.assertEqual([len(batch) for batch in batches], sizes)
        np.testing.assert_array_equal(np.concatenate(batches), self.images[: sum(sizes)])

    @parameterized.named_parameters(("zero", 0), ("negative", -2))
    def test_bad_batch_size(self, batch_size):
        with self.assertRaisesRegex(ValueError, "batch_size must be at least 1"):
            pipelines.make_pipeline(self.images, batch_size)

    def test_batch_larger_than_finite_dataset(self):
        with self.assertRaisesRegex(ValueError, "batch_size 32 exceeds the 20 images"):
            pipelines.make_pipeline(self.images, 32, repeat=False)

    def test_bad_dtype(self):
        with self.assertRaisesRegex(ValueError, r"float32 in \[0, 1\], got dtype uint8"):
            pipelines.make_pipeline((self.images * 255).astype(np.uint8), 4)

    def test_bad_rank(self):
        with self.assertRaisesRegex(ValueError, r"rank 4 \(N, H, W, C\), got shape \(20, 4, 4\)"):
            pipelines.make_pipeline(self.images[..., 0], 4)

    @parameterized.named_parameters(("above", 2.0), ("below", -0.5), ("nan", np.nan))
    def test_bad_range(self, value):
        images = self.images.copy()
        images[3, 1, 1, 0] = value
        with self.assertRaisesRegex(ValueError, r"float32 in \[0, 1\], got values in"):
            pipelines.make_pipeline(images, 4)


if __name__ == "__main__":
    tf.test.main()
