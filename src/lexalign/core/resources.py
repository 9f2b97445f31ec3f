"""The package's data files (``lexalign/resources/``), found wherever the package is installed.

Every reader of a shipped file (the config schema, presets, prompts, catalogs) goes through
``resource``, so the ``lexalign`` command works from any folder.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def resource(name: str) -> Path:
    """The path of the shipped data file ``name`` (``lexalign/resources/<name>``)."""
    return Path(str(files("lexalign").joinpath("resources", name)))


SCHEMA = resource("schema.yaml")
