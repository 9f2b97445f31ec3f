# lexalign: culturally align language models on native speakers' word-association norms.
# Stages: prepare_model -> ingest -> template -> train -> lexical (tier 1) / wvs (tier 2) -> report.
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

# The working directory's config/config.yaml; in a folder without one, the embedded default of the
# checkout (its data paths are then the checkout's: see common.smk).
WORKDIR_CONFIG = Path("config", "config.yaml")
EMBEDDED_CONFIG = Path(workflow.basedir, "config", "config.yaml")


configfile: WORKDIR_CONFIG if WORKDIR_CONFIG.exists() else EMBEDDED_CONFIG


report: "workflow/report/workflow.rst"


wildcard_constraints:
    model=r"[A-Za-z0-9][A-Za-z0-9._-]*",
    lang=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    method=r"[a-z_]+",


include: "workflow/rules/common.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/template.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/lexical.smk"
include: "workflow/rules/wvs.smk"
include: "workflow/rules/population.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
