"""Tests for tfpaint.data.pipelines: make_pipeline and the augmentation."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tfpaint.data import pipelines
from tfpaint.data import registry
from tfpaint.data import shapes


def _batches(pipeline, num):
    return [batch["image"].numpy() for batch in pipeline.take(num)]


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
        data = registry.load("2_rectangles", "train", num_examples=50)
        pipeline = pipelines.make_pipeline(data, 16)
        self.assertEqual(pipeline.element_spec["image"].shape, (16, 28, 28, 1))
        self.assertEqual(pipeline.element_spec["image"].dtype, tf.float32)
        self.assertNotIn("label", pipeline.element_spec)
        for batch in _batches(pipeline, 5):  # more than one epoch
            self.assertEqual(batch.shape, (16, 28, 28, 1))

    def test_labels_stay_with_their_images(self):
        data = registry.load("mnist", "test", num_examples=40)
        index = {img.tobytes(): label for img, label in zip(data.images, data.labels)}
        pipeline = pipelines.make_pipeline(data, 8, seed=2)
        for batch in pipeline.take(7).as_numpy_iterator():
            self.assertEqual(batch["label"].dtype, np.int32)
            self.assertEqual([index[img.tobytes()] for img in batch["image"]],
                             batch["label"].tolist())

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
            self.images, 6, shuffle=False, repeat=False, drop_remainder=drop_remainder
        )
        batches = [batch["image"] for batch in pipeline.as_numpy_iterator()]
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


class AugmentTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        # Distinct images: every pixel value is unique within an image.
        rng = np.random.default_rng(0)
        self.images = rng.uniform(size=(16, 9, 9, 1)).astype(np.float32)

    @staticmethod
    def shifted(image, dy, dx, max_shift):
        """`image` moved by (dy, dx) pixels, edges mirrored (NumPy reference)."""
        padded = np.pad(image, [(max_shift, max_shift)] * 2 + [(0, 0)], mode="symmetric")
        h, w = image.shape[:2]
        return padded[max_shift - dy:max_shift - dy + h, max_shift - dx:max_shift - dx + w]

    def test_each_shifted_image_is_the_original_moved_by_a_drawn_offset(self):
        out = pipelines.random_shift(tf.constant(self.images), 2, seed=(3, 5)).numpy()
        offsets = []
        for image, moved in zip(self.images, out):
            matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                       if np.array_equal(self.shifted(image, dy, dx, 2), moved)]
            self.assertLen(matches, 1)
            offsets.append(matches[0])
        # Offsets are drawn per image, from the whole range.
        self.assertGreater(len(set(offsets)), 5)
        self.assertTrue(any(o != (0, 0) for o in offsets))

    def test_rotation_turns_about_the_centre(self):
        image = np.zeros((1, 9, 9, 1), np.float32)
        image[0, 4, 6] = 1.0  # two pixels right of the centre
        out = pipelines.random_rotation(tf.constant(np.repeat(image, 64, 0)), 90.0,
                                        seed=(1, 2)).numpy()
        # Mass stays near radius 2 about the centre whatever the angle.
        ys, xs = np.mgrid[:9, :9]
        radius = np.sqrt((ys - 4) ** 2 + (xs - 4) ** 2)
        mean_radius = (out[..., 0] * radius).sum((1, 2)) / out[..., 0].sum((1, 2))
        self.assertAllClose(mean_radius, np.full(64, 2.0), atol=0.35)
        self.assertGreater(np.std(out[:, 4, 6, 0]), 0.1)  # angles differ between images
        self.assertLessEqual(out.max(), 1.0)

    def test_flip_mirrors_about_half_the_images(self):
        batch = {"image": tf.constant(self.images)}
        out = pipelines.augment(batch, tf.constant([0, 7], tf.int64), random_flip=True)
        flipped = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out["image"].numpy(),
                                                                   self.images)]
        kept = [np.array_equal(o, i) for o, i in zip(out["image"].numpy(), self.images)]
        self.assertTrue(all(f or k for f, k in zip(flipped, kept)))
        self.assertBetween(sum(flipped), 3, 13)

    def test_same_key_same_change_and_labels_pass_through(self):
        batch = {"image": tf.constant(self.images), "label": tf.range(16)}
        key = tf.constant([4, 9], tf.int64)
        a = pipelines.augment(batch, key, max_shift=1, max_rotation=15.0, random_flip=True)
        b = pipelines.augment(batch, key, max_shift=1, max_rotation=15.0, random_flip=True)
        c = pipelines.augment(batch, key + [0, 1], max_shift=1, max_rotation=15.0)
        self.assertAllEqual(a["image"], b["image"])
        self.assertNotAllClose(a["image"], c["image"])
        self.assertAllEqual(a["label"], batch["label"])

    def test_pipeline_augments_by_batch_index(self):
        def first(seed):
            pipeline = pipelines.make_pipeline(self.images, 8, seed=seed, max_shift=1)
            return np.stack(_batches(pipeline, 6))

        reference = first(0)
        for attempt in range(2):  # however the parallel map is scheduled
            self.assertAllEqual(first(0), reference, f"build {attempt + 1}")
        self.assertNotAllClose(first(1), reference)

    def test_binarize_draws_each_pixel_with_its_gray_value(self):
        gray = np.tile(np.linspace(0.0, 1.0, 9, dtype=np.float32)[None, None, :, None],
                       (400, 9, 1, 1))  # (400, 9, 9, 1): column j has gray j/8
        out = pipelines.augment({"image": tf.constant(gray)}, tf.constant([2, 3], tf.int64),
                                binarize=True)["image"].numpy()
        self.assertAllEqual(np.unique(out), [0.0, 1.0])
        # Column means follow the gray values (3,600 draws each: sd <= 0.009).
        self.assertAllClose(out.mean((0, 1, 3)), np.linspace(0.0, 1.0, 9), atol=0.04)
        self.assertAllEqual(out[..., 0, :], np.zeros_like(out[..., 0, :]))  # gray 0 stays 0
        self.assertAllEqual(out[..., -1, :], np.ones_like(out[..., -1, :]))  # gray 1 stays 1

    def test_binarized_training_set_gets_new_bits_every_epoch(self):
        dataset = registry.load("mnist_binarized", "train", num_examples=8)
        self.assertTrue(dataset.binarize)
        pipeline = pipelines.make_pipeline(dataset, 8, seed=0, shuffle=False)
        first, second = (b["image"].numpy() for b in pipeline.take(2))
        self.assertAllEqual(np.unique(first), [0.0, 1.0])
        self.assertNotAllClose(first, second)  # same digits, fresh bits
        self.assertAllClose(first.mean(), dataset.images.mean(), atol=0.02)

    @parameterized.named_parameters(("shift", dict(max_shift=-1), "max_shift must be >= 0"),
                                    ("rotation", dict(max_rotation=-5.0), "max_rotation must"))
    def test_negative_augmentation_raises(self, kwargs, message):
        with self.assertRaisesRegex(ValueError, message):
            pipelines.make_pipeline(self.images, 4, **kwargs)


if __name__ == "__main__":
    tf.test.main()
