from lexalign.core.snake import run_step
from lexalign.population.simulate import simulate

run_step(
    snakemake,
    lambda: simulate(
        snakemake.input.model,
        associations_path=snakemake.input.associations,
        norms_path=snakemake.input.norms,
        norms=snakemake.params.norms,
        outputs={
            "participants": list(snakemake.output.participants),
            "generations": snakemake.output.generations,
            "summary": snakemake.output.summary,
        },
        method=snakemake.wildcards.method,
        prompt_language=snakemake.params.prompt_language,
        settings=snakemake.params.settings,
        prompt_overrides=snakemake.params.prompts,
        adapter_dir=snakemake.input.adapter or None,
        seed=snakemake.params.seed,
        dtype=snakemake.params.dtype,
        threads=snakemake.threads,
        labels={"model": snakemake.wildcards.model, "lang": snakemake.wildcards.lang},
    ),
)
