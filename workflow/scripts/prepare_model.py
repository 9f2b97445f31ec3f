from lexalign.prepare_model import prepare_model
from lexalign.snake import run_step

run_step(snakemake, lambda: prepare_model(snakemake.wildcards.model, snakemake.params.spec, snakemake.output[0]))
