"""The WebSocket client's handler tables and the code that calls the user's handlers.

``Handlers`` keeps the handler tables (typed per channel with the channel's
model builder cached beside them, raw, event, error, lifecycle, push
listeners), owns the two dispatch paths (typed and raw) that deliver to them,
decodes frames for the paths, and reports a handler's exception (counted,
logged through ``handler_errors``' rate-limited summary, passed to the error
handlers).

Thread safety: tables are tuples/dicts replaced under a lock, never mutated, so
the reader and the workers read them without one; every method may be called
from any thread. No lock is held while a handler runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ..clock import Clock
from ..errors import ValidationError, WSError, WSQueueFullError
from ..handler_errors import HandlerErrorSummary, flush_handler_errors, report_handler_error
from ..models.ws import push_parser
from .dispatch import DispatchConfig, DispatchPath, DropReport
from .protocol import decode_frame
from .stats import Counters

__all__ = ["Handlers", "F"]

log = logging.getLogger("okx_sync.ws")

F = TypeVar("F", bound=Callable[..., Any])

#: handler tables ``off(fn)`` removes ``fn`` from (besides the typed table)
_TABLES = (
    "raw",
    "events",
    "errors",
    "connects",
    "disconnects",
    "reconnects",
    "push_listeners",
)


def _fn_name(fn: Any) -> str:
    """A handler's name for log lines: its qualified name (a callable object's class name)."""
    return str(getattr(fn, "__qualname__", None) or type(fn).__qualname__)


def _checked(fn: Any) -> None:
    if not callable(fn):
        raise ValidationError(f"handler must be callable, got {fn!r}")


class Handlers:
    """Handler tables, the typed and raw dispatch paths, and error reporting of one client."""

    def __init__(
        self,
        name: str,
        clock: Clock,
        counters: Counters,
        typed: DispatchConfig,
        raw: DispatchConfig,
    ) -> None:
        self.name = name
        self._counters = counters
        self._lock = threading.Lock()
        # channel -> (model builder or None, handlers); replaced, never mutated
        self.typed_table: dict[str, tuple[Any, tuple[Callable[[Any], Any], ...]]] = {}
        self.raw: tuple[Callable[[Any], Any], ...] = ()
        self.events: tuple[Callable[[Any], Any], ...] = ()
        self.errors: tuple[Callable[[BaseException], Any], ...] = ()
        self.connects: tuple[Callable[[], Any], ...] = ()
        self.disconnects: tuple[Callable[[str], Any], ...] = ()
        self.reconnects: tuple[Callable[[], Any], ...] = ()
        self.push_listeners: tuple[Callable[[dict[str, Any]], Any], ...] = ()
        self.listener_running: Any = None  # the push listener the reader is calling now
        self.summary = HandlerErrorSummary(monotonic=clock.monotonic)
        prefix = f"okx-ws-{name}"
        self.typed_path = DispatchPath(
            "typed",
            self.deliver_typed,
            typed,
            thread_prefix=f"{prefix}-typed",
            on_error=self.dispatch_error,
            monotonic=clock.monotonic,
            on_drops=self.on_drops,
        )
        self.raw_path = DispatchPath(
            "raw",
            self.deliver_raw,
            raw,
            thread_prefix=f"{prefix}-raw",
            on_error=self.dispatch_error,
            monotonic=clock.monotonic,
            on_drops=self.on_drops,
        )

    # ------------------------------------------------------------------ tables
    def add(self, table: str, fn: Callable[..., Any]) -> None:
        """Append ``fn`` to ``table`` (``"raw"``, ``"errors"``...); ValidationError if not callable."""
        _checked(fn)
        with self._lock:
            setattr(self, table, (*getattr(self, table), fn))

    def add_typed(self, channel: str, fn: Callable[..., Any]) -> None:
        """Append ``fn`` to ``channel``'s handlers (its model builder cached beside them)."""
        if not isinstance(channel, str) or not channel:
            raise ValidationError("channel must be a non-empty string")
        _checked(fn)
        with self._lock:
            table = dict(self.typed_table)
            _parser, handlers = table.get(channel, (None, ()))
            table[channel] = (push_parser(channel), (*handlers, fn))
            self.typed_table = table

    def remove(self, fn: Callable[..., Any]) -> None:
        """Remove ``fn`` from every table it is in (matched by identity)."""
        with self._lock:
            self.typed_table = {
                ch: (parser, tuple(h for h in hs if h is not fn))
                for ch, (parser, hs) in self.typed_table.items()
                if any(h is not fn for h in hs)
            }
            for table in _TABLES:
                setattr(self, table, tuple(h for h in getattr(self, table) if h is not fn))

    def set_dispatch(self, typed: DispatchConfig | None, raw: DispatchConfig | None) -> None:
        """Switch either path (None leaves it as is); see ``DispatchPath.configure``."""
        if typed is not None:
            self.typed_path.configure(typed)
        if raw is not None:
            self.raw_path.configure(raw)
        log.info(
            "ws %s: dispatch change requested (typed %s, raw %s)",
            self.name,
            typed.mode if typed else "unchanged",
            raw.mode if raw else "unchanged",
            extra={
                "ws": self.name,
                "typed": typed.mode if typed else None,
                "raw": raw.mode if raw else None,
            },
        )

    # ------------------------------------------------------------------ reporting
    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call a lifecycle handler or push listener; its exception is reported."""
        try:
            fn(*args)
        except Exception as exc:
            self.handler_error(exc, getattr(fn, "__name__", repr(fn)))

    def reader_handler(self) -> str | None:
        """The user handler running on the reader now (push listener, inline path), or None."""
        listener = self.listener_running
        if listener is not None:
            return f"push listener {_fn_name(listener)}"
        for path in (self.typed_path, self.raw_path):
            running = path.running
            if running is not None and path.mode == "inline":
                channel, fn = running
                if path is self.raw_path:
                    label = "on_raw"
                else:
                    label = "on_event" if channel is None else f"on({channel!r})"
                return f"{label} {_fn_name(fn)}"
        return None

    def handler_error(self, exc: BaseException, where: str) -> None:
        """A user handler raised: count, log (summarised), pass to the error handlers."""
        self._counters.bump("handler_errors")
        report_handler_error(log, self.summary, where, exc, f"ws {self.name}: ", {"ws": self.name})
        self.emit_error(exc, record=False)

    def dispatch_error(self, exc: BaseException) -> None:
        """A dispatch path's delivery raised (reported as a handler error)."""
        self.handler_error(exc, "dispatch")

    def flush_summary(self) -> None:
        """Log what the handler-error summary still holds (at close)."""
        flush_handler_errors(log, self.summary, f"ws {self.name}: ", {"ws": self.name})

    def on_drops(self, path: str, report: DropReport) -> None:
        """A drop episode ended: WARNING (rate-limited by the policy), then ``on_error``."""
        err = WSQueueFullError(path, report.dropped, report.since)
        if report.log:
            more = ""
            if report.unlogged_episodes:
                more = (
                    f" ({report.unlogged_episodes} earlier episode(s), "
                    f"{report.unlogged_dropped:,} message(s), reported without a log line)"
                )
            log.warning(
                "ws %s: %s handler queue full: %s message(s) dropped over %.3g s "
                "(overflow=drop)%s; reconcile what they carried, or use overflow=block",
                self.name,
                path,
                f"{report.dropped:,}",
                report.until - report.since,
                more,
                extra={
                    "ws": self.name,
                    "path": path,
                    "dropped": report.dropped,
                    "duration_s": round(report.until - report.since, 3),
                },
            )
        self._counters.note_error(str(err))
        self.emit_error(err, record=False)

    def emit_error(self, exc: BaseException, *, record: bool = True) -> None:
        """Pass ``exc`` to the error handlers (``record``: also as ``last_error``)."""
        if record:
            self._counters.note_error(f"{type(exc).__name__}: {exc}")
        for fn in self.errors:
            try:
                fn(exc)
            except Exception as handler_exc:
                name = f"on_error {getattr(fn, '__name__', fn)!s}"
                report_handler_error(
                    log, self.summary, name, handler_exc, f"ws {self.name}: ", {"ws": self.name}
                )

    # ------------------------------------------------------------------ delivery
    def decode(self, data: bytes) -> dict[str, Any] | None:
        """The JSON object in a text frame; None (counted in ``parse_errors`` and
        reported to ``on_error`` as a ``WSError``) when it cannot be decoded: not
        JSON, not an object, nested too deeply or a number too long (reader or worker)."""
        try:
            msg = decode_frame(data.decode())  # str first: faster than json's bytes path
        except ValueError as exc:
            problem = str(exc)
        else:
            if type(msg) is dict:
                return msg
            problem = f"a JSON {type(msg).__name__}, not an object"
        self._counters.bump("parse_errors")
        log.warning(
            "ws %s: undecodable frame (%d bytes): %s: %r",
            self.name,
            len(data),
            problem,
            data[:80],
            extra={"ws": self.name, "size": len(data), "error": problem},
        )
        self.emit_error(WSError(f"cannot decode a message of {len(data)} bytes: {problem}"))
        return None

    def deliver_typed(self, msg: dict[str, Any] | bytes | None) -> None:
        """The typed path's delivery: event handlers, or the channel's typed handlers."""
        if type(msg) is bytes:
            msg = self.decode(msg)
            if msg is None:
                return
        assert type(msg) is dict
        if "event" in msg:
            path = self.typed_path
            for fn in self.events:
                path.running = (None, fn)
                self.call(fn, msg)
            path.running = None
            return
        arg = msg["arg"]
        channel = arg.get("channel", "")
        entry = self.typed_table.get(channel)
        if entry is not None:
            self.typed_push(msg, arg, channel, entry)

    def typed_push(
        self,
        msg: dict[str, Any],
        arg: dict[str, Any],
        channel: str,
        entry: tuple[Any, tuple[Callable[[Any], Any], ...]],
    ) -> None:
        """Build each data item's model and call the channel's handlers (reader or worker)."""
        parse, handlers = entry
        action = msg.get("action")
        path = self.typed_path
        for item in msg["data"]:
            if parse is None:
                obj: Any = item
            else:
                try:
                    obj = parse(arg, item, action)
                except Exception as exc:
                    self._counters.bump("parse_errors")
                    self.emit_error(
                        WSError(f"cannot build the {channel} model: {type(exc).__name__}: {exc}")
                    )
                    continue
            for fn in handlers:
                path.running = (channel, fn)
                try:
                    fn(obj)
                except Exception as exc:
                    self.handler_error(exc, f"on({channel!r})")
        path.running = None

    def deliver_raw(self, msg: dict[str, Any] | bytes | None) -> None:
        """The raw path's delivery: every raw handler with the decoded message."""
        if type(msg) is bytes:
            msg = self.decode(msg)
            if msg is None:
                return
        path = self.raw_path
        for fn in self.raw:
            path.running = (None, fn)
            try:
                fn(msg)
            except Exception as exc:
                self.handler_error(exc, "on_raw")
        path.running = None
