"""Tests for export.client: REST JSON and gRPC requests through a SavedModel.

No TF Serving binary exists here, so the wire format is proven locally: the
client's request bytes go through `export.local_serving` (TF Serving's predict
semantics on the exported SavedModel) and back through the client's parsers,
in memory and over real HTTP and gRPC sockets.
"""

import http.server
import json
import re
import socket
import tempfile
import threading

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from export import client
from export import local_serving
from export import serving
from tests.export import fixtures


class ClientTest(parameterized.TestCase, tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.base = tempfile.mkdtemp()
        cls.model = fixtures.make_model("gray_over")
        cls.path = serving.export_saved_model(cls.model, cls.base, "painter")
        cls.server = local_serving.LocalModelServer(cls.base)
        cls.images = fixtures.images(fixtures.GRAY, num=3)
        sig = tf.saved_model.load(cls.path).signatures["serving_default"]
        cls.want = {k: v.numpy() for k, v in sig(image=tf.constant(cls.images)).items()}

    def assert_outputs(self, got, keys=serving.SERVING_OUTPUTS):
        self.assertCountEqual(got.keys(), keys)
        for key in keys:
            self.assertAllClose(got[key], self.want[key], atol=1e-6, rtol=0, msg=key)

    @parameterized.named_parameters(("rows", False), ("columns", True))
    def test_rest_json_round_trip(self, columnar):
        body = json.dumps(client.rest_request({"image": self.images}, columnar=columnar))
        status, reply = self.server.rest("/v1/models/painter:predict", body)
        self.assertEqual(status, 200, reply)
        parsed = json.loads(reply)
        self.assertIn("outputs" if columnar else "predictions", parsed)
        self.assert_outputs(client.parse_rest_response(parsed))

    def test_rest_render_signature(self):
        moves = {k: self.want[k] for k in ("where", "what", "which")}
        body = json.dumps(client.rest_request(moves, signature_name="render"))
        status, reply = self.server.rest("/v1/models/painter/versions/1:predict", body)
        self.assertEqual(status, 200, reply)
        got = client.parse_rest_response(json.loads(reply))
        self.assert_outputs(got, serving.RENDER_OUTPUTS)

    def test_rest_request_format(self):
        body = client.rest_request({"image": self.images[:2]})
        self.assertEqual(body["signature_name"], "serving_default")
        self.assertLen(body["instances"], 2)
        self.assertEqual(np.asarray(body["instances"][0]["image"]).shape, fixtures.GRAY)
        self.assertEqual(client.rest_url("h", 8501, "painter"),
                         "http://h:8501/v1/models/painter:predict")
        self.assertEqual(client.rest_url("h", 8501, "painter", 3),
                         "http://h:8501/v1/models/painter/versions/3:predict")

    @parameterized.named_parameters(
        ("out_of_range", "/v1/models/painter:predict", 2.0, 400, "values must be finite and in"),
        ("unknown_model", "/v1/models/nope:predict", 0.0, 404, "Servable not found"),
        ("unknown_version", "/v1/models/painter/versions/9:predict", 0.0, 404,
         "Servable not found"),
    )
    def test_rest_errors(self, path, shift, status, message):
        body = json.dumps(client.rest_request({"image": self.images + shift}))
        code, reply = self.server.rest(path, body)
        self.assertEqual(code, status)
        with self.assertRaisesRegex(RuntimeError, message):
            client.parse_rest_response(json.loads(reply))

    def test_grpc_round_trip(self):
        request = client.grpc_request({"image": self.images}, "painter", version=1)
        self.assertEqual(request.model_spec.name, "painter")
        self.assertEqual(request.model_spec.signature_name, "serving_default")
        self.assertEqual(list(request.inputs["image"].tensor_shape.dim[i].size
                              for i in range(4)), [3, *fixtures.GRAY])
        reply = self.server.grpc_predict(request.SerializeToString())
        response = predict_pb2.PredictResponse.FromString(reply)
        self.assertEqual(response.model_spec.version.value, 1)
        self.assert_outputs(client.parse_grpc_response(response))

    def test_client_rejects_non_finite_inputs(self):
        with self.assertRaisesRegex(ValueError, "`image` values must be finite"):
            client.rest_request({"image": self.images * np.nan})
        with self.assertRaisesRegex(ValueError, "`transport` must be one of"):
            client.PainterClient(transport="smoke")

    @parameterized.named_parameters(("rest", "rest"), ("grpc", "grpc"))
    def test_painter_client_over_sockets(self, transport):
        if transport == "rest":
            httpd = local_serving.serve_rest(self.server)
            port, stop = httpd.server_port, httpd.shutdown
        else:
            grpc_server, port = local_serving.serve_grpc(self.server)
            stop = lambda: grpc_server.stop(None)  # noqa: E731
        try:
            painter = client.PainterClient("127.0.0.1", port, "painter", transport=transport)
            self.assert_outputs(painter.paint(self.images))
            self.assert_outputs(painter.moves(self.images), serving.MOVES_OUTPUTS)
            rendered = painter.render(self.want["where"], self.want["what"], self.want["which"])
            self.assert_outputs(rendered, serving.RENDER_OUTPUTS)
            with self.assertRaisesRegex(Exception, "values must be finite and in"):
                painter.paint(self.images + 1.0)
        finally:
            stop()

    @parameterized.named_parameters(
        ("rest_bad_values", "rest", "painter", 1.0,
         r"TF Serving error from http://127\.0\.0\.1:{port}/v1/models/painter:predict "
         r"\(HTTP 400\): .*values must be finite and in"),
        ("rest_unknown_model", "rest", "nope", 0.0,
         r"TF Serving error from http://127\.0\.0\.1:{port}/v1/models/nope:predict "
         r"\(HTTP 404\): Servable not found"),
        ("grpc_bad_values", "grpc", "painter", 1.0,
         r"TF Serving gRPC error from 127\.0\.0\.1:{port} \(model 'painter'\): "
         r"INVALID_ARGUMENT: .*values must be finite and in"),
        ("grpc_unknown_model", "grpc", "nope", 0.0,
         r"TF Serving gRPC error from 127\.0\.0\.1:{port} \(model 'nope'\): "
         r"NOT_FOUND: Servable not found"),
    )
    def test_server_errors_name_the_server(self, transport, model_name, shift, message):
        if transport == "rest":
            httpd = local_serving.serve_rest(self.server)
            port = httpd.server_port
            self.addCleanup(httpd.server_close)
            self.addCleanup(httpd.shutdown)
        else:
            grpc_server, port = local_serving.serve_grpc(self.server)
            self.addCleanup(grpc_server.stop, None)
        painter = client.PainterClient("127.0.0.1", port, model_name, transport=transport)
        # (?s): TF's messages span lines.
        with self.assertRaisesRegex(RuntimeError, "(?s)" + message.format(port=port)):
            painter.paint(self.images + shift)


def _closed_port():
    """A local port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve_fixed_reply(status, body, content_type="text/html"):
    """An HTTP server on a free local port that answers every POST alike."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the stdlib's name)
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


class ClientConnectionErrorsTest(parameterized.TestCase, tf.test.TestCase):
    """Errors that name the server when it is not TF Serving or not there."""

    moves = {"image": np.zeros((1, 4, 4, 1), np.float32)}

    @parameterized.named_parameters(
        ("rest", "rest", r"Cannot reach TF Serving at "
         r"http://127\.0\.0\.1:{port}/v1/models/painter:predict \(host '127\.0\.0\.1', "
         r"port {port}, timeout 10 s\): .*Connection refused"),
        ("grpc", "grpc", r"Cannot reach TF Serving over gRPC at 127\.0\.0\.1:{port} "
         r"\(model 'painter', timeout 10 s\): UNAVAILABLE: "),
    )
    def test_refused_connection_names_host_and_port(self, transport, message):
        port = _closed_port()
        painter = client.PainterClient("127.0.0.1", port, transport=transport, timeout=10)
        with self.assertRaisesRegex(ConnectionError, message.format(port=port)):
            painter.predict(self.moves)

    @parameterized.named_parameters(
        ("proxy_error_page", 502, "text/html",
         "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"),
        ("html_with_ok_status", 200, "text/html", "<!DOCTYPE html><p>Welcome to nginx!</p>"),
        ("plain_text_not_found", 404, "text/plain", "404 page not found"),
        ("json_that_is_not_tf_serving", 200, "application/json", '{"status": "ok"}'),
        ("json_error_without_error_key", 503, "application/json", '{"message": "overloaded"}'),
        ("json_list", 200, "application/json", "[1, 2, 3]"),
    )
    def test_reply_that_is_not_tf_serving_names_url_status_and_body(
        self, status, content_type, body
    ):
        httpd = _serve_fixed_reply(status, body, content_type)
        self.addCleanup(httpd.server_close)
        self.addCleanup(httpd.shutdown)
        port = httpd.server_port
        painter = client.PainterClient("127.0.0.1", port, version=2)
        url = f"http://127.0.0.1:{port}/v1/models/painter/versions/2:predict"
        with self.assertRaisesRegex(
            RuntimeError,
            f"{re.escape(url)} answered HTTP {status} with a body that is not a TF Serving "
            f"JSON reply.*Body: {re.escape(repr(body))}",
        ):
            painter.predict(self.moves)

    def test_long_reply_is_cut_to_its_start(self):
        body = "<html>" + "x" * 400 + "THE-END</html>"
        httpd = _serve_fixed_reply(500, body)
        self.addCleanup(httpd.server_close)
        self.addCleanup(httpd.shutdown)
        painter = client.PainterClient("127.0.0.1", httpd.server_port)
        with self.assertRaisesRegex(RuntimeError, "HTTP 500") as caught:
            painter.predict(self.moves)
        message = str(caught.exception)
        self.assertIn(repr(body[:200] + "..."), message)
        self.assertNotIn("THE-END", message)


if __name__ == "__main__":
    tf.test.main()
