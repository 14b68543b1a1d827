"""Request parameters of every endpoint, and the one snake_case <-> OKX name mapping. Pure.

The facts live in ``params.tsv`` (packaged beside this module): for each endpoint of
``endpoints.tsv`` its OKX parameter names, whether each is required, and where it goes
(query string, JSON object body, or the fields of each element of a JSON array body),
and its status (documented, ``deprecated`` by OKX but still accepted, or
``undocumented``: declared from another source). The header of the TSV names the sources.

Python names become OKX names here, with the package's one name mapping:

- :func:`~okx_sync.naming.to_okx` / :func:`~okx_sync.naming.to_snake` (from
  ``okx_sync.naming``, re-exported here) convert one name (``inst_id`` <-> ``instId``,
  ``cl_ord_id`` <-> ``clOrdId``, ``td_mode`` <-> ``tdMode``). The rule is camelCase <->
  snake_case; the exceptions are listed in :data:`IRREGULAR` (``from_`` <-> ``from``,
  since ``from`` is a Python keyword).
- :func:`build_params` turns the keyword arguments of a named method into the OKX
  params of one request, refusing unknown keywords, near misses of declared names
  (``clOrdID`` for ``clOrdId``) and missing required parameters with
  :class:`~okx_sync.errors.ValidationError` before anything is sent. The fields of
  the objects inside a declared array parameter (``attachAlgoOrds``: rows
  ``attachAlgoOrds.<field>`` of the TSV) are checked the same way.

Both REST named methods and WS order entry use :func:`build_params` /
:func:`okx_value`, so a keyword means the same thing everywhere.

Thread safety: everything here is immutable after the first (cached) load.
"""

from __future__ import annotations

import csv
import difflib
import functools
import keyword
from collections.abc import Mapping, Sequence
from decimal import Decimal
from importlib import resources
from typing import Any, Literal

import attrs

from ..errors import ValidationError
from ..naming import IRREGULAR, is_raw_okx_name, to_okx, to_snake
from ..secret import Secret
from .endpoints import Endpoint
from .order_fields import check_fields

__all__ = [
    # IRREGULAR, to_okx, to_snake live in okx_sync.naming; re-exported for existing imports
    "IRREGULAR",
    "GROUP_ATTRS",
    "ParamSpec",
    "EndpointParams",
    "to_okx",
    "to_snake",
    "okx_value",
    "convert_keys",
    "params_for",
    "all_params",
    "build_params",
    "ONE_OF_IDS",
    "id_pairs",
    "batch_keyword",
    "method_name",
    "method_names",
    "SOURCE_COMMIT",
]

SOURCE_COMMIT = "ad484e43910e7e221b9866f0bbd4e0a742a915a7"
"""Commit of github.com/qiuham/crypto-api-docs the ``docs`` rows were read from and audited
against (every endpoint's request-parameter table; the result is in docs/coverage.md)."""

# Registry group (endpoints.tsv) -> attribute of the client (``client.asset``...).
# Groups not listed keep their name (trade, account, market, public, algo, grid, signal,
# recurring, dca, copytrading, rfq, rubik, finance, fiat, affiliate, support, spread).
GROUP_ATTRS: Mapping[str, str] = {
    "funding": "asset",
    "sub-account": "subaccount",
    "status": "system",
}

# A number passed to OKX has at most this many digits before or after the point: the
# plain form of Decimal("1e999999999") would be a gigabyte of text. (Order prices and
# sizes are held to a tighter bound by okx_sync.rest.order_fields.)
_MAX_DIGITS = 100

Location = Literal["query", "body", "item", "field"]
Required = Literal["yes", "cond", "no"]
Status = Literal["-", "deprecated", "undocumented"]


