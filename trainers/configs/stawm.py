"""Named configurations of the STAWM trainer (paper appendix D).

Each config's docstring gives the command that runs it:

    bazel run //trainers:stawm -- --config=<name> --workdir=/abs/path

Configs named after an appendix D setting use its sizes and schedule; the
`*_cpu` / `*_15min` / `tiny` configs are reduced to run on a 2-core CPU and
say what they change. Override single fields with `--config.<field>=<value>`
(or the shorthand `--<field>=<value>`); the shared fields and their meaning
are in `trainers/configs/common.py`.
"""

from ml_collections import config_dict

from trainers.configs import common

DEFAULT = "mnist_8x8_15min"


def base():
    """The STAWM fields; defaults are the MNIST 8x8 classifier (D.1)."""
    c = common.add_glimpse_sequence(common.base())
    c.task = "stawm"
    # Data: the whole offline MNIST (the common default: 4,500 training
    # digits, 500 held out).
    # Objective and model (section 3, appendix D.1).
    c.objective = "classify"  # classify | draw | self_supervised | sketchpad
    c.memory_size = 256
    c.rnn_units = 512  # M x 2
    c.context_filters = (64, 128, 256)
    c.context_kernel = 3
    c.context_strides = (2, 2, 2)
    c.glimpse_filters = (64, 128)
    c.glimpse_kernel = 3
    c.glimpse_strides = (1, 2)
    c.padding = "valid"
    c.affine_hidden = 64
    c.canvas = "additive"  # additive (eq 3) | bernoulli (eq 4)
    c.latent_units = 4
    c.temperature = 0.5
    c.beta = 4.0
    c.reconstruction = "ce"
    c.class_weight = 1.0
    c.draw_weight = 1.0
    c.dropout = 0.5
    c.eta = 0.4
    c.delta = 0.2
    c.theta = 0.5
    c.learnable_rates = False
    c.kernel_initializer = "glorot_uniform"
    c.pretrained_workdir = config_dict.placeholder(str)
    # Training: Adam 1e-3, batch 128, gradient clipping 5, exponential 0.99
    # per epoch, divided by ten at the milestones (in epochs).
    c.epochs = 200
    c.batch_size = 128
    c.lr_schedule = "step_exponential"
    c.lr_milestones = (50, 100, 150, 190, 195)  # lr_decay: the common 0.99
    c.clipnorm = 5.0
    c.max_rotation = 20.0  # degrees
    # jit (the common default): measured on a quiet 2-core CPU
    # (trainers/benchmark_stawm.py, mnist_8x8), 222 images/s with XLA, 177
    # without; XLA compiles for ~19 s once.
    return c


def mnist_8x8():
    """MNIST classification, 8 glimpses of 8x8, M=256 (D.1, table 1: 0.41%).

    Full paper size and schedule (200 epochs). On the offline 4,500 digits
    that is 7,000 steps; on full MNIST (--dataset=mnist_full
    --data_dir=<tfds dir>) 93,600 steps.

        bazel run //trainers:stawm -- --config=mnist_8x8
    """
    c = base()
    return c


def mnist_8x8_15min():
    """The mnist_8x8 model trained for at most 15 minutes on a 2-core CPU.

    Same architecture as mnist_8x8; the 200-epoch schedule is compressed to
    the steps that fit in 15 minutes (milestones scaled alike) and training
    stops at 900 s whatever the step. Random shifts of up to 2 pixels are
    added to the +-20 degree rotations.

        bazel run //trainers:stawm -- --config=mnist_8x8_15min
    """
    c = base()
    c.epochs = 30
    c.lr_decay = 0.95
    c.lr_milestones = (20, 27)
    c.max_shift = 2
    c.max_train_seconds = 900.0
    c.eval_every = 250
    c.checkpoint_every = 250
    return c


def mnist_28x28():
    """MNIST classification, 10 glimpses of 28x28, M=512 (D.1, table 1: 0.35%).

        bazel run //trainers:stawm -- --config=mnist_28x28
    """
    c = base()
    c.num_glimpses = 10
    c.glimpse_size = 28
    c.memory_size = 512
    c.rnn_units = 1024
    c.glimpse_filters = (64, 128, 256)
    c.glimpse_strides = (2, 2, 2)
    return c


def _mnist_draw(size, filters, strides):
    c = base()
    c.objective = "draw"
    c.num_glimpses = 12
    c.glimpse_size = size
    c.glimpse_filters = filters
    c.glimpse_strides = strides
    c.epochs = 100
    c.lr_milestones = ()
    return c


def mnist_draw_4x4():
    """MNIST drawing, 12 glimpses of 4x4, additive canvas (D.1, fig 8a).

        bazel run //trainers:stawm -- --config=mnist_draw_4x4
    """
    return _mnist_draw(4, (128,), (1,))


def mnist_draw_6x6():
    """MNIST drawing, 12 glimpses of 6x6, additive canvas (D.1, fig 8b).

        bazel run //trainers:stawm -- --config=mnist_draw_6x6
    """
    return _mnist_draw(6, (128,), (1,))


def mnist_draw_8x8():
    """MNIST drawing, 12 glimpses of 8x8, additive canvas (D.1, fig 8c).

        bazel run //trainers:stawm -- --config=mnist_draw_8x8
    """
    return _mnist_draw(8, (64, 128), (1, 2))


