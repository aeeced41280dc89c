"""Personal numbers in transcript text, read as people say them (used by `pipeline.privacy`).

Digits are Arabic, full-width, Chinese numerals, financial numerals (壹贰叁), the telephone readings
幺 (1), 洞 (0), 拐 (7), 勾 (9), 两 (2), the ASR homophones of 幺 (要/腰/妖) inside a run of numerals,
and pairs (十二 三十四 = 12 34). A number is a run of groups joined by separators, fillers (嗯 呃),
full stops, dots, 杠 or brackets, by words that announce the next part (前三位是…，后面是…), or by
the boundary between two utterances (the caller joins them with `JOIN`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

MOBILE_LABEL = "{prefix}****{last4}"
LANDLINE = "[座机号码]"
LOCAL_PHONE = "[电话号码]"
ID_CARD = "[身份证号]"
BANK_CARD = "[银行卡号]"

# Utterances read as one text are joined by this character; replacements are split back at it.
JOIN = "\u2063"

# Digits as they are said. Weak readings (幺 洞 拐 勾 两 么) are digits only next to other digits.
_DIGITS = {
    **{str(d): str(d) for d in range(10)},
    **{chr(0xFF10 + d): str(d) for d in range(10)},  # full-width ０-９
    **{c: str(d) for d, c in enumerate("零一二三四五六七八九")},
    **{c: str(d) for d, c in enumerate("零壹贰叁肆伍陆柒捌玖")},  # financial numerals
    "〇": "0",
    "洞": "0",
    "幺": "1",
    "么": "1",
    "两": "2",
    "拐": "7",
    "勾": "9",
    "钩": "9",
}
_WEAK = frozenset("幺么洞拐勾钩两")
# What the recogniser writes for a 幺 it heard (yāo): everyday words (不要, 需要, 腰疼) unless they
# sit inside a run of numerals, i.e. next to a digit that is not one of them. A run that only makes
# a personal number without its homophones at the edges (我要一三八…) is read both ways.
_HOMOPHONES = {"要": "1", "腰": "1", "妖": "1"}
_NOT_DIGIT_AFTER = {"么": frozenset("什怎这那多要")}  # 什么 怎么 … are words, not 1
_X = frozenset("Xx叉ｘＸ")
# Pairs: 十二 = 12, 三十四 = 34, 二十 = 20 (a number said two digits at a time).
_PAIR = re.compile("([一二三四五六七八九两])?十([一二三四五六七八九])?(?![一二三四五六七八九零十百千万])")
_SEPARATORS = frozenset(" \u3000-－—–·,，、/")
# Inside one utterance groups may also be joined by these (幺三八，嗯，一二三四; 138.1234.5678).
_INLINE = _SEPARATORS | frozenset("。.．()（）[]【】杠嗯啊呃额哦")
_MAX_INLINE = 4
# Words that announce the next part of the same number: 前三位是138，后面是…; 后八位12345678.
_CONNECTOR = re.compile(
    rf"[，,、。\s{JOIN}]*(?:然后|接着|再)?"
    r"(?:(?:后面|后边|中间|最后|剩下的?)(?:的)?(?:[一二三四五六七八九十两\d]{1,2}位)?|后[一二三四五六七八九十两\d]{1,2}位)"
    r"(?:数字|号码)?(?:是|为|就是)?[：:，,\s]*"
)
# A number directly followed by one of these is a quantity or an amount — unless it is as long as
# a phone, ID or card number (我手机13812345678天天开机的).
_UNITS = tuple(
    [
        "元",
        "块",
        "毛",
        "角",
        "万",
        "亿",
        "千",
        "百",
        "个",
        "件",
        "台",
        "次",
        "天",
        "年",
        "月",
        "日",
        "岁",
        "斤",
        "公斤",
        "克",
        "米",
        "分钟",
        "秒",
        "小时",
        "%",
        "％",
        "人",
        "箱",
        "份",
        "张",
        "期",
        "笔",
    ]
)
_MAX_QUANTITY_DIGITS = 10

_CONTEXT_WORDS: dict[str, tuple[str, ...]] = {
    "agent": ("工号",),
    "order": (
        "订单号",
        "订单编号",
        "订单",
        "单号",
        "运单",
        "快递单",
        "物流单",
        "工单",
        "编号",
        "流水号",
        "合同号",
    ),
    "id": ("身份证", "证件号", "证件"),
    "card": ("银行卡", "信用卡", "储蓄卡", "借记卡", "卡号", "账号", "帐号", "账户", "卡"),
    "phone": (
        "手机",
        "电话",
        "号码",
        "座机",
        "联系方式",
        "拨打",
        "打给",
        "致电",
        "回拨",
        "来电",
        "微信",
        "联系",
    ),
}
_CONTEXT_REACH = 8  # characters between the keyword and the number
SENTENCE_END = frozenset("。！？!?；;")

# Between the utterances of a split number: punctuation that ends the first and a filler that
# starts the second (我的手机号是幺三八。/ 嗯，一二三四五六七八).
_STRETCH = _SEPARATORS | frozenset("。！？!?；;：:…~～嗯啊呃额哦唔")
_MAX_STRETCH = 8


@dataclass(frozen=True)
class Group:
    start: int
    end: int
    digits: str
    kept_before: bool = False  # the words before it (，后面是) stay in the redacted text


@dataclass(frozen=True)
class Run:
    groups: tuple[Group, ...]
    x_end: int | None  # end of an ID number's final X right after the last digit


@dataclass(frozen=True)
class Hit:
    start: int
    end: int
    masked: str | None  # digit-aligned mask (mobile, partial numbers): split by digit counts
    label: str | None  # a fixed label ([身份证号] …): repeated in every part of a split number
    digits: str = ""  # the number itself, to find the other party repeating a part of it
    groups: tuple[Group, ...] = ()  # where its digits are; () for a span replaced as a whole
    partial: bool = False  # only a part of a number, masked because of the words before it


def is_digit(text: str, i: int) -> bool:
    ch = text[i]
    if ch in _HOMOPHONES:
        return any(
            0 <= k < len(text) and text[k] not in _HOMOPHONES and is_digit(text, k) for k in (i - 1, i + 1)
        )
    if ch not in _DIGITS:
        return False
    before = _NOT_DIGIT_AFTER.get(ch)
    return not (before and i > 0 and text[i - 1] in before)


def digitish(ch: str) -> bool:
    """A character a masked stretch covers: a digit, a homophone read as one, an ID number's X."""
    return ch in _DIGITS or ch in _HOMOPHONES or ch in _X or ch == "十"


