"""``make demo``: the end-to-end demo against an offline sandbox tenant.

Until the sync issue lands this does not pretend: it says what is missing and fails.
"""

from __future__ import annotations

import sys


def main() -> int:
    print(
        "exoimap demo: not built yet. The demo needs the sandbox tenant, sign-in and sync,\n"
        "which are still being built; `make test` shows what works today.",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
