"""validate-config refuses what the run would refuse (issue 27): a key given twice, an unknown prompt
language, a missing WVS source; and says plainly that a YTE config is code."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lexalign.cli import main
from lexalign.config.validation import load_config, read_config_file
from lexalign.core.errors import LexalignError
from lexalign.norms.templates import TEMPLATE_KEYS


@pytest.fixture
def default_config(repo) -> dict:
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text(encoding="utf-8"))
    for spec in config["languages"].values():
        spec["norms"]["path"] = str(repo / spec["norms"]["path"])
    return config


def write(path, config: dict):
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return str(path)


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("seed: 1\nlexical:\n  batch_size: 4\n  batch_size: 8\n", encoding="utf-8")
    with pytest.raises(
        LexalignError, match=r"config.yaml: line 4: key 'batch_size' is given twice \(first on line 3\)"
    ):
        read_config_file(path)


def test_validate_config_refuses_an_unknown_prompt_language(tmp_path, default_config, capsys):
    default_config["languages"]["en"]["prompt_language"] = "xx"
    assert main(["validate-config", write(tmp_path / "c.yaml", default_config)]) == 1
    assert capsys.readouterr().err.strip() == (
        "lexalign error: config templates.prompts.xx: no built-in templates for this language; "
        "define " + ", ".join(TEMPLATE_KEYS)
    )


def test_validate_config_refuses_a_missing_wvs_source(tmp_path, default_config, capsys):
    default_config["wvs"] = {"source": {"type": "wvs_csv", "path": str(tmp_path / "absent.csv")}}
    assert main(["validate-config", write(tmp_path / "c.yaml", default_config)]) == 1
    assert (
        capsys.readouterr().err.strip()
        == f"lexalign error: config wvs.source.path: {tmp_path / 'absent.csv'} does not exist"
    )
    assert main(["validate-config", write(tmp_path / "c.yaml", default_config), "--no-check-paths"]) == 0


def test_validate_config_says_a_yte_config_runs_code(tmp_path, default_config, capsys):
    default_config["__use_yte__"] = True
    assert main(["validate-config", write(tmp_path / "c.yaml", default_config)]) == 0
    captured = capsys.readouterr()
    assert "__use_yte__ is set: Snakemake runs the Python expressions in this file as code" in captured.err
    assert captured.out.strip().endswith(": valid")


def test_load_config_reads_the_package_schema_by_default(tmp_path, default_config):
    assert load_config(write(tmp_path / "c.yaml", default_config))["seed"] == default_config.get("seed", 42)


def test_a_norms_path_that_is_a_folder_says_so(tmp_path, monkeypatch):
    checkout = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(checkout)  # the config's other paths are the checkout's
    config = yaml.safe_load((checkout / "config" / "config.yaml").read_text(encoding="utf-8"))
    lang = next(iter(config["languages"]))
    config["languages"][lang]["norms"]["path"] = str(tmp_path)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(LexalignError, match=rf"languages\.{lang}\.norms\.path: {tmp_path} is a folder, not a file"):
        load_config(path)
