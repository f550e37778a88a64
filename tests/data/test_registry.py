"""Tests for tfpaint.data.registry: every dataset by name, with labels and ground truth."""

import os
import shutil
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfpaint.data import registry
from tfpaint.data import shapes


class RegistryTest(tf.test.TestCase, parameterized.TestCase):

    def test_names(self):
        self.assertEqual(
            tuple(registry.DATASETS),
            shapes.SHAPE_DATASETS + ("multi_mnist", "translated_mnist", "mnist", "mnist_binarized", "faces",
                                     "mnist_full", "mnist_full_binarized", "binarized_mnist",
                                     "omniglot", "cifar10", "cifar10_gray", "celeb_a"))
        for name, spec in registry.DATASETS.items():
            self.assertEqual(spec.name, name)
            self.assertIn(spec.source, ("synthetic", "offline", "tfds"))

    def test_binarized_mnist_holds_out_fixed_bits(self):
        gray = registry.load("mnist", "test")
        first = registry.load("mnist_binarized", "test")
        again = registry.load("mnist_binarized", "test")
        self.assertFalse(first.binarize)  # held-out bits are drawn once, here
        self.assertAllEqual(np.unique(first.images), [0.0, 1.0])
        self.assertAllEqual(first.images, again.images)  # every run scores the same bits
        self.assertAllEqual(first.labels, gray.labels)
        # Each bit is 1 with its pixel's gray value: pixels that are 0 stay 0 ...
        self.assertEqual(first.images[gray.images == 0.0].max(), 0.0)
        # ... and the ones in each gray band come up at that band's rate.
        band = (gray.images > 0.4) & (gray.images < 0.6)
        self.assertAllClose(first.images[band].mean(), 0.5, atol=0.03)
        train = registry.load("mnist_binarized", "train", num_examples=16)
        self.assertTrue(train.binarize)  # the pipeline draws training bits afresh
        self.assertAllClose(train.images, registry.load("mnist", "train", num_examples=16).images)

    @parameterized.named_parameters(*((name, name) for name in shapes.SHAPE_DATASETS))
    def test_synthetic_sets_carry_their_ground_truth(self, name):
        train = registry.load(name, "train", num_examples=60, seed=7)
        test = registry.load(name, "test", num_examples=20, seed=7)
        self.assertEqual(train.image_shape, (28, 28, 1))
        self.assertEqual((train.num_examples, test.num_examples), (60, 20))
        self.assertIs(train.images, train.shapes.images)
        self.assertLen(train.shapes, 60)
        self.assertIsNone(train.labels)
        # Held-out images come from another seed: none with a shape in it is a
        # training image (blank 0to2 images are all alike).
        self.assertFalse(np.array_equal(train.images[:20], test.images))
        seen = {img.tobytes() for img in train.images}
        drawn = [img for img in test.images if img.max() > img.min()]
        self.assertGreater(len(drawn), 10)
        self.assertFalse(any(img.tobytes() in seen for img in drawn))
        again = registry.load(name, "train", num_examples=60, seed=7)
        np.testing.assert_array_equal(train.images, again.images)
        examples = test.examples(5)
        self.assertLen(examples, 5)
        self.assertLen(examples.shapes, 5)
        np.testing.assert_array_equal(examples.shapes.masks, test.shapes.masks[:5])

    def test_translated_mnist_is_one_labelled_digit_per_scene(self):
        train = registry.load("translated_mnist", "train", num_examples=200, image_size=40)
        test = registry.load("translated_mnist", "test", num_examples=100, image_size=40)
        self.assertEqual(train.image_shape, (40, 40, 1))
        self.assertEqual(registry.spec("translated_mnist").side(), 100)  # the paper's
        self.assertAllEqual(train.scenes.counts, np.ones(200))
        self.assertAllEqual(train.labels, train.scenes.labels[:, 0])
        self.assertEqual(set(train.labels.tolist()), set(range(10)))
        # Each digit's ink box fits the sides drawn: 1/4 to 1/2 of the scene.
        boxes = train.scenes.boxes[:, 0]  # (N, 4) y0, x0, y1, x1
        sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        self.assertLessEqual(sides.max(), 20)
        self.assertGreaterEqual(sides.max(), 15)
        self.assertGreater(np.ptp(boxes[:, 0]), 15)  # placed all over the scene
        # Held-out scenes: another seed, and only held-out digits.
        self.assertFalse(np.array_equal(train.images[:100], test.images))
        examples = test.examples()
        self.assertAllEqual(examples.labels, test.labels)
        self.assertIs(examples.scenes, test.scenes)

    def test_image_size_of_generated_sets(self):
        data = registry.load("2_shapes", "train", num_examples=10, image_size=40)
        self.assertEqual(data.image_shape, (40, 40, 1))
        self.assertEqual(data.images.shape, (10, 40, 40, 1))

    def test_fixed_size_dataset_refuses_another_size(self):
        with self.assertRaisesRegex(ValueError, "'mnist' has 28x28 images; image_size=64"):
            registry.load("mnist", "train", image_size=64)

    def test_offline_mnist_has_labels_and_keeps_the_first_examples(self):
        train = registry.load("mnist", "train")
        self.assertEqual(train.images.shape, (4500, 28, 28, 1))
        self.assertEqual(train.labels.shape, (4500,))
        self.assertEqual(sorted(set(train.labels.tolist())), list(range(10)))
        part = registry.load("mnist", "train", num_examples=100)
        np.testing.assert_array_equal(part.images, train.images[:100])
        np.testing.assert_array_equal(part.labels, train.labels[:100])
        self.assertEqual(registry.spec("mnist").num_examples("train", 10_000), 4500)

    def test_offline_faces(self):
        data = registry.load("faces", "train")
        self.assertEqual(data.image_shape, (25, 25, 1))
        self.assertEqual(data.num_examples, 80)
        self.assertIsNone(data.labels)

    def test_as_tf_dataset_yields_images_and_labels(self):
        data = registry.load("mnist", "test", num_examples=3)
        elements = list(data.as_tf_dataset().as_numpy_iterator())
        self.assertEqual([e["label"] for e in elements], data.labels.tolist())
        np.testing.assert_array_equal(elements[1]["image"], data.images[1])
        faces = next(iter(registry.load("faces", "test").as_tf_dataset()))
        self.assertEqual(set(faces), {"image"})

    @parameterized.named_parameters(
        ("name", dict(name="rectangles", split="train"),
         "Unknown dataset 'rectangles'; valid names are: 2_rectangles"),
        ("split", dict(name="mnist", split="valid"), "Unknown split 'valid'"),
        ("count", dict(name="mnist", split="train", num_examples=0),
         "num_examples must be at least 1"),
    )
    def test_bad_arguments(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            registry.load(**kwargs)

    @parameterized.named_parameters(
        ("mnist_full", "mnist_full", "mnist"),
        ("omniglot", "omniglot", "omniglot"),
        ("cifar10", "cifar10", "cifar10"),
        ("celeb_a", "celeb_a", "celeb_a"),
    )
    def test_tfds_without_data_says_how_to_get_it(self, name, tfds_name):
        with self.assertRaisesRegex(registry.DatasetUnavailableError,
                                    f"data_dir=None.*tfds build {tfds_name}"):
            registry.load(name, "train")
        data_dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, data_dir)
        with self.assertRaisesRegex(FileNotFoundError, f"data_dir={data_dir}.*tfds build"):
            registry.load(name, "train", data_dir=data_dir)

    @parameterized.named_parameters(
        ("mnist_full", "mnist_full", "mnist", (28, 28, 1), True),
        ("cifar10", "cifar10", "cifar10", (32, 32, 3), True),
        ("cifar10_gray", "cifar10_gray", "cifar10", (32, 32, 1), True),
        ("celeb_a", "celeb_a", "celeb_a", (64, 64, 3), False),
    )
    def test_tfds_streams_images_and_labels(self, name, tfds_name, shape, labelled):
        data_dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, data_dir)
        os.makedirs(os.path.join(data_dir, tfds_name))
        with tfds.testing.mock_data(num_examples=10):
            data = registry.load(name, "test", data_dir=data_dir, num_examples=6)
            self.assertIsNone(data.images)
            self.assertEqual(data.image_shape, shape)
            self.assertEqual(data.num_examples, 6)
            examples = data.examples()
            element = next(iter(data.as_tf_dataset()))
        self.assertEqual(examples.images.shape, (6, *shape))
        self.assertEqual(examples.labels is not None, labelled)
        self.assertEqual("label" in element, labelled)


if __name__ == "__main__":
    tf.test.main()
