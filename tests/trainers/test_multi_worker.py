"""Multi-worker training: two worker processes on local ports (MultiWorkerMirroredStrategy).

Both workers must end with the same weights, only the chief may write the run
directory, and a worker that dies must stop the others with a clear error
within the stated timeout (`--worker_timeout`), not hang.
"""

import glob
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

import trainers

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(trainers.__file__)))
# How long the dead worker's peers may take to fail (the command's --worker_timeout).
WORKER_TIMEOUT = 30


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class Worker:
    """A worker process whose output goes to files (a pipe nobody reads could
    fill up and stall it)."""

    def __init__(self, args, tmpdir, tf_config=None):
        env = dict(os.environ, TMPDIR=tmpdir)
        env.pop("BUILD_WORKING_DIRECTORY", None)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO_ROOT, env.get("PYTHONPATH")]))
        if tf_config is not None:
            env["TF_CONFIG"] = json.dumps(tf_config)
        self.out = tempfile.NamedTemporaryFile("w+", dir=tmpdir, suffix=".out", delete=False)
        self.err = tempfile.NamedTemporaryFile("w+", dir=tmpdir, suffix=".err", delete=False)
        self.process = subprocess.Popen([sys.executable, "-m", *args], cwd=REPO_ROOT, env=env,
                                        stdout=self.out, stderr=self.err, text=True)

    def wait(self, timeout):
        """Waits for the process; returns (return code, stdout, stderr)."""
        code = self.process.wait(timeout=timeout)
        texts = []
        for f in (self.out, self.err):
            f.close()
            with open(f.name) as written:
                texts.append(written.read())
        return code, *texts

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class MultiWorkerTest(tf.test.TestCase):

    def test_two_workers_end_with_the_same_weights_and_only_the_chief_writes(self):
        base = tempfile.mkdtemp(dir=self.get_temp_dir())
        workdir = os.path.join(base, "run")
        ports = ",".join(map(str, free_ports(2)))
        tmpdirs = [tempfile.mkdtemp(dir=base) for _ in range(2)]
        workers = [Worker(["tests.trainers.multi_worker_job", str(i), ports, workdir,
                           os.path.join(base, f"weights{i}.npz")], tmpdirs[i]) for i in range(2)]
        try:
            outputs = [w.wait(timeout=300) for w in workers]
        finally:
            for worker in workers:
                worker.kill()
        for code, _, err in outputs:
            self.assertEqual(code, 0, err[-3000:])
        done = [next(l for l in out.splitlines() if l.startswith("DONE")).split(" ", 3)
                for _, out, _ in outputs]
        self.assertEqual([d[2] for d in done], ["2", "2"])  # two replicas in sync
        self.assertIn("mse_per_pixel", json.loads(done[0][3]))  # the chief evaluates
        self.assertEqual(json.loads(done[1][3]), {})  # the other worker does not
        weights = [np.load(os.path.join(base, f"weights{i}.npz")) for i in range(2)]
        for key in weights[0].files:
            self.assertAllEqual(weights[0][key], weights[1][key])
        # The chief's files only: one event file per writer, its checkpoints.
        for sub in ("train", "eval"):
            self.assertLen(glob.glob(os.path.join(workdir, sub, "events.out.tfevents.*")), 1)
        self.assertCountEqual(
            [n for n in os.listdir(os.path.join(workdir, "checkpoints")) if n.endswith(".index")],
            ["ckpt-3.index", "ckpt-6.index"])
        # The other worker's checkpoints went to a temporary directory, removed at the end.
        self.assertEqual([n for n in os.listdir(tmpdirs[1]) if n.startswith("tfpaint-worker-")],
                         [])

    def test_a_killed_worker_stops_the_others_with_a_clear_error(self):
        base = tempfile.mkdtemp(dir=self.get_temp_dir())
        workdir = os.path.join(base, "run")
        ports = free_ports(2)
        cluster = {"worker": [f"localhost:{p}" for p in ports]}
        command = ["trainers.train", "--family=painter", "--config=rectangles_2moves",
                   "--steps=1000000", "--num_train=64", "--num_test=16", "--batch_size=8",
                   "--hidden_units=32", "--checkpoint_every=20", "--nojit", "--noprogress",
                   "--strategy=multi_worker", f"--worker_timeout={WORKER_TIMEOUT}",
                   f"--workdir={workdir}"]
        chief, other = (Worker(command, base, {"cluster": cluster,
                                               "task": {"type": "worker", "index": i}})
                        for i in range(2))
        try:
            deadline = time.time() + 240
            checkpoints = os.path.join(workdir, "checkpoints")
            while not (os.path.isdir(checkpoints) and os.listdir(checkpoints)):
                self.assertIsNone(chief.process.poll(), "the chief ended before training")
                self.assertLess(time.time(), deadline, "training never started")
                time.sleep(0.5)
            other.process.send_signal(signal.SIGKILL)
            killed = time.time()
            code, _, err = chief.wait(timeout=WORKER_TIMEOUT + 60)
            waited = time.time() - killed
        finally:
            chief.kill()
            other.kill()
        self.assertNotEqual(code, 0)
        self.assertLess(waited, WORKER_TIMEOUT + 30)
        self.assertIn("Error: A worker of the cluster stopped answering", err)
        self.assertIn("/job:worker/replica:0/task:1", err)
        self.assertIn("Start every worker again with the same command to resume.", err)
        self.assertNotIn("Traceback", err)


if __name__ == "__main__":
    tf.test.main()
