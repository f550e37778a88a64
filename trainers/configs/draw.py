"""Named configurations of DRAW and T-DRAW (Gregor et al. 2015; thesis 4.1).

Each config's docstring gives the command that runs it:

    bazel run //trainers:draw -- --config=<name> --workdir=/abs/path

Override single fields with `--config.<field>=<value>` (or `--<field>=<value>`);
the shared fields and their meaning are in `trainers/configs/common.py`.
"""

from trainers.configs import common

DEFAULT = "mnist_cpu"


def base():
    """DRAW's fields; defaults are the paper's MNIST model (section 4.1)."""
    c = common.add_importance_weighted_bound(common.add_template_writer(common.base()))
    c.task = "draw"
    # Binarized MNIST: the offline digits, training ones binarized afresh for
    # every batch, held-out ones once with a fixed seed.
    c.dataset = "mnist_binarized"
    c.num_steps = 64  # T
    c.rnn_units = 256  # the encoder and decoder LSTMs
    c.latent_units = 100  # z_t
    c.attention = "gaussian"  # gaussian (eqs 19-29) | stn | none
    c.read_size = 2  # N of the read window
    c.write_size = 5  # N of the write window
    c.canvas = "additive"  # additive: DRAW; over: T-DRAW (the template writer)
    c.reconstruction = "ce"  # the Bernoulli likelihood of the final canvas
    # Steps traced per iteration of the model's tf.while_loop (num_steps: no
    # loop, every step traced).
    c.unroll = 1
    # Training: Adam 1e-3 (the paper's optimiser), batch 100; clipping the
    # gradient's global norm at 10 (a departure) keeps the first steps, whose
    # gradients through 64 steps are large, from diverging. beta_1 = 0.5 (the
    # paper gives no betas; a public PyTorch DRAW uses 0.5): the held-out bound
    # fell faster than with 0.9 (BENCHMARKS.md).
    c.clipnorm = 10.0
    c.adam_beta1 = 0.5
    # Steps over which L_z's weight rises from 0 to 1 (0: the plain bound
    # from the first step, as the paper).
    c.kl_warmup_steps = 0
    c.steps = 100_000
    # No XLA: on this 2-core CPU the paper model's step took 0.55-0.7 s without
    # it and 1.1-2.1 s with it (BENCHMARKS.md has the figures).
    c.jit = False
    # One thread per op, two ops at once: a step is thousands of small ops and
    # two independent matmuls at a time (x W and h U of an LSTM; an input and a
    # weight gradient). On 2 cores this ran the paper model's step in 0.53 s
    # against 0.76 s with TensorFlow's default pools, back to back (BENCHMARKS.md). On
    # more cores, raise intra_op_threads.
    c.intra_op_threads = 1
    c.inter_op_threads = 2
    c.eval_every = 2000
    c.checkpoint_every = 2000
    return c


def mnist_paper():
    """The paper's MNIST model: T = 64, read 2x2, write 5x5, LSTM 256, z 100 (table 2).

        bazel run //trainers:draw -- --config=mnist_paper
    """
    return base()


def mnist_no_attention():
    """The paper's model without attention: read the whole image, write a whole image.

        bazel run //trainers:draw -- --config=mnist_no_attention
    """
    c = base()
    c.attention = "none"
    return c


def mnist_stn():
    """The paper's model with spatial-transformer attention: a 2x2 glimpse read, a 5x5
    patch written by the inverse map.

        bazel run //trainers:draw -- --config=mnist_stn
    """
    c = base()
    c.attention = "stn"
    return c


def mnist_cpu():
    """The paper's MNIST model, trained for 15 minutes on a 2-core CPU.

        bazel run //trainers:draw -- --config=mnist_cpu
    """
    c = base()
    c.max_train_seconds = 900.0
    c.eval_every = 1000
    c.checkpoint_every = 1000
    return c


def t_draw_mnist():
    """T-DRAW on MNIST: 20 moves of the circle template on the "over" canvas (fig 4.1).

        bazel run //trainers:draw -- --config=t_draw_mnist
    """
    c = base()
    c.canvas = "over"
    c.num_steps = 20
    c.templates = ("circle",)
    c.initial_scale = 3.0  # as the Painter's mnist_20moves
    c.steps = 20_000
    return c


def t_draw_rectangles():
    """T-DRAW on 2-Rectangles: 2 moves of the square template (fig 4.3).

    The thesis found it paints one move over both rectangles and patches with
    the second, where the Painter (rectangles_2moves) gives each rectangle its
    own move. The template writer starts as the Painter's does.

        bazel run //trainers:draw -- --config=t_draw_rectangles
    """
    c = base()
    c.dataset = "2_rectangles"
    c.num_train, c.num_test = 50_000, 1000
    c.canvas = "over"
    c.num_steps = 2
    c.templates = ("square",)
    c.initial_scale = 2.0  # as rectangles_2moves
    c.steps = 20_000
    c.eval_every = 5000
    c.checkpoint_every = 5000
    return c


def tiny():
    """A smoke test: a small DRAW, a few steps, seconds on a CPU.

        bazel run //trainers:draw -- --config=tiny --workdir=/tmp/draw_smoke
    """
    c = base()
    c.num_steps = 3
    c.rnn_units = 16
    c.latent_units = 4
    c.batch_size = 16
    c.num_test = 32
    c.iwae_samples = 2
    c.steps = 20
    c.jit = False
    c.log_every = 5
    c.eval_every = 10
    c.checkpoint_every = 10
    c.num_summary_images = 2
    return c


CONFIGS, get_config = common.named_configs(
    mnist_paper, mnist_no_attention, mnist_stn, mnist_cpu, t_draw_mnist, t_draw_rectangles,
    tiny,
    default=DEFAULT,
)
