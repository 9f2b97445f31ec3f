"""Special tokens in the tier-1 parser: reasoning blocks, and the chat-template tokens a model leaves in its
raw text, mid-list or after its answer (``<|eot_id|>``, ``<end_of_turn>``, a leaked
``<|start_header_id|>assistant<|end_header_id|>``)."""

from __future__ import annotations

import re

# Reasoning blocks, and the special tokens chat models leave in raw text: a run of them, with the role
# names of a leaked chat template ("<|eot_id|><|start_header_id|>assistant<|end_header_id|>"), is one break.
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.S | re.I)
_SPECIAL_TOKEN = (
    r"<\|[^<>|\s]{1,40}\|>|</?s>|\[/?INST\]|<<\s*/?SYS\s*>>"
    r"|<(?:eos|bos|pad|unk|mask|end_of_turn|start_of_turn|end_of_text|eot|endoftext|end)>"
)
_SPECIAL_RUN = re.compile(
    f"(?:\\s*(?:{_SPECIAL_TOKEN})(?:[ \\t]*(?:assistant|model|user|system|human)(?=\\s*(?:<|\\n|$)))?)+", re.I
)
_OTHER_SPEAKER = re.compile(r"\b(?:user|system|human)\b", re.I)  # the text after the break is not the model's
_SAME_SPEAKER = re.compile(r"\b(?:assistant|model)\b", re.I)
# Decoded without its special tokens, a leaked template leaves its role name glued on: "树木assistant\n\n3. 绿色".
_LEAKED_ROLE = re.compile(r"(?<=[^\W\d_])assistant(?=[ \t]*\n)")
# After a bare end of turn the list goes on: a separator, a numbered or bulleted item, or a line of 3+ items.
_LIST_GOES_ON = re.compile(
    r"\s*(?:[,;、，；|]|(?:\d{1,3}[.)、](?!\d)|[-*•])[ \t]*[^\W\d]|[^\n]*[,;、，；][^\n]*[,;、，；])"
)
_LONE_ITEM_LINE = re.compile(r"[^\W\d][^\n,;、，；.!?。！？:：]{0,24}")
_BARE_NUMBER_TAIL = re.compile(r"(?:(?<=[,;、，；\s])|^)(\d{1,3})[.)、]?\s*$")


def cut_special_tokens(text: str) -> str:
    """Drop reasoning blocks and leading special tokens; stop where a run of special tokens ends the answer.

    The answer goes on after a run that opens a new turn of the model itself (a leaked template: "...
    <|start_header_id|>assistant<|end_header_id|>") or when the list goes on after it (a separator, a
    numbered item, a line of items): the run is a separator then, and a bare list number just before it
    is dropped. A run that hands over to the user or the system ends the answer."""
    text = _LEAKED_ROLE.sub("\n", _THINK.sub(" ", text))
    while True:
        match = _SPECIAL_RUN.search(text)
        if match is None:
            return text
        head, run, rest = text[: match.start()], match.group(0), text[match.end() :]
        if not head.strip():
            text = rest
        elif not _OTHER_SPEAKER.search(run) and (_SAME_SPEAKER.search(run) or _list_goes_on(head, rest)):
            text = _BARE_NUMBER_TAIL.sub("", head) + ", " + rest
        else:
            return _drop_unfinished_number(head)


def _list_goes_on(head: str, rest: str) -> bool:
    """After a bare end of turn: a separator, a numbered item or a line of items follows, or, in a list of one
    word a line, the lines on both sides of the break are lone words."""
    if _LIST_GOES_ON.match(rest):
        return True
    before, after = head.rstrip().rsplit("\n", 1)[-1].strip(), rest.strip().split("\n", 1)[0].strip()
    return bool(_LONE_ITEM_LINE.fullmatch(before) and _LONE_ITEM_LINE.fullmatch(after))


def _drop_unfinished_number(head: str) -> str:
    """ "1. 猫 2. 骨头 3" (the answer stopped after the next number): drop the number, not a real "3"."""
    tail = _BARE_NUMBER_TAIL.search(head)
    if tail is not None and re.search(f"(?:^|\\s){int(tail.group(1)) - 1}[.)、]", head):
        return head[: tail.start()]
    return head
