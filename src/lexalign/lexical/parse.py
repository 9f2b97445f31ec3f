"""The tier-1 association-list parser: what a chat model wrote -> its list of associated words.

Public API: :func:`parse_associations` (also importable from :mod:`lexalign.lexical.evaluate`). Words are
normalised with :func:`lexalign.core.text.normalise_text`, the ingest stage's own normaliser, so a parsed
word and a human response match exactly when they are the same word.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from lexalign.core.text import normalise_text
from lexalign.lexical.parse_scripts import LATIN, has_script, keep_target_script, prefer_target_gloss, target_scripts
from lexalign.lexical.parse_turns import cut_special_tokens

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_HAS_CJK = re.compile(f"[{_CJK}]")
_HAS_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+")

# ①..⑳ (NFKC would turn them into bare digits) become bullets before normalisation.
_CIRCLED = re.compile("[\u2460-\u2473\u2776-\u277f\u2780-\u2793]")

# A list marker at the start of a line: bullets, "1.", "1)", "(1)", "1、", "#1", "[1]", "一、", "a)".
_MARKER = re.compile(
    r"^\s*(?:[-*+–—]+\s+|[•◦▪▫■□●○►▶➤✓✔☐]\s*|#?\(?\d{1,3}(?:[.)、:]|\s+[-–])(?!\d)\s*|#\d{1,3}\s+|\(\d{1,3}\)\s*"
    r"|[\[【]\d{1,3}[\]】]\s*|第?[一二三四五六七八九十]{1,3}[、.)]\s*|[a-z]\)\s*)"
)
# Numbered items run together on one line: "1. dog 2. cat 3. bone".
_INLINE_NUMBER = re.compile(f"(?:^|(?<=\\s)|(?<=[,;、{_CJK}]))(\\d{{1,3}})[.)、](?!\\d)\\s*")
_BARE_NUMBER = re.compile(r"^(\d{1,3})\s+(?=[^\d\s])")  # "1 puppy" lines, trusted only in a 1, 2, 3 run
_HEADING = re.compile(r"^\s*#{1,6}\s|^\s*(?:[-*_=~]\s*){3,}$|^\s*```")
_BOLD_LINE = re.compile(r"^\s*(?:\*\*|__)[^*_]+(?:\*\*|__)\s*:?\s*$")
# Markdown emphasis and its HTML form ("<strong>猫</strong>"), removed; HTML blocks ("<li>", "<br>") break lines.
_BOLD = re.compile(r"\*\*|__|~~|`+|</?(?i:strong|b|em|i|u|span)\s*>")
_HTML_BREAK = re.compile(r"</?(?:li|p|br|div|ul|ol|h[1-6]|tr|td)\b[^<>]{0,80}>", re.I)
_EMPHASIS = re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])|(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])")
# Where a line holds several sentences ("... leash. Note: ...", "好的！以下是..."): split there.
_SENTENCE_END = re.compile(r"(?<=[A-Za-z]{4}[.!?])\s+(?=\S)|(?<=[!?])\s+(?=\S)|(?<=[。!?])(?=\S)")
_LABEL = re.compile(r"(?<!\d):|:(?!\d)")  # a colon, but not the one in 10:30
_LIST_SEP = re.compile(r"[,;、|\t。]|\s*(?:→|->|=>|⇒|➜|•)\s*")
_ELLIPSIS = re.compile(r"\s*\.{3,}\s*")
_SPACED_SEP = re.compile(r"\s+(?:-|–|/|·)\s+")  # "puppy - bark - leash": a list when every part is short
_ZH_AND = re.compile(f"(?<=[{_CJK}]{{2}})(?:以及|和|及|与)(?=[{_CJK}]{{2}})")
_CJK_SPACE = re.compile(f"(?<=[{_CJK}])\\s+(?=[{_CJK}])")
_EXPLANATION = re.compile(r"\s+[-–—=]+\s+|\s*[–—]{1,2}\s*")
_PAREN = re.compile(r"\s*[(【〔][^()【】〔〕]*[)】〕]")
_OPEN_PAREN = re.compile(r"\s*[(【〔][^)】〕]*$")  # a gloss cut off by a separator or the token cap
_QUOTES = "\"'“”‘’«»「」『』《》〈〉`"
_TRAILING_ETC = re.compile(
    r"(?:(?:^|[\s,])(?:etc\.?|and so on|and so forth|and (?:many )?more|and (?:many )?others|among others|and the "
    r"like)|等等)$",
    re.I,
)
_STOPWORDS = {
    "the",
    "a",
    "an",
    "of",
    "is",
    "are",
    "was",
    "to",
    "i",
    "me",
    "my",
    "you",
    "it",
    "this",
    "that",
    "with",
    "for",
    "makes",
    "think",
    "word",
}
_LEADING_CONJ = re.compile(r"^(?:and|or|also|plus)\s+", re.I)

# The start of a line (or of the text before a colon) that is chat, not words.
_CHATTER = re.compile(
    r"(?:sure|certainly|of course|absolutely|okay|ok|alright|great(?=!| question)|happy to|i'?d be happy|here'?s"
    r"|here (?:is|are)|below (?:is|are)|the following|following (?:is|are)|as requested|these "
    r"(?:are|words|associations)"
    r"|this (?:is|list)|i (?:hope|have|would|will|can|am|tried|included|think)|i'(?:ve|d|ll|m)|let me|feel free"
    r"|hope (?:this|that|these)|please (?:note|let)|note|notes|nb|keep in mind|in (?:summary|conclusion)|as an ai"
    r"|some (?:words|associations|common|of the)|(?:words|terms) (?:that|associated|related)|(?:associated|related) "
    r"(?:words|terms)"
    r"|word associations?|associations? (?:for|with|of)|when i (?:read|see|hear|think))(?![\w'])"
    r"|sorry|unfortunately|i (?:cannot|can'?t|can’t|am (?:unable|not able))"
    r"|好的|好吧|当然|没问题|可以的|以下|下面(?:是|列出)|这是|这些(?:词|是)|以上|希望|注意|请|备注|说明|总结|总之"
    r"|与.{1,12}(?:相关|有关)|关于|看到|联想(?:到的)?词|嗯|让我|我来|我试"
    # Refusals ("很抱歉，我无法…"): chat, so they parse to nothing and count as refusals.
    r"|(?:很|非常)?抱歉,?\s*(?:我|但|这)|对不起,?\s*(?:我|但)|我(?:无法|不能|没法)|作为(?:一个)?(?:ai|人工智能|语言模型)",
    re.I,
)
# Labels that introduce the list or echo the task ("Cue: dog", "Associations: ...", "联想词：").
_LABEL_WORDS = {
    "cue",
    "word",
    "words",
    "target",
    "target word",
    "stimulus",
    "prompt",
    "input",
    "output",
    "answer",
    "answers",
    "response",
    "responses",
    "association",
    "associations",
    "associated words",
    "related words",
    "list",
    "result",
    "results",
    "final answer",
    "my answer",
    "my associations",
    "assistant",
    "model",
    "词",
    "词语",
    "提示词",
    "线索词",
    "目标词",
    "刺激词",
    "联想",
    "联想词",
    "联想词语",
    "回答",
    "答案",
    "答",
    "结果",
    "列表",
    "输出",
}
_NOTE_WORDS = {"note", "notes", "nb", "ps", "p.s", "remark", "disclaimer", "注", "注意", "备注", "说明", "提示"}
_FILLER = {
    "etc",
    "etc.",
    "and so on",
    "and more",
    "and many more",
    "many more",
    "others",
    "more",
    "等",
    "等等",
    "其他",
    "其它",
}
_MAX_WORDS = 5  # longer "items" are sentences, not associations
# Chinese explanation fragments ("通常用于娱乐", "一种水果"): words that explain, not associate.
_ZH_EXPLANATION = re.compile(
    "用于|用来|通常|一般|经常|常常|可以|一种|指的?是|表示|意味着?|比如|例如|因为|所以|的时候|是一"
)
_ZH_EXPLANATION_MIN_CHARS = 4
_MAX_CJK_CHARS = 10


def _is_cjk_language(lang: str) -> bool:
    return str(lang).lower().replace("_", "-").split("-")[0] in {"zh", "cmn", "yue", "wuu", "ja", "ko"}


def _drop_incomplete_tail(text: str) -> str:
    """A generation cut by the token cap ends inside a word: drop what follows the last separator."""
    stripped = text.rstrip()
    cut = max(stripped.rfind(sep) for sep in (",", ";", "、", "\n", "|", "。"))
    return stripped[:cut] if cut > 0 else text


def _pseudo_lines(text: str) -> list[str]:
    """Lines of text that may hold words: headings, rules and code fences dropped, inline numbered
    lists and run-on sentences split apart."""
    raw_lines = text.splitlines()
    bare = [int(m.group(1)) for m in map(_BARE_NUMBER.match, raw_lines) if m]
    strip_bare = len(bare) >= 2 and _consecutive(bare)
    lines = []
    for line in raw_lines:
        if _HEADING.match(line) or _BOLD_LINE.match(line):  # "## Animals", "---", "**Animals:**", "```"
            continue
        if strip_bare:
            line = _BARE_NUMBER.sub("", line)
        line = _BOLD.sub("", line).strip().lstrip("> ").strip()
        numbers = list(_INLINE_NUMBER.finditer(line))
        if len(numbers) >= 2 and _consecutive([int(m.group(1)) for m in numbers]):
            starts = [m.start() for m in numbers]
            lines.extend(_SENTENCE_END.split(line[: starts[0]]))
            lines.extend(line[a:b] for a, b in zip(starts, [*starts[1:], len(line)]))
        else:
            lines.extend(_SENTENCE_END.split(line))
    return [line.strip() for line in lines if line.strip()]


def _consecutive(numbers: list[int]) -> bool:
    return all(b == a + 1 for a, b in zip(numbers, numbers[1:]))


def _is_short(piece: str) -> bool:
    piece = piece.strip()
    if _HAS_CJK.search(piece):
        return len(re.sub(r"\s", "", _latin_words_as_one(piece))) <= 8
    return 0 < len(piece.split()) <= 4


def _latin_words_as_one(text: str) -> str:
    """Lengths of Chinese text count characters; a Latin word in it ("相同， equivalent") counts as one."""
    return _LATIN_WORD.sub("a", text)


def _norm_label(text: str) -> str:
    return normalise_text(_EMPHASIS.sub(r"\1\2", text)).strip(_QUOTES + " ")


def _split_list(text: str, cjk: bool) -> list[str]:
    pieces = []
    for piece in _LIST_SEP.split(text):
        parts = _SPACED_SEP.split(piece)
        pieces.extend(parts if len(parts) >= 3 and all(_is_short(p) for p in parts) else [piece])
    if cjk:
        pieces = [p for piece in pieces for p in _CJK_SPACE.split(piece)]
        if len(pieces) >= 2:  # "宠物、忠诚和骨头": the last two joined by "and"
            last = _ZH_AND.split(pieces[-1].strip())
            if len(last) == 2 and all(len(p) <= 4 for p in last):
                pieces[-1:] = last
    if len(pieces) >= 2 and re.search(r"[!?]\s*$", pieces[-1]) and _is_chatter(pieces[-1]):
        pieces.pop()  # "宠物，骨头，希望对你有帮助！": a closing sentence after the last word
    return [p for p in pieces if p.strip()]


def _is_chatter(text: str) -> bool:
    """Chat rather than words: starts like a preamble or note and is more than a lone word."""
    text = text.strip()
    lowered = text.lower().lstrip(_QUOTES + "(*- ")
    if not _CHATTER.match(lowered):
        return False
    if re.search(r"[!.:,;?。]$", text):
        return True
    pieces = _LIST_SEP.split(text)
    if len(pieces) >= 3 and all(_is_short(p) for p in pieces):  # "看到，眼睛，视觉" is a list
        return False
    return len(lowered.split()) >= 3 or (bool(_HAS_CJK.search(lowered)) and len(lowered) > 4)


def _is_sentence(text: str) -> bool:
    """Ends like a sentence and its comma-separated pieces are long: prose, not a list."""
    text = text.strip()
    if not re.search(r"[.!?。]$", text):
        return False
    pieces = [p.strip() for p in re.split(r"[,、;]", text) if p.strip()]
    if _HAS_CJK.search(text):
        return sum(len(_latin_words_as_one(p)) for p in pieces) / len(pieces) > 6
    words = [len(p.split()) for p in pieces]
    return sum(words) >= 6 and sum(words) / len(words) >= 3


def _introduces_list(head: str, cue: str | None) -> bool:
    """Whether the text before a colon is a preamble or a label ("Here are ...", "Cue", the cue itself)."""
    label = _norm_label(head)
    if label in _LABEL_WORDS or _CHATTER.match(label) or (cue is not None and label == cue):
        return True
    if cue is not None and re.search(
        f"[{re.escape(_QUOTES)}]\\s*{re.escape(cue)}\\s*[{re.escape(_QUOTES)}]", head.lower()
    ):
        return True
    return not _is_short(head)


def _line_items(line: str, cue: str | None, cjk: bool) -> list[str]:
    """The candidate items of one line, not yet cleaned."""
    marker = _MARKER.match(line)
    listed = marker is not None and bool(line[marker.end() :].strip())
    body = _drop_parentheses(_EMPHASIS.sub(r"\1\2", line[marker.end() :] if listed else line)).strip()
    label = _LABEL.search(body)
    if label is not None:
        head, tail = body[: label.start()].strip(), body[label.end() :].strip()
        if _norm_label(head) in _NOTE_WORDS or not tail:  # "Note: ...", "Here are some words:"
            return []
        tail_items = _split_list(tail, cjk)
        if not head or _introduces_list(head, cue):
            return tail_items
        head_items = _split_list(head, cjk)
        if len(head_items) >= 2:  # "puppy, bark, leash: a strap ..." -- the colon explains the last word
            return head_items + (tail_items if all(_is_short(p) for p in tail_items) else [])
        if len(tail_items) >= 2 and all(_is_short(p) for p in tail_items):
            return tail_items  # "Pets: cat, hamster": a category label, then words
        return [head]  # "Leash: used to walk a dog": a word, then an explanation
    if not listed and (_is_chatter(body) or _is_sentence(body)):
        return []
    return _split_list(body, cjk)


def _clean_item(item: str, cjk: bool, scripts: frozenset[str]) -> str:
    item = _EMPHASIS.sub(r"\1\2", item).strip()
    marker = _MARKER.match(item)
    if marker is not None and item[marker.end() :].strip():
        item = item[marker.end() :]
    item = _drop_parentheses(item, unclosed=True)
    item = _EXPLANATION.split(item, maxsplit=1)[0]
    item = _TRAILING_ETC.sub("", item.strip().rstrip(".!?。 ")).strip()
    item = keep_target_script(_strip_symbols(item), scripts).strip(_QUOTES + " ")
    if not cjk:
        item = _LEADING_CONJ.sub("", item)
    return normalise_text(_drop_gloss(item, cjk))


def _strip_symbols(text: str) -> str:
    """Emoji and other symbols at either end ("🐶 puppy", "✅ walk"); letters, digits and
    punctuation stay for normalise_text."""
    start, end = 0, len(text)
    while start < end and (unicodedata.category(text[start]).startswith(("S", "C")) or text[start] in "\u200d\ufe0f "):
        start += 1
    while end > start and (
        unicodedata.category(text[end - 1]).startswith(("S", "C")) or text[end - 1] in "\u200d\ufe0f "
    ):
        end -= 1
    return text[start:end]


def _drop_parentheses(text: str, unclosed: bool = False) -> str:
    """ "pizza（比萨）" -> "pizza" (NFKC already made the brackets ASCII); "(dog)" alone keeps "dog".
    ``unclosed`` also drops a gloss whose closing bracket was lost ("bark (young dog")."""
    without = _PAREN.sub("", text)
    without = (_OPEN_PAREN.sub("", without) if unclosed else without).strip()
    return without if re.search(r"\w", without) else text


def _drop_gloss(item: str, lang_cjk: bool) -> str:
    """ "冰淇淋 ice cream" (zh) -> "冰淇淋"; "ice cream / 冰淇淋" (en) -> "ice cream": keep the prompt
    language's script where an item pairs a word with its translation in another script."""
    parts = [p.strip() for p in re.split(r"\s*/\s*|\s+", item) if p.strip()]
    if len(parts) < 2:
        return item
    cjk_parts = [bool(_HAS_CJK.search(p)) and not _HAS_LATIN.search(p) for p in parts]
    latin_parts = [bool(_HAS_LATIN.search(p)) and not _HAS_CJK.search(p) for p in parts]
    if not all(c or lat for c, lat in zip(cjk_parts, latin_parts)) or all(cjk_parts) or all(latin_parts):
        return item
    keep = cjk_parts if lang_cjk else latin_parts
    # Only a clean split: one run in each script ("狗 dog", "hot dog 热狗"), not interleaved.
    runs = sum(1 for a, b in zip(keep, keep[1:]) if a != b) + 1
    if runs != 2:
        return item
    joiner = "" if lang_cjk else " "
    return joiner.join(p for p, k in zip(parts, keep) if k)


