from lexalign.core.snake import run_step
from lexalign.models.prepare import prepare_model

run_step(snakemake, lambda: prepare_model(snakemake.wildcards.model, snakemake.params.spec, snakemake.output[0]))
