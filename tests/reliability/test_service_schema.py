"""Property-based fuzzing of every endpoint of the HTTP service, against a real uvicorn on 127.0.0.1.

Two generators: schemathesis (cases built from the app's OpenAPI document, valid and invalid) when it is
installed, and a hand-written hypothesis generator that covers what the document cannot declare: /v1/detect
reads its image from the raw body, so bodies (empty, random bytes, huge numbers, unicode, JSON, broken and
random multipart), wrong content types, wrong methods, odd paths, query parameters of wrong types and random
headers are drawn here. Every answer must be: no 5xx but a documented 503 (with Retry-After), every error body
the app's JSON error shape, answered within a bounded time.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
import torch
import uvicorn
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from torch import Tensor

from detforge.serving import LoadedModel, ServeSettings, create_app
from detforge.structures.detections import Detections

TOKEN = "schema-fuzz-token-42"
XSS_NAME = "<img src=x onerror=alert(1)>"
MAX_SECONDS = 3.0
"""Bound on every answer: the fake model takes 2 ms a batch and bodies are capped at 64 kB, so anything near
this bound is a hang, not work (the request timeout is 5 s)."""
DOCUMENTED_503 = {"queue_full", "shutting_down", "not_ready"}
BODY_LIMIT = 64_000
"""The fuzzed server's body limit in bytes."""


class TinyFake:
    """One full-image box per image, labelled with the first class; 2 ms per batch."""

    score_threshold = 0.0

    def __init__(self, class_names: tuple[str, ...]) -> None:
        self.class_names = class_names

    def predict_tensors(self, images: Sequence[Tensor]) -> list[Detections]:
        time.sleep(0.002)
        out = []
        for image in images:
            h, w = int(image.shape[1]), int(image.shape[2])
            box = torch.tensor([[0.0, 0.0, float(w), float(h)]])
            out.append(Detections(box, torch.tensor([0]), torch.tensor([0.9]), (h, w)))
        return out


def _app() -> FastAPI:
    model = LoadedModel(TinyFake(("cat", XSS_NAME)), name="fuzz", score_threshold=0.25)
    options = ServeSettings(
        token=TOKEN, max_body_mb=BODY_LIMIT / 1e6, max_pixels=1_000_000, cors_origins=("http://ok.test",)
    )
    return create_app(model, settings=options)


@contextlib.contextmanager
def _live(app: FastAPI) -> Iterator[str]:
    """Serve `app` with uvicorn on a free 127.0.0.1 port (a thread); the base URL once /readyz is 200."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="on", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
            time.sleep(0.01)
        while httpx.get(url + "/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "/readyz not 200 within 10 s"
            time.sleep(0.02)
        yield url
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _png(width: int = 24, height: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 99, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class Answer:
    """What the server sent: status, lower-case headers, body, seconds taken; the request, for messages."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    seconds: float
    request: str


def check_answer(answer: Answer, *, head: bool = False) -> None:
    """No 5xx but a documented 503 with Retry-After; every error body is {"error": {"code", "message"}} as
    JSON; answered within MAX_SECONDS."""
    where = answer.request
    assert answer.seconds < MAX_SECONDS, f"{where}: took {answer.seconds:.2f} s"
    if answer.status < 400:
        return
    if head:  # HEAD answers carry no body
        assert answer.status < 500, where
        return
    assert answer.headers.get("content-type", "").startswith("application/json"), (where, answer.headers)
    body = json.loads(answer.body)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, (where, body)
    assert isinstance(body["error"]["code"], str) and body["error"]["code"], (where, body)
    assert isinstance(body["error"]["message"], str), (where, body)
    if answer.status >= 500:
        assert answer.status == 503 and body["error"]["code"] in DOCUMENTED_503, (where, answer.status, body)
        assert int(answer.headers["retry-after"]) >= 1, where


# --------------------------------------------------------------------------------------------------- schemathesis


