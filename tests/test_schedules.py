"""Tests for tfpaint.schedules: StepExponentialDecay against its formula."""

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from tfpaint import schedules


def reference(step, lr, steps_per_epoch, decay, milestones):
    """`lr * decay^epoch / 10^(milestones passed)` (STAWM appendix D), in NumPy."""
    epoch = step / steps_per_epoch
    return lr * decay ** epoch / 10.0 ** sum(epoch >= m for m in milestones)


class StepExponentialDecayTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(
        ("no_milestones", 1e-3, 35, 0.99, ()),
        ("milestones", 1e-3, 10, 0.5, (2,)),
        ("appendix_d", 1e-3, 35, 0.99, (50, 100, 150, 190, 195)),
    )
    def test_matches_the_formula(self, lr, steps_per_epoch, decay, milestones):
        schedule = schedules.StepExponentialDecay(lr, steps_per_epoch, decay, milestones)
        steps = np.array([0, 1, steps_per_epoch // 2, steps_per_epoch, 20 * steps_per_epoch,
                          120 * steps_per_epoch + 3, 196 * steps_per_epoch])
        got = [float(schedule(tf.constant(s, tf.int64))) for s in steps]
        want = [reference(s, lr, steps_per_epoch, decay, milestones) for s in steps]
        self.assertAllClose(got, want, rtol=1e-5)

    def test_known_values(self):
        schedule = schedules.StepExponentialDecay(1e-3, 10, decay=0.5, milestones=(2,))
        self.assertAllClose([float(schedule(s)) for s in (0, 5, 10, 20, 30)],
                            [1e-3, 1e-3 * 0.5 ** 0.5, 5e-4, 2.5e-5, 1.25e-5])

    def test_serialisation_round_trip(self):
        schedule = schedules.StepExponentialDecay(2e-3, 7, 0.9, (3, 4))
        data = keras.saving.serialize_keras_object(schedule)
        self.assertEqual(data["registered_name"], "tfpaint>StepExponentialDecay")
        revived = keras.saving.deserialize_keras_object(data)
        self.assertIsInstance(revived, schedules.StepExponentialDecay)
        self.assertEqual(revived.get_config(), schedule.get_config())
        self.assertAllClose(float(revived(30)), float(schedule(30)))


if __name__ == "__main__":
    tf.test.main()