def okx_value(value: Any, *, where: str) -> Any:
    """Convert one Python value to what OKX expects in a request.

    ``Decimal`` -> plain decimal string (never exponent notation), ``int`` -> ``str``
    (both at most 100 digits before/after the point),
    ``str``/``bool`` unchanged, a :class:`~okx_sync.secret.Secret` unchanged (the REST
    core sends and signs its value; it stays masked until then), mappings get their keys converted with :func:`to_okx`
    (nested objects such as ``attachAlgoOrds`` items), sequences element-wise.

    Raises ValidationError for ``float`` (prices and sizes must be exact: pass a
    ``Decimal`` or a ``str``) and for other unsupported types; ``where`` names the
    keyword in the message.
    """
    if isinstance(value, bool | str | Secret):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValidationError(f"{where}: {value} is not a finite number")
        exponent = value.as_tuple().exponent
        if value.adjusted() > _MAX_DIGITS or (
            isinstance(exponent, int) and exponent < -_MAX_DIGITS
        ):
            raise ValidationError(f"{where}: {value} is out of range ({_MAX_DIGITS} digits)")
        return format(value, "f")
    if isinstance(value, int):
        if value.bit_length() > 4 * _MAX_DIGITS:
            raise ValidationError(f"{where}: int of {value.bit_length()} bits is out of range")
        return str(value)
    if isinstance(value, float):
        raise ValidationError(
            f"{where}: float {value!r} refused; pass a Decimal or a str so the value is exact"
        )
    if isinstance(value, Mapping):
        return convert_keys(value, where=where)
    if isinstance(value, (list, tuple)):
        return [okx_value(v, where=f"{where}[{i}]") for i, v in enumerate(value)]
    raise ValidationError(f"{where}: unsupported value type {type(value).__name__}")


def convert_keys(obj: Mapping[str, Any], *, where: str = "") -> dict[str, Any]:
    """A copy of ``obj`` with snake_case keys turned into OKX names (values converted
    with :func:`okx_value`; ``None`` values dropped). Raises ValidationError (floats)."""
    out: dict[str, Any] = {}
    for k, v in obj.items():
        if v is None:
            continue
        out[to_okx(k)] = okx_value(v, where=f"{where}.{k}" if where else k)
    return out


@attrs.frozen
class ParamSpec:
    """One request parameter of one endpoint. Thread safety: immutable.

    ``status`` is ``-`` (documented), ``deprecated`` (the OKX docs mark it deprecated;
    still a keyword, since OKX still takes it) or ``undocumented`` (declared from another
    source, absent from the docs table; still a keyword).
    """

    okx: str
    required: Required
    location: Location
    status: Status = "-"

    @property
    def deprecated(self) -> bool:
        """True when the OKX docs mark this parameter deprecated."""
        return self.status == "deprecated"

    @property
    def note(self) -> str:
        """How a flagged parameter is described in the method docstrings, api.pyi and
        docs/coverage.md (``""`` for a documented one)."""
        return {
            "deprecated": "deprecated by OKX, still accepted",
            "undocumented": "not in the OKX docs, sent as given",
        }.get(self.status, "")

    @property
    def snake(self) -> str:
        """The keyword argument name of the named method."""
        return to_snake(self.okx)


def _fold(name: str) -> str:
    """A name without case and underscores: ``clOrdID``, ``cl_ord_id``, ``clOrdId`` ->
    ``clordid``. Two spellings of one parameter fold alike."""
    return name.replace("_", "").lower()


@attrs.frozen
class EndpointParams:
    """The declared request parameters of one endpoint. Thread safety: immutable.

    ``kind`` is ``query`` (GET), ``body`` (JSON object) or ``items`` (JSON array whose
    elements carry the ``params``). ``fields`` maps the OKX name of an array parameter
    whose object fields are documented (``attachAlgoOrds``) to those fields, as an
    ``EndpointParams`` of kind ``body``. ``source`` names where the facts came from (see
    the header of ``params.tsv``).
    """

    method: str
    path: str
    params: tuple[ParamSpec, ...]
    kind: Literal["query", "body", "items"]
    source: str
    fields: Mapping[str, EndpointParams] = attrs.field(factory=dict)

    @functools.cached_property
    def by_fold(self) -> dict[str, ParamSpec]:
        """Params by :func:`_fold` of their name (finds a near miss like ``clOrdID``)."""
        return {_fold(p.okx): p for p in self.params}

    @functools.cached_property
    def by_snake(self) -> dict[str, ParamSpec]:
        """Params by keyword name."""
        return {p.snake: p for p in self.params}

    @functools.cached_property
    def by_okx(self) -> dict[str, ParamSpec]:
        """Params by OKX name."""
        return {p.okx: p for p in self.params}

    @property
    def required(self) -> tuple[ParamSpec, ...]:
        """The params that must be given (``required == "yes"``)."""
        return tuple(p for p in self.params if p.required == "yes")


