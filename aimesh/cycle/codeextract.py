"""Find the Python program in a model's answer, whatever shape the answer took.

Models wrap code in fences, prepend prose, or answer with bare code; a wrong guess here turns a
good answer into a failed attempt, so each shape is tried in order of confidence.
"""

from __future__ import annotations

import ast
import re

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
# Qwen2.5-Coder-0.5B sometimes puts the language on its own line: "```\npython\ndef f(): ..."
_TAG_LINE = re.compile(r"\A[ \t]*(?:python3?|py)[ \t]*\n", re.IGNORECASE)
_CODE_START = re.compile(r"^(def |class |import |from |async def |@)", re.MULTILINE)


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def _defines(code: str, name: str) -> bool:
    return bool(name) and re.search(rf"^\s*(async\s+)?def\s+{re.escape(name)}\s*\(", code, re.M)


def extract_code(answer: str, function_name: str = "") -> str:
    """Return the program in `answer`, or "" when there is none.

    Fenced blocks first (the one defining `function_name`, else the longest that parses), then the
    whole answer as bare code, then the answer from its first `def`/`import` line on.
    """
    blocks = [
        _TAG_LINE.sub("", body).strip()
        for lang, body in _FENCE.findall(answer)
        if lang.lower() in ("", "python", "py", "python3")
    ]
    blocks = [block for block in blocks if block]
    if blocks:
        parsing = [block for block in blocks if _parses(block)] or blocks
        for block in parsing:
            if _defines(block, function_name):
                return block
        return max(parsing, key=len)
    text = answer.strip()
    if text and _parses(text) and _CODE_START.search(text):
        return text
    start = _CODE_START.search(answer)
    if start:
        tail = answer[start.start() :].strip()
        lines = tail.splitlines()
        for end in range(len(lines), 0, -1):
            candidate = "\n".join(lines[:end])
            if _parses(candidate):
                return candidate
        return tail
    return ""
