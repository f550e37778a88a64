"""The README's Python example runs and the names it documents exist."""

import os
import re

import tensorflow as tf

_README = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "README.md")


def _readme():
    with open(_README) as f:
        return f.read()


class ReadmeTest(tf.test.TestCase):

    def test_python_example_runs_with_documented_shapes(self):
        blocks = re.findall(r"```python\n(.*?)```", _readme(), flags=re.S)
        self.assertNotEmpty(blocks)
        scope = {}
        exec(blocks[0], scope)  # pylint: disable=exec-used
        out = scope["out"]
        # Every shape the example's comments state must be what the model returns.
        for key, shape in re.findall(r'out\["(\w+)"\]\s+# \(([\d, ]+)\)', blocks[0]):
            expected = tuple(int(s) for s in shape.split(","))
            self.assertEqual(tuple(out[key].shape), expected, key)

    def test_documented_layers_and_models_exist(self):
        import tfpaint.layers
        import tfpaint.models

        for module, name in re.findall(r"`tfpaint\.(layers|models)\.(\w+)`", _readme()):
            package = tfpaint.layers if module == "layers" else tfpaint.models
            self.assertTrue(hasattr(package, name), f"tfpaint.{module}.{name}")


if __name__ == "__main__":
    tf.test.main()
