"""``lexalign check CHECK [ARGS]`` (also ``python -m lexalign.checks CHECK``): run one acceptance check.

A new check is a module with ``main(argv) -> int`` and a line in :data:`CHECKS`.
"""

from __future__ import annotations

import importlib
import sys

#: check name -> (module with ``main(argv) -> int``, what it answers)
CHECKS = {
    "gpu": (
        "lexalign.checks.gpu",
        "does the paper's GPU path work, how fast (SFT/DPO/GRPO, ZeRO-2, HF vs vLLM, 3 chat formats)",
    ),
    "default-run": ("lexalign.checks.default_run", "does a finished default run meet its goals (time, lists, P@5)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in CHECKS:
        width = max(map(len, CHECKS))
        listing = "\n".join(f"  {name:<{width}}  {text}" for name, (_, text) in CHECKS.items())
        print(f"usage: lexalign check CHECK [ARGS]   (CHECK --help: its options)\n\nchecks:\n{listing}")
        if argv and argv[0] not in ("-h", "--help"):
            print(f"lexalign check: unknown check {argv[0]!r}", file=sys.stderr)
            return 2
        return 0
    module, _ = CHECKS[argv[0]]
    return importlib.import_module(module).main(argv[1:])
