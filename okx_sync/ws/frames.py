"""RFC 6455 frames from a server, cut out of a byte stream (pure: no I/O, no threads).

The WebSocket reader (``ws.connection.Connection``) reads its socket in large
chunks and hands each chunk to a ``FrameParser``, which returns the complete
messages the chunk finished, in order. Cutting frames out of large reads costs
a few hundred nanoseconds a frame; reading them one at a time (two or three
``recv`` calls and a frame object per frame, as websocket-client does) is most
of a small message's cost.

What the parser enforces, for frames a server sends to a client (RFC 6455 §5):

- unmasked frames only, no RSV bits (no extension is negotiated), known opcodes;
- control frames (close, ping, pong) final and at most 125 bytes, delivered at
  once even between the fragments of a message;
- fragments: a text/binary frame without FIN starts a message, continuation
  frames extend it, the one with FIN ends it; a continuation without a start,
  or a new message before the end, is a protocol error;
- 7-bit, 16-bit and 64-bit payload lengths; a frame or message larger than
  ``max_size`` is refused as soon as its length is known (nothing buffered);
  a fragmented message counts its frames' headers too, so a flood of empty
  continuation frames hits the limit like any other large message (its parts
  are collected in one buffer: memory stays within ``max_size``);
- text messages are valid UTF-8 (``bytes.isascii`` first, then a strict
  ``bytes.decode``); close payloads have a 2-byte code and a UTF-8 reason;
- nothing after a close frame is parsed.

A violation is a ``FrameError`` with the close code to send (1002 protocol
error, 1007 invalid payload, 1009 too big). The messages completed before the
bad frame are still returned; the error is then in ``FrameParser.error`` and
raised by the next ``feed``.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import WSError

__all__ = [
    "OP_CONT",
    "OP_TEXT",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "CLOSE_PROTOCOL_ERROR",
    "CLOSE_INVALID_DATA",
    "CLOSE_TOO_BIG",
    "DEFAULT_MAX_SIZE",
    "FrameError",
    "FrameParser",
    "check_text",
    "encode_frame",
]

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_DATA = 1007
CLOSE_TOO_BIG = 1009

# OKX's largest pushes (400-level book snapshots, long account lists) are tens of KB.
DEFAULT_MAX_SIZE = 16 * 1024 * 1024

_TEXT_FIN = 0x80 | OP_TEXT  # first byte of a final, unfragmented text frame
_CONTROL = frozenset((OP_CLOSE, OP_PING, OP_PONG))
_EMPTY: list[tuple[int, bytes]] = []


class FrameError(WSError):
    """The server broke RFC 6455; ``close_code`` is the code to close with (1002, 1007, 1009)."""

    def __init__(self, message: str, close_code: int = CLOSE_PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.close_code = close_code


def check_text(payload: bytes) -> None:
    """Raise ``FrameError`` (1007) unless ``payload`` is valid UTF-8.

    ASCII (what OKX sends) is checked by ``bytes.isascii``; anything else by a
    strict decode.
    """
    if not payload.isascii():
        try:
            payload.decode()
        except UnicodeDecodeError as exc:
            raise FrameError(
                f"text message is not valid UTF-8 (byte {exc.start})", CLOSE_INVALID_DATA
            ) from None


def encode_frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes = b"") -> bytes:
    """One frame as bytes (``mask``: 4 bytes to mask it with, as a client must).

    Used by tests and by servers in the benchmarks; the client sends through
    websocket-client. Raises ``ValueError`` for a bad opcode or mask.
    """
    if not 0 <= opcode <= 0xF:
        raise ValueError(f"opcode must be 0..15, got {opcode!r}")
    if mask and len(mask) != 4:
        raise ValueError("mask must be 4 bytes")
    n = len(payload)
    flag = 0x80 if mask else 0
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([flag | n])
    elif n < 1 << 16:
        head += bytes([flag | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([flag | 127]) + n.to_bytes(8, "big")
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


class FrameParser:
    """Cuts the frames of one server-to-client WebSocket stream out of the chunks fed to it.

    ``feed(chunk)`` returns ``[(opcode, payload), ...]``: one entry per complete
    text (``OP_TEXT``) or binary message (fragments already joined) and per
    control frame (``OP_CLOSE``, ``OP_PING``, ``OP_PONG``), in stream order.
    Bytes of an unfinished frame are kept for the next chunk; a large frame is
    collected part by part and joined once (no quadratic copying).

    ``error`` is the ``FrameError`` that stopped the parser (None while fine);
    ``closed`` is True once a close frame was returned. ``max_size`` bounds a
    frame and a whole fragmented message, its frame headers counted.

    Thread safety: none; one parser per connection, used by its reader thread.
    """

    def __init__(self, max_size: int = DEFAULT_MAX_SIZE) -> None:
        if max_size < 125:
            raise ValueError(f"max_size must be >= 125, got {max_size!r}")
        self.max_size = max_size
        self.error: FrameError | None = None
        self.closed = False
        self.buffered = 0  # bytes held for an unfinished frame
        self._parts: list[bytes] = []
        self._need = 0  # bytes the held parts must reach before parsing again
        self._frag_op = 0  # opcode of the message being fragmented (0: none)
        self._frags = bytearray()  # the fragments' payloads so far
        self._frag_size = 0  # their bytes on the wire, headers included

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Parse ``data`` (the next bytes of the stream); the messages it completed.

        Raises ``FrameError`` when the parser already failed; a new failure is
        stored in ``error`` after returning what came before it. After a close
        frame, further data is ignored.
        """
        if self.error is not None:
            raise self.error
        if self.closed or not data:
            return _EMPTY
        if self._need:
            self._parts.append(data)
            self.buffered += len(data)
            if self.buffered < self._need:
                return _EMPTY
            data = b"".join(self._parts)
            self._parts = []
            self._need = 0
            self.buffered = 0
        out: list[tuple[int, bytes]] = []
        append = out.append
        end = len(data)
        pos = 0
        need = 0
        frag_op = self._frag_op
        while True:
            avail = end - pos
            if avail < 2:
                need = 2
                break
            b0 = data[pos]
            n = data[pos + 1]
            if n < 126:
                start = pos + 2
            elif n == 126:
                if avail < 4:
                    need = 4
                    break
                n = (data[pos + 2] << 8) | data[pos + 3]
                start = pos + 4
            elif n == 127:
                if avail < 10:
                    need = 10
                    break
                n = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 10
            else:
                self.error = FrameError("masked frame from the server")
                break
            if n > self.max_size:
                self.error = FrameError(
                    f"frame of {n} bytes is over the {self.max_size}-byte limit", CLOSE_TOO_BIG
                )
                break
            stop = start + n
            if stop > end:
                need = stop - pos
                break
            if b0 == _TEXT_FIN and not frag_op:  # the common case: a whole text message
                payload = data[start:stop]
                if not payload.isascii():
                    try:
                        check_text(payload)
                    except FrameError as exc:
                        self.error = exc
                        break
                append((OP_TEXT, payload))
                pos = stop
                continue
            head = start - pos
            pos = stop
            try:
                frag_op = self._frame(b0, data[start:stop], append, head)
            except FrameError as exc:
                self.error = exc
                break
            if self.closed:
                need = 0
                break
        if self.error is None and need and not self.closed:
            rest = data[pos:]
            self._parts = [rest]
            self.buffered = len(rest)
            self._need = need
        return out

    def _frame(
        self, b0: int, payload: bytes, add: Callable[[tuple[int, bytes]], None], head: int
    ) -> int:
        """Handle a frame other than a whole text message; the fragmented opcode after it.

        ``head``: the frame header's length, counted in a fragmented message's size.
        """
        if b0 & 0x70:
            raise FrameError("RSV bits set (no extension was negotiated)")
        fin = b0 & 0x80
        opcode = b0 & 0x0F
        if opcode in _CONTROL:
            if not fin or len(payload) > 125:
                raise FrameError("control frame fragmented or over 125 bytes")
            if opcode == OP_CLOSE:
                self._check_close(payload)
                self.closed = True
            add((opcode, payload))
            return self._frag_op
        if opcode == OP_CONT:
            if not self._frag_op:
                raise FrameError("continuation frame without a message to continue")
        elif opcode in (OP_TEXT, OP_BINARY):
            if self._frag_op:
                raise FrameError("new message before the fragmented one ended")
            self._frag_op = opcode
            self._frags = bytearray()
            self._frag_size = 0
        else:
            raise FrameError(f"unknown opcode {opcode:#x}")
        self._frag_size += head + len(payload)
        if self._frag_size > self.max_size:
            raise FrameError(
                f"fragmented message of over {self.max_size} bytes (frame headers counted)",
                CLOSE_TOO_BIG,
            )
        self._frags += payload
        if not fin:
            return self._frag_op
        message = bytes(self._frags)
        op = self._frag_op
        self._frag_op = 0
        self._frags = bytearray()
        self._frag_size = 0
        if op == OP_TEXT:
            check_text(message)
        add((op, message))
        return 0

    @staticmethod
    def _check_close(payload: bytes) -> None:
        if len(payload) == 1:
            raise FrameError("close frame with a 1-byte payload")
        if len(payload) > 2:
            try:
                payload[2:].decode()
            except UnicodeDecodeError:
                raise FrameError("close reason is not valid UTF-8", CLOSE_INVALID_DATA) from None
