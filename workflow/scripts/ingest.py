from lexalign.core.snake import run_script
from lexalign.norms.ingest import IngestJob, run

run_script(snakemake, IngestJob.from_rule, run)
