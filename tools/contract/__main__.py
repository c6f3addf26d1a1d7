"""`python -m tools.contract write` regenerates docs/api/*.openapi.json and docs/asyncapi.yaml;
`python -m tools.contract check` exits 1 naming every file that differs from what the code
produces now."""

from __future__ import annotations

import argparse
import sys

from .render import DOCS, rendered


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.contract")
    parser.add_argument("action", choices=["write", "check"])
    args = parser.parse_args()
    stale = []
    for relative, text in rendered().items():
        path = DOCS / relative
        if args.action == "write":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(DOCS.parent)}")
        elif not path.exists() or path.read_text() != text:
            stale.append(str(path.relative_to(DOCS.parent)))
    if stale:
        print("out of date (run `make docs` and commit): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
