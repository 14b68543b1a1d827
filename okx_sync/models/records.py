"""Record classes built from field tables (``results.tsv``, ``pushes.tsv``). Pure.

A field table lists, per key (an endpoint or a WebSocket channel), the fields of one
``data`` item: the OKX name (``parent.child`` for nested fields), the documented type
and ``conv``, how the value is converted (``scripts/gen_results.py`` writes the tables
from the OKX docs):

==========  ====================================================================
``dec``     ``Decimal | None`` (numeric strings; "" -> None)
``int``     ``int | None`` (ms timestamps)
``str``     ``str | None`` ("" -> None; ids stay strings)
``bool``    ``bool | None``
``strs``    ``tuple[str, ...] | None``
``obj``     a nested record (its fields are the ``parent.*`` rows) or None
``objs``    ``tuple`` of nested records, or None
``any``     the value as sent
==========  ====================================================================

A row ``[]`` / ``positional`` says the items are arrays: position *i* is the *i*-th
top-level field. Every record is a frozen attrs class with one keyword-only attribute
per field (snake_case, :func:`okx_sync.naming.to_snake`) and ``raw``, the item as sent
(unknown fields are kept there; for an array item, a dict by field name with extra
positions under ``"3"``, ``"4"``...). ``Record.from_okx(item)`` builds one; it raises
``ValueError`` when the item is not an object (nor an array for a positional record).

:class:`RecordTable` builds the classes of a table lazily, on first use of a key, and
caches them: importing costs nothing. Thread safety: records are immutable; a table
builds each class once under its lock.
"""

from __future__ import annotations

import keyword
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import attrs

from ..naming import to_snake
from .base import dec, opt_bool, opt_int, opt_str

__all__ = ["CONVERSIONS", "Record", "RecordTable", "camel", "parse_table", "record_class"]

Row = tuple[str, str, str]  # (OKX field, documented type, conv)


def _strs(value: Any) -> tuple[str, ...] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _same(value: Any) -> Any:
    return value


#: conv name -> (converter, type text for the stub) of the scalar conversions.
CONVERSIONS: Mapping[str, tuple[Callable[[Any], Any], str]] = {
    "dec": (dec, "Decimal | None"),
    "int": (opt_int, "int | None"),
    "str": (opt_str, "str | None"),
    "bool": (opt_bool, "bool | None"),
    "strs": (_strs, "tuple[str, ...] | None"),
    "any": (_same, "Any"),
}


class Record:
    """Base of the generated records (see the module doc).

    ``_okx_fields`` holds ``(attribute, OKX name, converter)`` per field; ``_positional``
    the OKX names by position for records of array items (else empty). Thread safety:
    instances are immutable.
    """

    __slots__ = ()
    _okx_fields: ClassVar[tuple[tuple[str, str, Callable[[Any], Any]], ...]] = ()
    _positional: ClassVar[tuple[str, ...]] = ()
    _source: ClassVar[str] = ""

    @classmethod
    def from_okx(cls, item: Any) -> Any:
        """Build from one ``data`` item (a dict; a list for positional records).

        Raises ValueError for any other item. The item is kept as ``raw``.
        """
        if isinstance(item, Mapping):
            raw = dict(item)
        elif cls._positional and isinstance(item, (list, tuple)):
            names = cls._positional
            raw = {names[i] if i < len(names) else str(i): v for i, v in enumerate(item)}
        else:
            raise ValueError(
                f"{cls.__name__}: expected an OKX object{' or array' if cls._positional else ''}"
                f" for {cls._source or 'this record'}, got {type(item).__name__}"
            )
        get = raw.get
        values = {name: conv(get(key)) for name, key, conv in cls._okx_fields}
        return cls(raw=raw, **values)  # type: ignore[call-arg]


