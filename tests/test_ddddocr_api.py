"""``/ocr`` as ddddocr's two servers speak it, sent the bodies their documentation shows: the
ddddocr-fastapi README's clients (form fields, booleans as "False" / "false" text) and ddddocr
1.6.1's own API (JSON); plus per-call charsets and probabilities, on the shipped model."""

import base64
import time

import pytest

from captcha_ocr.reading.reader import CaptchaReader

from .helpers import draw_captcha
from .test_server import client_of, png_bytes

LABELS = ("226md", "5n3w4", "bcdef")


@pytest.fixture(scope="module")
def reader() -> CaptchaReader:
    return CaptchaReader("crnn", backend="onnx")


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    return [png_bytes(draw_captcha(label)) for label in LABELS]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_ddddocr_fastapi_form_bodies_as_documented(reader, images) -> None:
    expected = reader.read(images)
    with client_of(reader) as http:
        python = http.post("/ocr", data={"image": b64(images[0]), "probability": False, "png_fix": False})  # requests
        multipart = http.post("/ocr", files={"image": (None, b64(images[1])), "probability": (None, "false"),
                                             "png_fix": (None, "false")})  # C#: MultipartFormDataContent  # fmt: skip
        upload = http.post("/ocr", files={"file": ("a.png", images[2], "image/png")})
        nothing = http.post("/ocr", data={"probability": "false"})
    assert python.json() == {"code": 200, "message": "Success", "data": expected[0].text}
    assert multipart.json() == {"code": 200, "message": "Success", "data": expected[1].text}
    assert upload.json() == {"code": 200, "message": "Success", "data": expected[2].text}
    assert nothing.status_code == 200 and nothing.json() == {
        "code": 400, "message": "Either file or image must be provided", "data": None}  # fmt: skip


def test_form_charsets_and_probability(reader, images) -> None:
    with client_of(reader) as http:
        digits = [http.post("/ocr", data={"image": b64(i), "charsets": "0123456789"}).json() for i in images]
        probability = http.post("/ocr", data={"image": b64(images[0]), "probability": "true"}).json()
        unknown = http.post("/ocr", data={"image": b64(images[0]), "charsets": "QZ"}).json()
    assert all(set(answer["data"]) <= set("23456789") for answer in digits)
    assert [a["data"] for a in digits] == [r.text for r in reader.read(images, allow="0123456789")]
    data = probability["data"]
    assert data["charset"] == ["", *reader.tokenizer.charset] and data["text"] == reader.read(images[:1])[0].text
    assert len(data["probabilities"]) == reader.tokenizer.max_length
    assert all(abs(sum(step) - 1) < 1e-4 and len(step) == len(data["charset"]) for step in data["probabilities"])
    assert unknown["code"] == 422 and "none of the allowed characters 'QZ'" in unknown["message"]


def test_ddddocr_json_api_as_documented(reader, images) -> None:
    expected = reader.read(images)
    with client_of(reader) as http:
        plain = http.post("/ocr", json={"image": b64(images[0]), "png_fix": False, "probability": False})
        preset = http.post("/ocr", json={"image": b64(images[0]), "charset_range": 0})  # 0: digits
        chars = http.post("/ocr", json={"image": b64(images[2]), "charset_range": "bcdef"})
        probability = http.post("/ocr", json={"image": b64(images[1]), "probability": True})
        broken = http.post("/ocr", json={"image": "%%%"})
        bad_preset = http.post("/ocr", json={"image": b64(images[0]), "charset_range": 7})
        no_image = http.post("/ocr", json={"picture": b64(images[0])})
    assert plain.json() == {"success": True, "message": "OCR succeeded",
                            "data": {"text": expected[0].text, "probability": None}}  # fmt: skip
    assert set(preset.json()["data"]["text"]) <= set("2345678")
    assert chars.json()["data"]["text"] == reader.read(images[2:], allow="bcdef")[0].text
    assert set(chars.json()["data"]["text"]) <= set("bcdef")
    data = probability.json()["data"]
    assert data["text"] is None and data["probability"]["text"] == expected[1].text  # as ddddocr: text in probability
    assert data["probability"]["confidence"] == pytest.approx(expected[1].confidence, abs=1e-5)
    for answer, status, message in [(broken, 400, "not valid base64"), (bad_preset, 422, "presets are 0-6"),
                                    (no_image, 422, '"image"')]:  # fmt: skip
        assert answer.status_code == status and answer.json()["success"] is False
        assert message in answer.json()["message"]


def test_ocr_batch_and_health(reader, images) -> None:
    with client_of(reader) as http:
        batch = http.post("/ocr/batch", json={"images": [b64(images[0]), "%%%", b64(images[2])], "charset_range": 4})
        health = http.get("/health").json()
    answer = batch.json()
    assert answer["success"] is False and answer["errors"] == {"1": "not valid base64"}
    assert answer["data"][1] is None
    assert [d["text"] for d in (answer["data"][0], answer["data"][2])] == [
        r.text for r in reader.read([images[0], images[2]], allow="abcdefghijklmnopqrstuvwxyz0123456789")
    ]
    assert health["status"] == "healthy" and abs(health["timestamp"] - time.time()) < 60


def test_native_read_takes_allow_and_probability_per_request(reader, images) -> None:
    """Two requests with different options batched into one forward pass each get their own."""
    with client_of(reader) as http:
        limited = http.post("/v1/read?allow=bcdef&probability=true", files=[("f", ("a.png", images[2]))]).json()
        plain = http.post("/v1/read", files=[("f", ("a.png", images[2]))]).json()
        refused = http.post("/v1/read?allow=QZ", files=[("f", ("a.png", images[2]))])
        classes = http.get("/v1/model").json()["classes"]
    (reading,) = limited["results"]
    assert set(reading["text"]) <= set("bcdef") and len(reading["distribution"][0]) == len(classes)
    assert "distribution" not in plain["results"][0]
    assert refused.status_code == 422 and "QZ" in refused.json()["error"]


def test_every_response_has_a_schema_in_the_api_docs(reader) -> None:
    with client_of(reader) as http:
        spec = http.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert {"ReadAnswer", "FormOcrAnswer", "JsonOcrAnswer", "BatchOcrAnswer", "ModelAnswer", "HealthAnswer"} <= set(
        schemas
    )
    ocr_body = spec["paths"]["/ocr"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(ocr_body)
