"""The WebSocket session: what the connection loop asks of the client (``SessionHooks``).

``Session`` logs in on each fresh connection (re-syncing the clock once when
OKX refuses the login's timestamp, 60006), resubscribes the desired set,
performs the client's half of a make-before-break handoff (the old connection
unsubscribes and drains, a pong barrier on the new one, then the buffered
pushes are deduplicated and delivered), routes control messages (acks, error
events, login answers, notices, order replies) and runs the lifecycle handlers.
It is private to ``WSClient``: the connection loop (``ws.supervisor``) calls it.

Thread safety: each hook runs on the thread ``SessionHooks`` documents; every
method may be called from any thread. No lock is held while a handler runs.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from typing import Any

from ..auth import Credentials
from ..clock import Clock
from ..errors import WSAuthError, WSError, WSSubscribeError, WSTimeoutError
from .config import WSConfig
from .connection import Connection, PushMode
from .dispatch import SubmitResult
from .handlers import Handlers
from .managed_book import BookRouter
from .orders import OrderRequest
from .policies import ConnectRateLimiter
from .protocol import (
    LOGIN_FATAL_CLOSE_CODES,
    LOGIN_RESYNC_CODES,
    NOTICE_RECONNECT_CODE,
    arg_hint_from_error,
    args_text,
    dedupe_handoff,
    is_login_fatal,
    login_frame,
    match_hint,
)
from .routing import Router
from .stats import Counters
from .subscriptions import SubRequest, Subscriptions
from .supervisor import ConnectionManager

__all__ = ["Session"]

log = logging.getLogger("okx_sync.ws")

_BUFFER = PushMode.BUFFER
_FLUSH = PushMode.FLUSH
_DISCONNECT = SubmitResult.DISCONNECT


class _LoginWaiter:
    __slots__ = ("done", "code", "msg", "lost")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.code = ""
        self.msg = ""
        self.lost = ""


class _Login:
    """The login of each fresh connection, with one clock re-sync after a refusal for the
    timestamp (60006): ``resync_time(since)`` then the login again; a second refusal
    before a login succeeds, or a failing re-sync, is fatal. Supervisor thread."""

    def __init__(
        self,
        *,
        name: str,
        clock: Clock,
        credentials: Credentials | None,
        now_ms: Callable[[], int],
        resync_time: Callable[[float], object] | None,
        subscribe_timeout_s: float,
        counters: Counters,
    ) -> None:
        self.name = name
        self._clock = clock
        self._credentials = credentials
        self._now_ms = now_ms
        self._resync_time = resync_time
        self._subscribe_timeout_s = subscribe_timeout_s
        self._counters = counters
        # True from a clock re-sync for a refused login until a login succeeds:
        # a second refusal then is fatal (the re-sync did not help).
        self.login_resynced = False

    def log_in(self, conn: Connection) -> None:
        """Log in on ``conn`` (supervisor thread); raises ``WSAuthError`` (stop reconnecting)
        or ``WSError`` (retry)."""
        code, text, sent = self._send_login(conn)
        if code in LOGIN_RESYNC_CODES and self._resync_time is not None:
            if self.login_resynced:
                raise WSAuthError(code, f"{text} (again after a clock re-sync)")
            self._resync_for_login(code, text, sent)
            if conn.stopping:  # OKX closed it after the refusal: reconnect, log in afresh
                raise WSError(f"login refused ({code} {text}); clock re-synced, reconnecting")
            code, text, _sent = self._send_login(conn)
        if code != "0":
            if is_login_fatal(code):
                raise WSAuthError(code, text)
            raise WSError(f"login failed: {code} {text}")
        self.login_resynced = False
        log.info(
            "ws %s logged in (connection %s)",
            self.name,
            conn.seq,
            extra={"ws": self.name, "seq": conn.seq},
        )

    def _send_login(self, conn: Connection) -> tuple[str, str, float]:
        """Send one login on ``conn`` and wait for its answer: ``(code, msg, sent_at)``.

        Raises ``WSAuthError`` (closed with a login-refused close code),
        ``WSError`` (connection lost) or ``WSTimeoutError`` (no answer)."""
        creds = self._credentials
        assert creds is not None
        waiter = _LoginWaiter()
        conn.login_waiter = waiter
        sent = self._clock.monotonic()
        conn.ops.take(sent)
        conn.send(login_frame(creds, self._now_ms() // 1000))
        waiter.done.wait(self._subscribe_timeout_s)
        conn.login_waiter = None
        if waiter.lost or not waiter.done.is_set():
            conn.join(0.5)
            if conn.close_code in LOGIN_FATAL_CLOSE_CODES:
                raise WSAuthError(str(conn.close_code), conn.close_reason or "login failed")
            if waiter.lost:
                raise WSError(f"connection lost during login: {waiter.lost}")
            raise WSTimeoutError(f"no login answer within {self._subscribe_timeout_s:g} s")
        return waiter.code, waiter.msg, sent

    def _resync_for_login(self, code: str, text: str, sent: float) -> None:
        """Re-sync the clock after a login refused for its timestamp; raises
        ``WSAuthError`` (chained) when the re-sync fails."""
        resync = self._resync_time
        assert resync is not None
        log.warning(
            "ws %s: login refused for its timestamp (%s %s): re-syncing the clock and logging in again",
            self.name,
            code,
            text,
            extra={"ws": self.name, "code": code, "okx_msg": text},
        )
        self.login_resynced = True
        self._counters.bump("login_resyncs")
        try:
            resync(sent)
        except Exception as exc:
            log.error(
                "ws %s: clock re-sync after login %s failed: %s: %s",
                self.name,
                code,
                type(exc).__name__,
                exc,
                extra={"ws": self.name, "error": f"{type(exc).__name__}: {exc}"},
            )
            raise WSAuthError(code, f"{text} (clock re-sync failed: {exc})") from exc


class Session:
    """Implements ``supervisor.SessionHooks`` for one ``WSClient`` (module doc)."""

    def __init__(
        self,
        *,
        name: str,
        url: str,
        clock: Clock,
        credentials: Credentials | None,
        login: bool,
        now_ms: Callable[[], int],
        resync_time: Callable[[float], object] | None,
        subscribe_timeout_s: float,
        counters: Counters,
        handlers: Handlers,
        subs: Subscriptions,
    ) -> None:
        self.name = name
        self.url = url
        self._clock = clock
        self.login = login
        self._subscribe_timeout_s = subscribe_timeout_s
        self._counters = counters
        self._h = handlers
        self._subs = subs
        self._start_timeout_s = 15.0
        self._auth = _Login(
            name=name,
            clock=clock,
            credentials=credentials,
            now_ms=now_ms,
            resync_time=resync_time,
            subscribe_timeout_s=subscribe_timeout_s,
            counters=counters,
        )
        self.router = Router(
            name=name,
            url=url,
            handlers=handlers,
            counters=counters,
            unexpected=subs.unexpected_push,
            control=self.control,
        )
        self.on_message = self.router.on_message  # the reader's entry point, unwrapped
        self.manager: ConnectionManager | None = None  # between start and close
        self._lock = threading.Lock()  # manager

    # ------------------------------------------------------------------ start / stop
    def new_manager(
        self, cfg: WSConfig, limiter: ConnectRateLimiter | None, rng: random.Random | None
    ) -> ConnectionManager | None:
        """The connection loop of a fresh start, or None when one is already there."""
        with self._lock:
            if self.manager is not None:
                return None
            self.manager = ConnectionManager(
                self.url,
                self,
                name=self.name,
                clock=self._clock,
                backoff=cfg.backoff,
                heartbeat=cfg.heartbeat,
                limiter=limiter,
                connect_timeout_s=cfg.connect_timeout_s,
                options=dict(cfg.ws_options),
                rng=rng,
                max_message_bytes=cfg.max_message_bytes,
                proxy=cfg.proxy_url,
            )
            self._start_timeout_s = cfg.start_deadline_s
            self._auth.login_resynced = False  # a fresh start may re-sync again
            return self.manager

    def run(self, manager: ConnectionManager, books: BookRouter, timeout_s: float | None) -> None:
        """Start the books' threads, the dispatch paths and ``manager``; wait until ready
        (``WSClient.start``). On failure everything started is stopped and it raises."""
        books.resume()  # the managed books' threads run while the client is started
        self._h.typed_path.start()
        self._h.raw_path.start()
        try:
            manager.start(self._start_timeout_s if timeout_s is None else timeout_s)
        except BaseException:
            books.suspend(1.0)
            self._h.typed_path.stop(1.0)
            self._h.raw_path.stop(1.0)
            with self._lock:
                if self.manager is manager:
                    self.manager = None
            self._counters.collect(manager)
            raise
        log.info("ws %s started: %s", self.name, self.url, extra={"ws": self.name, "url": self.url})

    def stop(self, books: BookRouter, timeout_s: float) -> bool:
        """Stop the loop, the books' threads and the dispatch paths within ``timeout_s``
        (``WSClient.close``); True when every thread ended. Idempotent."""
        with self._lock:
            manager = self.manager
            self.manager = None
        if manager is None:
            return True
        deadline = self._clock.monotonic() + timeout_s
        ok = manager.stop(timeout_s * 0.5)
        self._counters.collect(manager)
        ok = books.suspend(max(0.05, (deadline - self._clock.monotonic()) / 3)) and ok
        left = max(0.05, deadline - self._clock.monotonic())
        ok = self._h.typed_path.stop(left / 2) and ok
        ok = self._h.raw_path.stop(max(0.05, deadline - self._clock.monotonic())) and ok
        self._h.flush_summary()
        if ok:
            log.info(
                "ws %s closed (threads joined)",
                self.name,
                extra={"ws": self.name, "threads_joined": ok},
            )
        else:
            log.warning(
                "ws %s closed, but a thread of it did not end within %.1f s",
                self.name,
                timeout_s,
                extra={"ws": self.name, "threads_joined": ok},
            )
        return ok

    def reader_handler(self, conn: Connection) -> str | None:
        """The user handler running on ``conn``'s reader now, or None.

        Only inline paths run handlers on the reader; push listeners always do.
        """
        return self._h.reader_handler()

    def on_conn_closed(self, conn: Connection) -> None:
        """the reader of ``conn`` ended; fail everything waiting on it."""
        reason = conn.describe_end()
        waiter = conn.login_waiter
        if waiter is not None and not waiter.done.is_set():
            waiter.lost = reason
            waiter.done.set()
        for rid, req in list(conn.pending.items()):
            conn.pending.pop(rid, None)
            if isinstance(req, SubRequest):
                req.fail(reason)
            elif isinstance(req, OrderRequest):
                req.lost = reason
                req.done.set()

    def prepare(self, conn: Connection) -> None:
        """log in (when configured) and resubscribe on a fresh connection."""
        if self.login:
            self._auth.log_in(conn)
        args = list(self._subs.desired_list())
        if args:
            self._subs.subscribe_on(conn, args, reason="resubscribe")
        if conn.push_mode is _BUFFER:  # make-before-break: conn will replace the live one
            self._drain_retiring(conn)

    def _drain_retiring(self, new: Connection) -> None:
        """Before ``new`` (subscribed, buffering) replaces the live connection (supervisor).

        The live connection unsubscribes and waits for the acks: its reader
        has then delivered every push the server sent it, so retiring it loses
        nothing that was sent before ``new`` subscribed. Then a ping on ``new``
        is answered: its buffer holds every push sent on it before the old
        connection's last one, so ``dedupe_handoff`` sees everything both
        carried (nothing delivered twice). Failures only log: the handoff then
        goes on as a plain switch.
        """
        manager = self.manager
        old = manager.current if manager is not None else None
        if old is None or old is new or old.stopping:
            return
        deadline = self._clock.monotonic() + self._subscribe_timeout_s
        try:
            keys = list(old.subscribed)
            if keys:
                args = self._subs.args_of(keys)
                self._subs.sub_op(old, "unsubscribe", args, deadline)
            self._pong_barrier(new, deadline)
        except WSError as exc:
            log.warning(
                "ws %s: handoff: the old connection was not drained: %s: %s",
                self.name,
                type(exc).__name__,
                exc,
                extra={"ws": self.name, "error": f"{type(exc).__name__}: {exc}"},
            )

    def _pong_barrier(self, conn: Connection, deadline: float) -> None:
        """Ping ``conn`` and wait for its answer (pongs come in order, after what was sent before)."""
        # a heartbeat ping still unanswered is answered first
        outstanding = conn.last_ping is not None and (
            conn.last_pong is None or conn.last_pong < conn.last_ping
        )
        waiter: list[Any] = [2 if outstanding else 1, threading.Event()]
        self.router.pong_waiters[conn] = waiter
        try:
            conn.ping()
            if not waiter[1].wait(max(0.0, deadline - self._clock.monotonic())):
                raise WSTimeoutError(f"no pong from the new connection of {self.name}")
        finally:
            self.router.pong_waiters.pop(conn, None)

    def on_up(self, conn: Connection, *, first: bool) -> None:
        """``conn`` is live — run on_connect, then on_reconnect after a reconnect."""
        for fn in self._h.connects:
            self._h.call(fn)
        if not first:
            for fn in self._h.reconnects:
                self._h.call(fn)

    def on_down(self, conn: Connection) -> None:
        """the live connection ended — record why and run on_disconnect."""
        reason = conn.describe_end()
        self._counters.note_error(reason)
        for fn in self._h.disconnects:
            self._h.call(fn, reason)

    def on_handoff(self, old: Connection, new: Connection) -> None:
        """``new`` replaced ``old``; deliver what only ``new`` received, then resync."""
        with new.buffer_lock:
            new.buffer = list(dedupe_handoff(new.buffer, old.last_data))
            new.push_mode = _FLUSH
        new.ping()  # wakes new's reader, which delivers the buffer before anything newer
        self._subs.sync(new)

    def on_fatal(self, err: BaseException) -> None:
        """the loop stopped for good (login refused)."""
        log.error(
            "ws %s stopped for good (%s): %s: %s",
            self.name,
            self.url,
            type(err).__name__,
            err,
            extra={"ws": self.name, "url": self.url, "error": f"{type(err).__name__}: {err}"},
        )
        self._h.emit_error(err)

    def on_conn_error(self, err: BaseException, attempt: int, delay_s: float) -> None:
        """a connect attempt failed; the loop retries after ``delay_s`` s."""
        log.warning(
            "ws %s: connect to %s failed (attempt %d, retry in %.3g s): %s: %s",
            self.name,
            self.url,
            attempt + 1,
            delay_s,
            type(err).__name__,
            err,
            extra={
                "ws": self.name,
                "url": self.url,
                "error": f"{type(err).__name__}: {err}",
                "attempt": attempt,
                "retry_in_s": round(delay_s, 3),
            },
        )
        self._h.emit_error(err)

    def reader_blocked(self, conn: Connection) -> bool:
        """True while the live reader waits for room in a handler queue."""
        m = self.manager
        if m is None or conn is not m.current:
            return False
        return (
            self._h.typed_path.blocked_since is not None
            or self._h.raw_path.blocked_since is not None
        )

    def pending_orders(self, conn: Connection) -> int:
        """order requests on ``conn`` still waiting for a reply."""
        return sum(1 for r in list(conn.pending.values()) if isinstance(r, OrderRequest))

    def control(self, conn: Connection, msg: dict[str, Any]) -> None:
        event = msg.get("event")
        if event is None:
            if "id" in msg and "op" in msg:
                self._on_reply(conn, msg)
        elif event == "subscribe" or event == "unsubscribe":
            self._subs.on_ack(conn, msg, event)
        elif event == "error":
            self._on_error_event(conn, msg)
        elif event == "login":
            self._on_login(conn, msg)
        elif event == "notice":
            self._on_notice(conn, msg)
        elif event == "channel-conn-count-error":
            self._h.emit_error(
                WSSubscribeError(
                    "channel-conn-count-error",
                    f"too many connections on channel {msg.get('channel')} "
                    f"(connCount {msg.get('connCount')})",
                    {"channel": msg.get("channel")},
                )
            )
        if "connId" in msg and not conn.conn_id:
            conn.conn_id = str(msg["connId"])
        if event is not None and self._h.events:
            if self._h.typed_path.submit(("", ""), msg, conn.should_stop) is _DISCONNECT:
                self.router.overflow_disconnect(conn, "typed")
        if self._h.raw:
            if self._h.raw_path.submit(("", ""), msg, conn.should_stop) is _DISCONNECT:
                self.router.overflow_disconnect(conn, "raw")

    def _on_error_event(self, conn: Connection, msg: dict[str, Any]) -> None:
        code = str(msg.get("code", ""))
        text = str(msg.get("msg", ""))
        rid = str(msg.get("id") or "")
        pending = conn.pending.get(rid) if rid else None
        hint = arg_hint_from_error(msg)
        if pending is None and not rid and conn.login_waiter is None and hint is not None:
            # OKX versions that do not echo the id: find the request by the arg hint
            pending = next(
                (
                    r
                    for r in list(conn.pending.values())
                    if isinstance(r, SubRequest) and match_hint(hint, r.args.values())
                ),
                None,
            )
        if isinstance(pending, SubRequest):
            self._counters.bump(f"{pending.op}_error")  # subscribe_error / unsubscribe_error
            log.warning(
                "ws %s: %s error %s %r for %s (%s)",
                self.name,
                pending.op,
                code,
                text,
                args_text([hint] if hint is not None else list(pending.args.values())),
                self.url,
                extra={
                    "ws": self.name,
                    "code": code,
                    "okx_msg": text,
                    "op": pending.op,
                    "id": pending.req_id,
                },
            )
            if pending.error(code, text, hint) and pending.background:
                self._subs.settle_background(conn, pending)
            return
        if isinstance(pending, OrderRequest):
            conn.pending.pop(rid, None)
            pending.reply = {"id": rid, "op": pending.op, "code": code, "msg": text, "data": []}
            pending.done.set()
            return
        waiter = conn.login_waiter
        if waiter is not None and not waiter.done.is_set():
            waiter.code, waiter.msg = code, text
            waiter.done.set()
            return
        log.warning(
            "ws %s: error event %s %r (%s)",
            self.name,
            code,
            text,
            self.url,
            extra={"ws": self.name, "code": code, "okx_msg": text},
        )
        self._h.emit_error(WSError(f"OKX error event {code}: {text}"))

    def _on_login(self, conn: Connection, msg: dict[str, Any]) -> None:
        waiter = conn.login_waiter
        if waiter is not None:
            waiter.code = str(msg.get("code", "0"))
            waiter.msg = str(msg.get("msg", ""))
            waiter.done.set()

    def _on_notice(self, conn: Connection, msg: dict[str, Any]) -> None:
        code = str(msg.get("code", ""))
        log.info(
            "ws %s: notice %s %r",
            self.name,
            code,
            msg.get("msg", ""),
            extra={"ws": self.name, "code": code, "okx_msg": msg.get("msg", "")},
        )
        manager = self.manager
        if code == NOTICE_RECONNECT_CODE and manager is not None and conn is manager.current:
            conn.track_last = True
            manager.request_handoff(conn)

    def _on_reply(self, conn: Connection, msg: dict[str, Any]) -> None:
        req = conn.pending.pop(str(msg.get("id")), None)
        if isinstance(req, OrderRequest):
            req.reply = msg
            req.done.set()
        else:
            log.warning(
                "ws %s: reply without a waiting request (op %s, id %s, code %s)",
                self.name,
                msg.get("op"),
                msg.get("id"),
                msg.get("code"),
                extra={
                    "ws": self.name,
                    "id": msg.get("id"),
                    "op": msg.get("op"),
                    "code": msg.get("code"),
                },
            )