def _script(ch: str) -> str:
    return "arabic" if ch.isascii() or "\uff10" <= ch <= "\uff19" else "han"


def _group_at(text: str, start: int) -> Group | None:
    """The group of digits of one script (or one pair) that starts at `start`, if any."""
    pair = _PAIR.match(text, start)
    if pair and (pair.group(1) or pair.group(2)):
        digits = _DIGITS[pair.group(1) or "一"] + _DIGITS[pair.group(2) or "零"]
        return Group(start, pair.end(), digits)
    if not is_digit(text, start):
        return None
    j = start
    while j < len(text) and is_digit(text, j) and _script(text[j]) == _script(text[start]):
        if text[j] in "一二三四五六七八九两" and _PAIR.match(text, j) and j > start:
            break  # 一三八十二: the pair starts its own group
        j += 1
    return Group(start, j, "".join(_digit(c) for c in text[start:j]))


def runs(text: str) -> list[Run]:
    """Maximal digit runs; groups break at separators and where Arabic digits meet Chinese numerals."""
    found: list[Run] = []
    i, n = 0, len(text)
    while i < n:
        group = _group_at(text, i)
        if group is None:
            i += 1
            continue
        if i > 0 and text[i - 1] in "(（[【" and group.end < n and text[group.end] in ")）]】":
            group = Group(i - 1, group.end, group.digits)  # (010)62345678: the brackets go with it
        groups = [group]
        while True:
            j = groups[-1].end
            nxt = _group_at(text, j) if j < n else None
            if nxt is not None:  # Arabic digits meet Chinese numerals, or a pair: a new group
                groups.append(nxt)
                continue
            k = j
            while k < n and k - j <= _MAX_STRETCH and (text[k] in _STRETCH or text[k] == JOIN):
                k += 1
            stretch = text[j:k]
            joined = JOIN in stretch  # the end of one utterance and the start of the next
            inline = k
            while inline < n and inline - j < _MAX_INLINE and text[inline] in _INLINE:
                inline += 1
            if k < n and joined and (nxt := _group_at(text, k)) is not None:
                groups.append(nxt)
                continue
            if inline < n and inline > j and (nxt := _group_at(text, inline)) is not None:
                groups.append(nxt)
                continue
            connector = _CONNECTOR.match(text, j)
            if connector and connector.end() > j and connector.end() < n:
                nxt = _group_at(text, connector.end())
                if nxt is not None:
                    groups.append(Group(nxt.start, nxt.end, nxt.digits, kept_before=True))
                    continue
            break
        x_end = None
        last = groups[-1].end
        if last < n and text[last] in _X:
            x_end = last + 1
        elif last + 1 < n and text[last] == " " and text[last + 1] in _X:
            x_end = last + 2
        # Weak readings alone (两, 洞 …) are words, not numbers.
        if not (len(groups) == 1 and all(c in _WEAK for c in text[groups[0].start : groups[0].end])):
            found.append(Run(tuple(groups), x_end))
        i = max(groups[-1].end, x_end or 0)
    return found


