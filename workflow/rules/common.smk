# Config validation and every input function; the rule files hold rules only.
import sys
from pathlib import Path

from lexalign.config import methods
from lexalign.cli import preflight
from lexalign.config.validation import read_config_file, validate_config
from lexalign.core.errors import LexalignError
from lexalign.config.derive import derive
from lexalign.config.grid import population_files, temperature_label
from lexalign.models.prepare import ModelSettings, source_signature, weight_files
from lexalign.config.presets import TrainSection, method_settings, preset_resources
from lexalign.lexical.profile import norm_files
from lexalign.core.resources import SCHEMA
from lexalign.core.settings import field_names
from lexalign.population.settings import CompareSettings, PopulationSettings
from lexalign.core.snake import error_line
from lexalign.core.io import file_signature
from lexalign.wvs.humans import input_files, unchanged_policy

# Validated once; what the config implies (the WVS source path, assoc_model_method, the population's
# methods) comes from lexalign.config.derive, as for the CLI and the report: nothing is written into config.
# The embedded default read from the checkout (no config/ here and none on the command line): its
# relative data paths are the checkout's.
CONFIG_BASE = (
    None
    if WORKDIR_CONFIG.exists() or workflow.overwrite_configfiles
    else workflow.basedir
)
try:
    for (
        config_file
    ) in workflow.configfiles:  # Snakemake's reader lets a key given twice win silently
        read_config_file(config_file)
    validate_config(config, SCHEMA, source="config", base=CONFIG_BASE)
    preflight(config, checkout=workflow.basedir)
    DERIVED = derive(config, checkout=workflow.basedir)
except LexalignError as error:
    sys.exit(error_line(error))

RUN = config["run"]
POPULATION_METHODS = list(DERIVED.population_methods)


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


