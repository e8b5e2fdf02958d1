"""Every prompt and output schema the agents send to the model: data, kept apart from plumbing.

String fields in the schemas carry `maxLength` bounds: small models produce valid JSON under a
schema reliably only when strings are bounded (measured with SmolLM2, docs/models.md).
No `pattern` keywords: llama-cpp-python 0.3.36 silently drops the whole grammar for some of
them (measured), so names and tests are checked in Python after the answer arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

FIX_PREFIX = "FIX THIS CODE:"

CODER_SYSTEM = (
    "You are a careful Python programmer. Answer with one Python code block that defines the "
    "requested function. Use only the standard library. Do not write tests or example calls."
)

REVIEWER_SYSTEM = (
    "You review Python code. Judge correctness, clarity and edge cases. "
    "Answer in JSON with a score from 0 to 1, a short critique and a list of issues."
)

BRAINSTORM_SYSTEM = (
    "You invent small, self-contained Python programming exercises with assert-based tests."
)

TASK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 60},
        "description": {"type": "string", "maxLength": 200},
        "function_name": {"type": "string", "maxLength": 30},
        "signature": {"type": "string", "maxLength": 100},
        "solution": {"type": "string", "maxLength": 400},
        "tests": {
            "type": "array",
            "minItems": 3,
            "maxItems": 5,
            "items": {"type": "string", "maxLength": 100},
        },
    },
    "required": ["title", "description", "function_name", "signature", "solution", "tests"],
    "additionalProperties": False,
}

REVIEW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "critique": {"type": "string", "maxLength": 300},
        "issues": {
            "type": "array",
            "maxItems": 5,
            "items": {"type": "string", "maxLength": 120},
        },
    },
    "required": ["score", "critique", "issues"],
    "additionalProperties": False,
}

BRAINSTORM_TOPICS = (
    "reverse a string", "count the vowels in a string", "the largest number in a list",
    "the factorial of n", "whether a string is a palindrome", "the sum of a list of numbers",
    "the square of a number", "the average of a list of numbers", "whether a number is prime",
    "the length of the longest word in a sentence", "the number of words in a sentence",
    "the smallest number in a list", "whether a number is even", "the nth Fibonacci number",
    "a string in upper case", "the product of a list of numbers", "the last element of a list",
    "the absolute difference of two numbers", "the count of positive numbers in a list",
    "a list without duplicates",
)  # fmt: skip

BRAINSTORM_USER = (
    "Invent a small Python function that computes TOPIC. Answer in JSON with a title, a "
    "one-sentence description, the function name, its signature, a short correct solution (the "
    "function's code) and four tests. Each test is one line like `assert my_function(2) == 4` "
    "that calls your function with a concrete input and compares it with the expected result. "
    "Work out each expected result carefully: your solution must pass every test."
)


ANSWER_WITH_CODE = "Answer with the function in one Python code block, without tests."


class TaskText(Protocol):
    """What a prompt needs of a task (a TaskSpec or a Task record)."""

    title: str
    description: str
    signature: str
    tests: str
    preamble: str
    tests_hidden: bool


def task_prompt(
    title: str, description: str, signature: str, tests: str, preamble: str = ""
) -> str:
    """The prompt of a first attempt: what to write, the code the task provides, and the tests
    it must pass (none for a benchmark, whose tests are hidden, as published figures run it)."""
    head = f"Task: {title}\n{description}".strip()
    if signature:
        head += f"\nSignature: {signature}"
    if preamble.strip() and preamble.strip() not in description:
        head += (
            f"\n\nThis code runs before yours; use it as it is:\n```python\n{preamble.strip()}\n```"
        )
    return f"{head}\n\nIt must pass these tests:\n{tests}" if tests else head


def first_prompt(task: TaskText) -> str:
    tests = "" if task.tests_hidden else task.tests
    return task_prompt(task.title, task.description, task.signature, tests, task.preamble)


def fix_prompt(original: str, code: str, error: str) -> str:
    """The prompt of a fix task: `FIX THIS CODE:`, the code, its error, then the task again.

    The task comes last so that a small model, which continues whatever it read last, answers
    the task rather than echoing the error report.
    """
    return (
        f"{FIX_PREFIX}\n```python\n{code}\n```\nIt failed with this error:\n{error}\n"
        "That code is wrong: write a corrected version, not the same code again.\n\n"
        f"{original}"
    )


def solve_messages(prompt: str, memories: Sequence[str]) -> list[dict[str, str]]:
    """Chat messages for the Consumer; past failures and lessons come before the task."""
    user = f"{prompt}\n\n{ANSWER_WITH_CODE}"
    if memories:
        recalled = "\n\n".join(f"- {memory}" for memory in memories)
        user = f"Lessons from similar past attempts:\n{recalled}\n\n{user}"
    return [{"role": "system", "content": CODER_SYSTEM}, {"role": "user", "content": user}]


def review_messages(
    task: str, code: str, tests: str = "", passed: bool | None = None
) -> list[dict[str, str]]:
    """The task, its tests and the code; the verdict too when it is known."""
    user = f"Task:\n{task}\n\nCode:\n```python\n{code}\n```"
    if tests and tests not in task:
        user += f"\n\nTests:\n```python\n{tests}\n```"
    if passed is not None:
        user += "\n\nThe code passed these tests." if passed else "\n\nThe code FAILED these tests."
    return [{"role": "system", "content": REVIEWER_SYSTEM}, {"role": "user", "content": user}]


def brainstorm_messages(number: int) -> list[dict[str, str]]:
    """The n-th brainstorm asks about the n-th topic, so consecutive tasks differ."""
    topic = BRAINSTORM_TOPICS[number % len(BRAINSTORM_TOPICS)]
    return [
        {"role": "system", "content": BRAINSTORM_SYSTEM},
        {"role": "user", "content": BRAINSTORM_USER.replace("TOPIC", topic)},
    ]
