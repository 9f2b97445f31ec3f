from lexalign.core.snake import run_step
from lexalign.lexical.evaluate import evaluate

run_step(
    snakemake,
    lambda: evaluate(
        snakemake.input.model,
        eval_path=snakemake.input.eval,
        associations_path=snakemake.input.associations,
        outputs=dict(snakemake.output.items()),
        method=snakemake.wildcards.method,
        prompt_language=snakemake.params.prompt_language,
        settings=snakemake.params.settings,
        adapter_dir=snakemake.input.adapter or None,
        seed=snakemake.params.seed,
        dtype=snakemake.params.dtype,
        threads=snakemake.threads,
        labels={"model": snakemake.wildcards.model, "lang": snakemake.wildcards.lang},
    ),
)
