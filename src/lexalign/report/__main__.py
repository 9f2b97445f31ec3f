"""``python -m lexalign.report``: build the report from whatever results exist (e.g. after some jobs
failed), without Snakemake; results of the run grid that are missing are left out with a note."""

from __future__ import annotations

import argparse
from pathlib import Path


def _build(argv: list[str] | None) -> int:
    from lexalign.config.derive import derive
    from lexalign.config.grid import RunGrid, population_files, result_files
    from lexalign.config.validation import load_config
    from lexalign.core.resources import SCHEMA
    from lexalign.core.snake import setup_logging
    from lexalign.report.build import ReportJob, ReportSettings, run

    parser = argparse.ArgumentParser(prog="python -m lexalign.report", description=__doc__)
    parser.add_argument(
        "--config",
        default="config/config.yaml",
        help="workflow config (its run grid and report settings)",
    )
    parser.add_argument("--schema", default=str(SCHEMA))
    parser.add_argument("--results", default="results", help="results directory of the run")
    parser.add_argument(
        "--out",
        default=None,
        help="report directory (default: <results>/report); other files in it are kept",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace index.md and the files in tables/ and figures/ of --out even if lexalign did not write them",
    )
    args = parser.parse_args(argv)
    setup_logging()
    config = load_config(args.config, args.schema)
    out = _report_folder(args.results, args.out)
    grid = RunGrid.from_config(config["run"])
    wvs, population = config["wvs"], config["population"]
    files = result_files(
        grid.models, grid.languages, grid.methods, args.results, framings=wvs["framings"], modes=wvs["modes"]
    )
    simulated = derive(config).population_methods  # the methods the workflow's population jobs simulate
    files["population"] = population_files(
        grid.models, grid.languages, simulated, population["temperatures"], args.results
    )["population"]
    job = ReportJob(
        index_out=out / "index.md",
        grid=grid,
        settings=ReportSettings.from_config(config["report"]),
        seed=config["seed"],
        config=config,
        force=args.force,
        **{stage: tuple(paths) for stage, paths in files.items()},
    )
    print(run(job))
    return 0


def _report_folder(results: str, out: str | None) -> Path:
    """The report folder for ``--results`` and ``--out``, refused with one line where it cannot be written: the
    results must be a folder, and the report folder neither the results root, nor a folder holding it, nor
    a stage's folder inside it (only ``<results>/report``)."""
    from lexalign.core.errors import LexalignError

    root = Path(results)
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "no such folder"
        raise LexalignError(f"--results {results}: {what}; give the results directory of a run")
    if out is None:
        return root / "report"
    if not out.strip():
        raise LexalignError("--out: is empty; give a folder path")
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise LexalignError(f"--out {out}: is an existing file; give a folder path")
    real, real_root = folder.resolve(), root.resolve()
    if real_root.is_relative_to(real) or (real.is_relative_to(real_root) and real != real_root / "report"):
        raise LexalignError(
            f"--out {out}: is the results root {results}, holds it or lies inside it; "
            f"give a folder outside it (or {root / 'report'})"
        )
    return folder


def main(argv: list[str] | None = None) -> int:
    from lexalign.core.snake import run_command

    return run_command(_build, argv)


if __name__ == "__main__":
    raise SystemExit(main())
