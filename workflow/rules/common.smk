# Config validation and every input function; the rule files hold rules only.
import sys
from pathlib import Path

from lexalign import methods
from lexalign.config import validate_config
from lexalign.errors import LexalignError
from lexalign.presets import method_settings
from lexalign.wvs_data import source_path as wvs_source_path

try:
    validate_config(
        config, Path(workflow.basedir, "config", "schema.yaml"), source="config"
    )
except LexalignError as error:
    sys.exit(f"lexalign error: {error}")

RUN = config["run"]
# The shipped illustrative WVS file lives in the repository, wherever the working directory is.
if config["wvs"]["source"]["path"] is None:
    config["wvs"]["source"]["path"] = str(
        Path(workflow.basedir, wvs_source_path(config["wvs"]["source"]))
    )


def _per_wildcards(folder, rule_name, wildcard_names, suffix):
    stem = (
        Path(*(f"{{{name}}}" for name in wildcard_names))
        if wildcard_names
        else Path("all")
    )
    return str(Path("results", folder, rule_name, stem).with_suffix(suffix))


def log_path(rule_name, *wildcard_names):
    """results/logs/<rule>/<wildcards...>.log: one log per rule and wildcard combination."""
    return _per_wildcards("logs", rule_name, wildcard_names, ".log")


def benchmark_path(rule_name, *wildcard_names):
    """results/benchmarks/<rule>/<wildcards...>.tsv: Snakemake's run time and memory per job."""
    return _per_wildcards("benchmarks", rule_name, wildcard_names, ".tsv")


def model_spec(wildcards):
    return config["models"][wildcards.model]


def language_spec(wildcards):
    return config["languages"][wildcards.lang]


def adapter_input(wildcards):
    """The LoRA adapter a (model, lang, method) is evaluated with; none for untrained methods."""
    if methods.get(wildcards.method).trained:
        return f"results/train/{wildcards.model}/{wildcards.lang}/{wildcards.method}/adapter"
    return []


def train_inputs(wildcards):
    """Inputs of training: the prepared model, the method's template table and the adapter it starts from."""
    method = methods.get(wildcards.method)
    inputs = {
        "model": f"results/models/{wildcards.model}",
        "data": f"results/templates/{wildcards.lang}/{method.data_table}.parquet",
    }
    if method.init_from:
        inputs["init_adapter"] = (
            f"results/train/{wildcards.model}/{wildcards.lang}/{method.init_from}/adapter"
        )
    return inputs


def train_settings(wildcards):
    """LoRA, hyper-parameters and resources of the configured preset for one trained method."""
    return method_settings(config["train"], wildcards.method)


def train_resource(name):
    """A rule resource (gpus, cpus_per_task, mem_mb, runtime) from the preset."""

    def resource(wildcards):
        return train_settings(wildcards)["resources"][name]

    return resource


def wvs_associations_input(wildcards):
    """The language's ingested norms, only for association-augmented WVS prompting."""
    if methods.get(wildcards.method).context == "associations":
        return f"results/ingest/{wildcards.lang}/associations.parquet"
    return []


def grid(pattern, methods=None):
    """Expand a results pattern over the run grid (models x languages x methods)."""
    return expand(
        pattern,
        model=RUN["models"],
        lang=RUN["languages"],
        method=RUN["methods"] if methods is None else methods,
    )


def train_results():
    return grid(
        "results/train/{model}/{lang}/{method}/metrics.json",
        methods.trained(RUN["methods"]),
    )


def lexical_results():
    return grid(
        "results/lexical/{model}/{lang}/{method}/scores.json",
        methods.evaluated_by(methods.LEXICAL, RUN["methods"]),
    )


def wvs_results():
    return grid(
        "results/wvs/{model}/{lang}/{method}/metrics.json",
        methods.evaluated_by(methods.WVS, RUN["methods"]),
    )


def all_targets():
    """Everything the default target builds, from the run grid."""
    targets = [f"results/models/{model}" for model in RUN["models"]]
    for lang in RUN["languages"]:
        targets.append(f"results/ingest/{lang}/stats.json")
        targets.append(f"results/templates/{lang}/stats.json")
    return [
        *targets,
        *train_results(),
        *lexical_results(),
        *wvs_results(),
        "results/report/index.md",
    ]
