# lexalign: culturally align language models on native speakers' word-association norms.
# Stages: prepare_model -> ingest -> template -> train -> lexical (tier 1) / wvs (tier 2) -> report.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


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
