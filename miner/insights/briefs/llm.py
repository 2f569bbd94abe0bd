"""Optional LLM polish of the positioning line — never on the default path.

Only when ``MINER_LLM_BASE_URL`` and ``MINER_LLM_MODEL`` are set (optionally ``MINER_LLM_API_KEY`` and
``MINER_LLM_TIMEOUT`` seconds, default 8) is the rule-written line sent to the OpenAI-compatible
``/chat/completions`` endpoint to be reworded; on any failure the rule line is kept and the brief
says so in ``notes``. Without those variables no network call is made.
"""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

__all__ = ["LLM_ENV", "polish_positioning"]

LLM_ENV = ("MINER_LLM_BASE_URL", "MINER_LLM_API_KEY", "MINER_LLM_MODEL")


def polish_positioning(text: str, label: str, keywords: list[str]) -> tuple[str, str, str | None]:
    """Reword ``text`` with the optional OpenAI-compatible endpoint; (text, source, note)."""
    base, key, model = (os.environ.get(v, "").strip() for v in LLM_ENV)
    if not base or not model:
        return text, "rule", None
    timeout = float(os.environ.get("MINER_LLM_TIMEOUT", "8"))
    payload = {"model": model, "temperature": 0.3, "max_tokens": 200, "messages": [
        {"role": "system", "content": "你是小红书内容策划。把用户给的选题定位句改写得更简洁有吸引力，"
                                      "保留其中所有数字、日期和事实，不要添加新的事实；只输出一句中文，不超过80字。"},
        {"role": "user", "content": f"话题：{label}\n关键词：{'、'.join(keywords[:8])}\n定位句：{text}"}]}
    req = urllib.request.Request(base.rstrip("/") + "/chat/completions", data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {key}"} if key else {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = json.loads(resp.read().decode("utf-8"))
        polished = str(body["choices"][0]["message"]["content"]).strip()
        if not polished:
            raise ValueError("empty reply")
        return polished, f"llm:{model}", None
    except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        return text, "rule", f"LLM 润色不可用 ({type(exc).__name__}), 定位句为规则生成"
