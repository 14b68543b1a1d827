"""Read the OKX docs mirror (dev-time only): the pages and their example blocks.

The OKX V5 reference as mirrored in github.com/qiuham/crypto-api-docs is a bare git
directory (by default /work/.mirror/qiuham+crypto-api-docs/repo, or $OKX_DOCS_GIT).
:func:`pages` reads every ``docs/okx/*.md`` page of one revision with one
``git cat-file --batch``; :func:`json_block` reads the JSON of an example block;
:func:`request_examples` collects the request examples ("> Request Example") as OKX
params. Used by scripts/gen_results.py (answer and push fields) and
scripts/gen_endpoint_examples.py (per-endpoint examples); facts only, no prose kept.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from urllib.parse import parse_qsl

DEFAULT_GIT = "/work/.mirror/qiuham+crypto-api-docs/repo"

REQUEST_LINE = re.compile(r"^(GET|POST)\s+(/api/v5/[^\s?]+)(?:\?(\S*))?\s*$")


def git_dir(environ: dict[str, str] | None = None) -> str:
    """The mirror's git directory: $OKX_DOCS_GIT or :data:`DEFAULT_GIT`."""
    return (os.environ if environ is None else environ).get("OKX_DOCS_GIT", DEFAULT_GIT)


def mirror_args(args: list[str]) -> tuple[str, str]:
    """``(git_dir, rev)`` from a generator's ``--git-dir DIR`` / ``--rev REV`` arguments
    (defaults: :func:`git_dir` and ``HEAD``)."""
    where = git_dir()
    rev = "HEAD"
    if "--git-dir" in args:
        where = args[args.index("--git-dir") + 1]
    if "--rev" in args:
        rev = args[args.index("--rev") + 1]
    return where, rev


def git(git_dir: str, *args: str) -> str:
    """The stdout of ``git --git-dir GIT_DIR ARGS``; raises CalledProcessError."""
    return subprocess.run(
        ["git", "--git-dir", git_dir, *args], capture_output=True, text=True, check=True
    ).stdout


def pages(git_dir: str, rev: str) -> list[tuple[str, list[str]]]:
    """(path, lines) of every ``docs/okx/*.md`` page at ``rev``, leaf pages first (deepest
    paths, then by name). Raises CalledProcessError when git cannot read them."""
    names = [
        f
        for f in git(git_dir, "ls-tree", "-r", rev, "--name-only").splitlines()
        if f.startswith("docs/okx/") and f.endswith(".md")
    ]
    names.sort(key=lambda p: (-p.count("/"), p))
    query = "".join(f"{rev}:{n}\n" for n in names).encode()
    out = subprocess.run(
        ["git", "--git-dir", git_dir, "cat-file", "--batch"],
        input=query,
        capture_output=True,
        check=True,
    ).stdout
    found: list[tuple[str, list[str]]] = []
    pos = 0
    for name in names:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        if len(header) != 3:
            raise subprocess.CalledProcessError(1, "git cat-file", output=out[pos:end])
        size = int(header[2])
        body = out[end + 1 : end + 1 + size]
        pos = end + 1 + size + 1  # the blob, then a newline
        found.append((name, body.decode("utf-8", "replace").splitlines()))
    return found


def first_json(text: str) -> object | None:
    """The first balanced JSON value of ``text`` (code samples may follow it), read
    leniently (the docs' trailing commas and line comments); the text itself when it is
    not JSON, None when it holds no ``{``/``[``."""
    start = min((k for k in (text.find("{"), text.find("[")) if k >= 0), default=-1)
    if start < 0:
        return None
    text = text[start:]
    depth, end = 0, 0
    for k, ch in enumerate(text):
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                end = k + 1
                break
    body_text = re.sub(r",(\s*[}\]])", r"\1", text[:end])  # trailing commas in the docs
    body_text = re.sub(r'(?m)\s//[^\n"]*$', "", body_text)  # and line comments
    try:
        return json.loads(body_text)
    except ValueError:
        return text  # not JSON: the text still names the channel


def block(lines: list[str], start: int) -> tuple[str, int]:
    """The text of the indented code block after ``lines[start]`` and the index after it."""
    j = start + 1
    body: list[str] = []
    while j < len(lines) and (not lines[j].strip() or lines[j].startswith("    ")):
        body.append(lines[j])
        j += 1
    return "\n".join(body).strip(), j


def json_block(lines: list[str], start: int) -> tuple[object | None, int]:
    """The JSON value of the indented code block after ``lines[start]`` (None if not JSON)."""
    text, j = block(lines, start)
    if not text.startswith(("{", "[")):
        return None, j
    return first_json(text), j


def request_examples(git_dir: str, rev: str) -> dict[str, list[object]]:
    """``"METHOD /api/v5/path"`` -> the OKX params of each distinct documented request
    example, in page order: a dict (query string or JSON object body) or a list (an
    array body). Read from the blocks headed "Request Example": each line
    ``GET /api/v5/...?a=1`` is one example, as is each ``POST /api/v5/...`` followed by
    ``body`` and its JSON (a POST shown without a body has no params)."""
    found: dict[str, list[object]] = {}
    for _name, lines in pages(git_dir, rev):
        i = 0
        while i < len(lines):
            low = lines[i].lower().strip()
            if not (low.startswith(">") and "request example" in low):
                i += 1
                continue
            text, i = block(lines, i)
            for key, params in _requests(text.splitlines()):
                seen = found.setdefault(key, [])
                if params not in seen:
                    seen.append(params)
    return found


def _requests(lines: list[str]) -> list[tuple[str, object]]:
    """(key, params) of each request line of one example block."""
    out: list[tuple[str, object]] = []
    starts = [(k, m) for k, ln in enumerate(lines) if (m := REQUEST_LINE.match(ln.strip()))]
    for n, (k, m) in enumerate(starts):
        key = f"{m.group(1)} {m.group(2).rstrip('/')}"
        if m.group(1) == "GET":
            out.append((key, dict(parse_qsl(m.group(3) or "", keep_blank_values=True))))
            continue
        stop = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        body = "\n".join(lines[k + 1 : stop]).strip()
        if body.lower().startswith("body"):
            body = body[4:].strip()
        if not body.startswith(("{", "[")):
            out.append((key, {}))
            continue
        params = first_json(body)
        if isinstance(params, (dict, list)):
            out.append((key, params))
    return out
