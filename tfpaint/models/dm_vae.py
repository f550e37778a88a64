"""DM-VAE: AIR with a learned library of primitives addressed by Concrete latents.

Min, Su, Zhu and Zhang, "Discrete Memory Addressing Variational Autoencoder
for Visual Concept Learning". DM-VAE is AIR (`tfpaint.models.air`) whose
z_what is replaced by a memory address and a noise vector. Step i, where
present, reads the glimpse x_i^crop at s_i (z_where) and infers (eq 7):

    z_type_i ~ Concrete(softmax(c * cos(h_x(x_i^crop), h_m(m_k))) over slots k)
    m_i       = z_type_i^T M                  (the addressed slot; M is K x D)
    eps_i     ~ N(mu_q, sigma_q)(x_i^crop, m_i)
    x_i       = sigmoid(g(eps_i, m_i))        (the primitive, written back at s_i)

with the priors p(z_type) uniform over the K slots and p(eps | m) =
N(mu_p(m), sigma_p(m)) (eq 1). The ELBO (eqs 4-6) is AIR's with the KL of
z_what replaced by `KL(z_type) + KL(eps)`: the relaxed (Concrete, one-sample
Monte Carlo) KL of z_type against the uniform prior's relaxation, and the
closed-form KL of the two Gaussians of eps. The information loss (eqs 8-9)
draws primitives from every slot's generator and asks the same z_type
posterior to recover the slot: `-mean_k log q(z_type = k | x ~ g(., m_k))`.

The slot scorer is the cosine similarity of MLP embeddings of the glimpse and
of each slot (section V-A). Its values lie in [-1, 1]; the paper writes q
"proportional to" it, which a softmax of values in [-1, 1] over 15 slots
cannot make confident, so the logits are `c * cos` with a fixed
`similarity_scale` c (a departure: the paper does not say how it turns the
similarity into probabilities).

Everything else (the recurrent inference network on the residual, z_pres
discrete or relaxed, the truncated geometric count prior, z_where and the
spatial transformer, the Gaussian likelihood, masking after the first absent
step) is AIR's, inherited.
"""

import math

import keras
import tensorflow as tf

from tfpaint.layers import latents
from tfpaint.models import air
from tfpaint.models import checks


def cosine_logits(glimpse_embeddings, slot_embeddings, scale):
    """`scale * cos(a_b, e_k)`: the slot scores of DM-VAE's z_type posterior.

    Invariant to the length of every embedding (only directions count).

    Args:
        glimpse_embeddings: `(B, E)`, h_x of each glimpse.
        slot_embeddings: `(K, E)`, h_m of each slot.
        scale: c, the logits' range is [-c, c].

    Returns:
        `(B, K)` logits.
    """
    a = tf.math.l2_normalize(glimpse_embeddings, axis=-1)  # (B, E)
    e = tf.math.l2_normalize(slot_embeddings, axis=-1)  # (K, E)
    return scale * tf.matmul(a, e, transpose_b=True)  # (B, K)


def information_loss(type_log_probs):
    """The information loss of DM-VAE's eq 8, from the posterior's log-probabilities.

    Args:
        type_log_probs: `(K, S, K)`: `log q(z_type = j | x_{k,s})` for S
            primitives x_{k,s} drawn from each slot k's generator.

    Returns:
        `-mean_{k,s} log q(z_type = k | x_{k,s})`, a scalar: 0 when the
        posterior recovers every slot with certainty, log K when it is
        uniform.
    """
    # diagonal[s, k] = log q(z_type = k | x_{k,s}).
    diagonal = tf.linalg.diag_part(tf.transpose(type_log_probs, [1, 0, 2]))  # (S, K)
    return -tf.reduce_mean(diagonal)


def _mlp(units, name, seed, out=None, out_bias=0.0):
    """Dense ReLU layers of `units`, then an optional linear layer of `out`."""
    init = lambda i: keras.initializers.GlorotUniform(
        seed=None if seed is None else seed + 101 * i)
    layers = [keras.layers.Dense(u, activation="relu", kernel_initializer=init(i))
              for i, u in enumerate(units)]
    if out is not None:
        layers.append(keras.layers.Dense(out, kernel_initializer=init(len(units)),
                                         bias_initializer=keras.initializers.Constant(out_bias)))
    return keras.Sequential(layers, name=name)


