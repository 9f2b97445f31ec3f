from lexalign.core.snake import run_script
from lexalign.train.run import TrainJob, run

run_script(snakemake, TrainJob.from_rule, run)
