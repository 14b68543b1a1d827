"""okx_sync.compat.okx makes python-okx's requests: every method, compared on the wire.

For every public method of every python-okx REST class, python-okx itself and the
facade are called with the same arguments against one recording server on 127.0.0.1
(scripts/gen_compat_okx.py's ``Recorder``), twice: with the required arguments only
(the defaults decide what is sent) and with every argument given, positionally (the
order of the parameters must match). Method, path, query and JSON body must be equal.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path

import pytest

okx = pytest.importorskip("okx", reason="python-okx is in the test extra: pip install python-okx")

from okx_sync import Client, RequestGateConfig  # noqa: E402
from okx_sync.compat.okx import API_CLASSES, SURFACE, client_for, use_client  # noqa: E402
from okx_sync.compat.shared import SHARED  # noqa: E402
from okx_sync.compat.surface import REQUIRED  # noqa: E402
from okx_sync.errors import ValidationError  # noqa: E402

# python-okx's own warnings while it runs (its deprecated use_server_time argument, which
# we pass to compare signatures with the facade; httpx's about how python-okx posts raw
# bodies): theirs, not ours.
pytestmark = [
    pytest.mark.filterwarnings("ignore:use_server_time:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"),
]

REPO = Path(__file__).resolve().parents[2]
OWN_PATHS = {"/api/v5/public/time", "/api/v5/trade/account-rate-limit"}  # okx_sync's own calls
# python-okx replaces its params with {'to': to} when ``to`` is given (its ccy and amt are
# lost); the facade sends all three. Compared with required arguments only.
DEVIATIONS = {("Funding", "FundingAPI", "get_deposit_lightning"): {"ccy", "amt"}}


def _gen():
    name = "gen_compat_okx"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def _python_okx_class(module: str, cls: str):
    return getattr(importlib.import_module(f"okx.{module}"), cls)


def _arguments(spec, *, every: bool) -> list:
    """Arguments in signature order: a sentinel for each parameter given (a one-item
    list of objects for a parameter that is the POST body)."""
    gen = _gen()
    body_params = {n for w in spec.wire if w.key == "*" for n in w.names}
    out = []
    for name, default in spec.params:
        if not every and default is not REQUIRED:
            break
        value = gen.sentinel(name)
        out.append([{"k": value}] if name in body_params else value)
    return out


@pytest.fixture(scope="module")
def recorder():
    """The recording server; the facade's API objects for it use a Client without rate
    limits (this compares requests; some endpoints allow 2 a minute)."""
    with _gen().Recorder() as rec:
        client = Client(
            "key-1",
            "secret-1",
            "pass-1",
            demo=True,
            base_url=rec.url,
            gate=RequestGateConfig(rate_limits=False),
        )
        use_client(
            API_CLASSES["Trade.TradeAPI"]("key-1", "secret-1", "pass-1", flag="1", domain=rec.url),
            client,
        )
        yield rec
    SHARED.close_all()


@pytest.mark.timeout(300)
def test_every_python_okx_method_sends_the_same_request(recorder, capsys):
    gen = _gen()
    pyokx = {}
    facade = {}
    compared = 0
    mismatches = []
    installed = list(gen.rest_methods())
    by_key = {(s.module, s.cls, s.name): s for s in SURFACE.methods}
    for module, cls, name, _fn in installed:
        spec = by_key[module, cls, name]
        if (module, cls) not in pyokx:
            pyokx[module, cls] = _python_okx_class(module, cls)(
                "key-1", "secret-1", "pass-1", flag="1", domain=recorder.url
            )
            facade[module, cls] = API_CLASSES[f"{module}.{cls}"](
                "key-1", "secret-1", "pass-1", flag="1", domain=recorder.url
            )
            client_for(facade[module, cls])  # the shared client syncs its clock now
        variants = [False] if (module, cls, name) in DEVIATIONS else [False, True]
        for every in variants:
            args = _arguments(spec, every=every)
            recorder.take()
            try:
                getattr(pyokx[module, cls], name)(*args)
            except ValueError:  # python-okx refused these arguments: so must the facade
                assert recorder.take() == []
                with pytest.raises(ValidationError):
                    getattr(facade[module, cls], name)(*args)
                assert recorder.take() == []
                continue
            (theirs,) = recorder.take()
            envelope = getattr(facade[module, cls], name)(*args)
            assert envelope == {"code": "0", "msg": "", "data": []}, envelope
            *own, ours = recorder.take()
            assert all(gen.wire_of(*r)[1] in OWN_PATHS for r in own), own
            if gen.wire_of(*theirs) != gen.wire_of(*ours):
                mismatches.append((module, cls, name, every, theirs, ours))
        compared += 1
    for api in pyokx.values():
        api.close()
    with capsys.disabled():
        print(f"\ncompared {compared} methods on the wire; python-okx has {len(installed)}")
    assert not mismatches, "\n".join(map(str, mismatches[:10]))
    assert compared == len(installed) == len(SURFACE.methods)


def test_deviation_is_only_the_lost_parameters(recorder):
    """get_deposit_lightning with ``to``: the facade also sends ccy and amt."""
    gen = _gen()
    for (module, cls, name), extra in DEVIATIONS.items():
        theirs_api = _python_okx_class(module, cls)(
            "key-1", "secret-1", "pass-1", flag="1", domain=recorder.url
        )
        ours_api = API_CLASSES[f"{module}.{cls}"](
            "key-1", "secret-1", "pass-1", flag="1", domain=recorder.url
        )
        client_for(ours_api)
        args = [gen.sentinel(p) for p, _ in by_name(module, cls, name).params]
        recorder.take()
        getattr(theirs_api, name)(*args)
        getattr(ours_api, name)(*args)
        seen = recorder.take()
        theirs, ours = gen.wire_of(*seen[0]), gen.wire_of(*seen[-1])
        theirs_api.close()
        assert theirs[:2] == ours[:2]
        assert {k for k, _ in ours[2]} - {k for k, _ in theirs[2]} == extra
        assert set(theirs[2]) <= set(ours[2])


def by_name(module, cls, name):
    (spec,) = [s for s in SURFACE.methods if (s.module, s.cls, s.name) == (module, cls, name)]
    return spec


def test_the_table_has_every_installed_method_with_its_signature():
    """Fails, naming them, when the installed python-okx has methods the table lacks (or
    changed a signature): regenerate with scripts/gen_compat_okx.py."""
    gen = _gen()
    table = {(s.module, s.cls, s.name): s for s in SURFACE.methods}
    missing = []
    changed = []
    for module, cls, name, fn in gen.rest_methods():
        spec = table.get((module, cls, name))
        if spec is None:
            missing.append(f"{module}.{cls}.{name}")
            continue
        theirs = [
            (p.name, REQUIRED if p.default is p.empty else p.default)
            for p in list(inspect.signature(fn).parameters.values())[1:]
        ]
        if theirs != list(spec.params):
            changed.append(f"{module}.{cls}.{name}")
    assert not missing, (
        f"python-okx {okx.__version__} has {len(missing)} methods that "
        f"okx_sync/compat/okx_surface.tsv (made from python-okx {SURFACE.version}) lacks: "
        f"{', '.join(missing)}; run python scripts/gen_compat_okx.py"
    )
    assert not changed, (
        f"python-okx {okx.__version__} changed the signature of: {', '.join(changed)}; "
        "run python scripts/gen_compat_okx.py"
    )


def test_facade_classes_have_python_okx_constructor_and_signatures():
    gen = _gen()
    for module, cls, name, fn in gen.rest_methods():
        ours = API_CLASSES[f"{module}.{cls}"]
        theirs = _python_okx_class(module, cls)
        assert str(inspect.signature(getattr(ours, name))) == str(inspect.signature(fn))
        assert list(inspect.signature(ours).parameters) == list(
            inspect.signature(theirs).parameters
        )
