"""Secrets in OKX answers (sub-account API keys) come back as ``okx_sync.Secret``: masked in
str/repr/format/logs/evidence/JSON, ``.reveal()`` gives the value; usable as credentials
and as request parameters. Answers in the shape the OKX docs record, served by ``MockTransport``."""

from __future__ import annotations

import copy
import json
import logging
import pickle
from collections.abc import Iterator

import pytest
from rest_mock import Routes

import okx_sync
from okx_sync import Client, Credentials, FakeClock, RequestGateConfig, Secret
from okx_sync.auth import sign
from okx_sync.naming import to_okx
from okx_sync.ops.evidence import _jsonable
from okx_sync.ops.reporter import JsonLinesSink
from okx_sync.rest.endpoints import registry
from okx_sync.rest.named import SECRET_FIELDS, convert_result
from okx_sync.secret import MASK

BASE = "https://www.okx.com"
APIKEY_PATH = "/api/v5/users/subaccount/apikey"
NEW_KEY = "4f7a1c2e-sub-api-key-0001"
NEW_SECRET = "9C1F0E2D3B4A59687766554433221100"
NEW_PASS = "Sub-Pass-phrase-1!"
CLEAR = (NEW_KEY, NEW_SECRET, NEW_PASS)


def envelope(data):
    return {"code": "0", "msg": "", "data": data}


CREATED = {
    "subAcct": "test-1",
    "label": "v5",
    "apiKey": NEW_KEY,
    "secretKey": NEW_SECRET,
    "passphrase": NEW_PASS,
    "perm": "read_only,trade",
    "ip": "1.1.1.1,2.2.2.2",
    "ts": "1597026383085",
}


@pytest.fixture
def api() -> Iterator[tuple[Routes, Client]]:
    """OKX answers from ``Routes`` (a MockTransport) and a signed Client on a FakeClock."""
    creds = ("key-0123456789abcdef", "secret", "pass")
    no_buckets = RequestGateConfig(rate_limits=False)
    mock = Routes()
    with Client(*creds, clock=FakeClock(), gate=no_buckets, transport=mock.transport) as c:
        yield mock, c


def _assert_masked(text: str) -> None:
    for value in CLEAR:
        assert value not in text, text
    assert MASK in text


def test_created_subaccount_key_secrets_are_masked_everywhere(api, caplog):
    rsps, client = api
    rsps.post(BASE + APIKEY_PATH, json=envelope([CREATED]))
    result = client.subaccount.create_subaccount_apikey(
        sub_acct="test-1", label="v5", passphrase=NEW_PASS, perm="read_only,trade"
    )
    item = result[0]
    for field, value in zip(("api_key", "secret_key", "passphrase"), CLEAR, strict=True):
        assert isinstance(getattr(item, field), Secret) and getattr(item, field).reveal() == value
        # the record's raw item holds the Secret too
        assert item.raw[to_okx(field)] is getattr(item, field)
    assert item.sub_acct == "test-1" and item.perm == "read_only,trade"  # plain fields
    # every way a result gets shown
    _assert_masked(repr(result))
    _assert_masked(str(result))
    _assert_masked(f"{item.secret_key} {item.passphrase:>10}")
    with pytest.raises(TypeError):  # refused, never written in clear
        json.dumps(result)
    _assert_masked(json.dumps(result, default=str))
    _assert_masked(json.dumps(_jsonable({"answer": result})))  # evidence's conversion
    with caplog.at_level(logging.INFO):
        logging.getLogger("app").info("created %s", result)
        logging.getLogger("app").info("created", extra={"answer": result})
    _assert_masked(caplog.text + repr([r.__dict__ for r in caplog.records]))


class _Snap:
    """Stands in for a StatsSnapshot (the sink only calls ``to_dict``)."""

    def __init__(self, data: dict) -> None:
        self.data = data

    def to_dict(self) -> dict:
        return self.data


def test_reporter_json_lines_sink_writes_the_mask(tmp_path, api):
    rsps, client = api
    rsps.post(BASE + APIKEY_PATH, json=envelope([CREATED]))
    result = client.subaccount.create_subaccount_apikey(
        sub_acct="test-1", label="v5", passphrase="x"
    )
    path = tmp_path / "stats.jsonl"
    JsonLinesSink(str(path)).emit(_Snap({"answer": result}))  # type: ignore[arg-type]
    _assert_masked(path.read_text())


def test_query_and_modify_mask_the_api_key(api):
    rsps, client = api
    listed = [{"label": "v5", "apiKey": NEW_KEY, "perm": "read_only", "ip": "", "ts": "1"}]
    rsps.get(BASE + APIKEY_PATH, json=envelope(listed))
    rsps.post(BASE + "/api/v5/users/subaccount/modify-apikey", json=envelope([dict(listed[0])]))
    got = client.subaccount.get_subaccount_apikey(sub_acct="test-1")
    assert isinstance(got[0].api_key, Secret) and got[0].label == "v5"
    # a Secret is accepted as a parameter: sent as its value (the request is signed with it)
    modified = client.subaccount.modify_subaccount_apikey(sub_acct="test-1", api_key=got[0].api_key)
    assert json.loads(rsps.calls[1].body)["apiKey"] == NEW_KEY
    assert modified[0].api_key == Secret(NEW_KEY)
    client.subaccount.get_subaccount_apikey(sub_acct="test-1", api_key=got[0].api_key)
    assert rsps.calls[2].target.endswith(f"apiKey={NEW_KEY}")


def test_secret_fields_are_declared_once_for_registry_endpoints():
    for key, fields in SECRET_FIELDS.items():
        assert registry().get(*key) is not None, key
        assert fields
    # the raw data given to convert_result is not changed
    raw = [dict(CREATED)]
    out = convert_result(registry().get("POST", APIKEY_PATH), raw)
    assert raw[0]["secretKey"] == NEW_SECRET and isinstance(out[0].secret_key, Secret)
    assert isinstance(out[0].raw["secretKey"], Secret)
    # endpoints without secrets keep their strings as sent
    other = [{"subAcct": "x"}]
    (done,) = convert_result(
        registry().get("POST", "/api/v5/users/subaccount/delete-apikey"), other
    )
    assert done.sub_acct == "x" and done.raw == other[0]


def test_a_secret_credential_signs_with_its_value():
    creds = Credentials.from_parts(Secret(NEW_KEY), Secret(NEW_SECRET), Secret(NEW_PASS))
    assert creds is not None
    assert (creds.api_key, creds.secret_key, creds.passphrase) == CLEAR
    direct = Credentials(api_key=Secret(NEW_KEY), secret_key=NEW_SECRET, passphrase=NEW_PASS)
    assert direct == creds
    assert sign(creds.secret_key, "m") == sign(NEW_SECRET, "m")
    client = Client(Secret(NEW_KEY), Secret(NEW_SECRET), Secret(NEW_PASS))
    try:
        assert client._rest._creds == creds
    finally:
        client.close()


def test_secret_value_semantics():
    s = Secret("abc")
    assert okx_sync.Secret is Secret
    assert s.reveal() == "abc" and str(s) == MASK and repr(s) == f"Secret({MASK!r})"
    assert s == Secret("abc") and s != Secret("abd") and s != "abc"
    assert hash(s) == hash(Secret("abc")) and bool(s) and not Secret("")
    assert copy.copy(s) is s and copy.deepcopy({"k": s})["k"] is s
    assert Secret(s).reveal() == "abc"
    with pytest.raises(TypeError):
        Secret(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pickle.dumps(s)
    with pytest.raises(AttributeError):
        s._value = "x"  # type: ignore[misc]
