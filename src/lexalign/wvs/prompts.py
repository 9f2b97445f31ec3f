"""Tier-2 prompts: one WVS item as chat messages, and the context blocks of the prompting methods: associations
(from the norms or the model's own tier-1 lists) and survey norms (:mod:`lexalign.wvs.norms`).

The wording is not in code: it is the ``wvs_*`` keys of the prompt templates
(``resources/prompts.yaml``, per prompt language, overridable under ``templates.prompts``), read with
:func:`lexalign.norms.templates.prompt_templates`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from lexalign.core.errors import LexalignError
from lexalign.core.text import normalise_text

log = logging.getLogger(__name__)

#: Framings that add a line before the question (``persona`` adds a system prompt, ``neutral`` nothing).
FRAMING_LINES = ("interviewer", "observer")


def option_numbers(n_options: int) -> list[str]:
    """The strings the model answers with: "1" .. "N" (positions, whatever the WVS codes are)."""
    return [str(i) for i in range(1, n_options + 1)]


def item_text(item: Mapping[str, Any], language: str) -> tuple[str, list[str], bool]:
    """Question and option labels in ``language``; falls back to English (flag True) when missing."""
    question, options = item.get(f"question_{language}"), item.get(f"options_{language}")
    if question and options is not None and len(options) == item["n_options"]:
        return question, list(options), False
    return item["question_en"], list(item["options_en"]), language != "en"


def label_answers(item: Mapping[str, Any], language: str) -> list[str]:
    """The strings scored in the label-text form: each option's label (its number where it has none)."""
    labels = item_text(item, language)[1]
    return [label.strip() or number for number, label in zip(option_numbers(item["n_options"]), labels)]


def country_name(templates: Mapping[str, Any], country: str) -> str:
    """How the prompt language names ``country`` (``wvs_countries``; as written when not listed)."""
    return templates["wvs_countries"].get(country, country)


def build_prompt(
    item: Mapping[str, Any],
    templates: Mapping[str, Any],
    language: str,
    country: str,
    framing: str,
    system: str | None = None,
    associations: str | None = None,
    instruction: str = "wvs_instruction",
) -> tuple[list[dict[str, str]], bool]:
    """Chat messages asking one item; returns (messages, fell_back_to_english).

    ``templates`` are the prompt language's templates; ``language`` picks the item's question text;
    ``instruction`` is the template key of the last line (``wvs_instruction_label`` when the option
    texts are scored).
    """
    place = country_name(templates, country)
    question, labels, fallback = item_text(item, language)
    lines = []
    if framing in FRAMING_LINES:
        lines.append(templates[f"wvs_{framing}"].format(country=place))
    if associations:  # after the framing, so that all prompts share the longest possible prefix
        lines += [associations, ""]
    lines.append(question)
    lines.append(templates["wvs_options"])
    for number, label in zip(option_numbers(item["n_options"]), labels):
        label = label.strip()
        lines.append(f"{number}. {label}" if label and label != number else number)
    lines.append(templates[instruction])
    persona = templates["wvs_persona"].format(country=place) if framing == "persona" else None
    systems = [s for s in (system, persona) if s]
    messages = [{"role": "system", "content": "\n\n".join(systems)}] if systems else []
    messages.append({"role": "user", "content": "\n".join(lines)})
    return messages, fallback


def render(tokenizer, messages: list[dict[str, str]]) -> str:
    """The chat prompt as text, ending where the model's answer starts."""
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