def _remove_echo(text: str, echo: Iterable[str]) -> str:
    """Remove repeats of the prompt: whole messages, then their clauses of at least three words
    (or four Chinese characters), which catches partial repeats."""
    clauses = []
    for prompt_text in echo:
        if not prompt_text or not prompt_text.strip():
            continue
        text = text.replace(prompt_text.strip(), "\n")
        for clause in re.split(r"[,，。.!?！？;；:：\n]", prompt_text):
            clause = clause.strip()
            if len(clause.split()) >= 3 or len(_HAS_CJK.findall(clause)) >= 4:
                clauses.append(clause)
    for clause in sorted(set(clauses), key=len, reverse=True):
        text = text.replace(clause, "\n")
    return text


def _acceptable(word: str, cjk: bool) -> bool:
    if not word or word in _FILLER:
        return False
    if not re.search(r"\w", word):
        return False
    if _HAS_CJK.search(word):
        n_cjk = len(re.sub(r"[^" + _CJK + "]", "", word))
        if n_cjk > _MAX_CJK_CHARS or (cjk and n_cjk >= _ZH_EXPLANATION_MIN_CHARS and _ZH_EXPLANATION.search(word)):
            return False
    return len(word.split()) <= _MAX_WORDS


def _strip_cue_echo(line: str, cue: str | None) -> str:
    """ "Dog - puppy, bark", "Dog. Puppy, ...", "狗——猫，骨头": the cue echoed ahead of the list."""
    if not cue:
        return line
    quotes = re.escape(_QUOTES)
    match = re.match(
        f"\\s*[{quotes}]?{re.escape(cue)}[{quotes}]?(?:\\s*[.:!。]\\s+|\\s*[.:!。](?=[{_CJK}])|\\s+[-–—=]+\\s+|\\s*[–—]{{1,2}}\\s*)",
        line,
        re.I,
    )
    return line[match.end() :] if match and line[match.end() :].strip() else line


