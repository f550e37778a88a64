"""The spatial transformer: bilinear sampling of an image under an affine map.

This is the only sampler in tfpaint. Reading attention (crop a glimpse), template
writing (place a mask on the canvas) and every model built on them call it.
"""

import keras
import tensorflow as tf

IDENTITY_THETA = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)

# Positions of the two skew entries (theta12, theta21) in a row-major (6,) theta.
_SKEW_MASK = (1.0, 0.0, 1.0, 0.0, 1.0, 1.0)


def invert_affine(theta):
    """Inverts row-major 2x3 affine maps.

    Args:
        theta: `(..., 6)` maps `[a, b, c, d, e, f]` meaning
            `(x, y) -> (a x + b y + c, d x + e y + f)`.

    Returns:
        `(..., 6)`: the inverse maps. Singular maps give non-finite values.
    """
    a, b, c, d, e, f = tf.unstack(theta, axis=-1)
    det = a * e - b * d
    ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
    ic = -(ia * c + ib * f)
    if_ = -(id_ * c + ie * f)
    return tf.stack([ia, ib, ic, id_, ie, if_], axis=-1)


def affine_boxes(theta, image_size):
    """Pixel boxes `(x0, y0, x1, y1)` of the region an affine map covers.

    The region is the image of the square [-1, 1]^2 under `theta` (its
    bounding box when skewed): the part of the input a glimpse reads
    (`theta` an output-to-input map), or the part of the canvas a patch
    placed with `inverse=True` covers (`theta` its input-to-output map).

    Args:
        theta: `(..., 6)` row-major 2x3 maps (arrays or tensors).
        image_size: `(height, width)` of the image the boxes are in.

    Returns:
        `(..., 4)` float32 tensor of `(x0, y0, x1, y1)` in pixels (end
        exclusive, as pixel `i` covers `[i, i + 1)`).
    """
    a, b, c, d, e, f = tf.unstack(tf.convert_to_tensor(theta, tf.float32), axis=-1)
    half_x, half_y = tf.abs(a) + tf.abs(b), tf.abs(d) + tf.abs(e)
    height, width = (float(n) for n in image_size)
    to_x = lambda u: (u + 1.0) * width / 2.0
    to_y = lambda u: (u + 1.0) * height / 2.0
    return tf.stack([to_x(c - half_x), to_y(f - half_y), to_x(c + half_x), to_y(f + half_y)],
                    axis=-1)  # (..., 4)


def _normalised_centres(n, dtype):
    """Pixel centres of an axis of `n` pixels in [-1, 1] coordinates."""
    return (2.0 * tf.range(n, dtype=dtype) + 1.0) / n - 1.0  # (n,)


def _to_pixels(u, n):
    """Maps normalised coordinates to pixel coordinates of an axis of `n` pixels."""
    return ((u + 1.0) * n - 1.0) / 2.0


def _check_finite_theta(theta):
    """Raises a ValueError naming the rows of a non-finite `theta` (eager only)."""
    finite = tf.reduce_all(tf.math.is_finite(theta), axis=-1)  # (batch,)
    if bool(tf.reduce_all(finite)):
        return
    rows = tf.where(tf.logical_not(finite))[:, 0].numpy().tolist()
    first = theta.numpy()[rows[0]].tolist()
    raise ValueError(
        "`theta` must be finite (a NaN or infinite map would sample a NaN or "
        f"blank image). Received: non-finite theta in rows {rows[:10]}"
        f"{' ...' if len(rows) > 10 else ''} of {theta.shape[0]}, e.g. "
        f"theta[{rows[0]}]={first}"
    )


def _tent(coords, n):
    """Bilinear weights max(0, 1 - |coords - m|) for m = 0..n-1 (eq 2.21)."""
    m = tf.range(n, dtype=coords.dtype)
    return tf.nn.relu(1.0 - tf.abs(coords[..., None] - m))  # (..., n)


