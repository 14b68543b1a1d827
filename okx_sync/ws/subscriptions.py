"""WebSocket subscriptions: the desired set, ack correlation and rejections.

``Subscriptions`` keeps the set of subscriptions the client keeps alive (resent
on every connect), sends subscribe/unsubscribe frames (batched within 64 KB,
on the connection's hourly ops budget), correlates OKX's per-arg acks and
errors with the request that caused them (``SubRequest``; by ``id``, or by the
arg when OKX does not echo it), waits for them (``*_and_wait``) or settles them
in the background (fire and forget; a late answer after a wait gave up too): an
arg OKX rejects leaves the desired set and reaches the error handlers as a
``WSSubscribeError``; one refused only for now stays desired. It also counts
(and logs once per key) pushes a connection never subscribed.

Thread safety: every method may be called from any thread; the reader calls
``on_ack``/``settle_background`` and never waits.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..clock import Clock
from ..errors import WSClosedError, WSError, WSSubscribeError, WSTimeoutError
from .connection import Connection
from .handlers import Handlers
from .protocol import (
    ArgKey,
    SubFrame,
    arg_key,
    args_text,
    batch_frames,
    is_arg_rejection,
    match_hint,
    normalize_args,
)
from .stats import Counters
from .supervisor import ConnectionManager

__all__ = ["Subscriptions", "SubRequest", "SubOutcome"]

log = logging.getLogger("okx_sync.ws")

Args = Mapping[str, Any] | Iterable[Mapping[str, Any]]


#: (acked args, failed (arg, code, msg), open args) of one subscribe/unsubscribe request.
SubOutcome = tuple[
    list[dict[str, Any]], list[tuple[dict[str, Any], str, str]], list[dict[str, Any]]
]


class SubRequest:
    """One subscribe/unsubscribe frame waiting for its per-arg acks (reader fills it)."""

    __slots__ = (
        "req_id",
        "op",
        "args",
        "acked",
        "failed",
        "unresolved",
        "lost",
        "done",
        "lock",
        "background",
    )

    def __init__(self, frame: SubFrame, op: str, background: bool) -> None:
        self.req_id = frame.req_id
        self.op = op
        self.args: dict[ArgKey, dict[str, Any]] = {arg_key(a): a for a in frame.args}
        self.acked: set[ArgKey] = set()
        self.failed: dict[ArgKey, tuple[str, str]] = {}
        self.unresolved: tuple[str, str] | None = None
        self.lost = ""
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.background = background

    def _check(self) -> bool:
        if self.unresolved is not None or len(self.acked) + len(self.failed) >= len(self.args):
            self.done.set()
        return self.done.is_set()

    def ack(self, key: ArgKey) -> bool:
        with self.lock:
            if key in self.args:
                self.acked.add(key)
                self.failed.pop(key, None)
            return self._check()

    def error(self, code: str, msg: str, hint: Mapping[str, str] | None) -> bool:
        with self.lock:
            open_keys = [k for k in self.args if k not in self.acked and k not in self.failed]
            if not is_arg_rejection(code):  # transient (too frequent...): the whole frame failed
                for k in open_keys:
                    self.failed[k] = (code, msg)
                return self._check()
            if hint is not None:
                matched = match_hint(hint, [self.args[k] for k in open_keys])
                if len(matched) == 1:
                    self.failed[arg_key(matched[0])] = (code, msg)
                    return self._check()
            if len(open_keys) == 1:
                self.failed[open_keys[0]] = (code, msg)
            elif open_keys:
                self.unresolved = (code, msg)
            return self._check()

    def fail(self, reason: str) -> None:
        """The connection ended: an answered request keeps its answer (a handler may
        close the client right after the ack, before the waiter reads it)."""
        with self.lock:
            if self.done.is_set():
                return
            self.lost = reason
            self.done.set()

    def detach(self) -> tuple[SubOutcome, bool]:
        """The waiter stops waiting: its ``outcome()``, and whether the request stays pending.

        When args are still open, they alone stay in the request, which turns
        into a background one: a late ack or rejection is then settled like a
        fire-and-forget subscribe's (a rejected arg leaves the desired set).
        Atomic with the reader's updates, so no answer falls between the two.
        """
        with self.lock:
            result = self._outcome()
            if self.done.is_set():
                return result, False
            self.args = {arg_key(a): a for a in result[2]}
            self.acked = set()
            self.failed = {}
            self.background = True
            return result, True

    def outcome(self) -> SubOutcome:
        """(acked, failed (arg, code, msg), open) — open = neither acked nor failed."""
        with self.lock:
            return self._outcome()

    def _outcome(self) -> SubOutcome:
        acked = [a for k, a in self.args.items() if k in self.acked]
        failed = [(self.args[k], c, m) for k, (c, m) in self.failed.items()]
        rest = [a for k, a in self.args.items() if k not in self.acked and k not in self.failed]
        return acked, failed, rest


class Subscriptions:
    """The desired set and the subscribe/unsubscribe requests of one client (module doc)."""

    def __init__(
        self,
        *,
        name: str,
        url: str,
        clock: Clock,
        counters: Counters,
        handlers: Handlers,
        subscribe_timeout_s: float,
        live: Callable[[], ConnectionManager | None],
    ) -> None:
        self.name = name
        self.url = url
        self._clock = clock
        self._counters = counters
        self._handlers = handlers
        self._subscribe_timeout_s = subscribe_timeout_s
        self._live = live
        self._lock = threading.Lock()
        self.desired: dict[ArgKey, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def next_id(self, prefix: str) -> str:
        """A request id unique in this client (``s1``, ``o2``...)."""
        return f"{prefix}{next(self._ids)}"

    def desired_list(self) -> list[dict[str, Any]]:
        """The desired subscriptions (copies), in the order added."""
        with self._lock:
            return [dict(a) for a in self.desired.values()]

    def desired_count(self) -> int:
        """How many subscriptions are desired."""
        with self._lock:
            return len(self.desired)

    def args_of(self, keys: Iterable[ArgKey]) -> list[dict[str, Any]]:
        """The desired arg of each key (rebuilt from the key when no longer desired)."""
        with self._lock:
            return [self.desired.get(k) or {a: v for a, v in k} for k in keys]

    def _current(self) -> Connection | None:
        manager = self._live()
        return manager.current if manager is not None else None

    def desire(self, norm: list[dict[str, Any]]) -> Connection | None:
        """Add ``norm`` to the desired set; the live connection to send on, or None."""
        with self._lock:
            for arg in norm:
                self.desired.setdefault(arg_key(arg), arg)
        return self._current()

    def subscribe(self, args: Args) -> None:
        """Desire ``args`` and send them now when connected (fire and forget)."""
        norm = normalize_args(args)
        conn = self.desire(norm)
        if conn is None:
            return
        try:
            self.send_frames(conn, "subscribe", norm, background=True)
        except WSClosedError:
            pass  # the reconnect resubscribes the desired set

    def unsubscribe(self, args: Args) -> None:
        """Stop desiring ``args`` and unsubscribe now when connected (fire and forget)."""
        norm = normalize_args(args)
        with self._lock:
            for arg in norm:
                self.desired.pop(arg_key(arg), None)
        conn = self._current()
        if conn is None:
            return
        try:
            self.send_frames(conn, "unsubscribe", norm, background=True)
        except WSClosedError:
            pass

    def resubscribe_nowait(self, args: Args) -> bool:
        """Unsubscribe then subscribe ``args`` without waiting, keeping them desired;
        False when not connected (the next connect subscribes the desired set)."""
        norm = normalize_args(args)
        conn = self.desire(norm)
        if conn is None:
            return False
        try:
            self.send_frames(conn, "unsubscribe", norm, background=True)
            self.send_frames(conn, "subscribe", norm, background=True)
        except WSClosedError:
            return False  # the reconnect resubscribes the desired set
        return True

    def live_conn(self, deadline: float) -> Connection:
        """The live connection, waiting for one until ``deadline``; raises
        ``WSClosedError`` (not started, closed) or ``WSTimeoutError``."""
        manager = self._live()
        if manager is None:
            raise WSClosedError(f"WS {self.name} is not started")
        conn = manager.wait_ready(max(0.0, deadline - self._clock.monotonic()))
        if conn is None:
            if not manager.running:
                raise WSClosedError(f"WS {self.name} is closed")
            raise WSTimeoutError(f"WS {self.name}: not connected within the timeout")
        return conn

    def send_frames(
        self,
        conn: Connection,
        op: str,
        args: Sequence[Mapping[str, Any]],
        *,
        background: bool,
        max_args: int | None = None,
    ) -> list[SubRequest]:
        frames = batch_frames(op, args, lambda: self.next_id("s"), max_args=max_args)
        if not conn.ops.take(self._clock.monotonic(), len(frames)):
            raise WSError(
                f"{op} refused: the connection's budget of {conn.ops.limit} "
                "subscribe/unsubscribe/login requests per hour is used up"
            )
        reqs = []
        for frame in frames:
            req = SubRequest(frame, op, background)
            conn.pending[frame.req_id] = req
            reqs.append(req)
            try:
                conn.send(frame.text)
            except WSClosedError:
                for r in reqs:
                    conn.pending.pop(r.req_id, None)
                raise
        return reqs

    def sub_op(
        self,
        conn: Connection,
        op: str,
        args: Sequence[dict[str, Any]],
        deadline: float,
        *,
        max_args: int | None = None,
    ) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str, str]], list[dict[str, Any]]]:
        """Send ``op`` for ``args`` and wait until ``deadline``: (acked, failed, not answered).

        An error OKX did not tie to one arg of a multi-arg frame is resolved by
        resending the open args one per frame. Raises ``WSError`` when the
        connection is lost or the ops budget is used up.
        """
        reqs = self.send_frames(conn, op, args, background=False, max_args=max_args)
        outcomes = []
        try:
            for req in reqs:
                req.done.wait(max(0.0, deadline - self._clock.monotonic()))
        finally:
            for req in reqs:
                # Still open: a late ack or rejection is settled in the background
                # (a rejected arg then leaves the desired set); else forget it.
                outcome, pending = req.detach()
                outcomes.append(outcome)
                if not pending:
                    conn.pending.pop(req.req_id, None)
        acked: list[dict[str, Any]] = []
        failed: list[tuple[dict[str, Any], str, str]] = []
        open_args: list[dict[str, Any]] = []
        unresolved: list[tuple[dict[str, Any], tuple[str, str]]] = []
        for req, (a, f, rest) in zip(reqs, outcomes, strict=True):
            if req.lost:
                raise WSError(f"connection lost before the {op} was acknowledged: {req.lost}")
            acked += a
            failed += f
            if req.unresolved is not None:
                unresolved += [(arg, req.unresolved) for arg in rest]
            else:
                open_args += rest
        if unresolved:
            singles = [arg for arg, _ in unresolved]
            if max_args == 1 or self._clock.monotonic() >= deadline:
                failed += [(arg, c, m) for arg, (c, m) in unresolved]
            else:
                a2, f2, o2 = self.sub_op(conn, op, singles, deadline, max_args=1)
                acked += a2
                failed += f2
                open_args += o2
        return acked, failed, open_args

    def settle_background(self, conn: Connection, req: SubRequest) -> None:
        """A fire-and-forget request finished (reader thread): drop rejected args, isolate the rest."""
        conn.pending.pop(req.req_id, None)
        _acked, failed, rest = req.outcome()
        for arg, code, text in failed:
            if req.op == "subscribe" and is_arg_rejection(code):
                self.drop_desired(arg, code, text, reason="subscribe")
            else:  # unsubscribe, or refused for now: the arg stays desired (next connect)
                self._handlers.emit_error(WSSubscribeError(code, text, arg))
        if req.unresolved is not None and rest:
            if len(req.args) == 1:
                return
            try:
                self.send_frames(conn, req.op, rest, background=True, max_args=1)
            except WSError as exc:
                code, text = req.unresolved
                for arg in rest:
                    self.drop_desired(arg, code, f"{text} ({exc})", reason="subscribe")

    def subscribe_on(self, conn: Connection, args: list[dict[str, Any]], *, reason: str) -> None:
        """Subscribe ``args`` on ``conn`` and wait; rejected args leave the desired set.

        Raises ``WSError`` when OKX refused some for now (transient code): the
        connection is then replaced after a backoff and everything resubscribed.
        """
        deadline = self._clock.monotonic() + self._subscribe_timeout_s
        _acked, failed, open_args = self.sub_op(conn, "subscribe", args, deadline)
        transient = [f for f in failed if not is_arg_rejection(f[1])]
        for arg, code, text in failed:
            if is_arg_rejection(code):
                self.drop_desired(arg, code, text, reason=reason)
        if transient:
            _arg, code, text = transient[0]
            raise WSError(
                f"{reason}: OKX refused {len(transient)} subscription(s) for now ({code} {text})"
            )
        if open_args:
            text = f"{len(open_args)} subscription(s) not acknowledged within {self._subscribe_timeout_s:g} s during {reason}"
            log.warning(
                "ws %s: %s: %s (%s)",
                self.name,
                text,
                args_text(open_args),
                self.url,
                extra={"ws": self.name, "sub_args": open_args[:10]},
            )
            self._counters.note_error(text)

    def drop_desired(self, arg: dict[str, Any], code: str, text: str, *, reason: str) -> None:
        with self._lock:
            self.desired.pop(arg_key(arg), None)
        self._counters.bump("subscriptions_dropped")
        log.warning(
            "ws %s: subscription %s rejected by OKX (%s %r) during %s; dropped",
            self.name,
            args_text([arg]),
            code,
            text,
            reason,
            extra={"ws": self.name, "code": code, "okx_msg": text, "arg": arg, "during": reason},
        )
        self._handlers.emit_error(WSSubscribeError(code, text, arg))

    def sync(self, conn: Connection) -> None:
        """Make ``conn``'s subscriptions equal the desired set (changes during a handoff)."""
        with self._lock:
            desired = dict(self.desired)
        missing = [a for k, a in desired.items() if k not in conn.subscribed]
        extra = [{k: v for k, v in key} for key in list(conn.subscribed) if key not in desired]
        try:
            if missing:
                self.subscribe_on(conn, missing, reason="handoff")
            if extra:
                deadline = self._clock.monotonic() + self._subscribe_timeout_s
                self.sub_op(conn, "unsubscribe", extra, deadline)
        except WSError as exc:
            self._handlers.emit_error(exc)

    def on_ack(self, conn: Connection, msg: dict[str, Any], op: str) -> None:
        arg = msg.get("arg") or {}
        key = arg_key(arg)
        # A push's arg repeats the subscribed one (plus uid): its (channel, instId)
        # is looked up in push_keys; an arg without instId (instType, instFamily,
        # ccy...) admits every push of its channel.
        pkey = (str(arg.get("channel", "")), str(arg.get("instId", "")))
        if op == "subscribe":
            if key not in conn.subscribed:
                conn.subscribed.add(key)
                conn.push_keys[pkey] = conn.push_keys.get(pkey, 0) + 1
            self._counters.bump("subscribe_ok")
        else:
            self._counters.bump("unsubscribe_ok")
        if op != "subscribe" and key in conn.subscribed:
            conn.subscribed.discard(key)
            left = conn.push_keys.get(pkey, 1) - 1
            if left > 0:
                conn.push_keys[pkey] = left
            else:
                conn.push_keys.pop(pkey, None)
        req = conn.pending.get(str(msg.get("id") or ""))
        if not isinstance(req, SubRequest):
            req = next(
                (
                    r
                    for r in list(conn.pending.values())
                    if isinstance(r, SubRequest)
                    and r.op == op
                    and key in r.args
                    and key not in r.acked
                ),
                None,
            )
        if req is not None and req.ack(key) and req.background:
            self.settle_background(conn, req)

    def sub_and_wait(
        self,
        op: str,
        args: Mapping[str, Any] | Iterable[Mapping[str, Any]],
        timeout_s: float,
        *,
        keep_desired: bool = False,
    ) -> None:
        norm = normalize_args(args)
        deadline = self._clock.monotonic() + timeout_s
        if self._live() is None:
            raise WSClosedError(f"WS {self.name} is not started")
        if not keep_desired:
            with self._lock:
                for arg in norm:
                    if op == "subscribe":
                        self.desired.setdefault(arg_key(arg), arg)
                    else:
                        self.desired.pop(arg_key(arg), None)
        self._counters.bump("waiters")  # a caller blocked on acks (stats().waiters)
        try:
            conn = self.live_conn(deadline)
            try:
                _acked, failed, open_args = self.sub_op(conn, op, norm, deadline)
            except WSClosedError as exc:
                raise WSError(
                    f"{op}: connection lost ({exc}); the desired set is resent on reconnect"
                ) from exc
        finally:
            self._counters.bump("waiters", -1)
        for arg, code, text in failed:
            if op == "subscribe" and is_arg_rejection(code):
                self.drop_desired(arg, code, text, reason="subscribe_and_wait")
        if failed:
            arg, code, text = failed[0]
            raise WSSubscribeError(code, text, arg)
        if open_args:
            raise WSTimeoutError(
                f"{op}: {len(open_args)} arg(s) not acknowledged within {timeout_s:g} s: {open_args[:3]!r}"
            )

    def unexpected_push(self, key: tuple[str, str]) -> None:
        """A push for a channel/instrument this connection never subscribed: count, drop."""
        if self._counters.unexpected(key):  # once per key (bounded); the count is in stats()
            log.warning(
                "ws %s: push for %s %s, which this connection never subscribed; dropped (%s)",
                self.name,
                key[0],
                key[1] or "(no instId)",
                self.url,
                extra={"ws": self.name, "channel": key[0], "inst_id": key[1], "url": self.url},
            )
