"""Tests for trainers/configs/painter.py: every named config is usable and documented."""

import re

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tfpaint.data import pipelines
from tfpaint.layers import template_bank
from trainers import painter as painter_main
from trainers import painter_lib
from trainers.configs import painter as configs

NAMES = sorted(configs.CONFIGS)
# Datasets read from a tensorflow-datasets data_dir, unavailable here.
TFDS = tuple(pipelines.TFDS_NAMES)


def named(names):
    return [(name, name) for name in names]


class ConfigsTest(tf.test.TestCase, parameterized.TestCase):

    def test_registry(self):
        self.assertLen(NAMES, 15)
        for name, make in configs.CONFIGS.items():
            self.assertEqual(make.__name__, name)

    @parameterized.named_parameters(named(NAMES))
    def test_docstring_gives_the_command(self, name):
        doc = configs.CONFIGS[name].__doc__
        self.assertIn("bazel run //trainers:painter", doc)
        self.assertIn(f"--config={name}", doc)
        # Every flag a docstring mentions exists.
        for flag in re.findall(r"--(\w+)", doc):
            self.assertIn(flag, painter_main.FLAGS, f"{name} mentions --{flag}")

    @parameterized.named_parameters(named(NAMES))
    def test_fields_are_valid(self, name):
        config = configs.get_config(name)
        self.assertEqual(config.name, name)
        self.assertEqual(set(config), set(configs.base()))
        self.assertIn(config.model, painter_lib.MODELS)
        self.assertIn(config.dataset, pipelines.DATASETS)
        self.assertIn(config.reconstruction, ("mse", "ce"))
        for template in config.templates:
            self.assertIn(template, template_bank.TEMPLATE_NAMES)
        self.assertGreater(config.steps, 0)
        self.assertGreater(config.batch_size, 0)

    @parameterized.named_parameters(named(NAMES))
    def test_builds_a_model(self, name):
        config = configs.get_config(name)
        shape = (config.image_size, config.image_size, 1)
        model = painter_lib.build_model(config, shape)
        self.assertEqual(model.image_shape, shape)
        self.assertEqual(model.num_moves, config.num_moves)
        self.assertEqual(model.templates, tuple(config.templates))
        out = model(np.zeros((1,) + shape, np.float32))
        self.assertEqual(out["canvases"].shape, (1, config.num_moves) + shape)
        self.assertEqual(out["which"].shape, (1, config.num_moves, len(config.templates)))

    @parameterized.named_parameters(
        named(n for n in NAMES if configs.get_config(n).dataset not in TFDS)
    )
    def test_data_matches_image_size(self, name):
        config = configs.get_config(name)
        config.num_train, config.num_test = 8, 4
        train_set, test_set = painter_lib.load_data(config)
        shape = (config.image_size, config.image_size, 1)
        self.assertEqual(train_set.image_shape, shape)
        self.assertEqual(test_set.image_shape, shape)
        if config.dataset in pipelines.shapes_lib.SHAPE_DATASETS:
            self.assertIsNotNone(test_set.shapes)
            self.assertLessEqual(test_set.shapes.max_shapes, config.num_moves)


if __name__ == "__main__":
    tf.test.main()
