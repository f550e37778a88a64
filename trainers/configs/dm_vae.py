"""Named configurations of DM-VAE (Min et al.) on Multi-MNIST.

Each config's docstring gives the command that runs it:

    bazel run //trainers:dm_vae -- --config=<name> --workdir=/abs/path

Override single fields with `--config.<field>=<value>` (or `--<field>=<value>`);
DM-VAE is AIR with a memory buffer, so AIR's fields (`trainers/configs/air.py`)
apply too; the shared ones are in `trainers/configs/common.py`. The ablation of
the paper's fig 4 (bottom) and fig 5 (right) is any config with
`--information_weight=0`.
"""

from trainers.configs import air
from trainers.configs import common

DEFAULT = "multi_mnist_cpu"


def base():
    """DM-VAE's fields on AIR's; defaults follow the paper's Multi-MNIST model."""
    c = air.base()
    c.task = "dm_vae"
    for name in ("mlp_units", "decoder", "templates", "template_size"):
        del c[name]  # AIR's glimpse decoder and T-AIR's: DM-VAE has its own
    c.num_slots = 15  # K, the memory's slots (section V-B)
    c.slot_units = 64  # the size of one slot (not given in the paper)
    c.latent_units = 32  # eps, the primitive's noise (section V-A)
    # eps' encoder and prior, and (reversed) the generator: "2-layer MLPs with
    # 256 and 128 hidden" (section V-A).
    c.mlp_layers = (256, 128)
    c.embedding_layers = (256, 128)  # h_x and h_m, whose cosine scores the slots
    c.type_temperature = 0.5  # the Concrete temperature of q(z_type)
    c.similarity_scale = 10.0  # the slot logits are similarity_scale * cosine
    c.information_weight = 1.0  # gamma of eq 9 (0: the ablation without it)
    c.information_samples = 1  # primitives drawn from each slot per step for eq 8
    return c


def multi_mnist_paper():
    """The paper's Multi-MNIST model: 15 slots, LSTM 256, batch 64, Adam 1e-4.

        bazel run //trainers:dm_vae -- --config=multi_mnist_paper
    """
    return base()


def multi_mnist_cpu():
    """A CPU-sized DM-VAE: AIR's `multi_mnist_cpu` (LSTM 128, relaxed z_pres,
    window prior N(log 0.45, 0.2), Adam 1e-3 cosine-decayed, 20,000 scenes)
    with the paper's memory of 15 slots and MLPs of 128 and 64.

        bazel run //trainers:dm_vae -- --config=multi_mnist_cpu
    """
    c = base()
    cpu = air.multi_mnist_cpu()
    for name in ("rnn_units", "num_train", "learning_rate", "z_pres", "where_prior",
                 "lr_schedule", "steps", "eval_every", "checkpoint_every"):
        c[name] = cpu[name]
    c.mlp_layers = (128, 64)
    c.embedding_layers = (128, 64)
    return c


def multi_mnist_cpu_no_information():
    """`multi_mnist_cpu` without the information loss (gamma = 0), the
    ablation of the paper's figs 4 and 5.

        bazel run //trainers:dm_vae -- --config=multi_mnist_cpu_no_information
    """
    c = multi_mnist_cpu()
    c.information_weight = 0.0
    return c


def tiny():
    """A seconds-long smoke run (tests).

        bazel run //trainers:dm_vae -- --config=tiny
    """
    c = base()
    tiny_air = air.tiny()
    for name in ("image_size", "glimpse_size", "rnn_units", "latent_units", "num_train",
                 "num_test", "batch_size", "steps", "iwae_samples", "eval_every",
                 "checkpoint_every", "log_every", "num_summary_images"):
        c[name] = tiny_air[name]
    c.num_slots = 3
    c.slot_units = 4
    c.mlp_layers = (8,)
    c.embedding_layers = (8,)
    return c


CONFIGS, get_config = common.named_configs(multi_mnist_paper, multi_mnist_cpu,
                                           multi_mnist_cpu_no_information, tiny,
                                           default=DEFAULT)
