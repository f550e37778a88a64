"""WS-RAM: a stochastic hard-attention classifier (Ba et al. 2015), on the shared layers.

The prediction network takes N glimpses of an image and then names its class:

    h2_0   = relu(W_low lowres(I))                  (a low-resolution view, layer 2)
    a_n    ~ p(a_n | a_<n, I) = N(l_n; tanh(W_l h2_{n-1}), sigma^2) Cat(k_n; W_k h2_{n-1})
    x_n    = ST(I, [s_k, 0, l_x; 0, s_k, l_y])       (a G x G glimpse at scale s_k)
    g_n    = relu(W_x x_n + W_a [l_n, onehot(k_n)])  (the glimpse network)
    h1_n   = relu(W_1 g_n + U_1 h1_{n-1})            (layer 1, ReLU)
    h2_n   = relu(W_2 h1_n + U_2 h2_{n-1})           (layer 2, ReLU)
    p(y | a, I) = softmax(W_y h1_N)                  (read from layer 1)

Each action is a Gaussian location (fixed standard deviation) and a
categorical scale (section 5.1). The low-resolution view enters layer 2 and
the class is read from layer 1, so the class cannot be read off the low-
resolution view without attending (section 3). The inference network
`q(a_{n+1} | y, a_<=n, I)` reads the label and layer 2's state (section 4.3);
the baseline network `b(I)` of the variational method reads the low-
resolution view. Their inputs carry no gradient into the prediction network.

How the model is trained is the constructor's `algorithm`, `proposal` and
`control_variates` (the paper's VAR, WS-RAM, +q and +c), realised by
`WSRAM.loss_terms` through `tfpaint.estimators`.
"""

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfpaint import estimators
from tfpaint.layers import spatial_transformer as st
from tfpaint.models import checks

tfd = tfp.distributions

ALGORITHMS = ("var", "ws_ram")
PROPOSALS = ("prior", "q")


