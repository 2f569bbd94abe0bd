"""Title patterns and hooks mined from a topic's best-performing titles, with evidence note ids.

A **pattern** (:data:`TITLE_PATTERNS`) may appear anywhere in the title; a **hook**
(:data:`HOOK_PATTERNS`) is how the title opens (its first clause). Either is recommended when it is
more common among the best titles (engagement ≥ the topic's ``top_quantile``) than among all:
``lift`` = share_top ÷ share_all > 1, seen in at least ``min_top`` best titles; ``p_value`` is the
one-sided Fisher exact test of "more common among the best" (best vs the rest).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from miner.insights.briefs.model import TitlePattern

__all__ = ["HOOK_PATTERNS", "TITLE_PATTERNS", "hook_features", "mine_title_patterns", "title_features"]

# key → (中文, regex). Compiled once; matched against the raw title (emoji via miner.topics.segment).
TITLE_PATTERNS: dict[str, tuple[str, str]] = {
    # digits, or a Chinese numeral other than a lone 一 ("一个" is filler) before a measure word
    "number": ("数字", r"\d|(?:[二两三四五六七八九十百千万]|一[二两三四五六七八九十百千万])[一二两三四五六七八九十百千万]*"
                      r"\s*(?:个|款|种|招|步|件|天|分钟|元|块|套|类|道|次|年|岁|斤|条|样|家|点|大)|一(?:招|步|分钟|张图)"),
    "emoji": ("表情符号", ""),   # handled by miner.topics.segment.count_emoji
    "question": ("疑问句", r"[?？]|吗|怎么|如何|为什么|为啥|哪|啥|多少|是否|能不能|值不值"),
    "exclaim": ("感叹号", r"[!！]"),
    "bracket": ("括号标签【】", r"[【】《》「」『』\[\]]"),
    "pingti": ("平替", r"平替"),
    "guide": ("攻略", r"攻略|指南|路线"),
    "review": ("测评", r"测评|评测|实测|试吃|试用|开箱|体验"),
    "collection": ("合集/清单", r"合集|大全|清单|汇总|盘点|整理"),
    "tutorial": ("教程", r"教程|教学|手把手|保姆级|步骤|做法|怎么做|新手"),
    "avoid": ("避雷", r"避雷|踩雷|踩坑|千万别|劝退|后悔|翻车"),
    "must": ("必看/干货", r"必看|必备|干货|收藏|建议"),
    "price": ("价格/平价", r"\d+\s*(?:元|块|w|万)|平价|便宜|白菜价|学生党|性价比|省钱"),
    "first_person": ("第一人称", r"我"),
    "compare": ("对比", r"vs|VS|对比|区别|还是"),
}
# Openings (matched at the start of the title's first clause): the hooks XHS titles lead with.
HOOK_PATTERNS: dict[str, tuple[str, str]] = {
    "hook_exclaim_word": ("情绪开头 (救命/绝了/谁懂)", r"^(?:救命|绝了|绝绝子|谁懂|天呐|天哪|我的天|啊+|哇+|笑死|破防|离谱)"),
    "hook_address": ("称呼开头 (姐妹们/家人们)", r"^(?:姐妹们?|家人们|宝子们?|宝宝们|朋友们|兄弟们|集美们?|打工人)"),
    "hook_warning": ("警示开头 (千万别/别再)", r"^(?:千万别|千万不要|别再|不要再|劝你|求求|谁再|后悔)"),
    "hook_number": ("数字开头", r"^(?:\d|[一二两三四五六七八九十]+(?:个|款|种|招|步|件|天|分钟|元|块|套|道|条|家))"),
    "hook_question": ("提问开头", r"^(?:为什么|为啥|怎么|如何|有没有|谁说|到底|是不是)"),
    "hook_bracket": ("标签开头【】", r"^[【\[「『《]"),
    "hook_finally": ("结果开头 (终于/原来)", r"^(?:终于|原来|居然|竟然|没想到|才知道|后知后觉)"),
    "hook_first_person": ("亲历开头 (我/本人)", r"^(?:我|本人|自己|亲测)"),
}
_COMPILED = {k: re.compile(p) for k, (_, p) in TITLE_PATTERNS.items() if p}
_HOOKS = {k: re.compile(p) for k, (_, p) in HOOK_PATTERNS.items()}
_CLAUSE = re.compile(r"[，,。.!！?？~～|｜\s]+")


def title_features(title: str) -> dict[str, bool]:
    """Which :data:`TITLE_PATTERNS` a title shows."""
    from miner.topics.segment import count_emoji
    title = str(title or "")
    out = {k: bool(rx.search(title)) for k, rx in _COMPILED.items()}
    out["emoji"] = count_emoji(title) > 0
    return {k: out[k] for k in TITLE_PATTERNS}


def hook_features(title: str) -> dict[str, bool]:
    """Which :data:`HOOK_PATTERNS` the title's first clause opens with."""
    first = next((c for c in _CLAUSE.split(str(title or "").strip()) if c), "")
    return {k: bool(rx.search(first)) for k, rx in _HOOKS.items()}


def mine_title_patterns(titles, engagement, note_ids=None, top_quantile: float = 0.75,
                        min_top: int = 3, n_examples: int = 3, hooks: bool = False) -> list[TitlePattern]:
    """Patterns (or, with ``hooks``, openings) over-represented among best-performing titles.

    ``engagement`` is any score where higher is better (the brief passes the age-adjusted index).
    Returns patterns seen in at least ``min_top`` best titles with lift > 1, best lift first
    (ties: more common first).
    """
    from scipy.stats import fisher_exact
    titles = pd.Series(list(titles), dtype=object).fillna("").astype(str).reset_index(drop=True)
    eng = pd.Series(np.asarray(engagement, dtype="float64"))
    ids = pd.Series(list(note_ids) if note_ids is not None else titles.index.astype(str))
    if len(titles) == 0:
        return []
    table = HOOK_PATTERNS if hooks else TITLE_PATTERNS
    feats = pd.DataFrame([(hook_features if hooks else title_features)(t) for t in titles], columns=list(table))
    top = (eng >= eng.quantile(top_quantile)).to_numpy()
    out = []
    for key in table:
        has = feats[key].to_numpy()
        n_top, n_all = int((has & top).sum()), int(has.sum())
        share_top, share_all = n_top / max(int(top.sum()), 1), n_all / len(titles)
        if n_top < min_top or share_all == 0:
            continue
        lift = share_top / share_all
        if lift <= 1.0:
            continue
        rest = ~top
        _, p = fisher_exact([[n_top, int(top.sum()) - n_top], [int((has & rest).sum()), int((~has & rest).sum())]],
                            alternative="greater")
        rows = np.flatnonzero(has & top)
        rows = rows[np.argsort(-eng.to_numpy()[rows], kind="stable")[:n_examples]]
        out.append(TitlePattern(key=key, name_zh=table[key][0], share_top=share_top, share_all=share_all,
                                lift=lift, n_top=n_top, n_all=n_all,
                                example_note_ids=[str(ids[r]) for r in rows], examples=[titles[r] for r in rows],
                                kind="hook" if hooks else "pattern", p_value=float(p)))
    return sorted(out, key=lambda p: (-p.lift, -p.share_top, p.key))
