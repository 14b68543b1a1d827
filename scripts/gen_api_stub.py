"""Write okx_sync/rest/api.pyi, the typed view of the named endpoint methods.

Usage: python scripts/gen_api_stub.py [--check]

The stub is generated from the endpoint registry (okx_sync/rest/endpoints.tsv) and the
parameter data (okx_sync/rest/params.tsv) by ``okx_sync.rest.named.render_stub``. With
``--check`` nothing is written and the exit status is 1 when the file is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "okx_sync" / "rest" / "api.pyi"


def main(argv: list[str] | None = None) -> int:
    """Generate (or with --check, verify) the stub; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    sys.path.insert(0, str(ROOT))
    from okx_sync.rest.named import render_stub

    text = render_stub()
    if "--check" in args:
        current = STUB.read_text("utf-8") if STUB.exists() else ""
        if current != text:
            print(f"{STUB} is out of date; run python scripts/gen_api_stub.py", file=sys.stderr)
            return 1
        return 0
    STUB.write_text(text, "utf-8")
    print(f"wrote {STUB}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
