rule prepare_model:
    output:
        directory("results/models/{model}"),
    log:
        log_path("prepare_model", "model"),
    benchmark:
        benchmark_path("prepare_model", "model")
    conda:
        "../../envs/lexalign.yaml"
    threads: 2
    resources:
        mem_mb=8000,
    params:
        spec=model_spec,
    script:
        "../scripts/prepare_model.py"
