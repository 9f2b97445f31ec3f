from lexalign.core.snake import run_script
from lexalign.wvs.humans import HumansJob, run

run_script(snakemake, HumansJob.from_rule, run)