def camel(name: str) -> str:
    """``get_account_rate_limit`` / ``orders-algo`` / ``balData`` -> ``GetAccountRateLimit``
    / ``OrdersAlgo`` / ``BalData`` (a class-name piece)."""
    parts = [p for p in name.replace("-", "_").replace("*", "").split("_") if p]
    return "".join(p[:1].upper() + p[1:] for p in parts)


def parse_table(text: str, key_columns: int) -> dict[tuple[str, ...], tuple[Row, ...]]:
    """Rows of a field table by key (the first ``key_columns`` columns). Comment lines
    (``#``) and the header (the first other line) are skipped. Raises ValueError on a
    row without field, type and conv."""
    out: dict[tuple[str, ...], list[Row]] = {}
    header = True
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if header:
            header = False
            continue
        cells = line.split("\t")
        if len(cells) != key_columns + 3:
            raise ValueError(f"field table line {n}: expected {key_columns + 3} columns")
        key = tuple(cells[:key_columns])
        field, typ, conv = cells[key_columns:]
        out.setdefault(key, []).append((field, typ, conv))
    return {k: tuple(v) for k, v in out.items()}


def _attr(okx: str, taken: set[str]) -> str | None:
    name = to_snake(okx)
    if keyword.iskeyword(name):
        name += "_"
    if name == "raw":
        name = "raw_"
    if not name.isidentifier() or name in taken:
        return None  # a duplicate spelling (instId / instID): kept in raw only
    taken.add(name)
    return name


def _plan(
    name: str, rows: Sequence[Row], overrides: Mapping[str, tuple[Callable[[Any], Any], str]]
) -> tuple[tuple[str, ...], list[tuple[str, str, str, Sequence[Row]]]]:
    """(positional names, [(attribute, OKX name, conv, child rows)]) of one level."""
    positional: list[str] = []
    fields: list[tuple[str, str, str, Sequence[Row]]] = []
    is_positional = any(r[0] == "[]" and r[2] == "positional" for r in rows)
    taken: set[str] = set()
    for field, _typ, conv in rows:
        if field == "[]" or "." in field or field.startswith("@"):
            continue  # the positional marker, nested rows, meta rows (@service)
        if is_positional:
            positional.append(field)
        attr = _attr(field, taken)
        if attr is None:
            continue
        children = [(f[len(field) + 1 :], t, c) for f, t, c in rows if f.startswith(field + ".")]
        if conv in ("obj", "objs") and not children:
            conv = "any"
        if field in overrides:
            conv = "override"
        fields.append((attr, field, conv, children))
    return tuple(positional), fields


def record_class(
    name: str,
    rows: Sequence[Row],
    *,
    source: str = "",
    module: str = __name__,
    overrides: Mapping[str, tuple[Callable[[Any], Any], str]] | None = None,
    made: dict[str, type[Record]] | None = None,
) -> type[Record]:
    """A frozen attrs record class ``name`` for ``rows`` (nested classes are named
    ``name + Camel(field)``; each created class is also put in ``made``). ``overrides``
    maps top-level OKX names to (converter, type text) used instead of the table's."""
    overrides = overrides or {}
    positional, fields = _plan(name, rows, overrides)
    attrs_fields: dict[str, Any] = {}
    convs: list[tuple[str, str, Callable[[Any], Any]]] = []
    for attr, okx, conv, children in fields:
        if conv == "override":
            fn = overrides[okx][0]
        elif conv in ("obj", "objs"):
            child = record_class(
                name + camel(okx), children, source=f"{source} {okx}", module=module, made=made
            )
            fn = _nested(child, conv == "objs")
        else:
            fn = CONVERSIONS.get(conv, CONVERSIONS["any"])[0]
        attrs_fields[attr] = attrs.field(default=None)
        convs.append((attr, okx, fn))
    attrs_fields["raw"] = attrs.field(factory=dict, eq=False, repr=False)
    doc = (
        f"One data item of {source or name} (fields from the OKX docs; see "
        "okx_sync.models.records). Unknown fields are kept in ``raw``. "
        "Thread safety: immutable."
    )
    cls: type[Record] = attrs.make_class(
        name, attrs_fields, bases=(Record,), frozen=True, kw_only=True, slots=True
    )
    cls._okx_fields = tuple(convs)
    cls._positional = positional
    cls._source = source
    cls.__doc__ = doc
    cls.__module__ = module
    if made is not None:
        made[name] = cls
    return cls