def _row_spec(row: Mapping[str, str], okx: str, location: str) -> ParamSpec:
    """The ParamSpec of one ``params.tsv`` row (``okx``: the name without its parent)."""
    return ParamSpec(okx=okx, required=row["required"], location=location, status=row["status"])  # type: ignore[arg-type]


@functools.cache
def all_params() -> dict[tuple[str, str], EndpointParams]:
    """Every endpoint's params keyed by ``(method, path)``, loaded once from ``params.tsv``."""
    text = resources.files("okx_sync.rest").joinpath("params.tsv").read_text("utf-8")
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    rows: dict[tuple[str, str], list[dict[str, str]]] = {}
    for row in csv.DictReader(lines, delimiter="\t"):
        rows.setdefault((row["method"], row["path"]), []).append(row)
    out: dict[tuple[str, str], EndpointParams] = {}
    for key, group in rows.items():
        top = [r for r in group if r["in"] != "field"]
        loc = top[0]["in"]
        kind: Literal["query", "body", "items"] = (
            "items" if loc == "item" else "query" if loc == "query" else "body"
        )
        specs = tuple(_row_spec(r, r["param"], r["in"]) for r in top if r["param"] != "-")
        sub: dict[str, list[ParamSpec]] = {}
        for r in group:
            if r["in"] == "field":
                parent, _, name = r["param"].partition(".")
                sub.setdefault(parent, []).append(_row_spec(r, name, "field"))
        source = top[0]["source"]
        fields = {
            parent: EndpointParams(
                method=key[0], path=key[1], params=tuple(ps), kind="body", source=source
            )
            for parent, ps in sub.items()
        }
        out[key] = EndpointParams(
            method=key[0], path=key[1], params=specs, kind=kind, source=source, fields=fields
        )
    return out


def params_for(endpoint: Endpoint) -> EndpointParams:
    """The declared params of ``endpoint``; raises KeyError when the data lacks it
    (a test guarantees every registry row is covered)."""
    return all_params()[endpoint.key]


def batch_keyword(endpoint: Endpoint) -> str:
    """The keyword that carries the list of elements of an array-body endpoint:
    ``orders`` for the ``*batch-orders`` endpoints, ``items`` otherwise."""
    return "orders" if endpoint.path.endswith("batch-orders") else "items"


def _method_label(endpoint: Endpoint) -> str:
    where = f"{endpoint.method} {endpoint.path}"
    return f"{_group_attr(endpoint.group)}.{method_name(endpoint)} ({where})"


def _group_attr(group: str) -> str:
    return GROUP_ATTRS.get(group, group)


def _group_prefixes(group: str) -> tuple[str, ...]:
    """The prefixes a method name does not repeat: the client attribute and the registry
    group in snake form (``subaccount_``, ``sub_account_``), longest first."""
    names = {_group_attr(group), group.replace("-", "_")}
    return tuple(sorted((n + "_" for n in names), key=len, reverse=True))


def method_name(endpoint: Endpoint) -> str:
    """The endpoint's named method on its group: the registry ``name`` without a leading
    group prefix (registry ``grid_amend_order`` -> ``client.grid.amend_order``,
    ``subaccount_transfer`` -> ``client.subaccount.transfer``). Pure."""
    for prefix in _group_prefixes(endpoint.group):
        if endpoint.name.startswith(prefix):
            return endpoint.name.removeprefix(prefix)
    return endpoint.name


def method_names(endpoints: Sequence[Endpoint]) -> dict[str, Endpoint]:
    """Method name -> endpoint for the endpoints of one group (:func:`method_name`).

    Raises ValueError when two endpoints would get the same method name (a stripped
    name equal to another row's name): the registry must give one of them a distinct
    ``name``; no name is silently kept long or suffixed. Pure.
    """
    out: dict[str, Endpoint] = {}
    for ep in endpoints:
        name = method_name(ep)
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"registry name {ep.name!r} gives the method name {name!r}")
        other = out.get(name)
        if other is not None:
            raise ValueError(
                f"method name {_group_attr(ep.group)}.{name} would serve both "
                f"{other.name} ({other.method} {other.path}) and {ep.name} "
                f"({ep.method} {ep.path}): rename one in endpoints.tsv"
            )
        out[name] = ep
    return out


