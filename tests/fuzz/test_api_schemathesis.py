"""Schemathesis fuzzing of the intake API against its own OpenAPI 3.1 document.

The app is built like tests/intake/conftest.py does (YAML config text -> ``load_config``, a
``Database`` on the run's test database from ``clean_db``, ``create_app``), with every rate
limit off, and served by an aiohttp ``TestServer`` on 127.0.0.1 in a background thread (the
schemathesis ``case.call`` transport is synchronous). For each generated request we check:
no 5xx, the status code is documented, the content type is documented, documented headers
are present and the JSON body matches the response schema.

POST /v1/callbacks gets positive and negative JSON bodies, with no credentials, a valid
``site_key`` + allowed ``Origin``, or the site's API key; ids for GET/cancel are random or the
ids of requests created for the test; admin endpoints get the right token, a wrong one, or none.

CI budget: a few dozen examples per operation (well under 20 s on 2 cores). Long run::

    HYPOTHESIS_PROFILE=long CALLSWITCH_TEST_DSN=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/pytest tests/fuzz/test_api_schemathesis.py -q
"""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from callswitch.config import load_config
from callswitch.db.pool import Database
from callswitch.intake.app import create_app, openapi_document
from tests.fuzz._budget import budget
from tests.intake.conftest import CONFIG as INTAKE_CONFIG
from tests.intake.helpers import ADMIN_TOKEN, API_KEY, ORIGIN, SITE_KEY, valid_body

# the intake tests' configuration, with every rate limit off so the fuzzer reaches validation
CONFIG = (
    INTAKE_CONFIG.replace("{per_ip}", '"off"').replace("{per_phone}", '"off"').replace("{per_site}", '"off"')
)

SCHEMA = schemathesis.openapi.from_dict(openapi_document())
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
BOTH = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


def cases(method: str, path: str) -> st.SearchStrategy[Any]:
    operation = SCHEMA[path][method]
    return st.one_of(*(operation.as_strategy(generation_mode=mode) for mode in BOTH))


class Server:
    """The intake app on 127.0.0.1 in a thread with its own event loop."""

    def __init__(self, config_path: Path, dsn: str) -> None:
        self.config = load_config(config_path, env={"TEST_DSN": dsn})
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.db: Database | None = None
        self.server: TestServer | None = None

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    async def _start(self) -> str:
        self.db = Database(self.config.database)
        await self.db.connect()
        self.server = TestServer(create_app(self.config, self.db), host="127.0.0.1")
        await self.server.start_server()
        return str(self.server.make_url("")).rstrip("/")

    async def _stop(self) -> None:
        if self.server is not None:
            await self.server.close()
        if self.db is not None:
            await self.db.close()

    def start(self) -> str:
        self.thread.start()
        return str(self.run(self._start()))

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class Api:
    def __init__(self, base_url: str, ids: list[str]) -> None:
        self.base_url = base_url
        self.ids = ids
        self.session = requests.Session()

    def check(self, case: Any, headers: dict[str, str] | None = None) -> Any:
        # the generated case's own headers (e.g. a fuzzed Authorization) would win over call(headers=...)
        if headers:
            case.headers = {**(case.headers or {}), **headers}
        return case.call_and_validate(base_url=self.base_url, session=self.session, checks=CHECKS, timeout=30)


@pytest.fixture
def api(clean_db: str, tmp_path: Path) -> Iterator[Api]:
    path = tmp_path / "callswitch.yaml"
    path.write_text(textwrap.dedent(CONFIG))
    server = Server(path, clean_db)
    try:
        base_url = server.start()
        ids = []
        for phone in ("(312) 555-0142", "(312) 555-0143"):
            resp = requests.post(f"{base_url}/v1/callbacks", json=valid_body(phone=phone),
                                 headers={"Origin": ORIGIN}, timeout=30)
            assert resp.status_code == 202, resp.text
            ids.append(resp.json()["id"])
        client = Api(base_url, ids)
        yield client
        client.session.close()
    finally:
        server.stop()


CREDENTIALS = st.sampled_from(["none", "site_key", "site_key_header", "api_key", "wrong_origin", "real_phone"])
# valid US numbers of the test site; with "real_phone" the rest of a schema-valid body is kept, so
# requests get past authentication and phone checks into preferred_time/attributes/consent and the insert
PHONES = st.integers(100, 199).map(lambda n: f"(312) 555-0{n}")
FIELDS = sorted(openapi_document()["components"]["schemas"]["CallbackRequest"]["properties"])
# with "real_phone", a valid body takes only these few fields from the generated one
KEEP = st.sets(st.sampled_from([f for f in FIELDS if f not in ("site_key", "phone")]), max_size=3)


@budget(150)
@given(case=cases("POST", "/v1/callbacks"), auth=CREDENTIALS, phone=PHONES, keep=KEEP)
def test_create_callback(api: Api, case: Any, auth: str, phone: str, keep: set[str]) -> None:
    headers: dict[str, str] = {}
    if auth in ("site_key", "wrong_origin", "real_phone") and isinstance(case.body, dict):
        case.body = {**case.body, "site_key": SITE_KEY}
    if auth == "real_phone" and isinstance(case.body, dict):
        case.body = {**valid_body(phone=phone), **{k: v for k, v in case.body.items() if k in keep}}
        if case.headers and len(keep) < 2:
            case.headers = {k: v for k, v in case.headers.items() if k.lower() != "idempotency-key"}
    if auth == "site_key_header":
        headers["X-Callswitch-Site-Key"] = SITE_KEY
    if auth in ("site_key", "site_key_header", "real_phone"):
        headers["Origin"] = ORIGIN
    if auth == "wrong_origin":
        headers["Origin"] = "https://evil.example"
    if auth == "api_key":
        headers["Authorization"] = f"Bearer {API_KEY}"
    api.check(case, headers)


@budget(25)
@given(case=cases("GET", "/v1/callbacks/{id}"), known=st.integers(0, 2))
def test_get_callback(api: Api, case: Any, known: int) -> None:
    if known < len(api.ids):
        case.path_parameters = {"id": api.ids[known]}
    api.check(case)


@budget(25)
@given(case=cases("POST", "/v1/callbacks/{id}/cancel"), known=st.integers(0, 2))
def test_cancel_callback(api: Api, case: Any, known: int) -> None:
    if known < len(api.ids):
        case.path_parameters = {"id": api.ids[known]}
    api.check(case)


TOKENS = st.sampled_from([None, ADMIN_TOKEN, "wrong-token-0123456789", ""])


def admin_headers(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


@budget(30)
@given(case=cases("GET", "/v1/admin/callbacks"), token=TOKENS)
def test_admin_list_callbacks(api: Api, case: Any, token: str | None) -> None:
    api.check(case, admin_headers(token))


@budget(20)
@given(case=cases("GET", "/v1/admin/callbacks/{id}"), token=TOKENS, known=st.integers(0, 2))
def test_admin_get_callback(api: Api, case: Any, token: str | None, known: int) -> None:
    if known < len(api.ids):
        case.path_parameters = {"id": api.ids[known]}
    api.check(case, admin_headers(token))


@budget(20)
@given(case=cases("GET", "/v1/admin/deliveries"), token=TOKENS)
def test_admin_list_deliveries(api: Api, case: Any, token: str | None) -> None:
    api.check(case, admin_headers(token))


@budget(15)
@given(case=cases("POST", "/v1/admin/deliveries/{id}/retry"), token=TOKENS)
def test_admin_retry_delivery(api: Api, case: Any, token: str | None) -> None:
    api.check(case, admin_headers(token))