def _move_latin_lead(words: list[tuple[int, str]], scripts: frozenset[str]) -> list[str]:
    """A run-on list that starts in English before it turns Chinese ("cat，kitten，老鼠，鱼") keeps its
    Latin words, behind the Chinese ones, so that they do not push these out of the top k. A lone Latin
    word ahead ("nba，篮球") and items on lines of their own (a numbered list: the model's own order) stay
    where they are. ``words`` are (line number, word) pairs."""
    lead = 0
    while lead < len(words) and not has_script(words[lead][1], scripts) and has_script(words[lead][1], {LATIN}):
        lead += 1
    if (
        LATIN in scripts
        or lead in (0, len(words))
        or (lead == 1 and len(words[0][1].split()) < 2)
        or any(line != words[lead][0] for line, _ in words[:lead])
    ):
        return [word for _, word in words]
    return [word for _, word in words[lead:] + words[:lead]]


def _split_ellipses(text: str) -> str:
    """ "宠物……忠诚……", "puppy... bark...": ellipses separate words; after chat that opens a line ("让我想想……",
    "Okay, let me think...") an ellipsis ends that sentence instead."""
    lines = []
    for line in text.split("\n"):
        first = _ELLIPSIS.search(line)
        if first is not None and _CHATTER.match(line[: first.start()].strip().lower()):
            line = line[: first.start()] + ".\n" + line[first.end() :]
        lines.append(_ELLIPSIS.sub(", ", line))
    return "\n".join(lines)