def _near_miss(spec: EndpointParams, key: str, *, label: str, where: str) -> None:
    """Refuse ``key`` when it is a misspelling by case or underscores of a declared
    name (``clOrdID``, ``ClOrdId``, ``cl_ordid`` for ``clOrdId``): sent as written,
    OKX would ignore it and the order would go out without it."""
    p = spec.by_fold.get(_fold(key))
    if p is not None and key == p.snake:  # only reachable from extra, which takes OKX names
        raise ValidationError(
            f"{label}: {key!r}{where} is a keyword name; extra takes raw OKX names: pass "
            f"{p.okx!r} there, or the keyword {p.snake}=..."
        )
    if p is not None:
        raise ValidationError(
            f"{label}: keyword {key!r}{where} is not a parameter name; did you mean "
            f"{p.snake!r} (OKX {p.okx!r})? Names are case-sensitive"
        )


def _resolve_key(spec: EndpointParams, key: str, *, label: str, where: str) -> str:
    """The OKX name for one given key (see :func:`_map_fields`)."""
    p = spec.by_snake.get(key) or spec.by_okx.get(key)
    if p is not None:
        return p.okx
    _near_miss(spec, key, label=label, where=where)
    if is_raw_okx_name(key):
        return key  # a raw OKX field the data does not know yet: passed unchanged
    close = difflib.get_close_matches(key, list(spec.by_snake), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    known = ", ".join(sorted(spec.by_snake)) or "(none)"
    raise ValidationError(
        f"{label}: unknown keyword {key!r}{where}{hint}; known keywords: {known}; "
        "pass raw OKX fields through extra={...}"
    )


def _map_fields(
    spec: EndpointParams,
    given: Mapping[str, Any],
    *,
    label: str,
    where: str,
) -> dict[str, Any]:
    """Map one object's keyword names to OKX names, refusing unknown ones, near misses
    of declared names and missing required ones. Raw OKX names (camelCase) that are
    not declared and not a near miss pass through. An array parameter with documented
    fields (``spec.fields``) must be a list of mappings, each mapped the same way."""
    out: dict[str, Any] = {}
    for key, value in given.items():
        if value is None:
            continue
        okx = _resolve_key(spec, key, label=label, where=where)
        if okx in out:
            raise ValidationError(f"{label}: parameter {okx!r}{where} given twice")
        sub = spec.fields.get(okx)
        if sub is not None:
            out[okx] = _map_objects(sub, value, label=label, where=where, name=key)
        else:
            out[okx] = okx_value(value, where=f"{key}{where}")
    return out


def _map_objects(
    spec: EndpointParams, value: Any, *, label: str, where: str, name: str
) -> list[dict[str, Any]]:
    """The objects of the array parameter ``name`` (given in the object ``where`` names)
    whose fields are documented: each mapped and checked like the object itself."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise ValidationError(f"{label}: {name}{where} must be a list of mappings")
    objs: list[dict[str, Any]] = []
    for i, el in enumerate(value):
        at = f" in {name}[{i}]{where}"
        if not isinstance(el, Mapping):
            raise ValidationError(f"{label}: {name}[{i}]{where} is not a mapping")
        obj = _map_fields(spec, el, label=label, where=at)
        _check_required(spec, obj, label=label, where=at)
        objs.append(obj)
    return objs


def _map_extra(spec: EndpointParams, extra: Mapping[str, Any], *, label: str) -> dict[str, Any]:
    """``extra``'s raw OKX params: passed unchanged (values converted), except that a
    near miss of a declared name is refused and a declared array parameter with
    documented fields is checked like a keyword."""
    out: dict[str, Any] = {}
    for key, value in extra.items():
        sub = spec.fields.get(key)
        if sub is not None and value is not None:
            out[key] = _map_objects(sub, value, label=label, where=" in extra", name=key)
            continue
        if key not in spec.by_okx:
            _near_miss(spec, key, label=label, where=" in extra")
        out[key] = okx_value(value, where=f"extra[{key!r}]")
    return out


#: Identifier pairs: where an endpoint declares both names of a pair ``cond`` (cancel,
#: amend and query one order, algo order or spread order, each element of the batch
#: cancels/amends; a withdrawal's or deposit's status), exactly one must be given (OKX
#: picks one of both by its own precedence and answers neither with an error).
ONE_OF_IDS = (("ordId", "clOrdId"), ("algoId", "algoClOrdId"), ("wdId", "txId"))


def id_pairs(spec: EndpointParams) -> tuple[tuple[str, str], ...]:
    """The pairs of :data:`ONE_OF_IDS` whose both names ``spec`` declares ``cond``: of
    each, a call must give exactly one. Pure."""
    return tuple(
        pair
        for pair in ONE_OF_IDS
        if all(n in spec.by_okx and spec.by_okx[n].required == "cond" for n in pair)
    )


def _check_required(
    spec: EndpointParams, obj: Mapping[str, Any], *, label: str, where: str
) -> None:
    missing = [p for p in spec.required if p.okx not in obj]
    if missing:
        names = ", ".join(f"{p.snake} ({p.okx})" for p in missing)
        raise ValidationError(f"{label}: missing required parameter(s) {names}{where}")
    for pair in id_pairs(spec):
        given = [name for name in pair if name in obj]
        if len(given) != 1:
            names = " or ".join(f"{spec.by_okx[n].snake} ({n})" for n in pair)
            got = "both" if given else "neither"
            raise ValidationError(f"{label}: give exactly one of {names}{where}, got {got}")


def build_params(
    endpoint: Endpoint,
    kwargs: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any] | list[dict[str, Any]]:
    """The OKX params of one call of ``endpoint`` from a named method's keywords.

    - Declared keywords (snake_case, e.g. ``inst_id``) become OKX names (``instId``);
      the OKX spelling of a declared name is accepted too.
    - ``None`` means "not given" and is left out.
    - Undeclared camelCase names (``newField``) and everything in ``extra`` are raw OKX
      params and pass through unchanged (values still converted by :func:`okx_value`),
      except a near miss of a declared name — the same letters in another case or with
      other underscores (``clOrdID``, ``ClOrdId`` for ``clOrdId``) —, which is refused:
      OKX would ignore it and, for ``clOrdId``, the order would go out without one.
    - An array parameter whose object fields are documented (``attachAlgoOrds``) must be
      a list of mappings; each object's keys are mapped and checked by the same rules
      against those fields (``tp_trigger_px`` -> ``tpTriggerPx``; ``tp_triger_px`` is
      an unknown keyword).
    - Array-body endpoints take their elements under :func:`batch_keyword` (``orders``
      or ``items``); each element is mapped and checked the same way; ``extra`` is
      merged into every element.

    - Every object (each element of a batch) then goes through
      :func:`~okx_sync.rest.order_fields.check_fields`: client order ids must be 1-32
      letters/digits (``""`` refused); on place/amend endpoints prices and sizes must
      be finite, bounded numbers (sizes positive), sent in plain notation.

    Raises ValidationError naming the keyword and the method (and the declared name a
    near miss or typo resembles) for an unknown keyword, a near miss, a missing required
    parameter, a float value, an empty batch, a malformed client order id, price or
    size. Pure.
    """
    spec = params_for(endpoint)
    label = _method_label(endpoint)
    raw_extra = _map_extra(spec, extra or {}, label=label)
    if spec.kind == "items":
        kw = batch_keyword(endpoint)
        unknown = [k for k in kwargs if k != kw and kwargs[k] is not None]
        if unknown:
            raise ValidationError(
                f"{label}: unknown keyword {unknown[0]!r}; this endpoint takes a list of "
                f"elements as {kw}=[{{...}}, ...]"
            )
        elems = kwargs.get(kw)
        if (
            elems is None
            or isinstance(elems, (str, bytes, Mapping))
            or not isinstance(elems, Sequence)
        ):
            raise ValidationError(f"{label}: {kw} must be a non-empty list of mappings")
        if not elems:
            raise ValidationError(f"{label}: {kw} is empty")
        items: list[dict[str, Any]] = []
        for i, el in enumerate(elems):
            if not isinstance(el, Mapping):
                raise ValidationError(f"{label}: {kw}[{i}] is not a mapping")
            obj = _map_fields(spec, el, label=label, where=f" in {kw}[{i}]")
            obj.update(raw_extra)
            _check_required(spec, obj, label=label, where=f" in {kw}[{i}]")
            items.append(check_fields(endpoint, obj, label=label, where=f" in {kw}[{i}]"))
        return items
    obj = _map_fields(spec, kwargs, label=label, where="")
    obj.update(raw_extra)
    _check_required(spec, obj, label=label, where="")
    return check_fields(endpoint, obj, label=label)
