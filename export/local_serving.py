"""TF Serving's predict APIs answered in-process from an exported SavedModel.

No TF Serving binary can be installed here, so tests prove the wire format
another way: the client builds real REST JSON and real gRPC
`PredictRequest` bytes, `LocalModelServer` decodes them the way TF Serving's
predict handlers do (row "instances" / columnar "inputs" JSON; `TensorProto`
inputs), runs the named signature of the SavedModel with plain
`tf.saved_model.load` (no tfpaint), and encodes the reply the way TF Serving
does ("predictions" / "outputs" JSON; `PredictResponse`). Also handy for
developing a client offline.
"""

import json
import os
import re

import numpy as np
import tensorflow as tf

_REST_PATH = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?:predict$")


class LocalModelServer:
    """Serves the versions of exported models under an export base.

    Args:
        export_base: the directory holding `<model_name>/<version>/`.
    """

    def __init__(self, export_base):
        self.export_base = os.path.abspath(export_base)
        self._loaded = {}

    def _signatures(self, model_name, version=None):
        model_dir = os.path.join(self.export_base, model_name)
        versions = sorted(int(v) for v in os.listdir(model_dir) if v.isdigit()) \
            if os.path.isdir(model_dir) else []
        if not versions:
            raise LookupError(f"Servable not found for request: Latest({model_name})")
        version = versions[-1] if version is None else int(version)
        if version not in versions:
            raise LookupError(f"Servable not found for request: Specific({model_name}, {version})")
        key = (model_name, version)
        if key not in self._loaded:
            loaded = tf.saved_model.load(os.path.join(model_dir, str(version)))
            self._loaded[key] = (loaded, loaded.signatures)
        return self._loaded[key][1], version

    def _run(self, model_name, version, signature_name, inputs):
        signatures, version = self._signatures(model_name, version)
        if signature_name not in signatures:
            raise LookupError(
                f"Serving signature name: \"{signature_name}\" not found in signature def"
            )
        function = signatures[signature_name]
        specs = function.structured_input_signature[1]
        if set(inputs) != set(specs):
            raise ValueError(
                f"Expected inputs {sorted(specs)} for signature {signature_name!r}. "
                f"Received: {sorted(inputs)}"
            )
        tensors = {k: tf.constant(v, dtype=specs[k].dtype) for k, v in inputs.items()}
        outputs = function(**tensors)
        return {k: v.numpy() for k, v in outputs.items()}, version

    def rest(self, path, body):
        """Answers `POST <path>` with a JSON `body` (str); returns (status, str)."""
        match = _REST_PATH.match(path)
        if not match:
            return 404, json.dumps({"error": f"Malformed request: POST {path}"})
        model_name, version = match.group(1), match.group(2)
        try:
            request = json.loads(body)
            signature_name = request.get("signature_name", "serving_default")
            if ("instances" in request) == ("inputs" in request):
                raise ValueError("Request must have exactly one of 'instances' or 'inputs'")
            if "instances" in request:
                instances = request["instances"]
                if not instances or not isinstance(instances[0], dict):
                    raise ValueError("Expected named inputs in every instance")
                inputs = {k: np.asarray([i[k] for i in instances]) for k in instances[0]}
            else:
                inputs = {k: np.asarray(v) for k, v in request["inputs"].items()}
            outputs, _ = self._run(model_name, version, signature_name, inputs)
        except LookupError as error:
            return 404, json.dumps({"error": str(error)})
        except (ValueError, KeyError, tf.errors.InvalidArgumentError) as error:
            message = getattr(error, "message", None) or str(error)
            return 400, json.dumps({"error": message})
        if "instances" in request:
            size = len(next(iter(outputs.values())))
            predictions = [{k: v[i].tolist() for k, v in outputs.items()} for i in range(size)]
            return 200, json.dumps({"predictions": predictions})
        return 200, json.dumps({"outputs": {k: v.tolist() for k, v in outputs.items()}})

    def grpc_predict(self, request_bytes):
        """Answers serialised `PredictRequest` bytes with `PredictResponse` bytes.

        Raises:
            LookupError: unknown model, version or signature (NOT_FOUND).
            tf.errors.InvalidArgumentError: bad inputs (INVALID_ARGUMENT).
        """
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest.FromString(request_bytes)
        spec = request.model_spec
        version = spec.version.value if spec.HasField("version") else None
        signature_name = spec.signature_name or "serving_default"
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        outputs, version = self._run(spec.name, version, signature_name, inputs)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = spec.name
        response.model_spec.signature_name = signature_name
        response.model_spec.version.value = version
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response.SerializeToString()


def serve_rest(server, port=0, host="127.0.0.1"):
    """Serves `server.rest` over HTTP in a background thread.

    Returns:
        The `http.server.ThreadingHTTPServer` (its `server_port` is the port;
        call `shutdown()` to stop).
    """
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the stdlib's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, reply = server.rest(self.path, body.decode())
            data = reply.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def serve_grpc(server, port=0, host="127.0.0.1"):
    """Serves `tensorflow.serving.PredictionService/Predict` over gRPC.

    Returns:
        (the started `grpc.Server`, its port); call `stop(None)` to stop.
    """
    from concurrent import futures

    import grpc

    def predict(request_bytes, context):
        try:
            return server.grpc_predict(request_bytes)
        except LookupError as error:
            context.abort(grpc.StatusCode.NOT_FOUND, str(error))
        except (ValueError, tf.errors.InvalidArgumentError) as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          getattr(error, "message", None) or str(error))

    identity = lambda data: data  # noqa: E731 (bytes in, bytes out)
    handler = grpc.method_handlers_generic_handler(
        "tensorflow.serving.PredictionService",
        {"Predict": grpc.unary_unary_rpc_method_handler(
            predict, request_deserializer=identity, response_serializer=identity)},
    )
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    grpc_server.add_generic_rpc_handlers((handler,))
    bound = grpc_server.add_insecure_port(f"{host}:{port}")
    grpc_server.start()
    return grpc_server, bound
