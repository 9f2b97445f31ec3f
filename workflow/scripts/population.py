from lexalign.core.snake import run_script
from lexalign.population.simulate import SimulateJob, simulate

run_script(snakemake, SimulateJob.from_rule, simulate)
