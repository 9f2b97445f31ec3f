from lexalign.core.snake import run_script
from lexalign.population.simulate import PopulationIngestJob, ingest_summary_files

run_script(snakemake, PopulationIngestJob.from_rule, ingest_summary_files)