def _fuzz_operation(operation: Any, mode: Any, url: str, session: Any, max_examples: int) -> int:
    """Send `max_examples` schemathesis cases of `operation` in generation `mode`, half of them with the token;
    check every answer with `check_answer` and schemathesis' conformance checks (status code, content type,
    body schema and headers as documented; invalid input rejected). The number of cases sent."""
    from schemathesis.specs.openapi import checks

    conformance = [
        checks.status_code_conformance,
        checks.content_type_conformance,
        checks.response_schema_conformance,
        checks.response_headers_conformance,
        checks.negative_data_rejection,
    ]
    key = f"{operation.method.upper()} {operation.path} ({mode.value})"
    sent = []

    @settings(
        max_examples=max_examples, deadline=None, database=None, derandomize=True,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(case=operation.as_strategy(generation_mode=mode), authorised=st.booleans())
    def run(case: Any, authorised: bool) -> None:
        headers = {"authorization": f"Bearer {TOKEN}"} if authorised else None
        started = time.perf_counter()
        response = case.call(base_url=url, session=session, headers=headers, timeout=5)
        seconds = time.perf_counter() - started
        sent.append(response.status_code)
        lowered = {k.lower(): v[0] if isinstance(v, list) else v for k, v in response.headers.items()}
        request = f"{key}: {case.as_curl_command(headers=headers)}"
        check_answer(Answer(response.status_code, lowered, response.content, seconds, request))
        case.validate_response(response, checks=conformance, headers=headers)

    run()
    return len(sent)


@pytest.mark.timeout(120)
def test_schemathesis_cases_of_every_operation_get_sane_answers() -> None:
    schemathesis = pytest.importorskip("schemathesis")
    import requests
    from schemathesis import GenerationMode

    app = _app()
    schema = schemathesis.openapi.from_dict(app.openapi())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} == {
        "POST /v1/detect", "GET /v1/model", "GET /healthz", "GET /readyz", "GET /metrics",
    }  # fmt: skip
    sent: dict[str, int] = {}
    with _live(app) as url, requests.Session() as session:
        for op in operations:
            sent[f"{op.method.upper()} {op.path}"] = _fuzz_operation(op, GenerationMode.POSITIVE, url, session, 40)
            if op.query:  # only /v1/detect declares something to make invalid
                sent[f"{op.method.upper()} {op.path} invalid"] = _fuzz_operation(
                    op, GenerationMode.NEGATIVE, url, session, 60
                )
    print(f"\nschemathesis {schemathesis.__version__}: {sum(sent.values())} cases: {sent}")
    assert sum(sent.values()) >= 100


# --------------------------------------------------------------------------------------------------- hand-written