def parse_associations(
    text: str, lang: str, *, cue: str | None = None, truncated: bool = False, echo: Iterable[str] = ()
) -> list[str]:
    """Parse a model's answer into its list of associated words.

    Handles what chat models write: preambles ("Sure! Here are ...:"), numbered and bulleted lists,
    lists separated by commas, full-width commas, 、, semicolons (or spaces between Chinese words),
    quotes, markdown, category labels ("**Pets:** cat, hamster"), explanations after a dash or colon,
    parenthesised glosses ("pizza（比萨）" -> "pizza"; "Football (足球)" in Chinese -> "足球": the gloss in
    the list's language wins), translations in another script, trailing notes and refusals, "etc.",
    HTML markup, and special tokens such as ``<end_of_turn>`` (parsing stops there, unless the list or
    the model's own turn goes on after them).

    A list keeps the words of its language's script and whole Latin words ("KTV", "T恤"): fragments of
    other scripts glued on are cut off ("市场жение", "热水ottle" -> "市场", "热水"), and an item of such
    fragments only ("жение") is dropped (:mod:`lexalign.lexical.parse_scripts`). In a Chinese run-on
    list that starts in English, the Latin words move behind the Chinese ones.

    Every word is normalised like the ingest stage's responses (:func:`lexalign.core.text.normalise_text`:
    NFKC, lower case, single spaces, no edge punctuation); the list is deduplicated keeping the
    first occurrence. ``lang`` is the prompt language ("en", "zh", ...); Chinese-like languages also
    split on spaces between words and prefer Chinese over glosses. ``cue`` (optional) drops echoes of
    the cue, as the norms never count the cue as its own response. ``truncated`` (the generation hit
    the token cap) drops the unfinished last item. ``echo`` (optional) holds the prompt's texts,
    removed wherever the answer repeats them (small base models do). Never raises on any string;
    returns [] when nothing parses.
    """
    if not isinstance(text, str) or not text.strip():
        return []
    cjk = _is_cjk_language(lang)
    scripts = target_scripts(lang)
    cue_norm = normalise_text(cue) if cue else None
    text = cut_special_tokens(text)
    text = _remove_echo(text, echo)
    text = _HTML_BREAK.sub("\n", _CIRCLED.sub("\n- ", text))
    text = unicodedata.normalize("NFKC", text)
    text = _split_ellipses(prefer_target_gloss(text, scripts))
    if truncated:
        text = _drop_incomplete_tail(text)
    candidates: list[tuple[int, str]] = []  # (line number, item)
    lines = _pseudo_lines(text)
    for line_number, line in enumerate(lines):
        if cjk and len(lines) > 1 and _HAS_CJK.search(line) and re.search(r"[!?]$", line):
            continue  # "太好了，我们开始吧！": an exclamation or question beside the list is chat
        items = _line_items(_strip_cue_echo(line, cue_norm), cue_norm, cjk)
        candidates.extend((line_number, item) for item in items)
    if not cjk and len(candidates) == 1 and len(candidates[0][1].split()) > _MAX_WORDS:
        # "puppy bark leash bone fetch": a list separated by spaces only.
        line_number, single = candidates[0][0], candidates[0][1].strip()
        tokens = single.split()
        if (
            not re.search(r"[.!?]$", single)
            and not _CHATTER.match(single.lower())
            and not _STOPWORDS & {t.lower() for t in tokens}
        ):
            candidates = [(line_number, token) for token in tokens]
    words: list[tuple[int, str]] = []  # (line number, word)
    seen: set[str] = set()
    for line_number, candidate in candidates:
        word = _clean_item(candidate, cjk, scripts)
        if _acceptable(word, cjk) and word not in seen:
            seen.add(word)
            words.append((line_number, word))
    # The cue goes after the lead is found: "电脑，Windows，Office" (cue 电脑) starts in Chinese.
    return [word for word in _move_latin_lead(words, scripts) if word != cue_norm]
