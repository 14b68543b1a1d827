"""The package's source files parsed once per test process.

Several unit tests read okx_sync's code rather than run it (the layer contract, class
sizes, the naming convention, no print outside the CLI); each used to parse every file
again. :func:`parse_file` keeps one tree per file version (path, mtime, size), so a file
changed or written during the run (``tmp_path`` packages) is parsed afresh. Callers only
read the trees (``ast.walk``), never change them. Thread safety: ``functools.cache``.
"""

from __future__ import annotations

import ast
import functools
import os
from pathlib import Path

__all__ = ["parse_file"]


@functools.cache
def _parse(path: str, mtime_ns: int, size: int) -> ast.Module:
    return ast.parse(Path(path).read_text(encoding="utf-8"), filename=path)


def parse_file(path: str | os.PathLike[str]) -> ast.Module:
    """The AST of the Python file at ``path`` (shared: do not modify it). Raises what
    reading (``OSError``) or parsing (``SyntaxError``, ``ValueError``) raises."""
    st = os.stat(path)
    return _parse(os.fspath(path), st.st_mtime_ns, st.st_size)
