"""tfpaint: attention-based, stroke-by-stroke image models in TensorFlow 2 / Keras 3."""

__version__ = "0.1.0"
