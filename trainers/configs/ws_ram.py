"""Named configurations of WS-RAM (Ba et al. 2015) on translated-scaled MNIST.

Each config's docstring gives the command that runs it:

    bazel run //trainers:ws_ram -- --config=<name> --workdir=/abs/path

Override single fields with `--config.<field>=<value>` (or `--<field>=<value>`);
the shared fields and their meaning are in `trainers/configs/common.py`.
The four CPU configs differ only in the training algorithm (fig 2's VAR,
WS-RAM, WS-RAM+q and WS-RAM+q+c): same model, data, samples and budget.
"""

from trainers.configs import common

DEFAULT = "ws_ram_q_c"


def base():
    """WS-RAM's fields; defaults follow section 5.1 where it gives them."""
    c = common.add_glimpse_sequence(common.base())
    c.task = "ws_ram"
    c.dataset = "translated_mnist"  # one digit at a random place and scale
    c.image_size = 100  # the paper's 100x100 scenes
    c.num_train = 20_000  # training scenes (from the 4,500 offline training digits)
    c.num_test = 1_000  # held-out scenes (from the 500 held-out digits)
    c.num_glimpses = 4  # N: glimpses before the class is named (section 5.1)
    c.glimpse_size = 12  # G: each glimpse is resampled to G x G
    c.scales = (0.25, 0.5, 1.0)  # the categorical scale: window side / image side
    c.low_res_size = 12  # side of the low-resolution view that places the first glimpse
    c.rnn_units = 256  # the ReLU recurrent layers' (and glimpse network's) width
    c.location_sd = 0.15  # sigma of the Gaussian location policy ([-1, 1] coordinates)
    # Training algorithm: "var" (the variational method, REINFORCE with a
    # learned baseline) or "ws_ram" (reweighted wake-sleep); the proposal
    # "prior" or "q" (the inference network, WS-RAM only); control variates
    # (eqs 15-18, WS-RAM only).
    c.algorithm = "ws_ram"
    c.proposal = "q"
    c.control_variates = True
    c.samples = 5  # M: action sequences per example (the paper's 5)
    # Held-out evaluation.
    c.eval_samples = 5  # prior samples whose averaged prediction gives error_sampled
    c.grad_variance_repeats = 10  # draws of the gradient on one fixed batch
    c.grad_variance_images = 100  # that batch's held-out images
    c.batch_size = 64
    c.learning_rate = 1e-3
    c.steps = 100_000
    c.jit = True  # XLA: faster for every algorithm here (BENCHMARKS.md, "WS-RAM")
    c.eval_every = 1000
    c.checkpoint_every = 1000
    return c


def paper():
    """The paper's setting: 100x100 scenes, 4 glimpses, M = 5, WS-RAM+q+c.

        bazel run //trainers:ws_ram -- --config=paper
    """
    return base()


def _cpu(algorithm, proposal, control_variates):
    c = base()
    c.image_size = 60  # a CPU-sized scene (digits 15-30 pixels)
    c.rnn_units = 128
    c.algorithm, c.proposal, c.control_variates = algorithm, proposal, control_variates
    c.steps = 20_000
    c.eval_every = 500
    c.checkpoint_every = 1000
    return c


def var():
    """The variational baseline (REINFORCE with a learned baseline, eqs 3-5), CPU-sized.

        bazel run //trainers:ws_ram -- --config=var
    """
    return _cpu("var", "prior", False)


def ws_ram_prior():
    """WS-RAM with the prior as proposal, no control variates (eq 8), CPU-sized.

        bazel run //trainers:ws_ram -- --config=ws_ram_prior
    """
    return _cpu("ws_ram", "prior", False)


def ws_ram_c():
    """WS-RAM with the prior as proposal and control variates (eq 16), CPU-sized.

        bazel run //trainers:ws_ram -- --config=ws_ram_c
    """
    return _cpu("ws_ram", "prior", True)


def ws_ram_q():
    """WS-RAM with the inference network as proposal (eqs 11-14), CPU-sized.

        bazel run //trainers:ws_ram -- --config=ws_ram_q
    """
    return _cpu("ws_ram", "q", False)


def ws_ram_q_c():
    """WS-RAM+q+c: the inference network and control variates (eqs 14-18), CPU-sized.

        bazel run //trainers:ws_ram -- --config=ws_ram_q_c
    """
    return _cpu("ws_ram", "q", True)


def tiny():
    """A seconds-long smoke run (tests).

        bazel run //trainers:ws_ram -- --config=tiny
    """
    c = base()
    c.image_size = 24
    c.num_glimpses = 2
    c.glimpse_size = 6
    c.low_res_size = 6
    c.rnn_units = 16
    c.samples = 3
    c.eval_samples = 2
    c.grad_variance_repeats = 2
    c.grad_variance_images = 8
    c.num_train = 64
    c.num_test = 16
    c.batch_size = 8
    c.steps = 4
    c.eval_every = 2
    c.checkpoint_every = 2
    c.log_every = 1
    c.num_summary_images = 4
    c.jit = False  # compiling costs more than four steps save
    return c


CONFIGS, get_config = common.named_configs(paper, var, ws_ram_prior, ws_ram_c, ws_ram_q,
                                           ws_ram_q_c, tiny, default=DEFAULT)