def check_algorithm(algorithm, proposal, control_variates):
    """Raises a ValueError naming a training setting that does not exist."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"`algorithm` must be one of {ALGORITHMS}. Received: {algorithm!r}")
    if proposal not in PROPOSALS:
        raise ValueError(f"`proposal` must be one of {PROPOSALS}. Received: {proposal!r}")
    if algorithm == "var" and (proposal != "prior" or control_variates):
        raise ValueError("The variational method (algorithm='var') samples from the prior and "
                         "uses its learned baseline: set proposal='prior' and "
                         f"control_variates=False. Received: proposal={proposal!r}, "
                         f"control_variates={control_variates}")


@keras.saving.register_keras_serializable(package="tfpaint")
class WSRAM(keras.Model):
    """A recurrent attention classifier with a Gaussian location and a categorical scale.

    Args:
        image_shape: `(height, width, channels)`.
        num_classes: classes of the label.
        num_glimpses: N, glimpses before the class is named (4 in the paper).
        glimpse_size: G, the side of each glimpse, in pixels.
        scales: the window side of each glimpse scale, as a fraction of the
            image's side (the categorical scale's choices).
        low_res_size: the side of the low-resolution view that chooses the
            first glimpse.
        units: width of the ReLU recurrent layers and the glimpse network.
        location_sd: sigma of the Gaussian location policy, in the image's
            [-1, 1] coordinates (fixed, as in RAM).
        algorithm: "var" (the variational method, eqs 3-5, with a learned
            baseline) or "ws_ram" (reweighted wake-sleep, eqs 6-10).
        proposal: "prior" or "q" (the inference network, eqs 11-14; WS-RAM
            only).
        control_variates: eqs 15-18 (WS-RAM only).
        samples: M, action sequences sampled per example in training.
        seed: seed of the weights and the noise.

    Call arguments:
        images: `(batch, height, width, channels)` in [0, 1].
        labels: optional `(batch,)` int class labels: their log-likelihood
            `log p(y | a, I)` is returned, and with `proposal="q"` the
            actions come from the inference network (sampled, or its mode).
        training: whether to sample actions (else each action's mode: the
            mean location and the likeliest scale, one sequence).
        noise_seed: optional `(2,)` int seed: sample with this stateless seed
            whatever `training` (an evaluation's fixed noise).
        samples: M for this call (default: the model's `samples` when
            sampling, 1 otherwise).
        use_proposal: draw from the inference network when labels are given
            (default True; False samples the prior, as at test time).

    Returns:
        Dict: `logits` `(B, M, classes)`; `probabilities` `(B, classes)`,
        the class probabilities averaged over the M sequences (an estimate
        of `p(y | I)`); `locations` `(B, M, N, 2)` (x, y) in [-1, 1];
        `scale_index` `(B, M, N)` int32; `thetas` `(B, M, N, 6)` the read
        maps; `boxes` `(B, M, N, 4)` `(x0, y0, x1, y1)` in pixels;
        `glimpses` `(B, M, N, G, G, C)`; `log_prior` `(B, M)` `log p(a |
        I)` of each sequence; `baseline` `(B,)` (algorithm "var"); with
        labels `log_likelihood` `(B, M)`, and with the inference network
        `log_proposal` `(B, M)` `log q(a | y, I)` and `proposal_locations`
        `(B, M, N, 2)` (the inference network's mean locations).

    Reference:
        Ba, Grosse, Salakhutdinov and Frey, "Learning Wake-Sleep Recurrent
        Attention Models", NIPS 2015, sections 3-5; Mnih et al., "Recurrent
        Models of Visual Attention", NIPS 2014 (the glimpse network).
    """

    def __init__(
        self,
        image_shape=(60, 60, 1),
        num_classes=10,
        num_glimpses=4,
        glimpse_size=12,
        scales=(0.25, 0.5, 1.0),
        low_res_size=12,
        units=256,
        location_sd=0.15,
        algorithm="ws_ram",
        proposal="q",
        control_variates=True,
        samples=5,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        image_shape = checks.image_shape(image_shape)
        checks.positive_ints(num_classes=num_classes, num_glimpses=num_glimpses,
                             glimpse_size=glimpse_size, low_res_size=low_res_size, units=units,
                             samples=samples)
        scales = tuple(float(s) for s in scales)
        if not scales or min(scales) <= 0.0 or not all(map(math.isfinite, scales)):
            raise ValueError(f"`scales` must be window fractions > 0. Received: {scales}")
        if not (math.isfinite(location_sd) and location_sd > 0.0):
            raise ValueError(f"`location_sd` must be > 0. Received: {location_sd}")
        check_algorithm(algorithm, proposal, control_variates)
        self.image_shape = image_shape
        self.num_classes = int(num_classes)
        self.num_glimpses = int(num_glimpses)
        self.glimpse_size = int(glimpse_size)
        self.scales = scales
        self.low_res_size = int(low_res_size)
        self.units = int(units)
        self.location_sd = float(location_sd)
        self.algorithm = algorithm
        self.proposal = proposal
        self.control_variates = bool(control_variates)
        self.samples = int(samples)
        self.seed = seed
        init = lambda i: keras.initializers.GlorotUniform(
            seed=None if seed is None else seed + 31 * i)
        small = lambda i: keras.initializers.RandomNormal(
            stddev=0.01, seed=None if seed is None else seed + 31 * i)
        dense = lambda n, i, **kw: keras.layers.Dense(n, kernel_initializer=init(i), **kw)
        u = self.units

        self.reader = st.SpatialTransformer((self.glimpse_size,) * 2, allow_skew=False,
                                            name="reader")
        self.low_res_reader = st.SpatialTransformer((self.low_res_size,) * 2,
                                                    allow_skew=False, name="low_res_reader")
        self.low_res = dense(u, 1, activation="relu", name="low_res")
        # Each layer's two linear maps are one map of the concatenated inputs
        # (W_x x + W_a a = W [x; a]): one fused MatMul, BiasAdd and ReLU.
        self.glimpse_net = dense(u, 2, activation="relu", name="glimpse_net")
        self.layer1 = dense(u, 4, activation="relu", name="layer1")
        self.layer2 = dense(u, 5, activation="relu", name="layer2")
        self.classifier = dense(self.num_classes, 6, name="classifier")
        # The attention policy (the "attention parameters" of fig 2).
        self.location_head = keras.layers.Dense(2, activation="tanh", name="location_head",
                                                kernel_initializer=small(7))
        self.scale_head = keras.layers.Dense(len(scales), name="scale_head",
                                             kernel_initializer=small(8))
        self.inference_hidden = self.inference_location = self.inference_scale = None
        if proposal == "q":
            self.inference_hidden = dense(u, 9, activation="relu", name="inference_hidden")
            self.inference_location = keras.layers.Dense(
                2, activation="tanh", kernel_initializer=small(10), name="inference_location")
            self.inference_scale = keras.layers.Dense(len(scales), kernel_initializer=small(11),
                                                      name="inference_scale")
        self.baseline_net = None
        if algorithm == "var":
            self.baseline_net = keras.Sequential(
                [dense(u, 12, activation="relu"), keras.layers.Dense(1, kernel_initializer=small(13))],
                name="baseline")
        self.seed_generator = keras.random.SeedGenerator(seed)

    def get_config(self):
        return {
            "name": self.name,
            "image_shape": self.image_shape,
            "num_classes": self.num_classes,
            "num_glimpses": self.num_glimpses,
            "glimpse_size": self.glimpse_size,
            "scales": self.scales,
            "low_res_size": self.low_res_size,
            "units": self.units,
            "location_sd": self.location_sd,
            "algorithm": self.algorithm,
            "proposal": self.proposal,
            "control_variates": self.control_variates,
            "samples": self.samples,
            "seed": self.seed,
        }

    def build(self, input_shape=None):
        u, s = self.units, len(self.scales)
        channels = self.image_shape[2]
        low = self.low_res_size ** 2 * channels
        self.low_res.build((None, low))
        self.glimpse_net.build((None, self.glimpse_size ** 2 * channels + 2 + s))
        self.layer1.build((None, 2 * u))
        self.layer2.build((None, 2 * u))
        self.classifier.build((None, u))
        self.location_head.build((None, u))
        self.scale_head.build((None, u))
        if self.inference_hidden is not None:
            self.inference_hidden.build((None, u + self.num_classes))
            self.inference_location.build((None, u))
            self.inference_scale.build((None, u))
        if self.baseline_net is not None:
            self.baseline_net.build((None, low))
        self.built = True

    @property
    def attention_variables(self):
        """The attention policy's weights (location and scale heads): fig 2's
        gradient variance is measured on these."""
        return self.location_head.trainable_variables + self.scale_head.trainable_variables

    def _checked_labels(self, labels):
        """`labels` as a `(batch,)` int32 tensor; in eager mode, a ValueError
        naming labels outside `[0, num_classes)`."""
        labels = tf.convert_to_tensor(labels)
        if labels.shape.rank != 1 or not labels.dtype.is_integer:
            raise ValueError("`labels` must be a (batch,) vector of integer classes. Received: "
                             f"shape={tuple(labels.shape)}, dtype={labels.dtype.name}")
        labels = tf.cast(labels, tf.int32)
        if tf.executing_eagerly() and labels.shape[0]:
            low, high = int(tf.reduce_min(labels)), int(tf.reduce_max(labels))
            if low < 0 or high >= self.num_classes:
                raise ValueError(f"`labels` must be classes in [0, {self.num_classes}). "
                                 f"Received values in [{low}, {high}].")
        return labels

    def low_resolution(self, images):
        """The low-resolution view: average-pooled, then resampled to L x L."""
        height, width, _ = self.image_shape
        pool = max(1, min(height, width) // self.low_res_size)
        pooled = tf.nn.avg_pool2d(images, pool, pool, "VALID")
        identity = tf.broadcast_to(tf.constant(st.IDENTITY_THETA, images.dtype),
                                   [tf.shape(images)[0], 6])
        return self.low_res_reader(pooled, identity)  # (B, L, L, C)

    def call(self, images, labels=None, training=False, noise_seed=None, samples=None,
             use_proposal=True):
        images = checks.float_images(images, self.image_shape, self.compute_dtype)
        dtype = images.dtype
        sample = bool(training) or noise_seed is not None
        m = int(samples) if samples is not None else (self.samples if sample else 1)
        checks.positive_ints(samples=m)
        if m > 1 and not sample:
            raise ValueError(f"samples={m} needs sampling: call with training=True or a "
                             "noise_seed (the mode policy gives one sequence).")
        infer = labels is not None and self.proposal == "q" and use_proposal
        if sample:
            seed = self.seed_generator.next() if noise_seed is None else noise_seed
            seed = tf.cast(seed, tf.int32)
        batch = tf.shape(images)[0]
        rows = batch * m
        low_view = tf.reshape(self.low_resolution(images), [batch, -1])  # (B, L*L*C)
        # Every example's M sequences, side by side: row b * M + j.
        tile = lambda t: tf.repeat(t, m, axis=0)
        tiled_images = tile(images)  # (B*M, H, W, C)
        h2 = tile(self.low_res(low_view))  # (B*M, U)
        h1 = tf.zeros_like(h2)  # (B*M, U)
        if labels is not None:
            labels = self._checked_labels(labels)
            tiled_labels = tile(labels)  # (B*M,)
            onehot_labels = tf.one_hot(tiled_labels, self.num_classes, dtype=dtype)
        scale_values = tf.constant(self.scales, dtype)  # (S,)
        sd = tf.constant(self.location_sd, dtype)
        steps = {k: [] for k in ("locations", "scale_index", "thetas", "glimpses", "log_prior",
                                 "log_proposal", "proposal_locations")}
        for n in range(self.num_glimpses):
            prior_loc = self.location_head(h2)  # (B*M, 2)
            prior_logits = self.scale_head(h2)  # (B*M, S)
            loc_mean, scale_logits = prior_loc, prior_logits
            if infer:
                hidden = self.inference_hidden(
                    tf.concat([tf.stop_gradient(h2), onehot_labels], axis=-1))  # (B*M, U)
                loc_mean = self.inference_location(hidden)  # (B*M, 2)
                scale_logits = self.inference_scale(hidden)  # (B*M, S)
                steps["proposal_locations"].append(loc_mean)
            if sample:
                # Philox noise, so that XLA and plain TensorFlow draw the same
                # actions; the scale by the Gumbel-max trick (an exact sample).
                step_seed = lambda k: seed + tf.stack([k, n])
                eps = tf.random.stateless_normal(tf.shape(loc_mean), step_seed(0), dtype=dtype,
                                                 alg="philox")  # (B*M, 2)
                location = tf.stop_gradient(loc_mean + sd * eps)  # (B*M, 2)
                u = tf.random.stateless_uniform(tf.shape(scale_logits), step_seed(1),
                                                minval=1e-6, maxval=1.0, dtype=dtype,
                                                alg="philox")  # (B*M, S)
                gumbel = -tf.math.log(-tf.math.log(u))
                scale = tf.argmax(tf.stop_gradient(scale_logits) + gumbel, axis=-1)  # (B*M,)
            else:
                location = loc_mean
                scale = tf.argmax(scale_logits, axis=-1, output_type=tf.int32)
            scale = tf.cast(scale, tf.int32)

            def log_prob(mean, logits):
                return (tf.reduce_sum(tfd.Normal(mean, sd).log_prob(location), axis=-1)
                        + tfd.Categorical(logits=logits).log_prob(scale))  # (B*M,)

            steps["log_prior"].append(log_prob(prior_loc, prior_logits))
            if infer:
                steps["log_proposal"].append(log_prob(loc_mean, scale_logits))
            # The window is read where the (clipped) location points; the
            # action's probability is that of the sample itself.
            window = tf.gather(scale_values, scale)  # (B*M,)
            centre = tf.clip_by_value(location, -1.0, 1.0)  # (B*M, 2)
            zero = tf.zeros_like(window)
            theta = tf.stack([window, zero, centre[:, 0], zero, window, centre[:, 1]],
                             axis=-1)  # (B*M, 6)
            glimpse = self.reader(tiled_images, theta)  # (B*M, G, G, C)
            where = tf.concat([location, tf.one_hot(scale, len(self.scales), dtype=dtype)], -1)
            g = self.glimpse_net(tf.concat([tf.reshape(glimpse, [rows, -1]), where], -1))
            h1 = self.layer1(tf.concat([g, h1], axis=-1))  # (B*M, U)
            h2 = self.layer2(tf.concat([h1, h2], axis=-1))  # (B*M, U)
            steps["locations"].append(location)
            steps["scale_index"].append(scale)
            steps["thetas"].append(theta)
            steps["glimpses"].append(glimpse)

        per_example = lambda t: tf.reshape(t, tf.concat([[batch, m], tf.shape(t)[1:]], 0))
        stacked = lambda key: per_example(tf.stack(steps[key], axis=1))  # (B, M, N, ...)
        logits = per_example(self.classifier(h1))  # (B, M, K)
        thetas = stacked("thetas")  # (B, M, N, 6)
        outputs = {
            "logits": logits,
            "probabilities": tf.reduce_mean(tf.nn.softmax(logits, axis=-1), axis=1),  # (B, K)
            "locations": stacked("locations"),
            "scale_index": stacked("scale_index"),
            "thetas": thetas,
            "boxes": st.affine_boxes(thetas, self.image_shape[:2]),  # (B, M, N, 4)
            "glimpses": stacked("glimpses"),
            "log_prior": tf.reduce_sum(stacked("log_prior"), axis=2),  # (B, M)
        }
        if infer:
            outputs["log_proposal"] = tf.reduce_sum(stacked("log_proposal"), axis=2)  # (B, M)
            outputs["proposal_locations"] = stacked("proposal_locations")  # (B, M, N, 2)
        if labels is not None:
            log_softmax = tf.nn.log_softmax(logits, axis=-1)  # (B, M, K)
            outputs["log_likelihood"] = tf.gather(log_softmax, labels[:, None], axis=2,
                                                  batch_dims=1)[..., 0]  # (B, M)
        if self.baseline_net is not None:
            outputs["baseline"] = self.baseline_net(tf.stop_gradient(low_view))[:, 0]  # (B,)
        return outputs

    def loss_terms(self, outputs, control_variates=None):
        """The per-example loss of the model's training algorithm, and its parts.

        "var": eq 5's REINFORCE surrogate with the learned baseline, plus the
        baseline's squared error. "ws_ram": eq 8's (or 16's) surrogate of the
        prediction network plus, with the inference network, eq 14's (or
        17's). Both are estimates of the gradient; their values are not
        losses to read. Read `nll_bound` (eq 9's bound, `-log (1/M) sum_m
        w~^m`) and `ess`.

        Args:
            outputs: the dict of `call` with labels, sampled (with the
                inference network's `log_proposal` when it proposed them).
            control_variates: override the model's setting (WS-RAM only):
                compare estimators on the same weights.

        Returns:
            `(loss, parts)`: `(B,)` and a dict of `(B,)` terms.
        """
        if "log_likelihood" not in outputs:
            raise ValueError("loss_terms needs the outputs of a call with labels.")
        log_likelihood, log_prior = outputs["log_likelihood"], outputs["log_prior"]
        if self.algorithm == "var":
            surrogate, baseline_loss = estimators.variational_surrogate(
                log_likelihood, log_prior, outputs["baseline"])
            # Weights of the same prior samples, for the ESS (fig 2, right).
            terms = estimators.reweighted_wake_sleep(log_likelihood, log_prior)
            parts = {"surrogate": surrogate, "baseline_loss": baseline_loss}
            loss = surrogate + baseline_loss
        else:
            if control_variates is None:
                control_variates = self.control_variates
            terms = estimators.reweighted_wake_sleep(
                log_likelihood, log_prior, outputs.get("log_proposal"), control_variates)
            parts = {"prediction_surrogate": terms["prediction"],
                     "inference_surrogate": terms["inference"]}
            loss = terms["prediction"] + terms["inference"]
        parts.update({"nll_bound": -terms["log_bound"], "ess": terms["ess"],
                      "mean_nll": -tf.reduce_mean(log_likelihood, axis=-1)})
        return loss, parts
