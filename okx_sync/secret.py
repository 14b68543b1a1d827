"""``Secret``: a secret string from an OKX answer, masked wherever it could be shown. No I/O.

Some answers carry credentials: creating a sub-account API key returns its
``apiKey``, ``secretKey`` and ``passphrase``. The named methods return those
fields as :class:`Secret` values (which fields: ``SECRET_FIELDS`` in
:mod:`okx_sync.rest.named`), so printing, logging, ``repr`` of the result, an
f-string, evidence or a JSON report show ``******``; ``reveal()`` is the one
way to the value. ``json.dumps`` without a ``default`` refuses a Secret
(``TypeError``) rather than writing it; with ``default=str`` it writes the mask.

A Secret is accepted wherever okx_sync needs the value itself: ``Client`` /
``Credentials`` credentials, and request parameters (sent revealed, signed).
"""

from __future__ import annotations

import hmac
from typing import Any, NoReturn

__all__ = ["Secret", "MASK", "reveal"]

#: What a Secret shows instead of its value.
MASK = "******"


class Secret:
    """A string that never shows itself: ``str``/``repr``/``format`` give ``******``.

    ``Secret(value)`` wraps a ``str`` (``TypeError`` otherwise). ``reveal()``
    returns it. Two Secrets are equal when their values are (compared in
    constant time); a Secret never equals a plain ``str``. It cannot be
    pickled (that would write the value). Thread safety: immutable.
    """

    __slots__ = ("_value",)

    _value: str

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"Secret wraps a str, got {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """The secret value itself. Handle with care: do not log it."""
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __format__(self, spec: str) -> str:
        return format(MASK, spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret is not pickled (it would write the value); reveal() it")


def reveal(value: Any) -> Any:
    """``value.reveal()`` for a :class:`Secret`, else ``value`` unchanged. Pure."""
    return value.reveal() if isinstance(value, Secret) else value