def _digit(ch: str) -> str:
    return _HOMOPHONES.get(ch) or _DIGITS[ch]


def _trim_homophones(text: str, run: Run) -> Run | None:
    """The run without the homophones at its two ends (我要|一三八…), or None when it has none."""
    groups = list(run.groups)
    first, last = groups[0], groups[-1]
    lead = len(first.digits) - len(text[first.start : first.end].lstrip("".join(_HOMOPHONES)))
    trail = len(last.digits) - len(text[last.start : last.end].rstrip("".join(_HOMOPHONES)))
    if not lead and not trail:
        return None
    if lead:
        groups[0] = Group(first.start + lead, first.end, first.digits[lead:])
    if trail:
        g = groups[-1]
        groups[-1] = Group(g.start, g.end - trail, g.digits[: len(g.digits) - trail], g.kept_before)
    kept = tuple(g for g in groups if g.digits)
    return Run(kept, None if trail else run.x_end) if kept else None


def _context(text: str, start: int) -> str | None:
    """The kind of number the words just before `start` announce, if any (the nearest keyword wins)."""
    window_start = max(0, start - _CONTEXT_REACH - 5)
    window = text[window_start:start].replace(JOIN, "")
    best: tuple[int, str] | None = None
    for kind, words in _CONTEXT_WORDS.items():
        for word in words:
            at = window.rfind(word)
            if at < 0:
                continue
            between = window[at + len(word) :]
            if (
                len(between) > _CONTEXT_REACH
                or any(c in SENTENCE_END for c in between)
                or _has_number(between)
            ):
                continue  # too far, another sentence, or the keyword's own number came first
            # longer keywords win over their prefixes at the same place (订单号 over 订单)
            key = at + len(word)
            if best is None or key > best[0] or (key == best[0] and kind in ("agent", "order")):
                best = (key, kind)
    return best[1] if best else None


def _has_number(text: str) -> bool:
    """An Arabic digit or two numerals in a row (后六位 is a phrase, 一三八 a number)."""
    return any(c.isdigit() for c in text) or any(
        is_digit(text, i) and is_digit(text, i + 1) for i in range(len(text) - 1)
    )


def followed_by_unit(text: str, end: int) -> bool:
    rest = text[end : end + 3].lstrip(" ")
    return rest.startswith(_UNITS)


