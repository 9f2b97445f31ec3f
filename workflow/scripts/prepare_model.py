from lexalign.core.snake import run_script
from lexalign.models.prepare import PrepareJob, run

run_script(snakemake, PrepareJob.from_rule, run)
