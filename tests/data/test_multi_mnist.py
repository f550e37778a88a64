"""Tests for tfpaint.data.multi_mnist: scenes of 0..K digits with their ground truth."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tfpaint.data import digits
from tfpaint.data import multi_mnist
from tfpaint.data import registry


def _square_digits(count=10, size=28, top=6, left=9, side=8, value=1.0):
    """Stand-in digits: one bright square each, at a known place; labels 0..count-1."""
    images = np.zeros((count, size, size, 1), np.float32)
    images[:, top:top + side, left:left + side] = value
    return images, np.arange(count, dtype=np.int32)


class MakeScenesTest(tf.test.TestCase, parameterized.TestCase):

    def test_counts_are_equally_common_and_match_the_slots(self):
        images, labels = _square_digits()
        scenes = multi_mnist.make_scenes(images, labels, 3000, seed=1)
        self.assertEqual(scenes.images.shape, (3000, 50, 50, 1))
        self.assertEqual(scenes.max_objects, 2)
        # Each count 1/3 of the time: the binomial sd of a rate over 3000 is 0.009.
        for n in range(3):
            self.assertAllClose(np.mean(scenes.counts == n), 1 / 3, atol=0.03)
        self.assertAllEqual(scenes.valid.sum(axis=1), scenes.counts)
        self.assertAllEqual(scenes.labels[~scenes.valid], np.full((~scenes.valid).sum(), -1))
        self.assertTrue(np.all(scenes.labels[scenes.valid] >= 0))
        # An empty scene is black.
        self.assertEqual(scenes.images[scenes.counts == 0].max(), 0.0)

    def test_box_holds_the_ink_of_an_unscaled_digit(self):
        # At digit side 28 nothing is resized: the box is the square, moved.
        images, labels = _square_digits()
        scenes = multi_mnist.make_scenes(images, labels, 200, seed=2, min_digits=1,
                                         max_digits=1, digit_sizes=(28, 28))
        for image, box in zip(scenes.images[..., 0], scenes.boxes[:, 0]):
            y0, x0, y1, x1 = box.astype(int)
            self.assertEqual((y1 - y0, x1 - x0), (8, 8))
            self.assertAllEqual(image[y0:y1, x0:x1], np.ones((8, 8)))
            self.assertEqual(image.sum(), 64.0)  # nothing outside the box
            # The square sat at (6, 9) in its 28x28 digit, which fits the scene.
            self.assertBetween(y0, 6, 50 - 28 + 6)
            self.assertBetween(x0, 9, 50 - 28 + 9)

    def test_labels_are_the_drawn_digits_classes(self):
        # Each stand-in digit's brightness names its class.
        images = np.zeros((10, 28, 28, 1), np.float32)
        for label in range(10):
            images[label, 10:18, 10:18] = 0.1 * (label + 1)
        scenes = multi_mnist.make_scenes(images, np.arange(10), 300, seed=3, min_digits=1,
                                         max_digits=1, digit_sizes=(28, 28))
        self.assertAllClose(scenes.images.max(axis=(1, 2, 3)), 0.1 * (scenes.labels[:, 0] + 1))

    def test_an_overlap_keeps_the_brighter_pixel(self):
        # Two full gray patches in a scene their own size must overlap; the
        # overlap is the union (0.5), not the sum (1.0).
        images = np.full((3, 28, 28, 1), 0.5, np.float32)
        scenes = multi_mnist.make_scenes(images, np.arange(3), 20, seed=4, image_size=30,
                                         min_digits=2, max_digits=2, digit_sizes=(28, 28))
        self.assertEqual(scenes.images.max(), 0.5)
        self.assertTrue(np.all(scenes.images[:, 2:28, 2:28] == 0.5))

    def test_digit_sizes_scale_with_the_scene(self):
        images, labels = _square_digits(side=20, top=4, left=4)
        small = multi_mnist.make_scenes(images, labels, 300, seed=5, min_digits=1,
                                        max_digits=1)
        large = multi_mnist.make_scenes(images, labels, 300, seed=5, min_digits=1,
                                        max_digits=1, image_size=100)
        small_sides = small.boxes[:, 0, 2] - small.boxes[:, 0, 0]
        large_sides = large.boxes[:, 0, 2] - large.boxes[:, 0, 0]
        # The 20-pixel square is 20/28 of a digit of side 20..28 at 50 pixels,
        # of side 40..56 at 100: about twice as large.
        self.assertBetween(small_sides.min(), 13, 16)
        self.assertBetween(small_sides.max(), 19, 21)
        self.assertAllClose(large_sides.mean() / small_sides.mean(), 2.0, rtol=0.08)

    def test_same_seed_same_scenes(self):
        images, labels = _square_digits()
        a = multi_mnist.make_scenes(images, labels, 20, seed=6)
        b = multi_mnist.make_scenes(images, labels, 20, seed=6)
        c = multi_mnist.make_scenes(images, labels, 20, seed=7)
        self.assertAllEqual(a.images, b.images)
        self.assertAllEqual(a.boxes, b.boxes)
        self.assertNotAllEqual(a.images, c.images)

    @parameterized.named_parameters(
        ("no_digits", dict(digits=np.zeros((0, 28, 28, 1)), labels=np.zeros(0)),
         "`digits` is empty"),
        ("counts", dict(min_digits=3, max_digits=2), "min_digits <= max_digits"),
        ("no_slots", dict(min_digits=0, max_digits=0), "max_digits >= 1"),
        ("too_large", dict(digit_sizes=(20, 60)), "largest <= image_size=50"),
        ("scenes", dict(num_scenes=0), "`num_scenes` must be >= 1"),
        ("labels", dict(labels=np.zeros(3)), "one label each"),
        ("nan", dict(digits=np.full((10, 28, 28, 1), np.nan)), r"finite and in \[0, 1\]"),
        ("range", dict(digits=np.full((10, 28, 28, 1), 255.0)), r"finite and in \[0, 1\]"),
    )
    def test_bad_arguments_raise(self, overrides, message):
        images, labels = _square_digits()
        kwargs = dict(digits=images, labels=labels, num_scenes=4)
        kwargs.update(overrides)
        with self.assertRaisesRegex(ValueError, message):
            multi_mnist.make_scenes(**kwargs)


class RegistryMultiMnistTest(tf.test.TestCase):

    def test_held_out_scenes_are_made_of_held_out_digits(self):
        test = registry.load("multi_mnist", "test", num_examples=50, seed=3)
        gray, labels = digits.load_offline_mnist("test")
        expected = multi_mnist.make_scenes(gray, labels, 50,
                                           seed=3 + registry.TEST_SEED_OFFSET)
        self.assertAllEqual(test.images, expected.images)
        self.assertAllEqual(test.scenes.counts, expected.counts)
        self.assertEqual(test.image_shape, (50, 50, 1))
        train = registry.load("multi_mnist", "train", num_examples=50, seed=3)
        self.assertNotAllEqual(train.images, test.images)

    def test_examples_carry_the_scenes(self):
        data = registry.load("multi_mnist", "test", num_examples=30, max_objects=3,
                             image_size=40)
        examples = data.examples(limit=10)
        self.assertEqual(examples.images.shape, (10, 40, 40, 1))
        self.assertEqual(examples.scenes.boxes.shape, (10, 3, 4))
        self.assertAllEqual(examples.scenes.counts, data.scenes.counts[:10])

    def test_max_objects_is_for_multi_mnist_only(self):
        with self.assertRaisesRegex(ValueError, "max_objects applies only to multi_mnist"):
            registry.load("2_rectangles", "test", num_examples=5, max_objects=3)
        with self.assertRaisesRegex(ValueError, "max_objects must be an integer >= 1"):
            registry.load("multi_mnist", "test", num_examples=5, max_objects=0)


if __name__ == "__main__":
    tf.test.main()
