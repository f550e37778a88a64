r"""A small TF Serving client for an exported Painter: REST and gRPC.

Start the server (see README, "Serving"), then

    bazel run //export:client -- --transport=rest --port=8501
    bazel run //export:client -- --transport=grpc --port=8500 --output=/abs/out.npz

sends a few held-out digits to `serving_default` and prints what came back.
As a library:

    client = PainterClient("localhost", 8501, transport="rest")
    outputs = client.paint(images)            # canvas, canvases, where, what, which
    strokes = client.moves(images)            # canvas, where, what, which
    canvas = client.render(where, what, which)["canvas"]

The request builders (`rest_request`, `grpc_request`) and response parsers
are separate functions so that tests can run the exact wire format through a
SavedModel without a server (`export.local_serving`). The library needs only
NumPy, TensorFlow (for `TensorProto`s) and `tensorflow-serving-api`; it never
imports tfpaint, as a client machine would not have it.
"""

import http.client
import json
import urllib.error
import urllib.request

from absl import app
from absl import flags
import numpy as np

TRANSPORTS = ("rest", "grpc")
# How much of a reply that is not TF Serving's JSON an error quotes.
_BODY_PREVIEW = 200


def _as_inputs(inputs):
    arrays = {}
    for name, value in inputs.items():
        array = np.asarray(value, dtype=np.float32)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"`{name}` values must be finite")
        arrays[name] = array
    return arrays


def rest_request(inputs, signature_name="serving_default", columnar=False):
    """The JSON body of a TF Serving REST `:predict` call.

    Args:
        inputs: dict of input name -> array with a leading batch axis.
        signature_name: the signature to call.
        columnar: use the columnar `"inputs"` format instead of the row
            (`"instances"`) format.

    Returns:
        A JSON-serialisable dict.
    """
    arrays = _as_inputs(inputs)
    if columnar:
        return {"signature_name": signature_name,
                "inputs": {k: v.tolist() for k, v in arrays.items()}}
    sizes = {len(v) for v in arrays.values()}
    if len(sizes) != 1:
        raise ValueError(f"Every input needs the same batch size. Received: {sizes}")
    instances = [
        {k: v[i].tolist() for k, v in arrays.items()} for i in range(sizes.pop())
    ]
    return {"signature_name": signature_name, "instances": instances}


def parse_rest_response(body):
    """The outputs of a REST `:predict` response as a dict of float32 arrays.

    Raises:
        RuntimeError: with the server's message, if the body holds an error.
    """
    if "error" in body:
        raise RuntimeError(f"TF Serving error: {body['error']}")
    if "outputs" in body:  # Columnar response.
        outputs = body["outputs"]
        return {k: np.asarray(v, np.float32) for k, v in outputs.items()}
    predictions = body["predictions"]
    if predictions and not isinstance(predictions[0], dict):
        raise ValueError("Expected named outputs in every prediction.")
    names = predictions[0].keys() if predictions else []
    return {k: np.asarray([p[k] for p in predictions], np.float32) for k in names}


def rest_url(host, port, model_name, version=None):
    """The REST `:predict` URL of a model (its newest version by default)."""
    path = f"/v1/models/{model_name}"
    if version is not None:
        path += f"/versions/{int(version)}"
    return f"http://{host}:{port}{path}:predict"


