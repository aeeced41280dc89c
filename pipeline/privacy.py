"""Personal data in transcripts: found and masked before any text leaves the core store.

The QA database keeps what was said, unredacted (the core store, standards section 8). Everything
that leaves it — exports, monthly reports and review pages, `callqa show`, log lines — passes
through this module once, at the output's own boundary, unless `[privacy] unredacted_outputs`
names that output.

What is masked (docs/operations.md has the table with examples):

* mobile numbers (11 digits, 1[3-9]…, optionally +86): 138****5678 — the carrier prefix and the
  last four digits stay, so a supervisor can still tell two numbers apart;
* landlines with an area code (0…, 10–12 digits) and, after a word such as 电话/座机, 7–8 digit
  local numbers: [座机号码] / [电话号码];
* ID card numbers (18 characters with a plausible birth date, or 17 digits + X; 15 digits after
  身份证): [身份证号];
* bank card numbers (16–19 digits): [银行卡号];
* street-level addresses (road + number, residential compound + building/unit/room, or what
  follows 地址/住址 up to the house number): the province, city and district stay, the rest
  becomes [详细地址]; e-mail addresses: [邮箱].

Numbers are read as people say them: Arabic digits, Chinese numerals including the telephone
readings 幺 (1), 洞 (0), 拐 (7), 勾 (9), and any mix of them, in groups separated by spaces,
commas or dashes. A number one speaker splits over two utterances (我的手机号是幺三八 /
一二三四五六七八) is found by reading that speaker's consecutive utterances as one text.

Not masked: 工号 (agent numbers), order/waybill numbers after 订单号/单号/运单…, amounts and
quantities (a number followed by 元/块/个/件…), dates and times, 400/800 service numbers, the
last four digits (尾号5678), and short numbers in ordinary sentences.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from pipeline.config import OutputName, PrivacyConfig

MOBILE_LABEL = "{prefix}****{last4}"
LANDLINE = "[座机号码]"
LOCAL_PHONE = "[电话号码]"
ID_CARD = "[身份证号]"
BANK_CARD = "[银行卡号]"
ADDRESS = "[详细地址]"
EMAIL = "[邮箱]"

# Digits as they are said. Weak readings (幺 洞 拐 勾 两 么) are digits only next to other digits.
_DIGITS = {
    **{str(d): str(d) for d in range(10)},
    **{chr(0xFF10 + d): str(d) for d in range(10)},  # full-width ０-９
    "零": "0",
    "〇": "0",
    "洞": "0",
    "一": "1",
    "幺": "1",
    "么": "1",
    "二": "2",
    "两": "2",
    "三": "3",
    "四": "4",
    "五": "5",
    "六": "6",
    "七": "7",
    "拐": "7",
    "八": "8",
    "九": "9",
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
_SEPARATORS = frozenset(" \u3000-－—–·,，、/")
_MAX_SEPARATOR_RUN = 3
# A number directly followed by one of these is a quantity or an amount, not a phone or card number.
_UNITS = (
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
)

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
_SENTENCE_END = frozenset("。！？!?；;")

# Utterances of one speaker are read as one text joined by this character, so that a number split
# over two of them is one number; replacements are split back at it.
_JOIN = "\u2063"
# Between the utterances of a split number: punctuation that ends the first and a filler that
# starts the second (我的手机号是幺三八。/ 嗯，一二三四五六七八).
_STRETCH = _SEPARATORS | frozenset("。！？!?；;：:…~～嗯啊呃额哦唔")
_MAX_STRETCH = 8


@dataclass(frozen=True)
class _Group:
    start: int
    end: int
    digits: str


@dataclass(frozen=True)
class _Run:
    groups: tuple[_Group, ...]
    x_end: int | None  # end of an ID number's final X right after the last digit


@dataclass(frozen=True)
class _Hit:
    start: int
    end: int
    masked: str | None  # digit-aligned mask (mobile, partial numbers): split by digit counts
    label: str | None  # a fixed label ([身份证号] …): repeated in every part of a split number
    digits: str = ""  # the number itself, to find the other party repeating a part of it


def _is_digit(text: str, i: int) -> bool:
    ch = text[i]
    if ch in _HOMOPHONES:
        return any(
            0 <= k < len(text) and text[k] not in _HOMOPHONES and _is_digit(text, k) for k in (i - 1, i + 1)
        )
    if ch not in _DIGITS:
        return False
    before = _NOT_DIGIT_AFTER.get(ch)
    return not (before and i > 0 and text[i - 1] in before)


def _script(ch: str) -> str:
    return "arabic" if ch.isascii() or "\uff10" <= ch <= "\uff19" else "han"


def _runs(text: str) -> list[_Run]:
    """Maximal digit runs; groups break at separators and where Arabic digits meet Chinese numerals."""
    runs: list[_Run] = []
    i, n = 0, len(text)
    while i < n:
        if not _is_digit(text, i):
            i += 1
            continue
        groups: list[_Group] = []
        start = i
        while True:
            j = start
            while j < n and _is_digit(text, j) and _script(text[j]) == _script(text[start]):
                j += 1
            groups.append(_Group(start, j, "".join(_digit(c) for c in text[start:j])))
            if j < n and _is_digit(text, j):  # Arabic digits meet Chinese numerals: a new group
                start = j
                continue
            k = j
            while k < n and k - j <= _MAX_STRETCH and (text[k] in _STRETCH or text[k] == _JOIN):
                k += 1
            stretch = text[j:k]
            joined = _JOIN in stretch  # the end of one utterance and the start of the next
            if (
                k < n
                and _is_digit(text, k)
                and (joined or (len(stretch) <= _MAX_SEPARATOR_RUN and _plain(stretch)))
            ):
                start = k
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
            runs.append(_Run(tuple(groups), x_end))
        i = max(groups[-1].end, x_end or 0)
    return runs


def _digit(ch: str) -> str:
    return _HOMOPHONES.get(ch) or _DIGITS[ch]


def _trim_homophones(text: str, run: _Run) -> _Run | None:
    """The run without the homophones at its two ends (我要|一三八…), or None when it has none."""
    groups = list(run.groups)
    first, last = groups[0], groups[-1]
    lead = len(first.digits) - len(text[first.start : first.end].lstrip("".join(_HOMOPHONES)))
    trail = len(last.digits) - len(text[last.start : last.end].rstrip("".join(_HOMOPHONES)))
    if not lead and not trail:
        return None
    if lead:
        groups[0] = _Group(first.start + lead, first.end, first.digits[lead:])
    if trail:
        g = groups[-1]
        groups[-1] = _Group(g.start, g.end - trail, g.digits[: len(g.digits) - trail])
    kept = tuple(g for g in groups if g.digits)
    return _Run(kept, None if trail else run.x_end) if kept else None


def _plain(stretch: str) -> bool:
    return all(c in _SEPARATORS for c in stretch)


def _context(text: str, start: int) -> str | None:
    """The kind of number the words just before `start` announce, if any (the nearest keyword wins)."""
    window_start = max(0, start - _CONTEXT_REACH - 5)
    window = text[window_start:start].replace(_JOIN, "")
    best: tuple[int, str] | None = None
    for kind, words in _CONTEXT_WORDS.items():
        for word in words:
            at = window.rfind(word)
            if at < 0:
                continue
            between = window[at + len(word) :]
            if (
                len(between) > _CONTEXT_REACH
                or any(c in _SENTENCE_END for c in between)
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
        _is_digit(text, i) and _is_digit(text, i + 1) for i in range(len(text) - 1)
    )


def _followed_by_unit(text: str, end: int) -> bool:
    rest = text[end : end + 3].lstrip(" ")
    return rest.startswith(_UNITS)


def _plausible_date(text: str) -> bool:
    try:
        day = date(int(text[0:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return False
    return 1900 <= day.year <= 2100


def _mask_mobile(digits: str) -> str:
    prefix = digits[:-8]
    return f"{prefix}****{digits[-4:]}"


_SAFE = ("", "")  # a number positively known not to be personal (a hotline, an agent or order number)


def _classify(
    digits: str, x: bool, context: str | None, date_like: bool, whole: bool, single: bool
) -> tuple[str, str] | None:
    """(masked, label) for a personal number, _SAFE for a number known not to be one, None when
    nothing is known (a shorter part of the run may still be one). `whole`: the run's digits, all of
    them, not a part of them."""
    n = len(digits)
    if context == "order" or (context == "agent" and single):
        return _SAFE  # an order number (however long), an agent number (the group after 工号)
    if context == "agent":
        return None
    if x and n == 17:
        return "", ID_CARD
    if n == 18 and _plausible_date(digits[6:14]):
        return "", ID_CARD
    if n == 15 and context == "id" and _plausible_date("19" + digits[6:12]):
        return "", ID_CARD
    if n == 11 and digits[0] == "1" and digits[1] in "3456789":
        return _mask_mobile(digits), ""
    if n == 13 and digits.startswith("86") and digits[2] == "1" and digits[3] in "3456789":
        return _mask_mobile(digits), ""
    if 16 <= n <= 19:
        return "", BANK_CARD
    if n == 10 and digits[:3] in ("400", "800"):
        return _SAFE
    if date_like:
        return _SAFE if whole else None
    if digits[0] == "0" and 10 <= n <= 12:
        return "", LANDLINE
    if context == "phone" and 7 <= n <= 8 and digits[0] not in "01":
        return "", LOCAL_PHONE
    if whole and context in ("phone", "id", "card") and n >= 6:
        # a part of a number (the rest misheard or said later): masked all the same
        if context == "id":
            return "", ID_CARD
        if context == "card":
            return "", BANK_CARD
        return "*" * (n - 4) + digits[-4:], ""  # a phone number: only the last four stay
    return None


def _date_like(groups: Sequence[_Group]) -> bool:
    digits = "".join(g.digits for g in groups)
    if (len(groups) == 3 and [len(g.digits) for g in groups] == [4, 2, 2]) or (
        len(groups) == 1 and len(digits) == 8
    ):
        return _plausible_date(digits)
    return False


def _number_hits(text: str) -> list[_Hit]:
    """Personal numbers in `text`: for each run the longest leftmost stretch of groups that is one."""
    hits: list[_Hit] = []
    for run in _runs(text):
        found = _run_hits(text, run)
        trimmed = None if found else _trim_homophones(text, run)
        hits += _run_hits(text, trimmed) if trimmed is not None else found
    return hits


def _run_hits(text: str, run: _Run) -> list[_Hit]:
    """The longest leftmost stretch of groups of one run that is a personal number, and so on."""
    hits: list[_Hit] = []
    groups = run.groups
    i = 0
    while i < len(groups):
        context = _context(text, groups[i].start)
        for j in range(len(groups) - 1, i - 1, -1):
            chosen = groups[i : j + 1]
            digits = "".join(g.digits for g in chosen)
            end = chosen[-1].end
            x = j == len(groups) - 1 and run.x_end is not None and len(digits) == 17
            if _followed_by_unit(text, end) and not x:
                continue
            whole = i == 0 and j == len(groups) - 1
            verdict = _classify(digits, x, context, _date_like(chosen), whole, i == j)
            if verdict is None:
                continue
            masked, label = verdict
            if masked or label:
                stop = run.x_end if x and run.x_end is not None else end
                hits.append(_Hit(chosen[0].start, stop, masked or None, label or None, digits))
            i = j  # a personal number, or one known to be safe: go on after it
            break
        i += 1
    return hits


# ---- addresses and e-mail -----------------------------------------------------------------------

_NUM = "[0-9０-９零〇一二三四五六七八九十百两幺]"
_UNIT = rf"\s*{_NUM}+\s*(?:号楼|号院|栋|幢|座|楼|单元|层|室|户|号|弄)"
_TAIL = rf"(?:{_UNIT})*(?:\s*[0-9]{{2,5}}(?![0-9]))?"
_ROAD = re.compile(rf"(?:大道|大街|路|街|巷|弄|胡同)\s*{_NUM}+\s*(?:号院|号|弄){_TAIL}")
_COMPOUND = re.compile(rf"(?:小区|花园|家园|公寓|大厦|新村|社区|公馆|苑|村){_UNIT}{_TAIL}")
_BUILDING = re.compile(rf"{_NUM}+\s*(?:号楼|栋|幢)(?:\s*{_NUM}+\s*(?:单元|层|楼))?\s*{_NUM}+\s*(?:室|号|户)?")
_ADDRESS_WORD = re.compile(r"(?:收货地址|送货地址|家庭住址|地址|住址)(?:是|在|为|：|:)?\s*")
_ADMIN_PREFIX = re.compile(
    r"(?:[\u4e00-\u9fff]{2,6}?(?:省|自治区|特别行政区))?(?:[\u4e00-\u9fff]{2,6}?(?:市|自治州|州|盟))?"
    r"(?:[\u4e00-\u9fff]{1,6}?(?<![小社园])(?:区|县|旗))?"
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Walking back from 路/小区 over the name: these end the name (administrative units, verbs, pronouns).
_NAME_STOP = frozenset("省市区县镇乡旗州在住到是的于往去从我您你他她家就寄送址，,。：: \u3000") | {_JOIN}
_NAME_MAX = 6


def _name_start(text: str, core_start: int) -> int:
    i = core_start
    while i > 0 and core_start - i < _NAME_MAX:
        ch = text[i - 1]
        if ch in _NAME_STOP or not ("\u4e00" <= ch <= "\u9fff" or ch.isalnum()):
            break
        i -= 1
    return i


# Words ending in 路/街 that are not roads (这个线路五号 is a tour, not an address).
_NOT_ROADS = frozenset(
    (
        "线路",
        "思路",
        "电路",
        "网路",
        "套路",
        "走路",
        "一路",
        "出路",
        "退路",
        "门路",
        "销路",
        "来路",
        "逛街",
        "上街",
    )
)


def _address_hits(text: str) -> list[_Hit]:
    spans: list[tuple[int, int]] = []
    for pattern in (_ROAD, _COMPOUND):
        for m in pattern.finditer(text):
            if pattern is _ROAD and text[max(0, m.start() - 1) : m.start() + 1] in _NOT_ROADS:
                continue
            start = _name_start(text, m.start())
            if start == m.start() and pattern is _COMPOUND:
                continue  # 小区3栋 with no name: the building rule decides
            spans.append((start, m.end()))
    for m in _BUILDING.finditer(text):
        spans.append((m.start(), m.end()))
    for m in _ADDRESS_WORD.finditer(text):
        rest_start = m.end()
        rest_end = rest_start
        while rest_end < len(text) and text[rest_end] not in _SENTENCE_END and text[rest_end] not in "，,":
            rest_end += 1
        admin = _ADMIN_PREFIX.match(text, rest_start)
        detail_start = admin.end() if admin else rest_start
        last_unit = None
        for unit in re.finditer(_UNIT, text[detail_start:rest_end]):
            last_unit = unit
        if last_unit is not None:
            spans.append((detail_start, detail_start + last_unit.end()))
    for m in _EMAIL.finditer(text):
        spans.append((m.start(), m.end()))
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [_Hit(a, b, None, EMAIL if _EMAIL.fullmatch(text[a:b]) else ADDRESS) for a, b in merged if b > a]


# ---- applying hits ----------------------------------------------------------------------------


def _apply(text: str, hits: Sequence[_Hit]) -> str:
    """Replace the hits (numbers first; an address that contains a number wins over it)."""
    chosen: list[_Hit] = []
    for hit in sorted(hits, key=lambda h: (h.start, -(h.end - h.start))):
        if chosen and hit.start < chosen[-1].end:
            continue
        chosen.append(hit)
    out, pos = [], 0
    for hit in chosen:
        out.append(text[pos : hit.start])
        out.append(_replacement(text, hit))
        pos = hit.end
    out.append(text[pos:])
    return "".join(out)


def _replacement(text: str, hit: _Hit) -> str:
    """The replacement of one hit; a hit crossing utterances keeps the join characters, and a
    digit-aligned mask is split by how many digits each utterance holds."""
    parts = text[hit.start : hit.end].split(_JOIN)
    if hit.label is not None and len(parts) == 1:
        return hit.label
    if hit.label is not None:
        return _JOIN.join(_keep_edges(p, hit.label) if _has_content(p) else p for p in parts)
    assert hit.masked is not None
    out, used = [], 0
    for part in parts:
        count = sum(1 for c in part if _digitish(c))
        piece = hit.masked[used : used + count]
        used += count
        out.append(_keep_edges(part, piece))
    if used < len(hit.masked) and out:
        out[-1] += hit.masked[used:]
    return _JOIN.join(out)


def _digitish(ch: str) -> bool:
    """A character a masked stretch covers: a digit, a homophone read as one, an ID number's X."""
    return ch in _DIGITS or ch in _HOMOPHONES or ch in _X


