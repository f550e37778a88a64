"""The Hebb-Rosenblatt memory: a plastic M x M weight matrix learned over a glimpse sequence."""

import warnings

import keras
import tensorflow as tf

ACTIVATIONS = ("relu6", "sigmoid", "linear")
STABILITY_CHECKS = ("error", "warn", "none")


def _activation(name):
    if name == "relu6":
        return tf.nn.relu6
    if name == "sigmoid":
        return tf.sigmoid
    return tf.identity


def stability_violations(eta, delta, theta):
    """The conditions of appendix A that the rates break (empty if stable).

    The iteration of eq 15 is non-decreasing, so the memory's responses stay
    bounded (eq 16), only when `eta > delta > 0` and `theta >= 0`.

    Args:
        eta: learning rate of the Hebbian term.
        delta: decay rate.
        theta: Rosenblatt identity transmission.

    Returns:
        A list of human-readable violated conditions.
    """
    broken = []
    if not delta > 0:
        broken.append(f"delta > 0 (delta={delta})")
    if not eta > delta:
        broken.append(f"eta > delta (eta={eta}, delta={delta})")
    if not theta >= 0:
        broken.append(f"theta >= 0 (theta={theta})")
    return broken


@keras.saving.register_keras_serializable(package="tfpaint")
class HebbRosenblattCell(keras.layers.Layer):
    """A Keras RNN cell whose state is a Hebb-Rosenblatt memory `W` (M x M per example).

    Each step is one *update* of the memory with the signal `e = phi(x)`
    (eq 2, paper section 3.1):

        W <- W + eta [e (x) phi(e W + theta e)] - delta W

    with `phi` = ReLU6 on the input and output layers. Vectors are rows, so
    `e W` is `gamma_nu = sum_mu W_{mu nu} e_mu` of appendix A (eq 8) and the
    outer product puts input neurons `mu` on rows, output neurons `nu` on
    columns (eq 10). `W` starts at zero, so the `theta e` term of Rosenblatt's
    perceptron is what lets the first update be non-zero.

    The three memory states of section 3.2 are all reachable:
    - *update*: `update(w, e)` (and `call`) apply eq 2;
    - *intermediate*: the memory after each step, which the cell emits as its
      output (flattened, or projected through by a query, see below);
    - *terminal*: the final state of `keras.layers.RNN(cell,
      return_state=True)`.
    Projecting a query `q` (`project(w, q)`) reads the memory like a linear
    layer followed by the output activation, `phi(q W)`, without the `theta q`
    term so that the memory cannot learn the identity (section 3.3).

    Keras 3 RNN states must be vectors: the state is `W` flattened to `M*M`
    and reshaped to `(B, M, M)` inside `call`.

    Args:
        units: memory size `M`.
        eta: initial learning rate of the Hebbian increment (paper: 0.4).
        delta: initial decay rate (paper: 0.2).
        theta: initial identity transmission of the input layer (paper: 0.5).
        learnable_rates: whether eta, delta and theta are trained.
        input_activation: `phi^I`, "relu6" (paper), "sigmoid" or "linear".
        output_activation: `phi^II`, same choices.
        with_query: if True, each step's input is `[x, q]` of size `2M` and the
            output is the intermediate memory projected through by `q`,
            `phi(q W_t)` `(B, M)`; otherwise the input is `x` `(B, M)` and the
            output is the intermediate memory `W_t` flattened `(B, M*M)`.
        check_stability: what to do when the initial rates break the
            conditions of appendix A (`eta > delta > 0`, `theta >= 0`):
            "error" (ValueError), "warn" (UserWarning) or "none".

    Call arguments:
        inputs: `(batch, M)` memory input `x` (before `phi^I`), or
            `(batch, 2M)` `[x, q]` with `with_query`.
        states: list holding the flattened memory `(batch, M*M)`.

    Returns:
        `(output, [new_state])`: output `(batch, M*M)` (the updated memory) or
        `(batch, M)` (its projection by the query); new state `(batch, M*M)`.

    Reference:
        "A biologically inspired visual working memory for deep networks"
        (STAWM), eq 2, sections 3.1-3.3 and appendix A.
    """

    def __init__(
        self,
        units,
        eta=0.4,
        delta=0.2,
        theta=0.5,
        learnable_rates=False,
        input_activation="relu6",
        output_activation="relu6",
        with_query=False,
        check_stability="error",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"`units` must be >= 1. Received: units={units}")
        for arg, name in ((input_activation, "input_activation"),
                          (output_activation, "output_activation")):
            if arg not in ACTIVATIONS:
                raise ValueError(
                    f"`{name}` must be one of {ACTIVATIONS}. Received: {arg!r}"
                )
        if check_stability not in STABILITY_CHECKS:
            raise ValueError(
                f"`check_stability` must be one of {STABILITY_CHECKS}. "
                f"Received: {check_stability!r}"
            )
        broken = stability_violations(float(eta), float(delta), float(theta))
        if broken and check_stability != "none":
            message = (
                "The Hebb-Rosenblatt rates break the stability conditions of "
                "appendix A (eta > delta > 0, theta >= 0): "
                + "; ".join(broken)
                + ". The memory can diverge; pass check_stability='warn' or "
                "'none' to allow it."
            )
            if check_stability == "error":
                raise ValueError(message)
            warnings.warn(message, UserWarning, stacklevel=2)
        self.units = int(units)
        self.eta_init = float(eta)
        self.delta_init = float(delta)
        self.theta_init = float(theta)
        self.learnable_rates = bool(learnable_rates)
        self.input_activation = input_activation
        self.output_activation = output_activation
        self.with_query = bool(with_query)
        self.check_stability = check_stability
        self._phi_in = _activation(input_activation)
        self._phi_out = _activation(output_activation)
        self.state_size = self.units * self.units
        self.output_size = self.units if self.with_query else self.units * self.units

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "eta": self.eta_init,
                "delta": self.delta_init,
                "theta": self.theta_init,
                "learnable_rates": self.learnable_rates,
                "input_activation": self.input_activation,
                "output_activation": self.output_activation,
                "with_query": self.with_query,
                "check_stability": self.check_stability,
            }
        )
        return config

    def build(self, inputs_shape=None, states_shape=None):
        expected = 2 * self.units if self.with_query else self.units
        if inputs_shape is not None and inputs_shape[-1] not in (None, expected):
            raise ValueError(
                f"HebbRosenblattCell(units={self.units}, with_query={self.with_query}) "
                f"expects inputs of shape (batch, {expected}). "
                f"Received: inputs.shape={tuple(inputs_shape)}"
            )
        if self.learnable_rates:
            def rate(name, value):
                return self.add_weight(
                    name=name, shape=(), initializer=keras.initializers.Constant(value)
                )
            self.eta = rate("eta", self.eta_init)
            self.delta = rate("delta", self.delta_init)
            self.theta = rate("theta", self.theta_init)
        else:
            self.eta, self.delta, self.theta = self.eta_init, self.delta_init, self.theta_init

    def rates(self, dtype=None):
        """`(eta, delta, theta)` as tensors of `dtype`."""
        dtype = dtype or self.compute_dtype
        if not self.built:
            self.build()
        return tuple(tf.cast(r, dtype) for r in (self.eta, self.delta, self.theta))

    def get_initial_state(self, batch_size):
        # W starts at zero: no false memory is implanted (section 3.1).
        return [tf.zeros([batch_size, self.state_size], self.compute_dtype)]

    def update(self, w, e):
        """One update of the memory (eq 2).

        Args:
            w: `(batch, M, M)` memory.
            e: `(batch, M)` signal, already through `phi^I`.

        Returns:
            `(batch, M, M)` updated memory.
        """
        eta, delta, theta = self.rates(w.dtype)
        response = self._phi_out(tf.einsum("bm,bmn->bn", e, w) + theta * e)  # (B, M)
        hebb = e[:, :, None] * response[:, None, :]  # (B, M, M)
        return w + eta * hebb - delta * w  # (B, M, M)  eq 2

    def project(self, w, query):
        """Reads the memory with a query, `phi^II(q W)` (no `theta q`, section 3.3).

        Args:
            w: `(batch, M, M)` memory (intermediate or terminal).
            query: `(batch, M)`.

        Returns:
            `(batch, M)` latent representation.
        """
        return self._phi_out(tf.einsum("bm,bmn->bn", query, w))  # (B, M)

    def call(self, inputs, states, training=None):
        inputs = tf.convert_to_tensor(inputs, self.compute_dtype)
        state = states[0] if isinstance(states, (list, tuple)) else states
        w = tf.reshape(state, [-1, self.units, self.units])  # (B, M, M)
        if self.with_query:
            x, query = tf.split(inputs, 2, axis=-1)  # (B, M) each
        else:
            x, query = inputs, None
        e = self._phi_in(x)  # (B, M)
        w = self.update(w, e)  # (B, M, M)
        flat = tf.reshape(w, [-1, self.state_size])  # (B, M*M)
        output = self.project(w, query) if self.with_query else flat
        return output, [flat]
