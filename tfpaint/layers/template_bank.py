"""The template bank: binary shape masks and the soft choice among them."""

import keras
import numpy as np
import tensorflow as tf

TEMPLATE_NAMES = ("circle", "square", "line", "curve", "transparency")


def _centred_grid(size):
    """Pixel-centre coordinates in [-1, 1] of a `size` x `size` mask."""
    c = (2.0 * np.arange(size) + 1.0) / size - 1.0
    return np.meshgrid(c, c, indexing="ij")  # y, x


def make_template(name, size):
    """Returns the binary mask of a named template (thesis appendix A.2).

    Masks are 1 inside the shape and 0 outside; a template fills its square so
    that the affine `where` alone decides its extent on the canvas.

    Args:
        name: one of `TEMPLATE_NAMES`.
        size: side of the square mask in pixels.

    Returns:
        `(size, size)` float32 NumPy array.
    """
    if name not in TEMPLATE_NAMES:
        raise ValueError(
            f"Unknown template {name!r}; choose from {', '.join(TEMPLATE_NAMES)}."
        )
    if int(size) < 4:
        raise ValueError(f"Template size must be at least 4 pixels. Received: {size}")
    y, x = _centred_grid(int(size))
    r = np.sqrt(x**2 + y**2)
    if name == "circle":
        mask = r <= 1.0
    elif name == "square":
        mask = np.ones_like(x, dtype=bool)
    elif name == "line":
        # A horizontal bar a seventh of the side thick, across the whole width.
        mask = np.abs(y) <= 1.0 / 7.0
    elif name == "curve":
        # The upper half of a ring: an arc a stroke can bend into many shapes.
        mask = (np.abs(r - 0.75) <= 1.0 / 7.0) & (y <= 0.15)
    else:
        mask = np.zeros_like(x, dtype=bool)
    return mask.astype(np.float32)


@keras.saving.register_keras_serializable(package="tfpaint")
class TemplateBank(keras.layers.Layer):
    """A bank of K template masks chosen by a convex combination.

    The choice weights are `w = softmax(gamma * (logits + eps))`, with
    `eps ~ N(0, eta^2)` added only in training. This is weight sharpening (thesis
    eq 3.1) applied to `w' = softmax(logits)`: `w'^gamma / sum_j w'_j^gamma` equals
    `softmax(gamma * logits)`, and the exploration noise goes on the logits
    before the softmax so the weights stay normalised and positive (section 3.3).
    Large `gamma` tends to a one-hot choice.

    Args:
        templates: names from `TEMPLATE_NAMES`, or an array `(K, S, S)` of masks.
        size: mask side S when `templates` are names.
        learnable: if True, the masks are trainable weights (thesis section 6.2).
        sharpening: gamma of eq 3.1 (1 means no sharpening).
        exploration_noise: eta, the standard deviation of the logit noise.
        seed: seed of the exploration noise.

    Call arguments:
        logits: `(..., K)` unnormalised template scores (`h_which` before the
            softmax).
        training: whether to add the exploration noise.

    Returns:
        Tuple `(weights, masks)`: `(..., K)` convex weights and `(..., S, S)`
        the weighted sum of the template masks.

    Reference:
        Thesis eqs 3.1-3.2, section 3.3; Graves et al. 2014 (sharpening).
    """

    def __init__(
        self,
        templates=("square",),
        size=28,
        learnable=False,
        sharpening=1.0,
        exploration_noise=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(templates, str):
            templates = (templates,)
        if len(templates) == 0:
            raise ValueError("`templates` must name at least one template.")
        if all(isinstance(t, str) for t in templates):
            self.templates = tuple(templates)
            initial = np.stack([make_template(t, size) for t in templates])
        else:
            initial = np.asarray(templates, dtype=np.float32)
            if initial.ndim != 3 or initial.shape[1] != initial.shape[2]:
                raise ValueError(
                    "Template masks must have shape (K, S, S). "
                    f"Received: {initial.shape}"
                )
            self.templates = initial.tolist()
            size = initial.shape[1]
        if sharpening <= 0:
            raise ValueError(f"`sharpening` must be positive. Received: {sharpening}")
        if exploration_noise < 0:
            raise ValueError(
                f"`exploration_noise` must be >= 0. Received: {exploration_noise}"
            )
        self.size = int(size)
        self.learnable = bool(learnable)
        self.sharpening = float(sharpening)
        self.exploration_noise = float(exploration_noise)
        self.seed = seed
        self.num_templates = initial.shape[0]
        self._initial = initial
        self.seed_generator = keras.random.SeedGenerator(seed)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "templates": self.templates,
                "size": self.size,
                "learnable": self.learnable,
                "sharpening": self.sharpening,
                "exploration_noise": self.exploration_noise,
                "seed": self.seed,
            }
        )
        return config

    def build(self, logits_shape=None):
        self.masks = self.add_weight(
            name="masks",
            shape=self._initial.shape,
            initializer=keras.initializers.Constant(self._initial),
            trainable=self.learnable,
        )

    def choice_weights(self, logits, training=False):
        """Convex template weights from logits (eqs 3.1-3.2)."""
        logits = tf.convert_to_tensor(logits, self.compute_dtype)
        if logits.shape[-1] is not None and logits.shape[-1] != self.num_templates:
            raise ValueError(
                f"Expected {self.num_templates} template logits in the last axis. "
                f"Received: logits.shape={logits.shape}"
            )
        if training and self.exploration_noise > 0:
            logits = logits + self.exploration_noise * keras.random.normal(
                tf.shape(logits), seed=self.seed_generator, dtype=logits.dtype
            )
        return tf.nn.softmax(self.sharpening * logits, axis=-1)

    def bank(self):
        """The K masks `(K, S, S)`; learned ones are clipped to valid opacities."""
        masks = tf.cast(self.masks, self.compute_dtype)
        if self.learnable:
            masks = tf.clip_by_value(masks, 0.0, 1.0)
        return masks

    def mix(self, weights):
        """The convex combination `sum_k w_k T_k` of the masks, `(..., S, S)`."""
        return tf.tensordot(weights, tf.cast(self.bank(), weights.dtype), axes=1)

    def call(self, logits, training=False):
        weights = self.choice_weights(logits, training=training)  # (..., K)
        return weights, self.mix(weights)  # (..., K), (..., S, S)