def mnist_draw_6x6_cpu():
    """mnist_draw_6x6 reduced for a 2-core CPU: M=128, LSTM 256, 15 minutes.

        bazel run //trainers:stawm -- --config=mnist_draw_6x6_cpu
    """
    c = mnist_draw_6x6()
    c.memory_size = 128
    c.rnn_units = 256
    c.epochs = 40
    c.lr_decay = 0.95
    c.max_rotation = 0.0
    c.max_train_seconds = 900.0
    c.eval_every = 250
    c.checkpoint_every = 250
    return c


def mnist_self_supervised():
    """Classification from frozen mnist_draw_6x6 features (D.1, table 1b: 0.77%).

    Only the classifier's query, the classifier and the memory rates (made
    learnable) train. Needs a finished drawing run:

        bazel run //trainers:stawm -- --config=mnist_draw_6x6 --workdir=runs/stawm/mnist_draw_6x6
        bazel run //trainers:stawm -- --config=mnist_self_supervised \\
            --pretrained_workdir=runs/stawm/mnist_draw_6x6
    """
    c = mnist_draw_6x6()
    c.objective = "self_supervised"
    c.learnable_rates = True
    c.pretrained_workdir = "runs/stawm/mnist_draw_6x6"
    return c


def mnist_self_supervised_cpu():
    """Self-supervised classification from a mnist_draw_6x6_cpu run (same reduced sizes).

        bazel run //trainers:stawm -- --config=mnist_draw_6x6_cpu --workdir=runs/stawm/mnist_draw_6x6_cpu
        bazel run //trainers:stawm -- --config=mnist_self_supervised_cpu
    """
    c = mnist_draw_6x6_cpu()
    c.objective = "self_supervised"
    c.learnable_rates = True
    c.pretrained_workdir = "runs/stawm/mnist_draw_6x6_cpu"
    c.epochs = 20
    return c


def mnist_sketchpad():
    """The visual sketchpad: classification and 6x6 drawing, losses summed (D.1, 4.4).

        bazel run //trainers:stawm -- --config=mnist_sketchpad
    """
    c = mnist_draw_6x6()
    c.objective = "sketchpad"
    c.epochs = 20
    return c


def _colour_draw(dataset, glimpse_size, beta=2.0):
    """The drawing setting of appendices D.2 and D.3 (Kaiming-uniform 4x4
    convolutions, 'same' padding, Adam 1e-4, 100 epochs, no rotation)."""
    c = base()
    c.dataset = dataset
    c.num_test = 1000
    c.objective = "draw"
    c.num_glimpses = 8
    c.glimpse_size = glimpse_size
    c.rnn_units = 256
    c.beta = beta
    c.context_kernel = 4
    c.glimpse_kernel = 4
    c.glimpse_strides = (1, 2, 2, 2)
    c.padding = "same"
    c.kernel_initializer = "he_uniform"
    c.epochs = 100
    c.learning_rate = 1e-4
    c.lr_decay = 1.0
    c.lr_milestones = ()
    c.max_rotation = 0.0
    return c


def cifar10_draw_16():
    """CIFAR-10 drawing, 8 glimpses of 16x16, additive canvas (D.2). Needs
    CIFAR-10 prepared in a tensorflow-datasets dir.

        bazel run //trainers:stawm -- --config=cifar10_draw_16 --data_dir=/path/to/tfds
    """
    c = _colour_draw("cifar10", 16)
    c.latent_units = 32
    c.context_filters = (32, 32, 32)
    c.glimpse_filters = (32, 64, 128, 128)
    c.lr_milestones = (50, 90)
    c.random_flip = True
    return c


def celeb_a_draw_32():
    """CelebA drawing, 8 glimpses of 32x32, Bernoulli canvas (D.3, fig 6).
    Needs CelebA prepared in a tensorflow-datasets dir.

        bazel run //trainers:stawm -- --config=celeb_a_draw_32 --data_dir=/path/to/tfds
    """
    c = _colour_draw("celeb_a", 32)
    c.canvas = "bernoulli"
    c.dropout = 0.3
    c.context_filters = (32, 32, 64, 64)
    c.context_strides = (2, 2, 2, 2)
    c.glimpse_filters = (32, 32, 64, 64)
    return c


def tiny():
    """A smoke test: a small classifier, a few steps, seconds on a CPU.

        bazel run //trainers:stawm -- --config=tiny --workdir=/tmp/stawm_smoke
    """
    c = base()
    c.num_glimpses = 3
    c.memory_size = 16
    c.rnn_units = 32
    c.context_filters = (8, 8, 8)
    c.glimpse_filters = (8, 8)
    c.batch_size = 16
    c.num_test = 64
    c.epochs = 1
    c.steps = 20
    c.jit = False
    c.log_every = 5
    c.eval_every = 10
    c.checkpoint_every = 10
    c.num_summary_images = 2
    return c


def tiny_sketchpad():
    """The smoke test with both heads (Bernoulli canvas).

        bazel run //trainers:stawm -- --config=tiny_sketchpad --workdir=/tmp/stawm_smoke2
    """
    c = tiny()
    c.objective = "sketchpad"
    c.canvas = "bernoulli"
    c.glimpse_size = 6
    c.glimpse_filters = (8,)
    c.glimpse_strides = (1,)
    return c


CONFIGS, get_config = common.named_configs(
    mnist_8x8, mnist_8x8_15min, mnist_28x28, mnist_draw_4x4, mnist_draw_6x6, mnist_draw_8x8,
    mnist_draw_6x6_cpu, mnist_self_supervised, mnist_self_supervised_cpu, mnist_sketchpad,
    cifar10_draw_16, celeb_a_draw_32, tiny, tiny_sketchpad,
    default=DEFAULT,
)
