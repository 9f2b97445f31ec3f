from lexalign.core.snake import run_step
from lexalign.train.run import run_rule

run_step(snakemake, lambda: run_rule(snakemake))
