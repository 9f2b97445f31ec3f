from lexalign.core.snake import run_script
from lexalign.population.compare import CompareJob, compare

run_script(snakemake, CompareJob.from_rule, compare)
