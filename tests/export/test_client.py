"""Tests for export.client: REST JSON and gRPC requests through a SavedModel.

No TF Serving binary exists here, so the wire format is proven locally: the
client's request bytes go through `export.local_serving` (TF Serving's predict
semantics on the exported SavedModel) and back through the client's parsers,
in memory and over real HTTP and gRPC sockets.
"""

import json
import tempfile

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


if __name__ == "__main__":
    tf.test.main()
