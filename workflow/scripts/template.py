from lexalign.core.snake import run_script
from lexalign.norms.templates import TemplateJob, run

run_script(snakemake, TemplateJob.from_rule, run)
