from lexalign.core.settings import field_names
from lexalign.wvs.settings import FRAMINGS, WvsSettings


rule wvs_humans:
    input:
        source=data_input(DERIVED.wvs_source_path),
        catalog=config["wvs"]["catalog"] or [],
    output:
        humans="results/wvs/humans.parquet",
        notes="results/wvs/humans.json",
    log:
        log_path("wvs_humans"),
    benchmark:
        benchmark_path("wvs_humans")
    resources:
        mem_mb=8000,
    params:
        source=wvs_source(),
        catalog=config["wvs"]["catalog"],
        bad_rows=wvs_bad_rows(),
        countries=config["wvs"]["countries"],
        files=wvs_humans_files(),
    script:
        "../scripts/wvs_humans.py"


rule wvs:
    input:
        model="results/models/{model}",
        adapter=adapter_input,
        humans="results/wvs/humans.parquet",
        associations=wvs_associations_input,
    # one job per framing asks every configured mode on one loaded model (output folders {framing}-{mode})
    output:
        metrics=wvs_mode_outputs("metrics.json"),
        answers=wvs_mode_outputs("answers.parquet"),
    log:
        log_path("wvs", "model", "lang", "method", "framing"),
    benchmark:
        benchmark_path("wvs", "model", "lang", "method", "framing")
    wildcard_constraints:
        method=methods.wildcard_pattern(methods.evaluated_by(methods.WVS)),
        framing="|".join(FRAMINGS),
    threads: resource(wvs_resources, "cpus")
    resources:
        gpu=resource(wvs_resources, "gpus"),
        cpus_per_task=resource(wvs_resources, "cpus"),
        mem_mb=resource(wvs_resources, "mem_mb"),
        runtime=resource(wvs_resources, "runtime"),
    params:
        modes=config["wvs"]["modes"],
        prompt_language=lambda wc: language_spec(wc)["prompt_language"],
        country=lambda wc: language_spec(wc).get("wvs_country"),
        dtype=lambda wc: model_spec(wc).get("dtype", "auto"),
        attn_implementation=lambda wc: model_spec(wc).get("attn_implementation"),
        # only what a wvs job reads: a change to wvs.source or wvs.bad_rows reruns wvs_humans, not every job
        settings=wvs_settings(field_names(WvsSettings)),
        prompts=prompt_overrides,
    script:
        "../scripts/wvs.py"
