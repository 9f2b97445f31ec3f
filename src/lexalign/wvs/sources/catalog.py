"""The WVS-7 item catalog (``resources/wvs_items.yaml``): item id, question and option labels in English
and Chinese, answer codes, ordinal or not. Read and validated by :func:`load_catalog`."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from lexalign.core.errors import LexalignError
from lexalign.core.resources import resource

CATALOG = resource("wvs_items.yaml")

# --------------------------------------------------------------------------------------------------
# Catalog


def _expand_scale(scale: Any, scales: Mapping[str, Any], where: str) -> dict:
    """A scale (name or inline mapping) as {codes, en, zh, ordinal}."""
    if isinstance(scale, str):
        if scale not in scales:
            raise LexalignError(f"{where}: unknown scale {scale!r} (defined: {', '.join(sorted(scales))})")
        return _expand_scale(scales[scale], scales, f"{where} (scale {scale})")
    if not isinstance(scale, Mapping):
        raise LexalignError(f"{where}: a scale is a name or a mapping, got {type(scale).__name__}")
    if "range" in scale:
        lo, hi = scale["range"]
        codes = list(range(int(lo), int(hi) + 1))
        out = {"codes": codes, "ordinal": bool(scale.get("ordinal", True))}
        for lang in ("en", "zh"):
            ends = scale.get(f"ends_{lang}")
            if not (isinstance(ends, list) and len(ends) == 2):
                raise LexalignError(f"{where}: a range scale needs ends_{lang}: [low label, high label]")
            out[lang] = [str(ends[0])] + [""] * (len(codes) - 2) + [str(ends[1])]
        return out
    for key in ("codes", "en", "zh", "ordinal"):
        if key not in scale:
            raise LexalignError(f"{where}: scale has no {key!r} (an explicit scale needs codes, en, zh, ordinal)")
    codes = [int(c) for c in scale["codes"]]
    if len(set(codes)) != len(codes) or any(c < 0 for c in codes):
        raise LexalignError(f"{where}: codes must be distinct non-negative integers, got {codes}")
    for lang in ("en", "zh"):
        if len(scale[lang]) != len(codes):
            raise LexalignError(f"{where}: {len(scale[lang])} {lang} labels for {len(codes)} codes")
    return {
        "codes": codes,
        "en": [str(x) for x in scale["en"]],
        "zh": [str(x) for x in scale["zh"]],
        "ordinal": bool(scale["ordinal"]),
    }


def load_catalog(path: str | os.PathLike | None = None) -> list[dict]:
    """The item catalog as a list of flat items (catalog order), validated.

    Each item: item_id, topic, question_en, question_zh, subject_en, subject_zh (the part that
    varies inside a group; None for stand-alone items), options_en, options_zh, codes, ordinal,
    n_options.
    """
    path = Path(path) if path else CATALOG
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LexalignError(f"{path}: catalog file not found") from None
    except IsADirectoryError:
        raise LexalignError(f"{path}: is a directory, expected the item catalog YAML file") from None
    except UnicodeDecodeError:
        raise LexalignError(f"{path}: not UTF-8 text; save the catalog as UTF-8") from None
    except yaml.YAMLError as exc:
        raise LexalignError(f"{path}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("groups"), list):
        raise LexalignError(f"{path}: expected a mapping with a 'groups' list")
    scales = data.get("scales") or {}
    if not isinstance(scales, Mapping):
        raise LexalignError(f"{path}: 'scales' must be a mapping of scale name -> scale")
    items: list[dict] = []
    seen: set[str] = set()
    for g, group in enumerate(data["groups"]):
        if not isinstance(group, Mapping) or not isinstance(group.get("items") or {}, Mapping):
            raise LexalignError(f"{path}: group {g + 1} must be a mapping with an 'items' mapping (item id -> texts)")
        topic = group.get("topic", f"group{g + 1}")
        stem = group.get("stem")
        if stem is not None and not (
            isinstance(stem, Mapping) and isinstance(stem.get("en"), str) and isinstance(stem.get("zh"), str)
        ):
            raise LexalignError(f"{path}: group {g + 1}: stem must give en and zh text (with {{x}} for the item)")
        for item_id, spec in (group.get("items") or {}).items():
            where = f"{path}: item {item_id}"
            if not re.fullmatch(r"Q\d+[A-Z_]*", str(item_id)):
                raise LexalignError(f"{where}: item ids are WVS variable names like Q1 or Q82_EU")
            if item_id in seen:
                raise LexalignError(f"{where}: duplicate item id")
            seen.add(item_id)
            if isinstance(spec, list):
                if len(spec) != 2:
                    raise LexalignError(f"{where}: expected [English text, Chinese text]")
                spec = {"en": spec[0], "zh": spec[1]}
            if not isinstance(spec, Mapping) or not spec.get("en") or not spec.get("zh"):
                raise LexalignError(f"{where}: needs English (en) and Chinese (zh) text")
            scale = _expand_scale(spec.get("scale", group.get("scale")), scales, where)
            if len(scale["codes"]) < 2:
                raise LexalignError(f"{where}: an item needs at least two options")
            text = {"en": str(spec["en"]), "zh": str(spec["zh"])}
            if stem:
                question = {lang: stem[lang].replace("{x}", text[lang]) for lang in ("en", "zh")}
                subject = text
            else:
                question, subject = text, {"en": None, "zh": None}
            items.append(
                {
                    "item_id": str(item_id),
                    "topic": topic,
                    "question_en": question["en"],
                    "question_zh": question["zh"],
                    "subject_en": subject["en"],
                    "subject_zh": subject["zh"],
                    "options_en": scale["en"],
                    "options_zh": scale["zh"],
                    "codes": scale["codes"],
                    "ordinal": bool(spec.get("ordinal", scale["ordinal"])),
                    "n_options": len(scale["codes"]),
                }
            )
    if not items:
        raise LexalignError(f"{path}: the catalog has no items")
    return items