def canonical(value):
    """``value`` with every mapping's keys sorted: Snakemake compares params by their repr, so the same
    values written in another key order must give the same params (and rerun nothing).
    """
    if isinstance(value, dict):
        return {str(key): canonical(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    return value


def data_input(path):
    """A user's data file as an input. A file that does not exist yet is left out when the config says
    ``check_paths: false``, so that a dry run of a config with placeholder paths shows the plan.
    """
    if config["check_paths"] or Path(path).exists():
        return path
    return []


def norms_input(wildcards):
    return data_input(language_spec(wildcards)["norms"]["path"])


def norms_signature(wildcards):
    return file_signature(language_spec(wildcards)["norms"]["path"])


def model_settings(wildcards):
    """What prepare_model reads of models.<name>, typed."""
    return ModelSettings.from_config(model_spec(wildcards), f"models.{wildcards.model}")


def model_weight_inputs(wildcards):
    """A local model's weight files (editing them reruns prepare_model and everything after it)."""
    return weight_files(model_settings(wildcards))


def model_prepare_spec(wildcards):
    """What prepare_model reads of models.<name> (not dtype or resources, which later rules read);
    the keys the config leaves out stay out, so the params of existing runs do not change.
    """
    spec = model_spec(wildcards)
    return canonical(
        {key: spec[key] for key in field_names(ModelSettings) if key in spec}
    )


def model_signature(wildcards):
    """Sizes and mtimes of the local model's weight, config and tokenizer files, or the package version."""
    settings = model_settings(wildcards)
    signature = dict(source_signature(settings))
    if settings.chat_template:
        signature["chat_template"] = file_signature(settings.chat_template)
    return canonical(signature)


def resource(section, name):
    """One scheduler resource (gpus, cpus, mem_mb, runtime) of a job, from the config mapping that
    ``section(wildcards)`` returns (models.<name>.resources, lexical.resources, a preset's resources, ...).
    """

    def value(wildcards):
        return section(wildcards)[name]

    return value


def model_resources(wildcards):
    return model_spec(wildcards)["resources"]


def train_resources(wildcards):
    return preset_resources(TrainSection.from_config(config["train"]))


def lexical_resources(wildcards):
    return config["lexical"]["resources"]


def wvs_resources(wildcards):
    return config["wvs"]["resources"]


def wvs_mode_outputs(name):
    """The file ``name`` in every configured mode's folder: one wvs job asks all of a framing's modes."""
    return expand(
        "results/wvs/{{model}}/{{lang}}/{{method}}/{{framing}}-{mode}/{name}",
        mode=config["wvs"]["modes"],
        name=name,
    )


def prompt_overrides(wildcards):
    """templates.prompts, only the entry of this language's prompt language (what its jobs read)."""
    language = language_spec(wildcards)["prompt_language"]
    prompts = config["templates"]["prompts"]
    return canonical({language: prompts[language]} if language in prompts else {})


def template_settings(wildcards):
    """The templates section as one language's template job reads it."""
    settings = {
        key: value for key, value in config["templates"].items() if key != "prompts"
    }
    return canonical({**settings, "prompts": prompt_overrides(wildcards)})


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
    """LoRA and hyper-parameters of the configured preset for one trained method. Not its resources:
    a new scheduler time limit must not retrain (rule train gets them as resources)."""
    settings = method_settings(
        TrainSection.from_config(config["train"]), wildcards.method
    )
    return canonical(settings.to_config())


def wvs_source():
    """wvs.source as wvs_humans reads it: the path resolved (the illustrative file when none is given)."""
    return canonical({**config["wvs"]["source"], "path": DERIVED.wvs_source_path})


def wvs_humans_files():
    """The WVS source's and the catalog's sizes and mtimes: a replaced file reruns wvs_humans even when
    the replacement is older than humans.parquet."""
    return canonical(input_files(DERIVED.wvs_source_path, config["wvs"]["catalog"]))


def wvs_bad_rows():
    """wvs.bad_rows as wvs_humans's param, or the policy the last run ran with where no policy can change
    its table (it skipped no row of these very files): a new policy then reruns neither wvs_humans nor
    the GPU jobs after it."""
    wvs = config["wvs"]
    recorded = unchanged_policy(
        "results/wvs/humans.json",
        DERIVED.wvs_source_path,
        wvs["catalog"],
        wvs["countries"],
    )
    return recorded or wvs["bad_rows"]


def wvs_settings(keys):
    """The wvs keys a wvs job reads, assoc_model_method resolved."""
    settings = {key: config["wvs"][key] for key in keys}
    settings["assoc_model_method"] = DERIVED.assoc_model_method
    return canonical(settings)


def wvs_associations_input(wildcards):
    """Association-augmented WVS prompting only: the language's ingested norms, or with assoc_source model
    the same model's tier-1 generations of wvs.assoc_model_method."""
    if methods.get(wildcards.method).context != "associations":
        return []
    if config["wvs"]["assoc_source"] == "model":
        method = DERIVED.assoc_model_method
        return f"results/lexical/{wildcards.model}/{wildcards.lang}/{method}/generations.parquet"
    return f"results/ingest/{wildcards.lang}/associations.parquet"


def grid():
    """Every job's marker file of the run grid, by stage: computed once, in lexalign.config.grid (the report uses it too)."""
    from lexalign.config.grid import result_files

    return result_files(
        RUN["models"],
        RUN["languages"],
        RUN["methods"],
        framings=config["wvs"]["framings"],
        modes=config["wvs"]["modes"],
    )


def train_results():
    return grid()["train"]


def lexical_results():
    return grid()["lexical"]


def wvs_results():
    return grid()["wvs"]


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
        *population_results(),
        "results/report/index.md",
    ]


def lexical_settings(wildcards):
    """What one lexical job reads: the lexical section without scheduler resources, the
    psycholinguistic norms of its own prompt language only, and norms_prompt's demonstration
    settings in norms_prompt jobs only (canonical, so key order never reruns).
    """
    language = language_spec(wildcards)["prompt_language"]
    section = config["lexical"]
    settings = {
        key: value
        for key, value in section.items()
        if key not in ("resources", "psycholinguistic", "norms")
    }
    norms = section["psycholinguistic"]
    settings["psycholinguistic"] = (
        {language: norms[language]} if language in norms else {}
    )
    in_context = methods.get(wildcards.method).context == "norms"
    settings["norms"] = section["norms"] if in_context else None
    return canonical(settings)


# The model as a population of participants (population.smk).


def population_job_files(name, for_report=False):
    """One file per temperature of a population job ({model}/{lang}/{method} stay wildcards); with
    ``for_report`` each is listed in the HTML report for download."""
    files = []
    for temperature in config["population"]["temperatures"]:
        label = temperature_label(temperature)
        path = f"results/population/{{model}}/{{lang}}/{{method}}/{label}/{name}"
        if for_report:
            path = report(
                path,
                caption="../report/population_norms.rst",
                category="Model as participants",
                subcategory="Model norms (SWOW participant files)",
                labels={
                    "model": "{model}",
                    "language": "{lang}",
                    "method": "{method}",
                    "temperature": label,
                },
            )
        files.append(path)
    return files


def population_results():
    """Every population job's comparison file (the report reads them)."""
    return population_files(
        RUN["models"],
        RUN["languages"],
        POPULATION_METHODS,
        config["population"]["temperatures"],
    )["population"]


def population_resources(wildcards):
    return config["population"]["resources"]


def population_settings(wildcards):
    """What one population job reads of the population section (not the comparison's settings)."""
    return canonical(
        {key: config["population"][key] for key in field_names(PopulationSettings)}
    )


def population_compare_settings(wildcards):
    return canonical(
        {key: config["population"][key] for key in field_names(CompareSettings)}
    )
