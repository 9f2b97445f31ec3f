# A local model is checked and referenced, a packaged one dequantised, once per model. The weight
# files are inputs and their sizes and mtimes a param: editing or replacing the weights reruns this
# rule and everything after it.


rule prepare_model:
    input:
        weights=model_weight_inputs,
    output:
        prepared=directory("results/models/{model}"),
    log:
        log_path("prepare_model", "model"),
    benchmark:
        benchmark_path("prepare_model", "model")
    threads: resource(model_resources, "cpus")
    resources:
        gpu=resource(model_resources, "gpus"),
        cpus_per_task=resource(model_resources, "cpus"),
        mem_mb=resource(model_resources, "mem_mb"),
        runtime=resource(model_resources, "runtime"),
    params:
        spec=model_prepare_spec,
        signature=model_signature,
    script:
        "../scripts/prepare_model.py"
