from lexalign.core.snake import run_script
from lexalign.report.build import ReportJob, run

run_script(snakemake, ReportJob.from_rule, run)
