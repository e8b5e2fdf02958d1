"""Code extraction: every answer shape a model produces gives the program, or nothing."""

from aimesh.cycle.codeextract import extract_code


def test_fenced_python_block():
    answer = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\nHope it helps."
    assert extract_code(answer, "add") == "def add(a, b):\n    return a + b"


def test_the_block_defining_the_function_wins_over_a_longer_example():
    answer = (
        "```python\ndef add(a, b):\n    return a + b\n```\nUsage:\n"
        "```python\nprint(add(1, 2))\nprint(add(3, 4))\nprint(add(5, 6))\nprint(add(7, 8))\n```"
    )
    assert extract_code(answer, "add").startswith("def add")


def test_unlabelled_and_unclosed_fences():
    assert extract_code("```\ndef f():\n    return 1\n```") == "def f():\n    return 1"
    assert extract_code("```python\ndef f():\n    return 1") == "def f():\n    return 1"


def test_bare_code_and_code_after_prose():
    assert extract_code("def f(x):\n    return x * 2") == "def f(x):\n    return x * 2"
    answer = "Sure! The function is:\ndef f(x):\n    return x * 2\nThis doubles x."
    assert extract_code(answer) == "def f(x):\n    return x * 2"


def test_no_code_gives_empty():
    assert extract_code("I cannot help with that.") == ""
    assert extract_code("") == ""
    assert extract_code('```json\n{"a": 1}\n```') == ""


def test_a_language_tag_on_its_own_line_is_not_code():
    """Qwen2.5-Coder-0.5B, asked with a fence without a language, answered like this; the tag
    line read as code made every such answer a NameError."""
    answer = "```\npython\ndef f(x):\n    return x\n```"
    assert extract_code(answer, "f") == "def f(x):\n    return x"
    assert extract_code("```\npython = 3\n```") == "python = 3"
