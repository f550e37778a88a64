"""One worker of the multi-worker test: trains a tiny Painter, saves its weights.

    python -m tests.trainers.multi_worker_job INDEX PORTS WORKDIR WEIGHTS.npz

`PORTS` is the comma-separated ports of every worker on localhost; this
process is worker `INDEX`. Prints `DONE <index> <replicas> <metrics>`.
"""

import json
import os
import sys


def main(argv):
    index, ports, workdir, weights = int(argv[1]), argv[2].split(","), argv[3], argv[4]
    os.environ["TF_CONFIG"] = json.dumps({
        "cluster": {"worker": [f"localhost:{port}" for port in ports]},
        "task": {"type": "worker", "index": index},
    })
    import numpy as np  # pylint: disable=g-import-not-at-top

    from trainers import tasks  # pylint: disable=g-import-not-at-top
    from trainers import train_lib  # pylint: disable=g-import-not-at-top
    from trainers.configs import painter  # pylint: disable=g-import-not-at-top

    strategy = train_lib.make_strategy("multi_worker", timeout_seconds=60)
    config = painter.get_config("rectangles_2moves")
    config.steps, config.num_train, config.num_test, config.batch_size = 6, 64, 16, 8
    config.hidden_units, config.log_every, config.checkpoint_every = 32, 2, 3
    config.jit = True  # the gradients' all-reduce must run outside XLA
    result, state = train_lib.train(tasks.get_task(config), workdir, strategy=strategy,
                                    progress=False)
    np.savez(weights, *[np.asarray(w) for w in state.model.weights])
    print("DONE", index, strategy.num_replicas_in_sync, json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv)
