"""A real ``redis-server`` on a free loopback port, for the shared-gate tests and benchmarks.

``RedisServer().start()`` runs ``redis-server --port N --bind 127.0.0.1 --save ""
--appendonly no`` and waits (bounded) until it answers PING; ``stop()`` ends it
(the data is gone: nothing is saved) and ``start()`` again brings it back on the
same port. ``redis_server_path()`` is None when the binary cannot be found:
tests then skip with that reason (``REDIS_MISSING``). Thread safety: one
thread drives a server.
"""

from __future__ import annotations

import shutil
import socket
import subprocess

from okx_sync.testing import wait_until

__all__ = ["RedisServer", "redis_server_path", "REDIS_MISSING", "free_port"]

REDIS_MISSING = "redis-server not found on PATH (apt-get install redis-server)"


def redis_server_path() -> str | None:
    """The ``redis-server`` binary, or None."""
    return shutil.which("redis-server")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process on 127.0.0.1 (see the module docstring)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        # a port picked here may be taken by another process (another pytest-xdist worker's
        # server) before redis-server binds it: the first start then retries on a new one
        self._repick = port is None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        """Start it and wait until it answers PING (RuntimeError after ``timeout_s``)."""
        binary = redis_server_path()
        if binary is None:
            raise RuntimeError(REDIS_MISSING)
        for _ in range(2 if self._repick else 0):
            if self._launch(binary, timeout_s):
                self._repick = False  # from now on the port is this server's (restarts)
                return self
            self.port = free_port()
        if self._launch(binary, timeout_s):
            self._repick = False
            return self
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def _launch(self, binary: str, timeout_s: float) -> bool:
        """One redis-server on ``self.port``: True once it answers PING, else stopped."""
        self._proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        proc = self._proc
        # a child process's readiness offers no event: poll PING (or its exit) with a deadline
        wait_until(
            lambda: proc.poll() is not None or self._ping(), timeout_s=timeout_s, step_s=0.01
        )
        if proc.poll() is None and self._ping():
            return True
        self.stop()
        return False

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """End the server and wait for it (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def flush(self) -> None:
        """Empty every key (between tests sharing one server)."""
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            client.flushall()
        finally:
            client.close()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
