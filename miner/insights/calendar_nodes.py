"""Built-in marketing nodes (营销节点) and the date rules that place them in any year.

A node's date comes from exactly one rule (``dates`` for a year wins over all of them):

- ``month_day``: a fixed solar date, ``"11-11"``;
- ``lunar_month_day``: a lunar date, ``"08-15"`` (中秋), converted with ``lunar_python`` for any
  year in :data:`LUNAR_YEARS` (outside it: a :class:`ValueError` that says to add ``dates``);
- ``nth_weekday``: ``"05-SUN-2"`` = the 2nd Sunday of May (母亲节), ``"06-SUN-3"`` (父亲节);

plus an optional ``offset_days`` added to the rule's date (年货节 = 春节 − 20 days, so it stays in
the solar year of its 春节 even when 腊八 falls in December).

Phases are day offsets from the node date, inclusive. The 双11 and 618 phases follow the platforms'
presale timing: 双11 presales open around 10-20…10-24 (爆发 from 10-20; in the zhihu hot list 双十一
talk peaks in October), 618 presales around 05-20 (爆发 from 05-20). ``ip_zh`` is Xiaohongshu's own
2025 festival IP for the node (campaign name), also matched as an alias where it is unique.
"""
from __future__ import annotations

import datetime as dt
import functools
import re

__all__ = ["BUILTIN_NODES", "LUNAR_YEARS", "WEEKDAYS", "rule_date"]

LUNAR_YEARS = range(1900, 2101)          # lunar conversions offered (lunar_python covers more)
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_NTH_RE = re.compile(r"^(\d{2})-(MON|TUE|WED|THU|FRI|SAT|SUN)-([1-5])$")


def _node(key, name_zh, rule, value, phases, aliases=(), ip_zh=None):
    spec = {"key": key, "name_zh": name_zh, "aliases": list(aliases), rule: value,
            "phases": {"seeding": list(phases[0]), "burst": list(phases[1]), "after": list(phases[2])}}
    if ip_zh:
        spec["ip_zh"] = ip_zh
    return spec