def _has_content(part: str) -> bool:
    return any(_digitish(c) for c in part)


def _keep_edges(part: str, piece: str) -> str:
    """Keep what surrounds the digits inside an utterance's part (its trailing comma, leading 嗯)."""
    if not piece:
        return part
    first = next(i for i, c in enumerate(part) if _digitish(c))
    last = max(i for i, c in enumerate(part) if _digitish(c))
    return part[:first] + piece + part[last + 1 :]


def redact_text(text: str) -> str:
    """One text on its own: a finding's evidence, a note, a log line, an error message."""
    if not text:
        return text
    return _apply(text, _number_hits(text) + _address_hits(text))


def redact_utterances(lines: Sequence[tuple[str, str]]) -> list[str]:
    """The texts of a call's utterances, (speaker, text) in time order, redacted together.

    A number that one speaker spreads over consecutive utterances is caught (each speaker's
    utterances are read as one text), and so is a part of a personal number that the other party
    repeats (一三八一二三四，然后呢？) — it would give back the digits the mask hides.
    """
    out = [_apply(text, _address_hits(text)) if text else text for _, text in lines]
    by_speaker: dict[str, list[int]] = {}
    for index, (speaker, _) in enumerate(lines):
        by_speaker.setdefault(speaker, []).append(index)
    found: list[_Hit] = []
    for indices in by_speaker.values():
        joined = _JOIN.join(out[i].replace(_JOIN, "") for i in indices)
        hits = _number_hits(joined)
        found += hits
        pieces = _apply(joined, hits).split(_JOIN)
        if len(pieces) != len(indices):  # replacements keep the join characters
            raise AssertionError("redaction lost an utterance boundary")
        for i, piece in zip(indices, pieces, strict=True):
            out[i] = piece
    if found:
        out = [_mask_echoes(text, found) if text else text for text in out]
    return out


