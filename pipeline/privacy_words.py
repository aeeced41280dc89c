"""Personal data that is not a phone, ID or card number (used by `pipeline.privacy`): addresses,
e-mail addresses (written or spoken: 艾特…点com), WeChat and QQ ids, licence plates, passport and
travel-permit numbers, credentials (verification codes, CVV, card expiry, passwords) and people's
names after the words that introduce them (我叫张伟; jieba's part-of-speech tags confirm a name).
"""

from __future__ import annotations

import re
from functools import lru_cache

from pipeline.privacy_numbers import JOIN, SENTENCE_END, Hit

ADDRESS = "[详细地址]"
EMAIL = "[邮箱]"
WECHAT = "[微信号]"
QQ = "[QQ号]"
PLATE = "[车牌号]"
PASSPORT = "[护照号]"
CODE = "[验证码]"
CVV = "[安全码]"
EXPIRY = "[有效期]"
PASSWORD = "[密码]"
NAME = "[姓名]"

_NUMERALS = "零〇一二三四五六七八九十百两幺洞拐勾壹贰叁肆伍陆柒捌玖"
_NUM = f"[0-9０-９{_NUMERALS}]"
_NUM_OR_LETTER = f"(?:{_NUM}+|[A-Za-z](?![A-Za-z]))"  # 3栋 or A座
_UNIT = rf"\s*{_NUM_OR_LETTER}\s*(?:号楼|号院|栋|幢|座|楼|单元|层|室|户|号|弄|组|排|期)"
_NUMBERED_UNIT = rf"\s*{_NUM}+\s*(?:号楼|号院|栋|幢|座|楼|单元|层|室|户|号|弄)"
_TAIL = rf"(?:{_UNIT})*(?:\s*[0-9]{{2,5}}(?![0-9]))?"
_ROAD = re.compile(rf"(?:大道|大街|路|街|巷|弄|胡同)\s*{_NUM}+\s*(?:号院|号|弄){_TAIL}")
_COMPOUND = re.compile(
    rf"(?:小区|花园|家园|公寓|大厦|大楼|广场|园区|科技园|新村|社区|公馆|苑|村){_UNIT}{_TAIL}"
)
_NUMBERED = re.compile(_NUM)
_GENERIC = ("小区", "花园", "家园", "新村", "社区", "公馆", "苑", "村", "公寓")
_BUILDING = re.compile(
    rf"{_NUM}+\s*(?:号楼|栋|幢)(?:\s*{_NUM}+\s*(?:单元|层|楼))?\s*{_NUM}+\s*(?:室|号|户)?"
    rf"|{_NUM}+\s*期\s*{_NUM}+\s*(?:排|栋|幢)\s*{_NUM}+\s*(?:号|室|户)"  # 二期5排12号
)
_ADDRESS_WORD = re.compile(r"(?:收货地址|送货地址|家庭住址|地址|住址)(?:是|在|为|：|:)?\s*")
_ADMIN_PREFIX = re.compile(
    r"(?:[\u4e00-\u9fff]{2,6}?(?:省|自治区|特别行政区))?(?:[\u4e00-\u9fff]{2,6}?(?:市|自治州|州|盟))?"
    r"(?:[\u4e00-\u9fff]{1,6}?(?<![小社园])(?:区|县|旗))?"
)
# Walking back from 路/小区 over the name: these end the name (administrative units, verbs, pronouns).
_NAME_STOP = frozenset("省市区县镇乡旗州在住到是的于往去从我您你他她就寄送址放，,。：: \u3000") | {JOIN}
_NAME_MAX = 6
# Words ending in 路/街 that are not roads (这个线路五号 is a tour, not an address).
_NOT_ROADS = frozenset(
    [
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
    ]
)

_LOCAL = f"[A-Za-z0-9_.{_NUMERALS}-]"
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# The recogniser's "." comes out as 。 (pipeline/asr/transcribe.py: normalize_punctuation), and its
# "at" can touch the digits before it (1090279091at qq。com).
_SPOKEN_EMAIL = re.compile(
    rf"{_LOCAL}+\s*(?:艾特|@|(?<![A-Za-z])at(?![A-Za-z])|圈a)\s*[A-Za-z0-9{_NUMERALS}-]+"
    r"(?:\s*(?:点|\.|。|\bdot\b)\s*(?:com|cn|net|org|edu|gov|康姆))+",
    re.IGNORECASE,
)