def _nested(child: type[Record], many: bool) -> Callable[[Any], Any]:
    def one(value: Any) -> Any:
        if value is None or value == "":
            return None
        return child.from_okx(value)

    def several(value: Any) -> Any:
        if value is None or value == "":
            return None
        if isinstance(value, Mapping):
            return (child.from_okx(value),)
        return tuple(child.from_okx(v) for v in value)

    return several if many else one


def stub_classes(
    name: str,
    rows: Sequence[Row],
    *,
    doc: str,
    overrides: Mapping[str, str] | None = None,
) -> list[str]:
    """Lines of ``.pyi`` class declarations for the record ``name`` and its nested
    records (nested first), for the generated stubs."""
    overrides = overrides or {}
    positional, fields = _plan(name, rows, {k: (_same, v) for k, v in overrides.items()})
    out: list[str] = []
    body = [f"class {name}(Record):", f'    """{doc}"""', ""]
    for attr, okx, conv, children in fields:
        if conv == "override":
            text = overrides[okx]
        elif conv in ("obj", "objs"):
            child = name + camel(okx)
            out += stub_classes(child, children, doc=f"``{okx}`` of {name}.")
            text = f"tuple[{child}, ...] | None" if conv == "objs" else f"{child} | None"
        else:
            text = CONVERSIONS.get(conv, CONVERSIONS["any"])[1]
        body.append(f"    {attr}: {text}")
    body.append("    raw: dict[str, Any]")
    body.append("    @classmethod")
    body.append(f"    def from_okx(cls, item: Any) -> {name}: ...")
    return out + body + [""]


class RecordTable:
    """The record classes of one field table, built on first use and cached.

    ``load`` returns the table's text (read once, on the first lookup); ``key_columns``
    is the number of key columns. Thread safety: every method may be called from any
    thread; each class is built once.
    """

    def __init__(self, load: Callable[[], str], key_columns: int, module: str) -> None:
        self._load = load
        self._key_columns = key_columns
        self._module = module
        self._rows: dict[tuple[str, ...], tuple[Row, ...]] | None = None
        self._classes: dict[tuple[str, ...], type[Record]] = {}
        self._by_name: dict[str, type[Record]] = {}
        self._lock = threading.Lock()

    def rows(self) -> Mapping[tuple[str, ...], tuple[Row, ...]]:
        """Every key's rows (the table is read on the first call). Raises ValueError
        for a malformed table."""
        rows = self._rows
        if rows is None:
            with self._lock:
                if self._rows is None:
                    self._rows = parse_table(self._load(), self._key_columns)
                rows = self._rows
        return rows

    def record(
        self,
        key: tuple[str, ...],
        name: str,
        *,
        source: str = "",
        overrides: Mapping[str, tuple[Callable[[Any], Any], str]] | None = None,
    ) -> type[Record]:
        """The record class of ``key`` (named ``name``; a key without rows gives a record
        with only ``raw``)."""
        cls = self._classes.get(key)
        if cls is not None:
            return cls
        rows = self.rows().get(key, ())
        with self._lock:
            cls = self._classes.get(key)
            if cls is None:
                made: dict[str, type[Record]] = {}
                cls = record_class(
                    name,
                    rows,
                    source=source,
                    module=self._module,
                    overrides=overrides,
                    made=made,
                )
                self._by_name.update(made)
                self._classes[key] = cls
        return cls

    def built(self, name: str) -> type[Record] | None:
        """A class already built under ``name`` (nested ones included), or None."""
        return self._by_name.get(name)

    def keys(self) -> Iterable[tuple[str, ...]]:
        """The keys that have rows."""
        return self.rows().keys()
