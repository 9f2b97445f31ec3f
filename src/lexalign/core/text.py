"""The one normalisation of words and the one definition of a missing response.

Ingest (norms), the tier-1 parser (model lists), the RL reward, the psycholinguistic norms and the
WVS association prompts all compare words through :func:`normalise_text` / :func:`normalise_expr`.
"""

from __future__ import annotations

import re
import unicodedata

import polars as pl

# Characters stripped from both ends of a cue or response after NFKC (which already folds
# full-width ASCII such as "，" or "ｃａｔ" to its plain form).
EDGE_PUNCTUATION = " .,;:!?\"'`()[]{}<>*_~-/\\|+=^。、；：！？“”‘’《》〈〉「」『』【】…·"
# What SWOW documents as "no response", and nothing else ("none", "null", "nan" are real answers):
# R's NA marker, matched on the raw value (stripped, case-sensitive: "Na" for sodium is an answer),
# empty, the complete release's phrases (compared after normalise_text), "#..." markers (#Missing,
# #Long, #Symbol) and SWOW-ZH's 32-hex masks of sensitive answers.
NA_MARKER = "NA"
MISSING_VALUES = ("", "no more responses", "unknown word")
HEX_MASK = r"^[0-9a-f]{32}$"


def normalise_text(text: str) -> str:
    """The one normalisation of a word: NFKC, lower case, single spaces, no edge punctuation.

    ``normalise_expr`` is the same function as a polars expression; the two must agree.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"\s+", " ", text).strip(EDGE_PUNCTUATION)


def normalise_expr(column: str | pl.Expr) -> pl.Expr:
    expr = pl.col(column) if isinstance(column, str) else column
    return expr.str.normalize("NFKC").str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars(EDGE_PUNCTUATION)


def is_missing_expr(normalised: pl.Expr, raw: pl.Expr | None = None) -> pl.Expr:
    """Missing responses: null/empty, 'No more responses', 'Unknown word', '#...' markers, 32-hex masks,
    and (given the ``raw`` value) R's ``NA`` marker."""
    missing = (
        normalised.is_null()
        | normalised.is_in(list(MISSING_VALUES))
        | normalised.str.starts_with("#")
        | normalised.str.contains(HEX_MASK)
    )
    if raw is not None:
        missing = missing | (raw.str.strip_chars() == NA_MARKER)
    return missing