# --------------------------------------------------------------------------------------------------
# Association-augmented prompting (a method whose context is "associations")

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[a-z]+(?:[-'][a-z]+)*")
STOPWORDS = {
    "en": set(
        "a an the and or but if of to in on at by for with from as is are was were be been being am do does did "
        "have has had you your yours i me my we our they them their he she it its this that these those there "
        "here what which who whom how why when where would could should will can may might must shall not no yes "
        "than then so such very more most less least much many any some all each every one other others about "
        "into over under again further only own same too just also following following: say think tell please "
        "people person things thing way rather whether each".split()
    ),
    "zh": set(
        "的 了 和 与 或 是 在 有 您 你 我 他 她 它 们 这 那 哪 什么 怎么 多 少 吗 呢 吧 以下 下列 一项 这一项 以及 "
        "对于 如何 是否 还是 多大 程度 哪一种 哪一项 认为 觉得 说法 问题".split()
    ),
}


def _segment(text: str) -> list[str]:
    if _CJK.search(text):
        try:
            import jieba
        except ImportError:
            raise LexalignError(
                "wvs: method assoc_prompt on Chinese text needs the optional dependency jieba "
                "for word segmentation: pip install 'lexalign[zh]' (or pip install jieba)"
            ) from None
        jieba.setLogLevel(logging.WARNING)
        return [token.strip() for token in jieba.lcut(text) if token.strip()]
    return _WORD.findall(text.lower())


@dataclass
class AssociationContext:
    """cue -> its most frequent responses in the language's norms, and the context block per item."""

    top: dict[str, list[str]]
    language: str
    max_cues: int
    templates: Mapping[str, Any]

    @classmethod
    def from_parquet(
        cls, path: str | os.PathLike, language: str, top_k: int, max_cues: int, templates: Mapping[str, Any]
    ) -> AssociationContext:
        from lexalign.norms.ingest import load_associations

        table = load_associations(path)  # every split: WVS items are not word-association test cues
        top = (
            table.group_by("cue", "response")
            .agg(pl.col("count").sum())
            .sort(["cue", "count", "response"], descending=[False, True, False])
            .group_by("cue", maintain_order=True)
            .agg(pl.col("response").head(top_k))
        )
        return cls(dict(zip(top["cue"].to_list(), top["response"].to_list())), language, max_cues, templates)

    @classmethod
    def from_generations(
        cls, path: str | os.PathLike, language: str, top_k: int, max_cues: int, templates: Mapping[str, Any]
    ) -> AssociationContext:
        """The model's own associations (``assoc_source: model``): a tier-1 ``generations.parquet``, each cue's
        first ``top_k`` parsed words (the order the model listed them)."""
        from lexalign.core.io import read_parquet_table

        table = read_parquet_table(path, ["cue", "parsed"], "the tier-1 generations table")
        top: dict[str, list[str]] = {}
        for cue, parsed in table.select("cue", "parsed").iter_rows():
            words = [w for w in (normalise_text(word) for word in parsed or []) if w and w != normalise_text(cue)]
            if words:
                top[normalise_text(cue)] = list(dict.fromkeys(words))[:top_k]
        if not top:  # a result (the method then adds nothing; metrics.json counts 0 cues), not an error
            log.warning("%s: no cue has a parsed association list; no item gets associations", path)
        return cls(top, language, max_cues, templates)

    def cues_for(self, texts: Sequence[str | None]) -> list[str]:
        """Norm cues among the key words of ``texts`` (most specific text first), in order of appearance."""
        stop = STOPWORDS.get(self.language, set())
        found: list[str] = []
        for text in texts:
            for token in _segment(text or ""):
                word = normalise_text(token)
                if not word or word in stop or word in found:
                    continue
                if word not in self.top and word.endswith("s") and word[:-1] in self.top:
                    word = word[:-1]
                if word in self.top and word not in found:
                    found.append(word)
                if len(found) >= self.max_cues:
                    return found
        return found

    def block(self, cues: Sequence[str]) -> str | None:
        if not cues:
            return None
        colon, separator = self.templates["wvs_association_colon"], self.templates["separator"]
        lines = [self.templates["wvs_associations"]]
        lines += [f"{cue}{colon}{separator.join(self.top[cue])}" for cue in cues]
        return "\n".join(lines)


def norms_block(sentences: Sequence[str], templates: Mapping[str, Any], country: str) -> str | None:
    """The norms_prompt context: the ``wvs_norms`` line, then one norm sentence per line."""
    if not sentences:
        return None
    return "\n".join([templates["wvs_norms"].format(country=country_name(templates, country)), *sentences])