def grpc_request(inputs, model_name, signature_name="serving_default", version=None):
    """A `tensorflow.serving.PredictRequest` for TF Serving's gRPC API."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, array in _as_inputs(inputs).items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(array, dtype=tf.float32))
    return request


def parse_grpc_response(response):
    """The outputs of a `PredictResponse` as a dict of NumPy arrays."""
    import tensorflow as tf

    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


class PainterClient:
    """Calls an exported Painter served by TF Serving.

    Args:
        host: server host.
        port: REST port (8501 by default in the container) or gRPC port (8500).
        model_name: the model's name in `models.config`.
        transport: "rest" or "grpc".
        version: a model version, or None for the newest.
        timeout: seconds per request.
    """

    def __init__(self, host="localhost", port=8501, model_name="painter",
                 transport="rest", version=None, timeout=30.0):
        if transport not in TRANSPORTS:
            raise ValueError(f"`transport` must be one of {TRANSPORTS}. Received: {transport!r}")
        self.host, self.port, self.model_name = host, int(port), model_name
        self.transport, self.version, self.timeout = transport, version, float(timeout)
        self._stub = None

    def predict(self, inputs, signature_name="serving_default"):
        """Any signature: dict of inputs -> dict of NumPy outputs.

        Raises:
            ValueError: on inputs that are not finite or whose batch sizes differ.
            ConnectionError: naming the URL (or host:port) and the reason, if
                the server cannot be reached or gives no reply in `timeout`.
            RuntimeError: naming the URL (or host:port), if the server answers
                with an error (its message and HTTP or gRPC status) or with a
                reply that is not TF Serving's (its status and first 200
                characters, e.g. a proxy's HTML error page).
        """
        if self.transport == "rest":
            return self._predict_rest(inputs, signature_name)
        return self._predict_grpc(inputs, signature_name)

    def _predict_rest(self, inputs, signature_name):
        body = json.dumps(rest_request(inputs, signature_name)).encode()
        url = rest_url(self.host, self.port, self.model_name, self.version)
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                status, data = reply.status, reply.read()
        except urllib.error.HTTPError as error:  # TF Serving puts the reason in JSON.
            status, data = error.code, error.read()
        except (OSError, http.client.HTTPException) as error:
            # URLError (refused, unknown host, connect timeout) and errors while
            # reading (timeout, reset) are OSErrors; a reply that is not HTTP
            # at all is an HTTPException.
            reason = getattr(error, "reason", None) or error
            raise ConnectionError(
                f"Cannot reach TF Serving at {url} (host {self.host!r}, port "
                f"{self.port}, timeout {self.timeout:g} s): {reason}"
            ) from error
        text = data.decode("utf-8", errors="replace")
        try:
            reply = json.loads(text)
        except ValueError:
            reply = None
        served = isinstance(reply, dict) and (
            "error" in reply or (status < 400 and ("predictions" in reply or "outputs" in reply))
        )
        if not served:
            preview = text[:_BODY_PREVIEW] + ("..." if len(text) > _BODY_PREVIEW else "")
            raise RuntimeError(
                f"{url} answered HTTP {status} with a body that is not a TF Serving "
                f"JSON reply (is a proxy or another server on port {self.port}?). "
                f"Body: {preview!r}"
            )
        if "error" in reply:
            raise RuntimeError(
                f"TF Serving error from {url} (HTTP {status}): {reply['error']}"
            )
        return parse_rest_response(reply)

    def _predict_grpc(self, inputs, signature_name):
        import grpc

        target = f"{self.host}:{self.port}"
        if self._stub is None:
            from tensorflow_serving.apis import prediction_service_pb2_grpc

            channel = grpc.insecure_channel(target)
            self._stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = grpc_request(inputs, self.model_name, signature_name, self.version)
        try:
            response = self._stub.Predict(request, timeout=self.timeout)
        except grpc.RpcError as error:
            code = error.code() if callable(getattr(error, "code", None)) else None
            details = error.details() if callable(getattr(error, "details", None)) else error
            status = code.name if code is not None else "UNKNOWN"
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise ConnectionError(
                    f"Cannot reach TF Serving over gRPC at {target} (model "
                    f"{self.model_name!r}, timeout {self.timeout:g} s): {status}: {details}"
                ) from error
            raise RuntimeError(
                f"TF Serving gRPC error from {target} (model {self.model_name!r}): "
                f"{status}: {details}"
            ) from error
        return parse_grpc_response(response)

    def paint(self, images):
        """`serving_default`: images `[batch, H, W, C]` in [0, 1] -> outputs."""
        return self.predict({"image": images})

    def moves(self, images):
        """`moves`: images -> `canvas`, `where`, `what`, `which` (no per-move canvases)."""
        return self.predict({"image": images}, "moves")

    def render(self, where, what, which):
        """`render`: moves -> `canvas` and `canvases`."""
        return self.predict({"where": where, "what": what, "which": which}, "render")


FLAGS = flags.FLAGS


def _define_flags():
    # Defined only when run as a program, so importing the client library
    # never clashes with another tool's flags.
    flags.DEFINE_enum("transport", "rest", TRANSPORTS, "REST (JSON) or gRPC.")
    flags.DEFINE_string("host", "localhost", "TF Serving host.")
    flags.DEFINE_integer("port", None, "Port (default 8501 for REST, 8500 for gRPC).")
    flags.DEFINE_string("model_name", "painter", "Model name on the server.")
    flags.DEFINE_integer("num_images", 4, "Held-out digits to send.")
    flags.DEFINE_string("images", None, "A .npy file of images [N, H, W, C] instead of digits.")
    flags.DEFINE_string("output", None, "Save the outputs to this .npz file.")


def main(argv):
    del argv
    if FLAGS.images:
        images = np.load(FLAGS.images).astype(np.float32)
    else:
        from tfpaint.data import digits

        images = digits.load_offline_mnist("test")[0][: FLAGS.num_images]
    port = FLAGS.port or (8501 if FLAGS.transport == "rest" else 8500)
    client = PainterClient(FLAGS.host, port, FLAGS.model_name, FLAGS.transport)
    outputs = client.paint(images)
    for name, value in outputs.items():
        print(f"{name:9s} {value.shape}")
    mse = float(np.mean((outputs["canvas"] - images) ** 2))
    print(f"Mean squared error of the painted canvases: {mse:.4f}")
    if FLAGS.output:
        np.savez(FLAGS.output, images=images, **outputs)
        print(f"Saved {FLAGS.output}")


if __name__ == "__main__":
    _define_flags()
    app.run(main)
