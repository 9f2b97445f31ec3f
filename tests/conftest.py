"""Shared fixtures: repository paths, the illustrative norms, and a tiny prepared model built offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

REPO = Path(__file__).resolve().parents[1]
ILLUSTRATIVE = REPO / "data" / "illustrative"

TEST_CONFIG = REPO / ".test" / "config" / "config.yaml"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def swow_en() -> Path:
    return ILLUSTRATIVE / "SWOW-EN.R100.illustrative.csv"


@pytest.fixture(scope="session")
def swow_zh() -> Path:
    return ILLUSTRATIVE / "SWOWZH.R55.illustrative.csv"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Llama with a real BPE tokenizer, as a user's local model directory."""
    from lexalign.testing.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model") / "tiny")


@pytest.fixture(scope="session")
def tiny_prepared(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model after prepare_model: what every later stage loads."""
    from lexalign.models.prepare import prepare_model

    return prepare_model("tiny", {"path": str(tiny_model_dir)}, tmp_path_factory.mktemp("prepared") / "tiny")


def tiny_config_dict(model_dir: Path) -> dict:
    """.test/config/config.yaml with its paths made absolute and models.tiny pointing at ``model_dir``."""
    config = yaml.safe_load(TEST_CONFIG.read_text(encoding="utf-8"))
    base = TEST_CONFIG.parents[1]
    for spec in config["languages"].values():
        spec["norms"]["path"] = str((base / spec["norms"]["path"]).resolve())
    config["wvs"]["source"]["path"] = str((base / config["wvs"]["source"]["path"]).resolve())
    config["models"]["tiny"]["path"] = str(model_dir)
    return config


@pytest.fixture
def tiny_config(tmp_path, tiny_model_dir) -> Path:
    """The tests' tiny configuration (.test/config/config.yaml) as a file usable from any directory."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(tiny_config_dict(tiny_model_dir), allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def humans(tmp_path_factory) -> Path:
    """The WVS tests' humans.parquet: the illustrative WVS-7 file's United States and China, built once."""
    from lexalign.wvs.humans import build_humans

    out = tmp_path_factory.mktemp("wvs-humans")
    build_humans(
        {"type": "wvs_csv", "path": str(ILLUSTRATIVE / "wvs" / "WVS_Cross-National_Wave_7_illustrative.csv")},
        out / "humans.parquet",
        out / "humans.json",
        catalog=None,
        bad_rows="skip",
        countries=["United States", "China"],
    )
    return out / "humans.parquet"
