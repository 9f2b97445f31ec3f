from lexalign.core.snake import run_script
from lexalign.wvs.evaluate import WvsFramingJob, run

run_script(snakemake, WvsFramingJob.from_rule, run)