_GIFT = ((-21, -8), (-7, 0), (1, 3))     # a gifting day: three weeks of 种草, one week of buying
BUILTIN_NODES: tuple[dict, ...] = (
    _node("new_year_day", "元旦", "month_day", "01-01", ((-14, -4), (-3, 1), (2, 3)), ["元旦节"]),
    {**_node("nianhuo", "年货节", "lunar_month_day", "01-01", ((-10, -1), (0, 12), (13, 19)), ["年货"]),
     "offset_days": -20},                                   # 20 days before 春节 (≈ 腊八 → 小年)
    _node("spring_festival", "春节", "lunar_month_day", "01-01", ((-30, -8), (-7, 7), (8, 14)),
          ["CNY", "过年", "过大年", "新春", "小红书过大年", "过年就来小红书"],
          "小红书过大年 / 过年就来小红书"),                                 # after ends at 元宵
    _node("lantern", "元宵", "lunar_month_day", "01-15", ((-7, -2), (-1, 0), (1, 2)), ["元宵节"]),
    _node("valentines", "情人节", "month_day", "02-14", ((-21, -4), (-3, 0), (1, 3)),
          ["214", "2.14", "214满分情人节"], "214满分情人节"),
    _node("womens_day", "女神节", "month_day", "03-08", ((-21, -6), (-5, 0), (1, 3)),
          ["三八", "妇女节", "38节", "3.8", "女王节", "我就是这样的女孩"], "我就是这样的女孩"),
    _node("labour_day", "五一", "month_day", "05-01", ((-21, -8), (-7, 4), (5, 7)),
          ["劳动节", "五一黄金周"]),
    _node("mothers_day", "母亲节", "nth_weekday", "05-SUN-2", _GIFT, ["妈妈的留白"], "妈妈的留白"),
    _node("day520", "520", "month_day", "05-20", ((-21, -6), (-5, 1), (2, 5)),
          ["网络情人节", "5.20", "520满分好礼大作战"], "520满分好礼大作战"),
    _node("childrens_day", "儿童节", "month_day", "06-01", _GIFT, ["六一", "61", "宝贝童乐会"],
          "宝贝童乐会"),
    _node("mid_year_618", "618", "month_day", "06-18", ((-42, -30), (-29, 0), (1, 7)),
          ["年中大促", "6.18"], "薯你会买"),                              # 爆发 from the 05-20 presale
    _node("fathers_day", "父亲节", "nth_weekday", "06-SUN-3", _GIFT, ["我爸有一套"], "我爸有一套"),
    _node("duanwu", "端午", "lunar_month_day", "05-05", ((-21, -6), (-5, 1), (2, 4)),
          ["端午节", "粽子节"]),
    _node("qixi", "七夕", "lunar_month_day", "07-07", ((-21, -6), (-5, 0), (1, 3)),
          ["中国情人节", "爱的N重形态"], "爱的N重形态"),
    _node("day818", "818", "month_day", "08-18", ((-21, -9), (-8, 0), (1, 3)),
          ["818发烧节", "8.18"]),
    _node("back_to_school", "开学季", "month_day", "09-01", ((-31, -15), (-14, 3), (4, 10)),
          ["开学", "返校"]),
    _node("day99", "99", "month_day", "09-09", ((-20, -9), (-8, 0), (1, 3)),
          ["99划算节", "99大促", "9.9"]),
    _node("mid_autumn", "中秋", "lunar_month_day", "08-15", ((-28, -8), (-7, 0), (1, 3)),
          ["中秋节", "月饼季", "圆在一起乐在一起"], "圆在一起乐在一起"),
    _node("national_day", "国庆", "month_day", "10-01", ((-21, -4), (-3, 6), (7, 13)),
          ["十一黄金周", "国庆节"]),
    _node("double11", "双11", "month_day", "11-11", ((-42, -23), (-22, 0), (1, 7)),
          ["双十一", "11.11"], "薯你会买"),                               # 爆发 from the ~10-20 presale
    _node("double12", "双12", "month_day", "12-12", ((-14, -4), (-3, 0), (1, 3)),
          ["双十二", "12.12"]),
    _node("christmas_new_year", "双旦", "month_day", "12-25", ((-21, -6), (-5, 7), (8, 10)),
          ["圣诞", "圣诞节", "跨年", "双旦心愿派对"], "双旦心愿派对"),          # 爆发 to 01-01
)


@functools.lru_cache(maxsize=4096)
def _lunar_to_solar(year: int, month: int, day: int) -> dt.date:
    from lunar_python import Lunar
    s = Lunar.fromYmd(year, month, day).getSolar()
    return dt.date(s.getYear(), s.getMonth(), s.getDay())


def rule_date(spec: dict, year: int) -> dt.date | None:
    """The node's date in solar ``year`` from its rule; None when the rule gives no date that year
    (02-29 in a common year; a lunar date that falls in the neighbouring solar year).

    Raises
    ------
    ValueError
        A lunar rule for a year outside :data:`LUNAR_YEARS`, or a malformed rule.
    """
    offset = int(spec.get("offset_days", 0))
    if offset:
        day = rule_date({k: v for k, v in spec.items() if k != "offset_days"}, year)
        return None if day is None else day + dt.timedelta(days=offset)
    if "month_day" in spec:
        try:
            return dt.date.fromisoformat(f"{year}-{spec['month_day']}")
        except ValueError:
            return None
    if "nth_weekday" in spec:
        m = _NTH_RE.match(str(spec["nth_weekday"]))
        if not m:
            raise ValueError(f"nth_weekday must look like \"05-SUN-2\", got {spec['nth_weekday']!r}")
        month, weekday, n = int(m.group(1)), WEEKDAYS.index(m.group(2)), int(m.group(3))
        first = dt.date(year, month, 1)
        day = first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
        return day if day.month == month else None
    if "lunar_month_day" in spec:
        if year not in LUNAR_YEARS:
            raise ValueError(f"lunar dates are computed for {LUNAR_YEARS.start}–{LUNAR_YEARS.stop - 1}; "
                             f"add {year} under \"dates\"")
        month, day = (int(v) for v in str(spec["lunar_month_day"]).split("-"))
        for lunar_year in (year - 1, year):       # 腊月 of the previous lunar year may fall in January
            solar = _lunar_to_solar(lunar_year, month, day)
            if solar.year == year:
                return solar
        return None
    return None
