"""Tests for tfpaint.files."""

import os
import tempfile
from unittest import mock

from absl.testing import parameterized
import tensorflow as tf

from tfpaint import files


class AtomicWriteTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(
        ("text", "café\n", "r", {"encoding": "utf-8"}),
        ("bytes", b"GIF89a\x00\xff", "rb", {}),
    )
    def test_writes_and_replaces(self, data, mode, kwargs):
        directory = tempfile.mkdtemp()
        path = os.path.join(directory, "new", "dir", "file")
        self.assertEqual(files.atomic_write(path, data), path)
        self.assertEqual(files.atomic_write(path, data * 2), path)
        with open(path, mode, **kwargs) as f:
            self.assertEqual(f.read(), data * 2)
        self.assertEqual(os.listdir(os.path.dirname(path)), ["file"])  # no temporary left

    def test_failed_write_keeps_the_old_file(self):
        path = os.path.join(tempfile.mkdtemp(), "metrics.json")
        files.atomic_write(path, "old")
        with mock.patch.object(files.os, "replace", side_effect=OSError("disk full")):
            with self.assertRaisesRegex(OSError, "disk full"):
                files.atomic_write(path, "new")
        with open(path) as f:
            self.assertEqual(f.read(), "old")
        self.assertEqual(os.listdir(os.path.dirname(path)), ["metrics.json"])

    def test_rejects_other_types(self):
        with self.assertRaisesRegex(TypeError, "`data` must be str or bytes"):
            files.atomic_write(os.path.join(tempfile.mkdtemp(), "x"), 3)


if __name__ == "__main__":
    tf.test.main()