def _plausible_date(text: str) -> bool:
    try:
        day = date(int(text[0:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return False
    return 1900 <= day.year <= 2100


def _mobile(digits: str) -> bool:
    n = len(digits)
    return (n == 11 and digits[0] == "1" and digits[1] in "3456789") or (
        n == 13 and digits.startswith("86") and digits[2] == "1" and digits[3] in "3456789"
    )


def _id_number(digits: str, x: bool) -> bool:
    return (x and len(digits) == 17) or (len(digits) == 18 and _plausible_date(digits[6:14]))


def complete_number(digits: str) -> bool:
    """A personal number on its own: a mobile, ID, card number or landline with area code."""
    n = len(digits)
    return (
        _mobile(digits) or _id_number(digits, False) or 16 <= n <= 19 or (digits[:1] == "0" and 10 <= n <= 12)
    )


_SAFE = ("", "")  # a number positively known not to be personal (a hotline, an agent or order number)


def _classify(
    digits: str, x: bool, context: str | None, date_like: bool, whole: bool, single: bool
) -> tuple[str, str] | None:
    """(masked, label) for a personal number, _SAFE for a number known not to be one, None when
    nothing is known (a shorter part of the run may still be one). `whole`: the run's digits, all of
    them, not a part of them."""
    n = len(digits)
    if context == "agent" and single:
        return _SAFE  # an agent number (the group after 工号)
    if context == "agent":
        return None
    # An order or waybill number may be as long as a card number, but never a mobile or ID number.
    if _id_number(digits, x):
        return "", ID_CARD
    if _mobile(digits):
        return f"{digits[:-8]}****{digits[-4:]}", ""
    if context == "order":
        return _SAFE
    if n == 15 and context == "id" and _plausible_date("19" + digits[6:12]):
        return "", ID_CARD
    if 16 <= n <= 19:
        return "", ID_CARD if context == "id" else BANK_CARD
    if n == 10 and digits[:3] in ("400", "800"):
        return _SAFE
    if date_like:
        return _SAFE if whole else None
    if digits[0] == "0" and 10 <= n <= 12:
        return "", LANDLINE
    # Local numbers start with 2–8; 9… are service numbers (95588, 95105888).
    if context == "phone" and 7 <= n <= 8 and digits[0] not in "019":
        return "", LOCAL_PHONE
    if whole and context is None and n == 8 and digits[0] not in "019":
        return "", LOCAL_PHONE  # a local number said without a keyword (有事打88886666找我)
    if whole and context in ("phone", "id", "card") and n >= 6:
        # a part of a number (the rest misheard or said later): masked all the same
        if context == "id":
            return "", ID_CARD
        if context == "card":
            return "", BANK_CARD
        return "*" * (n - 4) + digits[-4:], ""  # a phone number: only the last four stay
    return None


def _date_like(groups: Sequence[Group]) -> bool:
    digits = "".join(g.digits for g in groups)
    if (len(groups) == 3 and [len(g.digits) for g in groups] == [4, 2, 2]) or (
        len(groups) == 1 and len(digits) == 8
    ):
        return _plausible_date(digits)
    return False


def number_hits(text: str) -> list[Hit]:
    """Personal numbers in `text`: for each run the longest leftmost stretch of groups that is one."""
    hits: list[Hit] = []
    for run in runs(text):
        found = _run_hits(text, run)
        trimmed = None if found else _trim_homophones(text, run)
        hits += _run_hits(text, trimmed) if trimmed is not None else found
    return hits


def _run_hits(text: str, run: Run) -> list[Hit]:
    """The longest leftmost stretch of groups of one run that is a personal number, and so on."""
    hits: list[Hit] = []
    groups = run.groups
    i = 0
    while i < len(groups):
        context = _context(text, groups[i].start)
        for j in range(len(groups) - 1, i - 1, -1):
            chosen = groups[i : j + 1]
            digits = "".join(g.digits for g in chosen)
            end = chosen[-1].end
            x = j == len(groups) - 1 and run.x_end is not None and len(digits) == 17
            if followed_by_unit(text, end) and not x and len(digits) <= _MAX_QUANTITY_DIGITS:
                continue
            whole = i == 0 and j == len(groups) - 1
            verdict = _classify(digits, x, context, _date_like(chosen), whole, i == j)
            if verdict is None:
                continue
            masked, label = verdict
            if masked or label:
                stop = run.x_end if x and run.x_end is not None else end
                full = _mobile(digits) or _id_number(digits, x) or label in (BANK_CARD, LANDLINE)
                hits.append(
                    Hit(
                        chosen[0].start,
                        stop,
                        masked or None,
                        label or None,
                        digits,
                        tuple(chosen),
                        partial=not full,
                    )
                )
            i = j  # a personal number, or one known to be safe: go on after it
            break
        i += 1
    return hits
