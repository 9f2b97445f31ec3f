"""The ``lexalign`` command: stage entry points usable without Snakemake."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lexalign.core.errors import LexalignError
from lexalign.core.resources import SCHEMA
from lexalign.core.snake import run_command


def preflight(config: dict, checkout: str | None = None) -> None:
    """What a run would refuse once its jobs start, checked on a validated config before any job: every run
    language's prompt templates (built-in or under templates.prompts) and, unless ``check_paths`` is off,
    the WVS source file. The stage modules own these checks; the CLI and the DAG call them up front."""
    from lexalign.config.derive import derive
    from lexalign.norms.templates import prompt_templates

    for lang in config["run"]["languages"]:
        prompt_templates(config["languages"][lang]["prompt_language"], config["templates"]["prompts"])
    source = derive(config, checkout).wvs_source_path
    if config["check_paths"] and not Path(source).is_file():
        what = "is a folder, not a file" if Path(source).is_dir() else "does not exist"
        raise LexalignError(f"config wvs.source.path: {source} {what}")


def _validate_config(argv: list[str]) -> int:
    from lexalign.config.validation import YTE_KEY, load_config, read_config_file

    parser = argparse.ArgumentParser(prog="lexalign validate-config", description="Validate a workflow config file.")
    parser.add_argument("config", nargs="?", default="config/config.yaml")
    parser.add_argument("--schema", default=str(SCHEMA))
    parser.add_argument(
        "--no-check-paths",
        action="store_true",
        help="do not check that model directories and data files exist (a config with placeholder paths)",
    )
    args = parser.parse_args(argv)
    config = load_config(args.config, args.schema, check_paths=False if args.no_check_paths else None)
    preflight(config, checkout=_checkout_of(args.config))
    if read_config_file(args.config).get(YTE_KEY):
        print(
            f"{args.config}: {YTE_KEY} is set: Snakemake runs the Python expressions in this file as code "
            "(YTE templating); validate-config checked it as plain YAML. Run only configs you trust.",
            file=sys.stderr,
        )
    print(f"{args.config}: valid")
    return 0


def _checkout_of(config_path: str) -> str | None:
    """The workflow checkout a config file belongs to (``<checkout>/config/x.yaml``), where the illustrative
    data lies; None when it is not in one (paths are then relative to the working directory)."""
    folder = Path(config_path).resolve().parent.parent
    return str(folder) if (folder / "Snakefile").is_file() else None


def _ingest(argv: list[str]) -> int:
    import json

    import yaml

    from lexalign.core.io import atomic_folder, check_output, check_replaceable
    from lexalign.norms.ingest import OUTPUTS, IngestJob, IngestSettings, NormsSettings, run
    from lexalign.norms.split import SPLIT_DEFINITIONS, SplitSettings

    parser = argparse.ArgumentParser(
        prog="lexalign ingest", description="Clean, filter, pool and split one SWOW norms file."
    )
    parser.add_argument("norms", help="SWOW raw participant CSV or pooled strength file")
    parser.add_argument(
        "--out-dir",
        required=True,
        help="writes associations.parquet and stats.json here, both or neither (other files in it are kept)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace associations.parquet and stats.json in --out-dir even if lexalign did not write them",
    )
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="COLUMN=VALUE",
        help="keep rows whose COLUMN equals VALUE (repeatable)",
    )
    parser.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="CANONICAL=NAME",
        help="read CANONICAL (cue, R1, R2, R3, response, count) from column NAME (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--split-definition", choices=sorted(SPLIT_DEFINITIONS), help="default: the schema's split.definition"
    )
    parser.add_argument("--schema", default=str(SCHEMA), help="schema whose split defaults apply (%(default)s)")
    args = parser.parse_args(argv)
    pairs: dict[str, dict[str, list[str]]] = {"--filter": {}, "--column": {}}
    for option, items in (("--filter", args.filter), ("--column", args.column)):
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or not key:
                shape = "COLUMN=VALUE" if option == "--filter" else "CANONICAL=NAME"
                raise LexalignError(f"{option} {item!r}: expected {shape}")
            pairs[option].setdefault(key, []).append(value)
    columns = {key: values[-1] for key, values in pairs["--column"].items()}
    try:
        schema = yaml.safe_load(Path(args.schema).read_text(encoding="utf-8"))
        schema_split = schema["properties"]["split"]["properties"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        raise LexalignError(
            f"--schema {args.schema}: cannot read the split defaults from it (the default is the package schema)"
        ) from None
    split = {name: spec["default"] for name, spec in schema_split.items() if "default" in spec}
    if args.split_definition:
        split["definition"] = args.split_definition
    if not 0 <= args.seed < 2**32:
        raise LexalignError(f"--seed: {args.seed} is outside 0..2**32-1 (the config's seed range)")
    if not args.out_dir.strip():
        raise LexalignError("--out-dir: is empty; give a folder path")
    out = Path(args.out_dir)
    if out.exists() and not out.is_dir():
        raise LexalignError(f"--out-dir {args.out_dir}: is an existing file; give a folder path")
    for name in OUTPUTS:
        check_output(out / name, [args.norms], what="--out-dir")
        check_replaceable(out / name, args.force, what="--out-dir")  # before the work; atomic_folder checks again
    settings = IngestSettings(
        NormsSettings(format="auto", columns=columns, filter=pairs["--filter"]), SplitSettings.from_config(split)
    )
    with atomic_folder(out, force=args.force, what="--out-dir") as new:
        associations, stats_file = (str(new / name) for name in OUTPUTS)
        stats = run(IngestJob(args.norms, associations, stats_file, settings, args.seed))
    print(json.dumps(stats, indent=2, ensure_ascii=False))
    return 0


def _score_associations(argv: list[str]) -> int:
    from lexalign.lexical.score import main as score_associations

    return score_associations(argv)


def _config_docs(argv: list[str]) -> int:
    from lexalign.config.docs import main as config_docs_main

    return config_docs_main(argv)


def _contracts_doc(argv: list[str]) -> int:
    from lexalign.contracts.document import main as contracts_doc_main

    return contracts_doc_main(argv)


def _check(argv: list[str]) -> int:
    from lexalign.checks.command import main as check_main

    return check_main(argv)


COMMANDS = {
    "validate-config": (_validate_config, "validate a workflow config against the schema"),
    "config-docs": (_config_docs, "write (or --check) config/README.md, the key reference generated from the schema"),
    "contracts-doc": (_contracts_doc, "write (or --check) docs/CONTRIBUTING_CONTRACTS.md from the stages' schemas"),
    "ingest": (_ingest, "clean, filter, pool and split one SWOW norms file"),
    "score-associations": (_score_associations, "score anyone's association lists against norms (P@k, Spearman)"),
    "check": (_check, "run an acceptance check: gpu (the GPU path) or default-run (a finished default run's goals)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        width = max(map(len, COMMANDS))
        listing = "\n".join(f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items())
        print(f"usage: lexalign COMMAND [ARGS]\n\ncommands:\n{listing}")
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    command, _ = COMMANDS[argv[0]]
    return run_command(command, argv[1:])


if __name__ == "__main__":
    sys.exit(main())
