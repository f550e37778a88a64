"""Small Painters, exported once per test class, for the export tests."""

import numpy as np
import tensorflow as tf

from tfpaint.models import painter
from tfpaint.models import stawm

GRAY = (12, 12, 1)
RGB = (10, 10, 3)

# name, class, constructor arguments (small, so each export takes seconds).
VARIANTS = {
    "gray_over": (painter.SimplePainter, dict(
        num_moves=3, image_shape=GRAY, templates=("circle", "square"), template_size=8,
        hidden_units=16, initial_scale=1.5, seed=1)),
    "rgb_over": (painter.SimplePainter, dict(
        num_moves=2, image_shape=RGB, templates=("circle",), template_size=8,
        hidden_units=16, initial_scale=1.5, seed=2)),
    "gray_additive": (painter.SimplePainter, dict(
        num_moves=3, image_shape=GRAY, templates=("square", "line"), template_size=8,
        canvas="additive", hidden_units=16, seed=3)),
    # Moves ordered by a learned depth: exported bottom to top, the canvas the soft composite.
    "depth_sorted": (painter.SimplePainter, dict(
        num_moves=3, image_shape=GRAY, templates=("square",), template_size=8,
        hidden_units=16, initial_scale=1.5, depth_sorter=True, seed=8)),
    "recurrent": (painter.RecurrentPainter, dict(
        num_moves=3, image_shape=GRAY, templates=("circle",), template_size=8,
        lstm_units=16, seed=4)),
}


# Small STAWM models: a classifier, a drawer (additive canvas) and the
# sketchpad (both heads, Bernoulli canvas).
_STAWM = dict(image_shape=GRAY, num_glimpses=3, glimpse_size=6, memory_size=8, rnn_units=16,
              context_filters=(4, 4), context_strides=(2, 2), glimpse_filters=(4,),
              glimpse_strides=(1,), affine_hidden=8, num_classes=5, latent_units=2)
STAWM_VARIANTS = {
    "stawm_classify": (stawm.STAWM, dict(heads=("classify",), seed=5, **_STAWM)),
    "stawm_draw": (stawm.STAWM, dict(heads=("draw",), seed=6, **_STAWM)),
    "stawm_sketchpad": (stawm.STAWM, dict(heads=("classify", "draw"), canvas="bernoulli",
                                          seed=7, **_STAWM)),
}


def make_model(name):
    cls, kwargs = {**VARIANTS, **STAWM_VARIANTS}[name]
    model = cls(**kwargs)
    model(tf.zeros((1, *kwargs["image_shape"])))
    return model


def images(shape, num=4, seed=0):
    return np.random.default_rng(seed).uniform(size=(num, *shape)).astype(np.float32)
