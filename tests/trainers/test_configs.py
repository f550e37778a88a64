"""Tests for trainers/configs: every named config of every family is usable,
documented, and speaks the one schema."""

import importlib
import itertools
import inspect
import re

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tfpaint.data import registry
from trainers import tasks
from trainers import optimization
from trainers import train
from trainers import train_lib
from trainers.configs import common
from trainers.configs import painter as painter_configs
from trainers.configs import stawm as stawm_configs

# Every task's config module: a new model family is checked as soon as its
# task is registered.
FAMILIES = {name: importlib.import_module(f"trainers.configs.{name}") for name in tasks.TASKS}
ALL = [(f"{family}_{name}", family, name)
       for family, module in FAMILIES.items() for name in sorted(module.CONFIGS)]


def resolved(family, name):
    config = FAMILIES[family].get_config(name)
    task = tasks.get_task(config)
    train_lib.resolve_config(task)
    return config, task


class ConfigsTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(ALL)
    def test_docstring_gives_the_command(self, family, name):
        doc = FAMILIES[family].CONFIGS[name].__doc__
        self.assertIn(f"bazel run //trainers:{family}", doc)
        self.assertIn(f"--config={name}", doc)
        # Every flag a docstring mentions is a program flag or a config field.
        config = FAMILIES[family].get_config(name)
        for flag in re.findall(r"--(\w+)", doc):
            self.assertTrue(flag in train.PROGRAM_FLAGS or flag in config,
                            f"{name} mentions --{flag}")

    @parameterized.named_parameters(ALL)
    def test_resolves_and_validates(self, family, name):
        config, task = resolved(family, name)
        self.assertEqual(config.name, name)
        self.assertEqual(config.task, family)
        self.assertIsInstance(task, tasks.TASKS[family])
        self.assertEqual(config.steps_per_epoch,
                         max(1, common.train_size(config) // config.batch_size))
        if FAMILIES[family].get_config(name).steps is None:
            self.assertEqual(config.steps, config.epochs * config.steps_per_epoch)

    @parameterized.named_parameters(ALL)
    def test_builds_its_model(self, family, name):
        config, task = resolved(family, name)
        shape = registry.spec(config.dataset).image_shape(config.image_size)
        model = task.build_model(shape)
        outputs = model(np.zeros((1, *shape), np.float32))
        if family == "painter":
            self.assertEqual(outputs["canvases"].shape, (1, config.num_moves, *shape))
            self.assertEqual(outputs["which"].shape, (1, config.num_moves, len(config.templates)))
        elif family == "draw":
            self.assertEqual(outputs["canvases"].shape, (1, config.num_steps, *shape))
            self.assertEqual(outputs["z"].shape, (1, config.num_steps, config.latent_units))
        elif family == "air":
            self.assertEqual(outputs["canvases"].shape, (1, config.max_steps, *shape))
            self.assertEqual(outputs["z_what"].shape, (1, config.max_steps, config.latent_units))
        elif family == "dm_vae":
            self.assertEqual(outputs["canvases"].shape, (1, config.max_steps, *shape))
            self.assertEqual(outputs["z_type"].shape, (1, config.max_steps, config.num_slots))
            self.assertEqual(outputs["eps"].shape, (1, config.max_steps, config.latent_units))
        elif family == "ws_ram":
            self.assertEqual(outputs["thetas"].shape, (1, 1, config.num_glimpses, 6))
            self.assertEqual(outputs["logits"].shape, (1, 1, 10))
        else:
            self.assertEqual(outputs["thetas"].shape, (1, config.num_glimpses, 6))
            self.assertEqual("logits" in outputs, config.objective != "draw")
            self.assertEqual("canvas" in outputs, config.objective != "classify")

    @parameterized.named_parameters(
        (n, f, c) for n, f, c in ALL
        if registry.spec(FAMILIES[f].get_config(c).dataset).source != "tfds")
    def test_data_matches_the_model(self, family, name):
        config, task = resolved(family, name)
        config.num_train, config.num_test = 8, 4
        train_set, test_set = task.load_data()
        self.assertEqual(train_set.image_shape, test_set.image_shape)
        self.assertEqual(train_set.images.shape[1:], train_set.image_shape)
        if test_set.shapes is not None and family == "painter":
            self.assertLessEqual(test_set.shapes.max_shapes, config.num_moves)
        if family == "stawm" and config.objective != "draw":
            self.assertIsNotNone(train_set.labels)


class OptimizerTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(("keras_default", None, 0.9), ("draw_style", 0.5, 0.5))
    def test_adam_beta1(self, beta1, expected):
        config = painter_configs.get_config("rectangles_2moves")
        if beta1 is not None:
            config.adam_beta1 = beta1
        optimizer = optimization.build_optimizer(config)
        self.assertAllClose(optimizer.beta_1, expected)
        self.assertAllClose(optimizer.beta_2, 0.999)
        # One step of Adam from zero moments with the gradient g: m = (1 - beta1) g.
        variable = tf.Variable([1.0, -2.0])
        optimizer.apply_gradients([(tf.constant([0.5, 1.0]), variable)])
        m = [v for v in optimizer.variables if "momentum" in v.path]
        self.assertAllClose(m[0], (1.0 - expected) * np.array([0.5, 1.0]))

    def test_bad_beta1_is_named(self):
        config = painter_configs.get_config("rectangles_2moves")
        config.adam_beta1 = 1.0
        with self.assertRaisesRegex(ValueError, r"`adam_beta1` must be in \[0, 1\)"):
            common.validate(config)


class SchemaTest(tf.test.TestCase):
    """One schema: a field name means one thing everywhere."""

    def test_shared_field_names_are_declared_once_in_common(self):
        fields = {family: set(module.base()) for family, module in FAMILIES.items()}
        declared = (set(common.base()) | set(common.add_template_writer(common.base()))
                    | set(common.add_importance_weighted_bound(common.base()))
                    | set(common.add_glimpse_sequence(common.base()))
                    | set(common.add_scene_inference(common.base())))
        for a, b in itertools.combinations(sorted(fields), 2):
            self.assertEqual(fields[a] & fields[b] - declared, set(),
                             f"fields of both {a} and {b} must be declared in configs/common.py")

    def test_every_config_of_a_family_has_the_base_fields(self):
        for family, module in FAMILIES.items():
            for name in module.CONFIGS:
                self.assertEqual(set(module.get_config(name)), set(module.base()), name)

    def test_every_shared_field_says_what_it_means(self):
        source = inspect.getsource(common.base)
        for field in common.base():
            line = re.search(rf"^\s+c\.{field} = .*$", source, re.M)
            self.assertIsNotNone(line, field)
            self.assertIn("  # ", line.group(0), f"{field} has no comment")

    def test_no_field_is_named_like_a_program_flag(self):
        for family, module in FAMILIES.items():
            self.assertEqual(set(module.base()) & set(train.PROGRAM_FLAGS), set(), family)


class GetConfigTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.named_parameters(("painter", "painter"), ("stawm", "stawm"))
    def test_unknown_config_lists_the_names(self, family):
        module = FAMILIES[family]
        with self.assertRaisesRegex(ValueError, "Unknown config 'nope'. Available: ") as cm:
            module.get_config("nope")
        for name in module.CONFIGS:
            self.assertIn(name, str(cm.exception))

    @parameterized.named_parameters(("painter", "painter"), ("stawm", "stawm"))
    def test_get_config_returns_fresh_copies(self, family):
        module = FAMILIES[family]
        a = module.get_config(module.DEFAULT)
        a.batch_size += 1
        self.assertEqual(module.get_config(module.DEFAULT).batch_size, a.batch_size - 1)

    def test_steps_follow_epochs_after_an_override(self):
        config = stawm_configs.get_config("mnist_8x8")
        config.epochs = 3
        config.dataset, config.num_train = "mnist_full", 60000
        common.derive(config)
        self.assertEqual(config.steps_per_epoch, 60000 // 128)
        self.assertEqual(config.steps, 3 * (60000 // 128))
        # Idempotent: a set `steps` is kept.
        config.epochs = 5
        self.assertEqual(common.derive(config).steps, 3 * (60000 // 128))

    def test_neither_steps_nor_epochs_is_an_error(self):
        config = painter_configs.get_config("mnist_20moves")
        config.steps = None
        with self.assertRaisesRegex(ValueError, "sets neither `steps` nor `epochs`"):
            common.derive(config)


if __name__ == "__main__":
    tf.test.main()