_ECHO_MIN_DIGITS = 5  # the last four digits of a mobile number stay visible anyway


def _mask_echoes(text: str, found: Sequence[_Hit]) -> str:
    hits = []
    for run in _runs(text):
        digits = "".join(g.digits for g in run.groups)
        if len(digits) < _ECHO_MIN_DIGITS:
            continue
        source = next((h for h in found if digits in h.digits), None)
        if source is not None:
            start, end = run.groups[0].start, run.groups[-1].end
            hits.append(_Hit(start, end, None if source.label else "*" * len(digits), source.label, digits))
    return _apply(text, hits) if hits else text


# ---- the outputs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Redactor:
    """Redaction as one output is configured: `enabled` False passes text through unchanged."""

    enabled: bool = True

    def text(self, text: str | None) -> str | None:
        return redact_text(text) if self.enabled and text else text

    def utterances(self, lines: Sequence[tuple[str, str]]) -> list[str]:
        return redact_utterances(lines) if self.enabled else [text for _, text in lines]


def redactor_for(config: PrivacyConfig, output: OutputName) -> Redactor:
    return Redactor(config.redacts(output))


_installed_factory: Callable[..., logging.LogRecord] | None = None


def install_log_redaction(config: PrivacyConfig) -> None:
    """Every log record of this process is redacted when it is created (whatever logger, handler or
    library writes it), unless `[privacy] unredacted_outputs` contains "logs". Idempotent."""
    global _installed_factory
    if not config.redacts("logs"):
        return
    current = logging.getLogRecordFactory()
    if current is _installed_factory:
        return

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = current(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call: leave it to logging's own error report
            return record
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return record

    _installed_factory = factory
    logging.setLogRecordFactory(factory)
