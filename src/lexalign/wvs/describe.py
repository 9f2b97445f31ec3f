"""WVS describe mode: the answer distribution a model states for a population, read from its text.

The model is asked what share of the target country's people would choose each option
(``wvs_describe_*`` prompt templates). :func:`parse_stated` reads the numbers it gives:

- forms: ``30%``, ``30 %``, ``３０％`` (full-width, NFKC), ``30 percent``, ranges (``30-40%``: the midpoint),
  fractions (``3/10``, ``3 out of 10``), proportions (``0.3``: bare numbers that are all at most 1) and
  simple Chinese numerals (``三成``, ``百分之三十``, ``十分之三``, ``三十%``);
- which option a number belongs to: an option number (``1.``, ``2:``, ``(3)`` opening a line or a list part,
  ``option 2``, ``选项2``, ``第二项``) or an option label (longest label first) next to it, read both ways
  (``Agree: 40%`` and ``40% agree``; the reading that places more options wins); a list of as many
  unreferenced numbers as options is read in option order; a number after a word like ``total`` is dropped;
- bare numbers count only when the answer has no percent sign or fraction (then option numbers are not shares).

A distribution that does not sum to 100 is normalised; the raw sum (in percent) is kept. An answer with no
usable numbers is ``refusal`` when it matches a refusal pattern (:mod:`lexalign.wvs.refusal`), else
``no usable numbers``: :func:`classify_stated`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from lexalign.wvs.refusal import is_refusal
from lexalign.wvs.scoring import strip_think

STATED, REFUSAL, NO_NUMBERS = "stated", "refusal", "no usable numbers"
DESCRIBE_OUTCOMES = (STATED, REFUSAL, NO_NUMBERS)
#: How the numbers were matched to options: by option numbers or labels, or in option order.
BY_REFERENCE, BY_POSITION = "reference", "position"


@dataclass(frozen=True)
class StatedDistribution:
    """What one describe answer states: ``shares`` (per option, summing to 1; None unless ``stated``),
    ``raw`` (each option's number in percent, 0 for an option not named), ``raw_sum`` (their sum, percent),
    ``assigned_by`` (:data:`BY_REFERENCE` or :data:`BY_POSITION`) and ``n_numbers`` (share numbers found)."""

    outcome: str
    shares: tuple[float, ...] | None = None
    raw: tuple[float, ...] | None = None
    raw_sum: float | None = None
    assigned_by: str | None = None
    n_numbers: int = 0


# --------------------------------------------------------------------------------------------------
# Chinese numerals

_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN = "零〇一二两三四五六七八九十百千"
_NUMERAL = rf"(?:\d+(?:\.\d+)?|[{_CN}]+(?:点[{_CN}]+)?)"


def chinese_number(text: str) -> float | None:
    """The value of a simple Chinese numeral (``三十五`` 35, ``一百零五`` 105, ``十`` 10, ``二点五`` 2.5,
    ``二〇`` 20 read digit by digit), or None for anything else."""
    whole, _, fraction = text.partition("点")
    if not whole or any(ch not in _CN_DIGITS for ch in fraction):
        return None
    total, current, previous_digit = 0, 0, False
    for ch in whole:
        if ch in _CN_DIGITS:
            current = current * 10 + _CN_DIGITS[ch] if previous_digit else _CN_DIGITS[ch]
            previous_digit = True
        elif ch in _CN_UNITS:
            total += (current or 1) * _CN_UNITS[ch]
            current, previous_digit = 0, False
        else:
            return None
    value = float(total + current)
    if fraction:
        value += float("0." + "".join(str(_CN_DIGITS[ch]) for ch in fraction))
    return value


def _value(text: str) -> float | None:
    """A numeral in Arabic digits or simple Chinese."""
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    return chinese_number(text)


def _percent(value: float) -> str:
    return f"{value:.10f}".rstrip("0").rstrip(".") + "%"


def _rewrite_chinese(text: str) -> str:
    """Chinese share forms as ``N%`` (``百分之三十``, ``十分之三``, ``三成``, ``三十%``) and Chinese option
    numbers as digits (``选项一``, ``第一项``)."""

    def fraction(match: re.Match) -> str:
        denominator, numerator = _value(match.group(1)), _value(match.group(2))
        if not denominator or numerator is None:
            return match.group(0)
        return _percent(100 * numerator / denominator)

    def tenths(match: re.Match) -> str:
        value = _value(match.group(1))
        return match.group(0) if value is None else _percent(10 * value + (5 if match.group(2) else 0))

    def numeral(match: re.Match) -> str:
        value = _value(match.group(1))
        return match.group(0) if value is None else _percent(value)

    def option(match: re.Match) -> str:
        value = _value(match.group(2))
        return match.group(0) if value is None else f"{match.group(1)}{value:g}{match.group(3)}"

    text = re.sub(rf"({_NUMERAL})分之({_NUMERAL})", fraction, text)
    text = re.sub(r"([一二两三四五六七八九十\d]+)成(半)?", tenths, text)
    text = re.sub(rf"([{_CN}]+(?:点[{_CN}]+)?)\s*%", numeral, text)
    return re.sub(rf"(选项|第)\s*([{_CN}]+)(项|个选项|个|种|)", option, text)


# --------------------------------------------------------------------------------------------------
# Numbers and references in the text

_WORD_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:percent|per cent|pct)\b", re.IGNORECASE)
_RANGES = (
    re.compile(r"(\d+(?:\.\d+)?)\s*%\s*(?:-|–|—|~|to|至|到)\s*(\d+(?:\.\d+)?)\s*%", re.IGNORECASE),
    re.compile(r"(\d+(?:\.\d+)?)(?:-|–|—|~)(\d+(?:\.\d+)?)\s*%"),
    re.compile(r"(\d+(?:\.\d+)?)\s*(?:to|至|到)\s*(\d+(?:\.\d+)?)\s*%", re.IGNORECASE),
)
_MARKED = re.compile(r"(?<!\d)(?<!\d\.)(\d+(?:\.\d+)?)\s*%")
_FRACTION = re.compile(r"(?<![\d./])(\d+(?:\.\d+)?)\s*(?:/|out of|in)\s*(\d+(?:\.\d+)?)(?![\d./%])", re.IGNORECASE)
_BARE = re.compile(r"(?<!\d)(?<!\d\.)(\d+(?:\.\d+)?)(?!\d|\.\d)")
# an option number opening a line or a list part ("1.", "2:", "(3)", "4、"), or named ("option 2", "选项2", "第2项");
# a digit right after "1." makes it a decimal number ("1.30%"), after "(1)" or "1、" it is the share ("(1)30%")
_LEADING_OPTION = re.compile(r"(?:^|(?<=[\n,;，；、。]))[ \t]*[-*•·#>]*[ \t]*\(?(\d+)[ \t]*(?:\.(?!\d)|[):、\]]|：)")
_NAMED_OPTION = re.compile(r"(?:\boption|\bchoice|选项|第)[ \t]*#?[ \t]*(\d+)(?!\d|\.\d)", re.IGNORECASE)
_TOTAL = re.compile(r"\b(?:total|sum|add(?:s|ing)? up|altogether|in all)\b|合计|总计|共计|总共|加起来|总和|一共", re.I)


@dataclass(frozen=True)
class _Event:
    start: int
    end: int
    kind: str  # "share", "marker" (an option number) or "label"
    value: float  # percent (share) or 0-based option (marker, label)


def normalise(text: str) -> str:
    """The answer with its think block removed, NFKC (full-width digits and signs), markdown emphasis
    dropped, Chinese numerals, percent words and ranges rewritten as ``N%``."""
    text = unicodedata.normalize("NFKC", strip_think(text or "")).replace("**", "").replace("__", "")
    text = _WORD_PERCENT.sub(lambda m: m.group(1) + "%", _rewrite_chinese(text))
    for pattern in _RANGES:
        text = pattern.sub(
            lambda m: (
                _percent((float(m.group(1)) + float(m.group(2))) / 2)
                if float(m.group(1)) < float(m.group(2))
                else m.group(0)
            ),
            text,
        )
    return text


def _overlaps(span: tuple[int, int], taken: Sequence[tuple[int, int]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in taken)


def _references(text: str, labels: Sequence[str]) -> list[_Event]:
    """Option numbers (1..N) and option labels named in ``text``; labels longest first, never overlapping."""
    n = len(labels)
    events = []
    for pattern in (_LEADING_OPTION, _NAMED_OPTION):
        for match in pattern.finditer(text):
            number = int(match.group(1))
            if 1 <= number <= n and not _overlaps(match.span(1), [(e.start, e.end) for e in events]):
                events.append(_Event(match.start(1), match.end(1), "marker", number - 1))
    lowered = text.lower()
    ordered = sorted(
        ((normalise(label).strip().lower(), i) for i, label in enumerate(labels)),
        key=lambda pair: -len(pair[0]),
    )
    taken = [(e.start, e.end) for e in events]
    for label, position in ordered:
        if not label or label.isdigit():
            continue
        for match in re.finditer(re.escape(label), lowered):
            if not _overlaps(match.span(), taken):
                taken.append(match.span())
                events.append(_Event(match.start(), match.end(), "label", position))
    return events


def _shares(text: str, markers: Sequence[_Event]) -> list[_Event]:
    """The share numbers, in percent: marked ones (``%``, fractions) where the answer has any, else the
    bare numbers that are no option number (all at most 1: proportions)."""
    found: list[_Event] = []
    for match in _MARKED.finditer(text):
        found.append(_Event(match.start(), match.end(), "share", float(match.group(1))))
    for match in _FRACTION.finditer(text):
        numerator, denominator = float(match.group(1)), float(match.group(2))
        if (
            denominator > 0
            and numerator <= denominator
            and not _overlaps(match.span(), [(e.start, e.end) for e in found])
        ):
            found.append(_Event(match.start(), match.end(), "share", 100 * numerator / denominator))
    if not found:
        taken = [(m.start, m.end) for m in markers]
        bare = [m for m in _BARE.finditer(text) if not _overlaps(m.span(1), taken)]
        scale = 100.0 if bare and all(float(m.group(1)) <= 1 for m in bare) else 1.0
        found = [_Event(m.start(1), m.end(1), "share", scale * float(m.group(1))) for m in bare]
    return sorted(found, key=lambda e: e.start)


def _after_total(text: str, share: _Event, references: Sequence[_Event]) -> bool:
    """Whether a total word precedes the share on its line with no option reference in between."""
    line_start = text.rfind("\n", 0, share.start) + 1
    totals = list(_TOTAL.finditer(text, line_start, share.start))
    if not totals:
        return False
    after = totals[-1].end()
    return not any(after <= r.start < share.start for r in references)


def _pair(shares: Sequence[_Event], references: Sequence[_Event], text_end: int, refs_first: bool) -> list:
    """Per share, the option its nearest references name (an option number before a label), or None:
    with ``refs_first`` the references between the previous share and this one, else between this one and
    the next."""
    options = []
    for i, share in enumerate(shares):
        if refs_first:
            lo, hi = (shares[i - 1].end if i else 0), share.start
        else:
            lo, hi = share.end, (shares[i + 1].start if i + 1 < len(shares) else text_end)
        window = [r for r in references if lo <= r.start < hi]
        markers = [r for r in window if r.kind == "marker"] or window
        if not markers:
            options.append(None)
            continue
        nearest = markers[-1] if refs_first else markers[0]
        options.append(int(nearest.value))
    return options


def _assign(shares: Sequence[_Event], options: Sequence[int | None], n: int) -> list[float | None]:
    """Each option's share (the first one that names it), None for options no share names."""
    raw: list[float | None] = [None] * n
    for share, option in zip(shares, options):
        if option is not None and raw[option] is None:
            raw[option] = share.value
    return raw


def parse_stated(text: str, labels: Sequence[str]) -> StatedDistribution:
    """The distribution an answer states over the options ``labels`` (see the module docstring);
    outcome :data:`STATED`, or :data:`NO_NUMBERS` when it names no usable numbers."""
    clean = normalise(text)
    n = len(labels)
    references = _references(clean, labels)
    shares = _shares(clean, [r for r in references if r.kind == "marker"])
    shares = [s for s in shares if not _after_total(clean, s, references)]
    readings = [_assign(shares, _pair(shares, references, len(clean), first), n) for first in (True, False)]
    raw = max(readings, key=lambda r: sum(v is not None for v in r))  # ties: references before the numbers
    assigned_by = BY_REFERENCE
    if all(v is None for v in raw):
        if len(shares) != n:
            return StatedDistribution(NO_NUMBERS, n_numbers=len(shares))
        raw, assigned_by = [s.value for s in shares], BY_POSITION
    values = tuple(float(v or 0.0) for v in raw)
    total = sum(values)
    if total <= 0:
        return StatedDistribution(NO_NUMBERS, n_numbers=len(shares))
    return StatedDistribution(
        STATED,
        shares=tuple(v / total for v in values),
        raw=values,
        raw_sum=total,
        assigned_by=assigned_by,
        n_numbers=len(shares),
    )


def classify_stated(text: str, labels: Sequence[str], language: str) -> StatedDistribution:
    """:func:`parse_stated`; an answer without usable numbers that matches a refusal pattern of ``language``
    (or English) is a :data:`REFUSAL`."""
    stated = parse_stated(text, labels)
    if stated.outcome == NO_NUMBERS and is_refusal(text, language):
        return StatedDistribution(REFUSAL, n_numbers=stated.n_numbers)
    return stated