_SAID = r"(?:号码|号)?(?:是|为|就是|：|:)?\s*"
_WECHAT = re.compile(
    rf"微信{_SAID}(?P<v>wxid_[A-Za-z0-9_-]{{4,}}|[A-Za-z][A-Za-z0-9_-]{{5,19}})(?![A-Za-z0-9_-])"
)
_QQ = re.compile(rf"(?:QQ|qq|扣扣){_SAID}(?P<v>[0-9{_NUMERALS}]{{5,11}})")
_PLATE = re.compile(
    r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼]"
    rf"[A-HJ-NP-Z][·•\s]?(?=[A-Z0-9{_NUMERALS}]*[0-9{_NUMERALS}])[A-HJ-NP-Z0-9{_NUMERALS}]{{5,6}}"
    r"(?![A-Za-z0-9])"
)
_PASSPORT = re.compile(
    r"(?:护照|通行证)(?:号码|号)?(?:是|为|：|:)?\s*(?P<v>[A-Za-z]{1,2}[0-9]{7,8})(?![0-9])"
    r"|(?<![A-Za-z0-9])(?P<e>[EG][0-9]{8})(?![0-9])"
)
_CODE_WORDS = re.compile("款号|型号|货号|编号|单号|订单|批号|车次|航班|工号")
_VALUE = rf"[A-Za-z0-9{_NUMERALS}]"
# After a credential's name: 是/为 directly, or a short clause ending in one (密码我设的是888888).
_SAID_CLAUSE = r"(?:[\u4e00-\u9fff]{0,5}?(?:是|为)|：|:)?\s*"
_CREDENTIALS = (
    (re.compile(rf"(?:验证码|校验码|动态码|动态密码){_SAID_CLAUSE}(?P<v>{_VALUE}{{4,8}})(?!{_VALUE})"), CODE),
    (
        re.compile(
            rf"(?:安全码|CVV|cvv|CVV2|背面后?三位){_SAID_CLAUSE}(?P<v>[0-9{_NUMERALS}]{{3,4}})(?![0-9])"
        ),
        CVV,
    ),
    (re.compile(rf"密码{_SAID_CLAUSE}(?P<v>{_VALUE}{{4,20}})(?!{_VALUE})"), PASSWORD),
    (
        re.compile(
            r"有效期(?:是|为|到|至|：|:)?\s*(?P<v>[0-9]{2}\s*/\s*[0-9]{2,4}"
            rf"|[0-9{_NUMERALS}]{{2,4}}年[0-9{_NUMERALS}]{{1,3}}月)"
        ),
        EXPIRY,
    ),
)

# A credential asked for in one utterance and said in the other party's reply (请您报一下验证码 /
# 三八五七二一); a warning (不要把验证码告诉任何人) asks for nothing.
_ASKED = (
    (re.compile("验证码|校验码|动态码|短信码"), CODE),
    (re.compile("安全码|CVV|cvv"), CVV),
    (re.compile("密码"), PASSWORD),
)
_ASKING = re.compile("多少|报一下|说一下|念一下|读一下|告诉我|提供|是什么|[？?]")
_WARNING = re.compile("不要|别|切勿|请勿|不会|不能")


def asked_credential(text: str) -> str | None:
    """The label of the credential `text` asks the other party for, if it asks for one."""
    if not _ASKING.search(text) or _WARNING.search(text):
        return None
    return next((label for pattern, label in _ASKED if pattern.search(text)), None)


