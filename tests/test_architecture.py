"""The package's shape (issue 10): no import loops, modules a newcomer can hold in their head, and
each method named in one place only (the registry)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from lexalign.config import methods

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "lexalign"
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every lexalign module ``path`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # "from package import submodule" imports the submodule; anything else comes from the module itself
            names = [
                f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                for alias in node.names
            ]
        found.update(name for name in names if name in modules)
    found.discard(_module_name(path))
    return found


def test_no_import_loops():
    modules = _modules()
    graph = {name: _imports(path, modules) - {"lexalign"} for name, path in modules.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                loop = stack[stack.index(target) :] + [target]
                pytest.fail("import loop: " + " -> ".join(loop))
            if target not in state:
                visit(target)
        stack.pop()
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name)


def test_modules_stay_small():
    big = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert big == {}, f"modules over {MAX_LINES} lines: {big}"


def test_method_names_live_in_the_registry_only():
    """Code asks the registry what a method is; it never spells a method's name.

    Names that are also other things' names ("prompt" columns, the "sft" and "dpo" template tables and TRL
    trainers) are checked where they are compared with a method; the others anywhere.
    """
    shared = {"prompt", "sft", "dpo"}
    anywhere = re.compile("[\"'](" + "|".join(re.escape(n) for n in methods.NAMES if n not in shared) + ")[\"']")
    as_method = re.compile(r"method\w*\s*(?:==|!=|\bin\b)\s*[(\[{]?\s*[\"'](" + "|".join(methods.NAMES) + ")[\"']")
    offenders = []
    for name, path in _modules().items():
        if name == "lexalign.config.methods":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if anywhere.search(line) or as_method.search(line):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert offenders == []