@keras.saving.register_keras_serializable(package="tfpaint")
class DMVAE(air.AIR):
    """DM-VAE: AIR whose objects are drawn from a memory of K learned primitives.

    Args:
        image_shape, max_steps, glimpse_size, rnn_units, presence_prob,
            where_prior, likelihood_scale, decoder_bias, z_pres,
            presence_temperature, window_range: as `AIR`'s.
        num_slots: K, the memory's slots (15 in the paper's Multi-MNIST).
        slot_units: D, the size of one slot m_k.
        noise_units: the size of eps (32 in the paper).
        mlp_units: the hidden layers of eps' encoder q(eps | x, m), its prior
            p(eps | m) and (reversed) the generator g(eps, m) (the paper:
            "2-layer MLPs with 256 and 128 hidden").
        embedding_units: the layers of the glimpse and slot embeddings h_x,
            h_m whose cosine scores the slots (256, 128 in the paper).
        type_temperature: the Concrete temperature of q(z_type).
        similarity_scale: c of the slot logits `c * cos`.
        seed: seed of the weights and the noise.

    Call arguments:
        images: `(batch, height, width, channels)` in [0, 1].
        training: whether to sample the latents (else their means, the
            likeliest slot, and z_pres from `rho > 0.5`).
        noise_seed: optional `(2,)` int seed: sample with it whatever
            `training`.

    Returns:
        AIR's dict (`canvas`, `canvases`, `objects`, `count`, `boxes`,
        `z_pres`, `elbo`, ... ; `z_what` `(B, N, K + noise_units)` is the
        step's code `[z_type, eps]`; `kl_what` `(B,)` = `kl_type + kl_eps`),
        and: `z_type` `(B, N, K)` the (relaxed in training, one-hot at
        inference) address, `type_probs` `(B, N, K)` q(z_type)'s
        probabilities, `slot` `(B, N)` the likeliest slot of each step,
        `eps` `(B, N, noise_units)`, and per image `(B,)` `kl_type` and
        `kl_eps` summed over present steps.

    Reference:
        Min et al., DM-VAE, eqs 1-9 and sections III-V; Eslami et al. 2016
        (AIR).
    """

    def __init__(
        self,
        image_shape=(50, 50, 1),
        max_steps=3,
        glimpse_size=20,
        rnn_units=256,
        num_slots=15,
        slot_units=64,
        noise_units=32,
        mlp_units=(256, 128),
        embedding_units=(256, 128),
        type_temperature=0.5,
        similarity_scale=10.0,
        presence_prob=0.01,
        where_prior=(math.log(0.4), 0.5, 1.0),
        likelihood_scale=0.3,
        decoder_bias=-2.0,
        z_pres="bernoulli",
        presence_temperature=0.5,
        window_range=None,
        seed=None,
        **kwargs,
    ):
        mlp_units = tuple(int(u) for u in mlp_units)
        embedding_units = tuple(int(u) for u in embedding_units)
        if not mlp_units or min(mlp_units) < 1:
            raise ValueError(f"`mlp_units` must be one or more sizes >= 1. Received: {mlp_units}")
        if not embedding_units or min(embedding_units) < 1:
            raise ValueError("`embedding_units` must be one or more sizes >= 1. Received: "
                             f"{embedding_units}")
        checks.positive_ints(slot_units=slot_units, noise_units=noise_units)
        if int(num_slots) < 2:
            raise ValueError(f"`num_slots` must be >= 2. Received: {num_slots}")
        if not float(type_temperature) > 0.0:
            raise ValueError(f"`type_temperature` must be > 0. Received: {type_temperature}")
        if not float(similarity_scale) > 0.0:
            raise ValueError(f"`similarity_scale` must be > 0. Received: {similarity_scale}")
        self.num_slots = int(num_slots)
        self.slot_units = int(slot_units)
        self.noise_units = int(noise_units)
        self.mlp_units = mlp_units
        self.embedding_units = embedding_units
        self.type_temperature = float(type_temperature)
        self.similarity_scale = float(similarity_scale)
        super().__init__(
            image_shape=image_shape, max_steps=max_steps, glimpse_size=glimpse_size,
            rnn_units=rnn_units, hidden_units=mlp_units[0], what_units=noise_units,
            presence_prob=presence_prob, where_prior=where_prior,
            likelihood_scale=likelihood_scale, decoder_bias=decoder_bias, z_pres=z_pres,
            presence_temperature=presence_temperature, decoder="glimpse",
            window_range=window_range, seed=seed, **kwargs)

    def get_config(self):
        config = super().get_config()
        for key in ("hidden_units", "what_units", "decoder", "templates", "template_size"):
            config.pop(key)
        config.update({
            "num_slots": self.num_slots,
            "slot_units": self.slot_units,
            "noise_units": self.noise_units,
            "mlp_units": self.mlp_units,
            "embedding_units": self.embedding_units,
            "type_temperature": self.type_temperature,
            "similarity_scale": self.similarity_scale,
        })
        return config

    def _make_what_layers(self, init):
        seed = self.seed
        part = lambda i: None if seed is None else seed + 1009 * i
        pixels = self.glimpse_size ** 2 * self.image_shape[-1]
        self.glimpse_embedding = _mlp(self.embedding_units[:-1], "glimpse_embedding", part(1),
                                      out=self.embedding_units[-1])
        self.slot_embedding = _mlp(self.embedding_units[:-1], "slot_embedding", part(2),
                                   out=self.embedding_units[-1])
        self.type_latent = latents.ConcreteLatent(
            "categorical", temperature=self.type_temperature, inference="mode", kl="mc",
            seed=part(3), name="type")
        self.noise_encoder = _mlp(self.mlp_units, "noise_encoder", part(4))
        self.noise = latents.GaussianLatent(self.noise_units, latent_cost="none", seed=part(5),
                                            name="noise")
        self.noise_prior = _mlp(self.mlp_units, "noise_prior", part(6),
                                out=2 * self.noise_units)
        self.generator = _mlp(self.mlp_units[::-1], "generator", part(7), out=pixels,
                              out_bias=self.decoder_bias)

    def _code_units(self):
        return self.num_slots + self.noise_units

    def _build_what_layers(self):
        pixels = self.glimpse_size ** 2 * self.image_shape[-1]
        # The memory buffer, initialised uniformly (section V-B).
        self.memory = self.add_weight(
            name="memory", shape=(self.num_slots, self.slot_units),
            initializer=keras.initializers.RandomUniform(
                -1.0, 1.0, seed=None if self.seed is None else self.seed + 17))
        self.glimpse_embedding.build((None, pixels))
        self.slot_embedding.build((None, self.slot_units))
        self.type_latent.build((None, self.num_slots))
        self.noise_encoder.build((None, pixels + self.slot_units))
        self.noise.build((None, self.mlp_units[-1]))
        self.noise_prior.build((None, self.slot_units))
        self.generator.build((None, self.noise_units + self.slot_units))

    def type_logits(self, glimpses):
        """`(B, K)` logits of q(z_type | x^crop) for `(B, G*G*C)` flat glimpses."""
        memory = tf.cast(self.memory, glimpses.dtype)
        return cosine_logits(self.glimpse_embedding(glimpses), self.slot_embedding(memory),
                             self.similarity_scale)

    def _noise_prior(self, slot):
        """p(eps | m): `(loc, scale)`, each `(B, noise_units)`, of `(B, D)` slots."""
        out = self.noise_prior(slot)  # (B, 2E)
        return out[:, :self.noise_units], tf.nn.softplus(out[:, self.noise_units:]) + 1e-3

    def _infer_what(self, glimpse, training, noise_seed):
        batch = tf.shape(glimpse)[0]
        flat = tf.reshape(glimpse, [batch, -1])  # (B, GGC)
        sample = noise_seed is not None
        code = self.type_latent(logits=self.type_logits(flat), training=training,
                                noise_seed=noise_seed)
        z_type = code["sample"]  # (B, K): relaxed in training, one-hot at inference
        slot = tf.matmul(z_type, tf.cast(self.memory, z_type.dtype))  # (B, D)
        hidden = self.noise_encoder(tf.concat([flat, slot], axis=-1))  # (B, U)
        noise = self.noise(hidden, training=training,
                           noise_seed=noise_seed + tf.constant([1000, 0], noise_seed.dtype)
                           if sample else None)
        prior_loc, prior_scale = self._noise_prior(slot)  # (B, E) each
        kl_eps = latents.gaussian_kl(noise["mu"], noise["sigma"], prior_loc, prior_scale)  # (B,)
        kl_type = code["kl"]  # (B,)
        return {"z_what": tf.concat([z_type, noise["z"]], axis=-1), "kl_what": kl_type + kl_eps,
                "z_type": z_type, "type_probs": code["probs"], "eps": noise["z"],
                "kl_type": kl_type, "kl_eps": kl_eps, "_slot": slot}

    def _decode_glimpse(self, code):
        return self.generator(tf.concat([code["eps"], code["_slot"]], axis=-1))  # (B, GGC)

    def call(self, images, training=False, noise_seed=None):
        out = super().call(images, training=training, noise_seed=noise_seed)
        present = out["z_pres"]  # (B, N)
        out["kl_type"] = tf.reduce_sum(present * out["kl_type"], axis=1)  # (B,)
        out["kl_eps"] = tf.reduce_sum(present * out["kl_eps"], axis=1)  # (B,)
        out["slot"] = tf.argmax(out["type_probs"], axis=-1, output_type=tf.int32)  # (B, N)
        return out

    def generate_glimpses(self, slot_weights, noise):
        """Primitives drawn from the generator of the given slots.

        Args:
            slot_weights: `(M, K)` one-hot (or relaxed) addresses.
            noise: `(M, noise_units)` standard normal draws: eps = mu_p +
                sigma_p * noise under the slot's prior p(eps | m).

        Returns:
            `(M, G, G, C)` primitives in [0, 1].
        """
        slot_weights = tf.cast(slot_weights, self.compute_dtype)
        slot = tf.matmul(slot_weights, tf.cast(self.memory, slot_weights.dtype))  # (M, D)
        loc, scale = self._noise_prior(slot)  # (M, E) each
        eps = loc + scale * tf.cast(noise, loc.dtype)  # (M, E)
        logits = self.generator(tf.concat([eps, slot], axis=-1))  # (M, GGC)
        g, channels = self.glimpse_size, self.image_shape[-1]
        return tf.reshape(tf.sigmoid(logits), [-1, g, g, channels])

    def sample_memory(self, samples_per_slot, noise_seed=None):
        """`(K, S, G, G, C)`: S primitives from each slot's generator (fig 5's rows).

        Args:
            samples_per_slot: S.
            noise_seed: optional `(2,)` stateless seed (default: the model's
                noise stream).
        """
        seed = self.seed_generator.next() if noise_seed is None else noise_seed
        k, s = self.num_slots, samples_per_slot
        weights = tf.repeat(tf.eye(k, dtype=self.compute_dtype), s, axis=0)  # (K S, K)
        noise = tf.random.stateless_normal([k * s, self.noise_units], tf.cast(seed, tf.int32),
                                           dtype=self.compute_dtype)
        glimpses = self.generate_glimpses(weights, noise)  # (K S, G, G, C)
        g, channels = self.glimpse_size, self.image_shape[-1]
        return tf.reshape(glimpses, [k, s, g, g, channels])

    def information_loss(self, samples_per_slot=1, noise_seed=None):
        """Eq 8's loss on primitives drawn from every slot (eq 9's second term).

        S primitives are drawn from each slot's generator, flattened and
        scored by the z_type posterior's slot logits; gradients reach the
        memory, the generator, eps' prior and both embeddings.

        Returns:
            Dict: `loss` (a scalar, `information_loss` of the log-probs),
            `samples` `(K, S, G, G, C)`, `log_probs` `(K, S, K)`.
        """
        samples = self.sample_memory(samples_per_slot, noise_seed)  # (K, S, G, G, C)
        k = self.num_slots
        flat = tf.reshape(samples, [k * samples_per_slot, -1])  # (K S, GGC)
        log_probs = tf.nn.log_softmax(self.type_logits(flat), axis=-1)  # (K S, K)
        log_probs = tf.reshape(log_probs, [k, samples_per_slot, k])
        return {"loss": information_loss(log_probs), "samples": samples,
                "log_probs": log_probs}
