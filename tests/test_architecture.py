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


# ---- the stage packages (issue 22) -------------------------------------------------------------

#: Layers below the stages: core imports only core; config only core and config; models (loading,
#: generation, memory) only those two. Stages may import any of them.
LAYERS = {"core": {"core"}, "config": {"core", "config"}, "models": {"core", "config", "models"}}
STAGES = ("norms", "train", "lexical", "wvs", "population", "report")
#: The only modules one stage may import from another: the norms readers and prompt templates (every
#: stage reads ingest's tables and prompts), the association-list parser (tier 1, the ranking reward and
#: the population norms parse lists the same way), and the WVS metric, refusal and norms definitions the
#: report tabulates.
SHARED = {
    "lexalign.norms.ingest",
    "lexalign.norms.templates",
    "lexalign.lexical.parse",
    "lexalign.wvs.metrics",
    "lexalign.wvs.refusal",
    "lexalign.wvs.norms",
}


def _package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_top_level_holds_only_the_command_and_stage_packages():
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py", "cli.py"))
    assert loose == []
    for folder in sorted(p for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text(encoding="utf-8")))
        assert doc, f"{folder.name}/__init__.py: say what the stage reads and writes in its docstring"


def test_layers_and_stages_import_only_what_they_may():
    modules = _modules()
    offenders = []
    for name, path in modules.items():
        package = _package_of(name)
        for target in sorted(_imports(path, modules) - {"lexalign"}):
            other = _package_of(target)
            if other == package:
                continue
            if package in LAYERS:
                allowed = other in LAYERS[package]
            elif package in STAGES:
                allowed = other in LAYERS or target in SHARED
            else:  # cli and testing sit above everything
                allowed = True
            if not allowed:
                offenders.append(f"{name} imports {target}")
    assert offenders == []


def test_every_workflow_script_hands_its_job_over_the_same_way():
    """Each script is the one run_script call: the stage's job type builds itself from the rule."""
    form = re.compile(
        r"from lexalign\.core\.snake import run_script\n"
        r"from lexalign\.[a-z_.]+ import (\w+), (\w+)\n\n"
        r"run_script\(snakemake, \1\.from_rule, \2\)\n"
    )
    scripts = sorted((PACKAGE.parents[1] / "workflow" / "scripts").glob("*.py"))
    assert scripts
    odd = [path.name for path in scripts if not form.fullmatch(path.read_text(encoding="utf-8"))]
    assert odd == []