_NAME_CUES = re.compile(
    r"(?:我叫|我的名字(?:是|叫做|叫)|名字(?:是|叫做|叫)|姓名(?:是|叫)?|收件人(?:是|叫)?|联系人(?:是|叫)?|"
    r"持卡人(?:姓名)?(?:是|叫)?|户主(?:是|叫)?|本人(?:姓名)?是)\s*"
)
# Common surnames (the two-character ones first), for names jieba does not know.
_SURNAMES_2 = ("欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "慕容", "令狐", "长孙")
_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_TITLES = (
    "师傅",
    "先生",
    "女士",
    "小姐",
    "经理",
    "老师",
    "总",
    "阿姨",
    "大爷",
    "主任",
    "医生",
    "老板",
    "姐",
    "哥",
)
_NOT_NAME_AFTER = ("了", "过", "着", "你", "您", "他", "她", "我", "什么", "啥", "一下", "客服", "人")


def _name_start(text: str, core_start: int) -> int:
    i = core_start
    while i > 0 and core_start - i < _NAME_MAX:
        ch = text[i - 1]
        if ch in _NAME_STOP or not ("\u4e00" <= ch <= "\u9fff" or ch.isalnum()):
            break
        i -= 1
    return i


def address_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for pattern in (_ROAD, _COMPOUND):
        for m in pattern.finditer(text):
            if pattern is _ROAD and text[max(0, m.start() - 1) : m.start() + 1] in _NOT_ROADS:
                continue
            start = _name_start(text, m.start())
            if pattern is _COMPOUND and not _NUMBERED.search(m.group()):
                continue  # 中石化大厦B座: a building without a room or house number
            if start == m.start() and pattern is _COMPOUND and m.group().startswith(_GENERIC):
                continue  # 小区3栋 with no name: the building rule decides
            spans.append((start, m.end()))
    for m in _BUILDING.finditer(text):
        spans.append((m.start(), m.end()))
    for m in _ADDRESS_WORD.finditer(text):
        rest_start = m.end()
        rest_end = rest_start
        while rest_end < len(text) and text[rest_end] not in SENTENCE_END and text[rest_end] not in "，,":
            rest_end += 1
        admin = _ADMIN_PREFIX.match(text, rest_start)
        detail_start = admin.end() if admin else rest_start
        last_unit = None
        for unit in re.finditer(_NUMBERED_UNIT, text[detail_start:rest_end]):
            last_unit = unit
        if last_unit is not None:
            spans.append((detail_start, detail_start + last_unit.end()))
    return spans


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged if b > a]


@lru_cache(maxsize=4096)
def _jieba_names(text: str) -> tuple[str, ...]:
    """The words jieba tags as person names (nr…) in `text`."""
    import jieba
    import jieba.posseg

    jieba.setLogLevel(60)
    return tuple(p.word for p in jieba.posseg.cut(text) if p.flag.startswith("nr"))


def _name_end(text: str, start: int) -> int | None:
    """The end of a name that starts at `start` (after 我叫 …), or None when none does."""
    rest = text[start : start + 4]
    if not rest or rest.startswith(_NOT_NAME_AFTER):
        return None
    surname = 2 if rest.startswith(_SURNAMES_2) else 1 if rest[0] in _SURNAMES else 0
    if text.startswith(_TITLES, start + max(surname, 1)):
        return None  # 王师傅, 张经理: a surname with a title is how people are addressed, not a name
    for name in _jieba_names(text[start : start + 8]):
        if rest.startswith(name) and len(name) >= 2:
            return start + len(name)
    if not surname:
        return None
    end = start + surname
    while end < len(text) and end - start < surname + 2 and "\u4e00" <= text[end] <= "\u9fff":
        if text[end] in "的了吧呢啊呀吗，。是在想要":
            break
        end += 1
    return end if end - start > surname else None


def word_hits(text: str) -> list[Hit]:
    """Addresses, e-mails, ids, plates, credentials and names in `text`, as labelled hits."""
    hits = [Hit(a, b, None, ADDRESS) for a, b in _merged(address_spans(text))]
    for pattern in (_EMAIL, _SPOKEN_EMAIL):
        hits += [Hit(m.start(), m.end(), None, EMAIL) for m in pattern.finditer(text)]
    for pattern, label in ((_WECHAT, WECHAT), (_QQ, QQ), *_CREDENTIALS):
        hits += [Hit(m.start("v"), m.end("v"), None, label) for m in pattern.finditer(text)]
    hits += [Hit(m.start(), m.end(), None, PLATE) for m in _PLATE.finditer(text)]
    for m in _PASSPORT.finditer(text):
        group = "v" if m.group("v") else "e"
        if group == "e" and _CODE_WORDS.search(text, max(0, m.start() - 6), m.start()):
            continue  # 款号是E12345678: a product or order code of the same shape
        hits.append(Hit(m.start(group), m.end(group), None, PASSPORT))
    for m in _NAME_CUES.finditer(text):
        end = _name_end(text, m.end())
        if end is not None:
            hits.append(Hit(m.end(), end, None, NAME))
    return hits