@dataclass(frozen=True)
class Fuzz:
    """One generated request."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    body: bytes


_VISIBLE = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
_TEXT = st.text(max_size=40)  # any unicode, surrogates excluded by utf-8 encoding below
_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.sampled_from(["1e999999", "-0", "0x10", "1_0", "", "null", "true", "[]", "0.5", "1.0000001", "NaN", "inf"]),
)


def _multipart(draw: st.DrawFn, boundary: str) -> bytes:
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(["image", "file", "", "image\r\nX: y", "ïmage"]) | st.text(_VISIBLE, max_size=10))
        disposition = f'form-data; name="{name}"'
        if draw(st.booleans()):
            disposition += f'; filename="{draw(st.text(max_size=12))}"'
        content = draw(st.sampled_from([_png(), b"", b"\x89PNG\r\n\x1a\n"]) | st.binary(max_size=300))
        header = f"Content-Disposition: {disposition}\r\n"
        if draw(st.booleans()):
            header += f"Content-Type: {draw(st.sampled_from(['image/png', 'text/plain', '', 'x/y;;;']))}\r\n"
        parts.append(f"--{boundary}\r\n{header}\r\n".encode("utf-8", "replace") + content + b"\r\n")
    closing = draw(st.sampled_from([f"--{boundary}--\r\n", "", f"--{boundary}", "--other--\r\n"]))
    return b"".join(parts) + closing.encode()


@st.composite
def requests_(draw: st.DrawFn, paths: Sequence[tuple[str, str]]) -> Fuzz:
    """A request to one of `paths` (path, declared method), often with the wrong method, a mangled path,
    random query parameters, headers and body."""
    path, method = draw(st.sampled_from(paths))
    if draw(st.integers(0, 4)) == 0:
        method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]))
    if draw(st.integers(0, 7)) == 0:
        path = path.rstrip("/") + draw(st.sampled_from(["/", "/..", "//x", "/%2e%2e/app.py", "/%00", "/" + XSS_NAME]))
    names = st.sampled_from(["score_threshold", "image", "token", "x"]) | st.text(_VISIBLE, max_size=8)
    query = tuple(draw(st.lists(st.tuples(names, _NUMBERS | _TEXT), max_size=4)))
    headers: list[tuple[str, str]] = []
    boundary = draw(st.sampled_from(["b0undary", "x", "-" * 70, '"q"']))
    content_type = draw(
        st.sampled_from([
            "image/png", "image/jpeg", "application/octet-stream", "application/json", "text/plain",
            f"multipart/form-data; boundary={boundary}", "multipart/form-data", "multipart/form-data; boundary=",
            "image/", "IMAGE/PNG ; q=1", "", "*/*",
        ]) | st.text(_VISIBLE, max_size=20)
    )  # fmt: skip
    if content_type:
        headers.append(("content-type", content_type))
    auth = draw(st.sampled_from([f"Bearer {TOKEN}"] * 6 + ["", "Bearer", "Bearer  x", f"bearer {TOKEN}", "Basic x"]))
    if auth:
        headers.append(("authorization", auth))
    extra = st.tuples(
        st.sampled_from(["accept", "origin", "access-control-request-method", "range", "x-forwarded-for", "expect"])
        | st.text(st.characters(min_codepoint=0x61, max_codepoint=0x7A), min_size=1, max_size=8),
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30).map(str.strip),
    )
    headers += draw(st.lists(extra, max_size=3))
    if method == "OPTIONS" or draw(st.integers(0, 9)) == 0:  # a CORS preflight, allowed or not
        headers.append(("origin", draw(st.sampled_from(["http://ok.test", "http://evil.test", "null", ""]))))
        headers.append(("access-control-request-method", draw(st.sampled_from(["POST", "GET", "PUT", "", "x"]))))
        if draw(st.booleans()):
            asked = draw(st.sampled_from(["content-type", "authorization", "x-secret", "Content-Type, X-A", ","]))
            headers.append(("access-control-request-headers", asked))
    if draw(st.integers(0, 4)) == 0:
        body = _multipart(draw, boundary)
    else:
        body = draw(
            st.one_of(
                st.just(b""),
                st.binary(max_size=2000),
                st.just(_png()),
                st.binary(max_size=500).map(lambda b: b"\x89PNG\r\n\x1a\n" + b),
                _NUMBERS.map(str.encode),
                _TEXT.map(lambda t: t.encode("utf-8", "replace")),
                st.dictionaries(_TEXT, _NUMBERS | _TEXT, max_size=3).map(lambda d: json.dumps(d).encode()),
                st.just(b"0" * 70_000),  # over the 64 kB body limit
            )
        )
    return Fuzz(method, path, query, tuple(headers), body)


def _send(client: httpx.Client, fuzz: Fuzz) -> Answer:
    request = client.build_request(fuzz.method, fuzz.path, params=list(fuzz.query), content=fuzz.body or None)
    for name, value in fuzz.headers:
        request.headers[name] = value
    started = time.perf_counter()
    response = client.send(request)
    seconds = time.perf_counter() - started
    text = f"{fuzz.method} {request.url} headers={list(fuzz.headers)} body={fuzz.body[:80]!r}"
    return Answer(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content,
                  seconds, text)  # fmt: skip


@pytest.mark.timeout(120)
def test_random_requests_to_every_endpoint_get_sane_answers() -> None:
    app = _app()
    paths = [(path, method.upper()) for path, item in app.openapi()["paths"].items() for method in item]
    paths += [("/", "GET"), ("/static/app.js", "GET"), ("/static/nope.js", "GET"), ("/openapi.json", "GET")]
    paths += [("/v1/detect", "POST")] * 6  # the endpoint that reads bodies gets most of the cases
    statuses: dict[int, int] = {}
    with _live(app) as url, httpx.Client(base_url=url, timeout=5) as client:

        @settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(fuzz=requests_(paths))
        def run(fuzz: Fuzz) -> None:
            try:
                answer = _send(client, fuzz)
            except httpx.TransportError:
                # An oversized body is answered 413 at once and the rest of it read and dropped, so the
                # client is not reset before it reads the 413 (it was, once in ~6 clean-clone runs). Only
                # a client that announced `Expect: 100-continue` is not drained: it should not be sending.
                continues = any(k.lower() == "expect" and v.lower() == "100-continue" for k, v in fuzz.headers)
                if len(fuzz.body) <= BODY_LIMIT or not continues:
                    raise
                statuses[-1] = statuses.get(-1, 0) + 1
                return
            statuses[answer.status] = statuses.get(answer.status, 0) + 1
            check_answer(answer, head=fuzz.method == "HEAD")

        run()
        assert client.get("/v1/model", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    print(f"\nhand-written fuzz: {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}")
    assert statuses.get(200, 0) >= 5 and sum(statuses.values()) >= 300


# --------------------------------------------------------------------------------------------------- escaping


@pytest.mark.timeout(60)
def test_class_names_and_request_text_are_never_echoed_into_html() -> None:
    """A class named like an HTML tag reaches clients only inside JSON (application/json, so a browser never
    renders it); the one HTML page is static; error messages do not echo paths, queries or headers."""
    app = _app()
    auth = {"authorization": f"Bearer {TOKEN}"}
    with _live(app) as url, httpx.Client(base_url=url, timeout=5) as client:
        model = client.get("/v1/model", headers=auth)
        detect = client.post("/v1/detect", content=_png(), headers={**auth, "content-type": "image/png"})
        bad_query = client.post(
            "/v1/detect",
            params={"score_threshold": XSS_NAME},
            content=_png(),
            headers={**auth, "content-type": XSS_NAME},
        )
        answers = [
            model, detect, bad_query, client.get("/" + XSS_NAME), client.get("/static/" + XSS_NAME),
            client.get("/v1/model", headers={"authorization": f"Bearer {XSS_NAME}"}), client.get("/"),
        ]  # fmt: skip
    assert model.json()["classes"] == ["cat", XSS_NAME]
    assert detect.json()["labels"] == ["cat"]
    assert bad_query.status_code in (415, 422)
    for response in answers:
        media = response.headers["content-type"]
        if response.request.url.path == "/":
            assert media.startswith("text/html") and XSS_NAME not in response.text and "onerror" not in response.text
            assert "script-src 'self'" in response.headers["content-security-policy"]
        else:
            assert media.startswith("application/json"), (response.request.url, media)
        if response is not model:
            assert "onerror" not in response.text, (response.request.url, response.text)


@pytest.mark.timeout(60)
def test_refused_cors_preflights_use_the_json_error_shape() -> None:
    """A preflight from an unknown origin, or asking for a method or header the API does not allow, is refused
    with 400 and the app's JSON error body (it was Starlette's plain text "Disallowed CORS origin")."""
    app = _app()
    allowed = {"origin": "http://ok.test", "access-control-request-method": "POST"}
    with _live(app) as url, httpx.Client(base_url=url, timeout=5) as client:
        ok = client.options("/v1/detect", headers=allowed)
        refused = [
            client.options("/v1/detect", headers={**allowed, "origin": "http://evil.test"}),
            client.options("/v1/detect", headers={**allowed, "access-control-request-method": "PUT"}),
            client.options("/v1/model", headers={**allowed, "access-control-request-headers": "x-secret"}),
        ]
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "http://ok.test"
    for response, what in zip(refused, ("origin", "method", "headers"), strict=True):
        assert response.status_code == 400
        assert response.json()["error"] == {"code": "cors_rejected", "message": f"Disallowed CORS {what}"}
        assert "access-control-allow-origin" not in response.headers or what != "origin"


def test_openapi_document_declares_the_error_shape_and_the_detect_body() -> None:
    """The document schemathesis reads tells the truth: /v1/detect takes an image body (multipart field `image`
    or a raw image), every documented error is the ErrorResponse shape (not FastAPI's HTTPValidationError),
    and /metrics is text."""
    doc = _app().openapi()
    assert "HTTPValidationError" not in json.dumps(doc)
    detect = doc["paths"]["/v1/detect"]["post"]
    assert detect["requestBody"]["required"] is True
    assert {"multipart/form-data", "image/png", "image/jpeg"} <= set(detect["requestBody"]["content"])
    assert {"401", "413", "415", "422", "503", "504"} <= set(detect["responses"])
    assert "401" in doc["paths"]["/v1/model"]["get"]["responses"]
    errors = [
        response
        for item in doc["paths"].values()
        for operation in item.values()
        for status, response in operation["responses"].items()
        if int(status) >= 400
    ]
    assert len(errors) >= 8
    for response in errors:
        assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
    assert list(doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
