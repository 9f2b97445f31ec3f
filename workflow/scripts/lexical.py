from lexalign.core.snake import run_script
from lexalign.lexical.evaluate import LexicalJob, run

run_script(snakemake, LexicalJob.from_rule, run)