@keras.saving.register_keras_serializable(package="tfpaint")
class SpatialTransformer(keras.layers.Layer):
    """Samples an image under an affine map, bilinearly (Jaderberg et al. 2015).

    Output pixel `(x_V, y_V)` (normalised to [-1, 1], pixel centres) takes the
    input value at `theta @ (x_V, y_V, 1)` (thesis eq 2.20), interpolated with
    the bilinear kernel of thesis eq 2.21. Points outside the input read zero,
    so a written template leaves the rest of the canvas untouched.

    Two implementations of eq 2.21 share this layer. When skew is forbidden the
    map is axis-aligned, the kernel factorises into a row and a column kernel,
    and sampling is two small matrix products (`Ky @ U @ Kx^T`), which XLA and
    TFLite run fast. A general affine uses a flat gather of the four
    neighbours. Both give the same numbers (tested).

    Args:
        output_size: `(height, width)` of the sampled image.
        allow_skew: if False, theta12 and theta21 are held at zero (thesis
            section 5.2) and the separable sampler is used.
        inverse: if True, `theta` is read as the forward map from input to
            output coordinates (where to place a patch on a canvas) and is
            inverted before sampling.
        sampler: `"auto"` (separable without skew, gather with it),
            `"separable"` (requires `allow_skew=False`) or `"gather"`.

    Call arguments:
        image: `(batch, in_height, in_width, channels)`, or with `weights` a
            bank `(K, in_height, in_width, channels)` shared by the batch.
        theta: `(batch, 6)`, row-major 2x3 map from output to input
            coordinates in [-1, 1] (from input to output if `inverse`).
        weights: optional `(batch, K)`: sample the mix
            `sum_k weights[:, k] * image[k]` (a template choice) instead.

    Returns:
        `(batch, height, width, channels)`. A non-finite `theta` raises a
        `ValueError` in eager mode. Inside a `tf.function` both samplers give
        NaN wherever the map gives a NaN coordinate (everywhere, for a NaN
        map), never a blank image.

    Reference:
        Thesis eqs 2.20-2.21; Jaderberg et al., "Spatial Transformer Networks",
        NeurIPS 2015.
    """

    def __init__(
        self,
        output_size,
        allow_skew=True,
        inverse=False,
        sampler="auto",
        **kwargs,
    ):
        super().__init__(**kwargs)
        output_size = tuple(int(s) for s in output_size)
        if len(output_size) != 2 or min(output_size) < 1:
            raise ValueError(
                "`output_size` must be (height, width) with positive entries. "
                f"Received: output_size={output_size}"
            )
        if sampler not in ("auto", "separable", "gather"):
            raise ValueError(
                "`sampler` must be one of 'auto', 'separable', 'gather'. "
                f"Received: sampler={sampler!r}"
            )
        if sampler == "separable" and allow_skew:
            raise ValueError(
                "The separable sampler handles axis-aligned maps only: "
                "set allow_skew=False or use sampler='gather'."
            )
        self.output_size = output_size
        self.allow_skew = bool(allow_skew)
        self.inverse = bool(inverse)
        self.sampler = sampler

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "output_size": self.output_size,
                "allow_skew": self.allow_skew,
                "inverse": self.inverse,
                "sampler": self.sampler,
            }
        )
        return config

    @property
    def separable(self):
        return self.sampler == "separable" or (
            self.sampler == "auto" and not self.allow_skew
        )

    def prepare_theta(self, theta):
        """Applies the skew constraint and the inversion to `theta`."""
        theta = tf.convert_to_tensor(theta, dtype=self.compute_dtype)
        if theta.shape.rank is not None and theta.shape[-1] != 6:
            raise ValueError(
                "`theta` must have shape (..., 6) (a row-major 2x3 affine). "
                f"Received: theta.shape={theta.shape}"
            )
        if not self.allow_skew:
            theta = theta * tf.constant(_SKEW_MASK, theta.dtype)
        if self.inverse:
            theta = invert_affine(theta)
        return theta

    def call(self, image, theta, weights=None):
        image = tf.convert_to_tensor(image, dtype=self.compute_dtype)
        if image.shape.rank != 4:
            raise ValueError(
                "`image` must have shape (batch, height, width, channels). "
                f"Received: image.shape={image.shape}"
            )
        raw = tf.convert_to_tensor(theta, dtype=self.compute_dtype)
        if tf.executing_eagerly():
            # Checked on the map as given: a NaN skew entry that
            # allow_skew=False zeroes is still a broken input.
            _check_finite_theta(raw)
        theta = self.prepare_theta(raw)  # (B, 6)
        if weights is not None:
            return self._sample_bank(image, theta, weights)
        if self.separable:
            kernel_y, kernel_x = self.separable_kernels(
                theta, tf.shape(image)[1], tf.shape(image)[2]
            )  # (B, h, H), (B, w, W)
            return tf.einsum("bhy,byxc,bwx->bhwc", kernel_y, image, kernel_x)
        return self._gather_sample(image, theta)

    def _sample_bank(self, bank, theta, weights):
        """Samples `sum_k weights[n, k] * bank[k]` under `theta[n]`.

        Sampling is linear in the image, so a convex mix of K shared images can
        be sampled without materialising one mixed image per example. The
        separable path contracts the column kernels of every example with the
        whole bank in a single matrix product, then folds the weights into the
        row kernels: two matrix products for any number of examples.
        """
        weights = tf.convert_to_tensor(weights, self.compute_dtype)
        num, in_h, in_w, channels = bank.shape
        if weights.shape.rank != 2 or weights.shape[-1] != num:
            raise ValueError(
                f"`weights` must have shape (batch, {num}) to mix a bank of {num} "
                f"images. Received: weights.shape={weights.shape}"
            )
        if (
            theta.shape[0] is not None
            and weights.shape[0] is not None
            and theta.shape[0] != weights.shape[0]
        ):
            raise ValueError(
                "`theta` and `weights` must have the same batch size. Received: "
                f"theta.shape={theta.shape}, weights.shape={weights.shape}"
            )
        height, width = self.output_size
        if not self.separable:
            mixed = tf.tensordot(weights, bank, axes=1)  # (B, H, W, C)
            return self._gather_sample(mixed, theta)
        kernel_y, kernel_x = self.separable_kernels(theta, in_h, in_w)
        # (W, K*H*C): the bank with its column axis first, for one big product.
        bank_cols = tf.reshape(tf.transpose(bank, [2, 0, 1, 3]), [in_w, -1])
        cols = tf.matmul(tf.reshape(kernel_x, [-1, in_w]), bank_cols)  # (B*w, K*H*C)
        cols = tf.reshape(cols, [-1, width, num * in_h, channels])  # (B, w, K*H, C)
        rows = weights[:, None, :, None] * kernel_y[:, :, None, :]  # (B, h, K, H)
        rows = tf.reshape(rows, [-1, height, num * in_h])  # (B, h, K*H)
        if channels == 1:
            out = tf.matmul(rows, cols[..., 0], transpose_b=True)  # (B, h, w)
            return out[..., None]
        cols = tf.transpose(cols, [0, 3, 1, 2])  # (B, C, w, K*H)
        out = tf.matmul(rows[:, None], cols, transpose_b=True)  # (B, C, h, w)
        return tf.transpose(out, [0, 2, 3, 1])

    def separable_kernels(self, theta, in_height, in_width):
        """Row and column bilinear kernels of axis-aligned maps.

        Args:
            theta: `(..., 6)` maps with zero skew (already prepared).
            in_height: height of the sampled image.
            in_width: width of the sampled image.

        Returns:
            `kernel_y` `(..., height, in_height)` and `kernel_x`
            `(..., width, in_width)` such that sampling `U` gives
            `kernel_y @ U @ kernel_x^T`.
        """
        height, width = self.output_size
        dtype = theta.dtype
        xs = _normalised_centres(width, dtype)  # (w,)
        ys = _normalised_centres(height, dtype)  # (h,)
        x_u = theta[..., 0:1] * xs + theta[..., 2:3]  # (..., w)
        y_u = theta[..., 4:5] * ys + theta[..., 5:6]  # (..., h)
        in_w = tf.cast(in_width, dtype)
        in_h = tf.cast(in_height, dtype)
        kernel_x = _tent(_to_pixels(x_u, in_w), in_width)  # (..., w, W)
        kernel_y = _tent(_to_pixels(y_u, in_h), in_height)  # (..., h, H)
        return kernel_y, kernel_x

    def _gather_sample(self, image, theta):
        height, width = self.output_size
        dtype = image.dtype
        batch = tf.shape(image)[0]
        in_h, in_w, channels = image.shape[1], image.shape[2], image.shape[3]
        if in_h is None or in_w is None:
            in_h, in_w = tf.shape(image)[1], tf.shape(image)[2]
        if channels is None:
            channels = tf.shape(image)[3]
        ys, xs = tf.meshgrid(
            _normalised_centres(height, dtype),
            _normalised_centres(width, dtype),
            indexing="ij",
        )  # (h, w) each
        grid = tf.stack(
            [tf.reshape(xs, [-1]), tf.reshape(ys, [-1]), tf.ones([height * width], dtype)]
        )  # (3, h*w)
        coords = tf.matmul(tf.reshape(theta, [-1, 2, 3]), grid[None])  # (B, 2, h*w)
        x = _to_pixels(coords[:, 0], tf.cast(in_w, dtype))  # (B, h*w)
        y = _to_pixels(coords[:, 1], tf.cast(in_h, dtype))  # (B, h*w)
        x0 = tf.floor(x)
        y0 = tf.floor(y)
        flat = tf.reshape(image, [batch, -1, channels])  # (B, H*W, C)
        # A NaN coordinate (from a NaN or infinite map) samples NaN, as the
        # separable kernels do, never zero: a broken map must make the loss
        # NaN, not paint a blank move. (`u != u` needs only TFLite builtins.)
        unknown = tf.not_equal(x, x) | tf.not_equal(y, y)  # (B, h*w)
        out = 0.0
        for dy in (0.0, 1.0):
            for dx in (0.0, 1.0):
                xi = x0 + dx
                yi = y0 + dy
                weight = (1.0 - tf.abs(x - xi)) * (1.0 - tf.abs(y - yi))  # (B, h*w)
                inside = (
                    (xi >= 0.0)
                    & (xi <= tf.cast(in_w, dtype) - 1.0)
                    & (yi >= 0.0)
                    & (yi <= tf.cast(in_h, dtype) - 1.0)
                )
                weight = tf.where(inside | unknown, weight, tf.zeros_like(weight))
                xi_c = tf.clip_by_value(tf.cast(xi, tf.int32), 0, in_w - 1)
                yi_c = tf.clip_by_value(tf.cast(yi, tf.int32), 0, in_h - 1)
                index = yi_c * in_w + xi_c  # (B, h*w)
                values = tf.gather(flat, index, batch_dims=1)  # (B, h*w, C)
                out = out + weight[..., None] * values
        return tf.reshape(out, [batch, height, width, channels])

    def compute_output_shape(self, image_shape, theta_shape=None, weights_shape=None):
        # With a shared bank the batch comes from theta, not from the images.
        batch = theta_shape[0] if theta_shape is not None else image_shape[0]
        return (batch, *self.output_size, image_shape[-1])
