from lexalign.snake import run_step
from lexalign.train import run_rule

run_step(snakemake, lambda: run_rule(snakemake))
