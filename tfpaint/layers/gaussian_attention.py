"""DRAW's Gaussian attention: an N x N grid of Gaussian filters that reads and writes."""

import numbers

import keras
import tensorflow as tf

# The order of the raw window parameters that the linear map emits (eq 21).
PARAM_NAMES = ("g_x", "g_y", "log_variance", "log_stride", "log_gamma")


def _is_positive_int(value):
    """Whether `value` is an integer >= 1 (a float like 3.0 counts; a bool does not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return float(value).is_integer() and value >= 1


@keras.saving.register_keras_serializable(package="tfpaint")
class GaussianAttention(keras.layers.Layer):
    """The N x N Gaussian filterbank attention of DRAW (Gregor et al. 2015).

    A linear map of a decoder state `h` gives five raw window parameters
    (eq 21): `(g~X, g~Y, log sigma^2, log delta~, log gamma) = W(h)`. They
    place an N x N grid of isotropic Gaussian filters on a `B x A` image
    (height B, width A: DRAW's A is the width, x; B the height, y):

        gX = (A + 1)/2 (g~X + 1),  gY = (B + 1)/2 (g~Y + 1)          (eqs 22-23)
        delta = (max(A, B) - 1) / (N - 1) * delta~                    (eq 24)
        mu_X^i = gX + (i - N/2 - 0.5) delta,  mu_Y^j likewise         (eqs 19-20)
        F_X[i, a] = exp(-(a - mu_X^i)^2 / (2 sigma^2)) / Z_X          (eqs 25-26)

    The paper counts filters `i = 1..N` and pixels `a = 1..A` from 1. This
    layer uses 0-based arrays, `i = 0..N-1` and `a = 0..A-1`: substituting
    `i + 1` and `a + 1` gives, in 0-based pixel coordinates,

        gX = (A + 1)/2 (g~X + 1) - 1     (the image centre (A - 1)/2 at g~X = 0)
        mu_X^i = gX + (i - (N - 1)/2) delta,   i = 0..N-1

    the same filters as the paper's, not shifted by one pixel or one filter
    (a grid indexed 0..N-1 with the 1-based formula sits one filter off
    centre). With `g~ = 0` and `delta~ = 1` the grid is symmetric about the
    image centre and its outer filter centres are `max(A, B) - 1` pixels
    apart: on the first and last pixel of the longer side (beyond the
    shorter side's ends on a non-square image, as in the paper).

    `N = 1` divides by `max(N - 1, 1) = 1`: the single filter sits at the
    centre `(gX, gY)` whatever the stride, and the reported stride is
    `(max(A, B) - 1) delta~`.

    Each filter row is normalised to sum 1 over pixels with
    `Z_X = max(sum_a exp(...), epsilon)`: rows sum to 1 wherever the filter
    reaches the image (`Z_X >= epsilon`), and fade to 0 (finite values and
    gradients, no division by 0) for a window far outside it.

    Reading (eq 27) and writing (eqs 28-29) apply the same filters to every
    channel of an NHWC image:

        read(x, x_hat, h) = gamma [F_Y x F_X^T, F_Y x_hat F_X^T]
        write(w, h) = 1/gamma F_Y^T w F_X

    so that, with the window of the same `h`,
    `<read(x)[:, 0], w> = gamma^2 <x, write(w)>` (read and write are adjoint
    up to `gamma^2`). DRAW reads and writes with distinct attention
    parameters: use one layer for reading and another for writing.

    Args:
        image_size: `(height, width)`, DRAW's `(B, A)`.
        glimpse_size: N >= 1, the side of the N x N grid of filters.
        channels: channels C of the images read and the patches written.
        kernel_initializer: initialiser of the linear map's kernel; None is
            `RandomNormal(stddev=0.05, seed=seed)`. With the zero bias, a new
            layer's window roughly covers the whole image (g~ ~ 0,
            sigma^2 ~ 1, delta~ ~ 1, gamma ~ 1), as the paper's scaling
            intends.
        bias_initializer: initialiser of the linear map's bias.
        seed: seed of the default kernel initialiser.
        epsilon: > 0, the floor of the filter normalisers `Z_X`, `Z_Y`.

    Call arguments:
        h: `(batch, features)`, the decoder state.

    Returns:
        Dict with `params` `(batch, 5)` (the raw window parameters, in the
        order of eq 21), `filter_x` F_X `(batch, N, A)`, `filter_y` F_Y
        `(batch, N, B)`, `gamma` `(batch,)`, and the window in 0-based pixel
        coordinates: `center_x` gX, `center_y` gY, `stride` delta, `variance`
        sigma^2, each `(batch,)`, and the filter centres `mu_x` `(batch, N)`,
        `mu_y` `(batch, N)`. `read` returns `(batch, 2, N, N, C)` (or
        `(batch, 2*N*N*C)` with `flatten=True`, what DRAW's encoder
        consumes); `write` returns `(batch, B, A, C)`; both return
        `(output, attention)` with `return_attention=True`, and `boxes(attention)`
        gives the windows' pixel boxes `(batch, 4)`.

    Reference:
        Gregor et al., "DRAW: A Recurrent Neural Network For Image
        Generation", ICML 2015, eqs 19-29 (section 3.2-3.3).
    """

    def __init__(
        self,
        image_size,
        glimpse_size,
        channels=1,
        kernel_initializer=None,
        bias_initializer="zeros",
        seed=None,
        epsilon=1e-8,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not (
            isinstance(image_size, (tuple, list))
            and len(image_size) == 2
            and all(_is_positive_int(s) for s in image_size)
        ):
            raise ValueError(
                "`image_size` must be (height, width) with integer entries >= 1. "
                f"Received: image_size={image_size!r}"
            )
        image_size = tuple(int(s) for s in image_size)
        for name, value in (("glimpse_size", glimpse_size), ("channels", channels)):
            if not _is_positive_int(value):
                raise ValueError(
                    f"`{name}` must be an integer >= 1. Received: {name}={value!r}"
                )
        if not (isinstance(epsilon, numbers.Real) and 0.0 < float(epsilon) < float("inf")):
            raise ValueError(f"`epsilon` must be finite and > 0. Received: epsilon={epsilon!r}")
        self.image_size = image_size
        self.glimpse_size = int(glimpse_size)
        self.channels = int(channels)
        self.seed = seed
        self.epsilon = float(epsilon)
        if kernel_initializer is None:
            self.kernel_initializer = None
            kernel_init = keras.initializers.RandomNormal(stddev=0.05, seed=seed)
        else:
            self.kernel_initializer = keras.initializers.get(kernel_initializer)
            kernel_init = self.kernel_initializer
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.dense = keras.layers.Dense(
            len(PARAM_NAMES),
            kernel_initializer=kernel_init,
            bias_initializer=self.bias_initializer,
            name="window",
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_size": self.image_size,
                "glimpse_size": self.glimpse_size,
                "channels": self.channels,
                "kernel_initializer": (
                    None
                    if self.kernel_initializer is None
                    else keras.initializers.serialize(self.kernel_initializer)
                ),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "seed": self.seed,
                "epsilon": self.epsilon,
            }
        )
        return config

    def build(self, h_shape):
        if len(h_shape) != 2 or h_shape[-1] is None:
            raise ValueError(
                "`h` must have shape (batch, features) with known features. "
                f"Received: h.shape={tuple(h_shape)}"
            )
        self.dense.build(h_shape)

    def call(self, h):
        params = self.dense(h)  # (batch, 5), eq 21
        return {"params": params, **self.filterbanks(params)}

    def filterbanks(self, params):
        """The filters and the window of raw parameters (eqs 19-26, 0-based).

        Args:
            params: `(batch, 5)` raw `(g~X, g~Y, log sigma^2, log delta~,
                log gamma)`, as the linear map emits them.

        Returns:
            Dict with `filter_x` `(batch, N, A)`, `filter_y` `(batch, N, B)`,
            `gamma`, `center_x`, `center_y`, `stride`, `variance` `(batch,)`
            and `mu_x`, `mu_y` `(batch, N)`, in 0-based pixel coordinates.
        """
        params = tf.convert_to_tensor(params, self.compute_dtype)
        if params.shape.rank != 2 or params.shape[-1] != len(PARAM_NAMES):
            raise ValueError(
                "`params` must have shape (batch, 5): (g~X, g~Y, log sigma^2, "
                f"log delta~, log gamma). Received: params.shape={params.shape}"
            )
        height, width = self.image_size  # B, A
        n = self.glimpse_size
        dtype = params.dtype
        g_x, g_y, log_variance, log_stride, log_gamma = tf.unstack(params, axis=-1)
        # eqs 22-23, then - 1: pixel a of the paper (1-based) is pixel a - 1 here.
        center_x = (width + 1.0) / 2.0 * (g_x + 1.0) - 1.0  # (batch,)
        center_y = (height + 1.0) / 2.0 * (g_y + 1.0) - 1.0  # (batch,)
        # eq 24; N = 1 has a single filter at the centre, whatever the stride.
        stride = (max(width, height) - 1.0) / max(n - 1, 1) * tf.exp(log_stride)  # (batch,)
        variance = tf.exp(log_variance)  # (batch,)
        gamma = tf.exp(log_gamma)  # (batch,)
        # eqs 19-20 with i - 1 for the paper's i: offsets (i - (N - 1)/2) delta.
        offsets = tf.range(n, dtype=dtype) - (n - 1.0) / 2.0  # (N,)
        mu_x = center_x[:, None] + offsets * stride[:, None]  # (batch, N)
        mu_y = center_y[:, None] + offsets * stride[:, None]  # (batch, N)
        return {
            "filter_x": self._filters(mu_x, variance, width),
            "filter_y": self._filters(mu_y, variance, height),
            "gamma": gamma,
            "center_x": center_x,
            "center_y": center_y,
            "stride": stride,
            "variance": variance,
            "mu_x": mu_x,
            "mu_y": mu_y,
        }

    def _filters(self, mu, variance, size):
        """Rows `exp(-(a - mu_i)^2 / (2 sigma^2)) / Z` over pixels a = 0..size-1 (eqs 25-26)."""
        pixels = tf.range(size, dtype=mu.dtype)  # (size,)
        distance = pixels - mu[..., None]  # (batch, N, size)
        # Divisions on the small tensors, products on the large: fewer ops,
        # forward and backward, than dividing every filter tap.
        scale = -0.5 / variance  # (batch,)
        filters = tf.exp(tf.square(distance) * scale[:, None, None])  # (batch, N, size)
        norm = tf.reduce_sum(filters, axis=-1, keepdims=True)  # (batch, N, 1)
        return filters * (1.0 / tf.maximum(norm, tf.constant(self.epsilon, mu.dtype)))

    def _check_image(self, name, image):
        return self._check_shape(
            name, image, (*self.image_size, self.channels),
            f"(NHWC, image_size={self.image_size}, channels={self.channels})")

    def _check_shape(self, name, value, expected, detail):
        """`value` as a tensor; a ValueError naming it unless it is `(batch, *expected)`."""
        value = tf.convert_to_tensor(value, self.compute_dtype)
        if value.shape.rank != 4 or any(
            s is not None and s != e for s, e in zip(value.shape[1:], expected)
        ):
            raise ValueError(
                f"`{name}` must have shape (batch, {', '.join(map(str, expected))}) {detail}. "
                f"Received: {name}.shape={value.shape}"
            )
        return value

    def read(self, images, errors, h, flatten=False, return_attention=False):
        """The glimpse `gamma [F_Y x F_X^T, F_Y x_hat F_X^T]` of eq 27.

        Args:
            images: `(batch, B, A, C)` the image x.
            errors: `(batch, B, A, C)` the error image x_hat.
            h: `(batch, features)` the decoder state that places the window.
            flatten: whether to return the glimpse flattened.
            return_attention: whether to return `call(h)`'s dict too (for
                `boxes` and pictures), without a second linear map.

        Returns:
            `(batch, 2, N, N, C)`: axis 1 holds the image's and the error
            image's glimpse, axes 2-3 the filter rows j (F_Y) and columns i
            (F_X). With `flatten=True`, that tensor reshaped row-major to
            `(batch, 2*N*N*C)`, the vector DRAW's encoder LSTM reads. With
            `return_attention=True`, the pair `(glimpse, attention)`.
        """
        images = self._check_image("images", images)
        errors = self._check_image("errors", errors)
        attention = self(h)
        both = tf.stack([images, errors], axis=1)  # (batch, 2, B, A, C)
        # F_Y x F_X^T as two batched matmuls over (image or error, channel):
        # faster on CPU than one einsum of the same product.
        planes = tf.transpose(both, [0, 1, 4, 2, 3])  # (batch, 2, C, B, A)
        glimpse = tf.matmul(
            tf.matmul(attention["filter_y"][:, None, None], planes),  # (batch, 2, C, N, A)
            attention["filter_x"][:, None, None], transpose_b=True)  # (batch, 2, C, N, N)
        glimpse = tf.transpose(glimpse, [0, 1, 3, 4, 2])  # (batch, 2, N, N, C)
        glimpse = attention["gamma"][:, None, None, None, None] * glimpse
        if flatten:
            n = self.glimpse_size
            glimpse = tf.reshape(glimpse, [-1, 2 * n * n * self.channels])
        return (glimpse, attention) if return_attention else glimpse

    def write(self, patch, h, return_attention=False):
        """Places a patch on the canvas: `1/gamma F_Y^T w F_X` (eq 29).

        Args:
            patch: `(batch, N, N, C)` the writing patch w (eq 28), rows j
                (F_Y) then columns i (F_X).
            h: `(batch, features)` the decoder state that places the window.
            return_attention: whether to return `call(h)`'s dict too.

        Returns:
            `(batch, B, A, C)`, to add to the canvas; with
            `return_attention=True`, the pair `(canvas, attention)`.
        """
        n = self.glimpse_size
        patch = self._check_shape("patch", patch, (n, n, self.channels),
                                  f"(glimpse_size={n}, channels={self.channels})")
        attention = self(h)
        # 1/gamma scales the N x N patch, not the image-sized product.
        planes = (tf.transpose(patch, [0, 3, 1, 2])
                  / attention["gamma"][:, None, None, None])  # (batch, C, N, N)
        canvas = tf.matmul(
            attention["filter_y"][:, None],
            tf.matmul(planes, attention["filter_x"][:, None]),  # (batch, C, N, A)
            transpose_a=True)  # (batch, C, B, A)
        canvas = tf.transpose(canvas, [0, 2, 3, 1])  # (batch, B, A, C)
        return (canvas, attention) if return_attention else canvas

    def boxes(self, attention):
        """Pixel boxes `(x0, y0, x1, y1)` of windows, for pictures.

        Each of the N filters of an axis owns a cell of one stride around its
        centre, so the box is `g -+ N delta / 2`, shifted by half a pixel to
        the convention of `spatial_transformer.affine_boxes` (pixel `i`
        covers `[i, i + 1)`, end exclusive). A new layer's window (g~ = 0,
        delta~ = 1) is a little larger than the image: `N / (N - 1)` times
        its longer side.

        Args:
            attention: the dict of `call`, `filterbanks`, or `read` / `write`
                with `return_attention=True` (`center_x`, `center_y`,
                `stride`, each `(batch,)`).

        Returns:
            `(batch, 4)` tensor of `(x0, y0, x1, y1)`.
        """
        center_x = attention["center_x"] + 0.5  # (batch,)
        center_y = attention["center_y"] + 0.5  # (batch,)
        half = self.glimpse_size * attention["stride"] / 2.0  # (batch,)
        return tf.stack(
            [center_x - half, center_y - half, center_x + half, center_y + half], axis=-1
        )  # (batch, 4)
