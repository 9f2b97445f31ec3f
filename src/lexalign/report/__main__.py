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
    parser.add_argument("--out", default=None, help="report directory (default: <results>/report)")
    args = parser.parse_args(argv)
    setup_logging()
    config = load_config(args.config, args.schema)
    grid = RunGrid.from_config(config["run"])
    wvs, population = config["wvs"], config["population"]
    files = result_files(
        grid.models, grid.languages, grid.methods, args.results, framings=wvs["framings"], modes=wvs["modes"]
    )
    simulated = derive(config).population_methods  # the methods the workflow's population jobs simulate
    files["population"] = population_files(
        grid.models, grid.languages, simulated, population["temperatures"], args.results
    )["population"]
    out = Path(args.out) if args.out else Path(args.results) / "report"
    job = ReportJob(
        index_out=out / "index.md",
        grid=grid,
        settings=ReportSettings.from_config(config["report"]),
        seed=config["seed"],
        config=config,
        **{stage: tuple(paths) for stage, paths in files.items()},
    )
    print(run(job))
    return 0


def main(argv: list[str] | None = None) -> int:
    from lexalign.core.snake import run_command

    return run_command(_build, argv)


if __name__ == "__main__":
    raise SystemExit(main())
