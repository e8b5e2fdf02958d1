"""The split mode keeps what tests need: exceptions, prints, limits, useful errors, and says
clearly what cannot cross (callbacks, objects), instead of judging it wrongly."""

from __future__ import annotations

import math

import pytest

from aimesh.sandbox import Limits, run_tests
from aimesh.sandbox.jail import plain

ADD = "def add(a, b):\n    return a + b\n"


async def judge(code: str, tests: str, **kwargs):
    return await run_tests(code, tests, limits=kwargs.pop("limits", Limits(timeout_s=5)), **kwargs)


async def test_an_exception_crosses_as_its_type_and_message():
    code = (
        "class BadInput(Exception):\n    pass\n\n"
        "def parse(text):\n    if not text:\n        raise ValueError('empty text')\n"
        "    if text == '?':\n        raise BadInput('what?')\n    return int(text)\n"
    )
    tests = """
class raises:
    def __init__(self, kind):
        self.kind = kind
    def __enter__(self):
        return self
    def __exit__(self, kind, value, tb):
        assert kind is not None, f"{self.kind.__name__} not raised"
        self.value = value
        return issubclass(kind, self.kind)

with raises(ValueError) as caught:
    parse('')
assert str(caught.value) == 'empty text'
try:
    parse('?')
except Exception as exc:
    assert type(exc).__name__ == 'BadInput' and str(exc) == 'what?'
assert parse('12') == 12
"""
    assert (await judge(code, tests)).passed


async def test_an_uncaught_exception_names_the_program_line_and_the_test_line():
    result = await judge("def first(xs):\n    return xs[0]\n", "assert first([]) == 1\n")
    assert (result.status, result.error_type) == ("error", "IndexError")
    assert result.error == (
        "list index out of range at line 2: return xs[0] "
        "(from tests.py line 1: assert first([]) == 1)"
    )


async def test_the_traceback_of_an_uncaught_exception_reads_as_one_process():
    """The tests' frames, then the program's line, then the error: none of the jail's own frames,
    which would put a path of the judging machine into fix prompts and datasets."""
    result = await judge(
        "def first(xs):\n    return xs[0]\n",
        "def check(candidate):\n    assert candidate([]) == 1\n\ncheck(first)\n",
        entry_point="first",
    )
    assert result.stderr == (
        "Traceback (most recent call last):\n"
        '  File "tests.py", line 4, in <module>\n    check(first)\n'
        '  File "tests.py", line 2, in check\n    assert candidate([]) == 1\n'
        "           ^^^^^^^^^^^^^\n"
        '  File "program.py", line 2\n    return xs[0]\n'
        "IndexError: list index out of range\n"
    )


async def test_a_failed_comparison_says_what_the_call_returned():
    result = await judge("def add(a, b):\n    return a - b\n", "assert add(1, 2) == 3\n")
    assert result.status == "failed"
    assert (
        result.error
        == "add(1, 2) returned -1, expected 3 at tests.py line 1: assert add(1, 2) == 3"
    )


async def test_humaneval_style_check_candidate():
    tests = "def check(candidate):\n    assert candidate(2, 3) == 5\n"
    assert (await judge(ADD, tests, entry_point="add")).passed
    wrong = await judge("def add(a, b):\n    return a * b\n", tests, entry_point="add")
    assert wrong.status == "failed" and "candidate(2, 3) returned 6, expected 5" in wrong.error


async def test_both_sides_print():
    code = "def add(a, b):\n    print('adding', a, b)\n    return a + b\n"
    result = await judge(code, "print('testing')\nassert add(1, 2) == 3\n")
    assert result.passed and result.stdout == "testing\nadding 1 2\n"


@pytest.mark.parametrize(
    ("code", "limits", "status", "words"),
    [
        ("import time\ndef add(a, b):\n    time.sleep(30)\n", Limits(timeout_s=1), "timeout",
         "wall-clock timeout after 1s during add(1, 2)"),
        ("def add(a, b):\n    while True:\n        pass\n", Limits(cpu_s=1, timeout_s=10),
         "cpu_limit", "CPU time limit of 1s exceeded during add(1, 2)"),
        ("def add(a, b):\n    return bytearray(1 << 31)\n", Limits(memory_mb=256), "memory_limit",
         "memory limit of 256 MB exceeded"),
        ("import time\ntime.sleep(30)\n", Limits(timeout_s=1), "timeout",
         "while the program loaded"),
        ("import os\ndef add(a, b):\n    os.abort()\n", Limits(), "crashed",
         "killed by SIGABRT during add(1, 2)"),
    ],
)  # fmt: skip
async def test_limits_and_deaths_during_a_call_name_the_call(code, limits, status, words):
    result = await judge(code, "assert add(1, 2) == 3\n", limits=limits)
    assert result.status == status and words in result.error, result.error


async def test_in_place_changes_to_list_dict_and_set_arguments_reach_the_tests():
    code = (
        "def fill(xs, table, seen, *, extra):\n"
        "    xs.append(1)\n    table['k'] = [2]\n    seen.add(3)\n    extra.clear()\n"
    )
    tests = (
        "xs, table, seen, extra = [], {}, set(), [9]\n"
        "assert fill(xs, table, seen, extra=extra) is None\n"
        "assert (xs, table, seen, extra) == ([1], {'k': [2]}, {3}, [])\n"
    )
    assert (await judge(code, tests)).passed


async def test_a_callback_is_a_clear_error_not_a_verdict():
    result = await judge("def apply(f, x):\n    return f(x)\n", "assert apply(abs, -1) == 1\n")
    assert (result.status, result.error_type) == ("error", "UnsupportedTest")
    assert "passed an object of type builtin_function_or_method to apply()" in result.error


async def test_objects_are_refused_with_their_type_named():
    code = (
        "def pairs(n):\n    return (i for i in range(n))\n\n"
        "class Box:\n    size = 3\n\nBOX = Box()\n"
    )
    generator = await judge(code, "assert list(pairs(2)) == [0, 1]\n")
    assert (generator.status, generator.error_type) == ("failed", "NotPlainData")
    assert "pairs(2) returned an object of type generator" in generator.error
    box = await judge(code, "assert BOX.size == 3\n")
    assert (box.status, box.error_type) == ("failed", "NotPlainData")
    assert "the tests used BOX, a Box of the program" in box.error


async def test_plain_globals_and_standard_modules_of_the_program_reach_the_tests():
    code = "import math\nLIMIT = (1, 2.5, {'a': b'x'})\ndef root(x):\n    return math.sqrt(x)\n"
    tests = "assert LIMIT == (1, 2.5, {'a': b'x'})\nassert math.isclose(root(2), math.sqrt(2))\n"
    assert (await judge(code, tests)).passed


async def test_the_preamble_stays_the_tasks_own_but_the_entry_point_is_the_programs():
    preamble = (
        "def encode(s: str) -> str:\n    return ''.join(chr(ord(c) + 1) for c in s)\n\n\n"
        "def decode(s: str) -> str:\n    '''Undo encode.'''\n"
    )
    tests = "assert decode(encode('abc')) == 'abc'\n"
    honest = "def decode(s):\n    return ''.join(chr(ord(c) - 1) for c in s)\n"
    assert (await judge(honest, tests, preamble=preamble, entry_point="decode")).passed
    forged = "def encode(s):\n    return s\n\ndef decode(s):\n    return s\n"
    result = await judge(forged, tests, preamble=preamble, entry_point="decode")
    assert result.status == "failed" and "returned 'bcd', expected 'abc'" in result.error


async def test_a_program_that_does_not_load_is_reported_as_before():
    syntax = await judge("def add(a, b)\n    return a\n", "assert add(1, 2) == 3\n")
    assert (syntax.status, syntax.error_type) == ("error", "SyntaxError")
    assert "line 1: def add(a, b)" in syntax.error
    missing = await judge("import nosuchmodule\n", "assert add(1, 2) == 3\n")
    assert (missing.status, missing.error_type) == ("error", "ModuleNotFoundError")


@pytest.mark.parametrize(
    "value",
    [None, True, False, 0, -(10**40), 1.5, -0.0, math.inf, 2 + 3j, "", "é\ud800", b"\x00\xff",
     [1, [2, (3,)]], (), {"a": {1: frozenset({2})}}, {(1, 2), "x"}, frozenset()],
)  # fmt: skip
def test_plain_data_round_trips_exactly(value):
    back = plain.from_wire(plain.to_wire(value))
    assert back == value and type(back) is type(value)
    if type(value) is not set:  # a set's order may change as it is rebuilt
        assert repr(back) == repr(value)


def test_nan_round_trips():
    assert math.isnan(plain.from_wire(plain.to_wire(math.nan)))


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (type("MyInt", (int,), {})(1), "MyInt"),
        ([1, object()], "object"),
        (iter([]), "list_iterator"),
    ],
)
def test_anything_else_is_refused_by_name(value, named):
    with pytest.raises(plain.NotPlain) as refused:
        plain.to_wire(value)
    assert refused.value.type_name.rpartition(".")[2] == named


@pytest.mark.parametrize(
    "tagged",
    [{"x": 1}, {"i": 1}, {"d": [[[1], 2]]}, {"s": [[]]}, {"c": ["1"]}, {"i": "1", "f": "2"}, 3],
)
def test_malformed_tags_are_refused(tagged):
    with pytest.raises(plain.ChannelError):
        plain.from_wire(tagged)


async def test_a_builtin_exception_subclass_is_still_caught_as_its_builtin_and_keeps_its_args():
    code = (
        "class ParseError(ValueError):\n    pass\n\n"
        "def parse(text):\n    raise ParseError('bad', 3)\n\n"
        "def look(table, key):\n    return table[key]\n"
    )
    tests = (
        "try:\n    parse('x')\nexcept ValueError as exc:\n"
        "    assert type(exc).__name__ == 'ParseError' and exc.args == ('bad', 3)\n"
        "else:\n    raise AssertionError('not raised')\n"
        "try:\n    look({}, 'k')\nexcept KeyError as exc:\n    assert str(exc) == \"'k'\"\n"
    )
    assert (await judge(code, tests)).passed


async def test_big_integers_cross_whole():
    code = "import math\n\ndef fact(n):\n    return math.factorial(n)\n"
    result = await judge(code, "import math\nassert fact(2000) == math.factorial(2000)\n")
    assert result.passed, result.error


async def test_tests_under_a_main_guard_run():
    tests = "if __name__ == '__main__':\n    assert add(1, 2) == 4\n"
    result = await judge(ADD, tests)
    assert result.status == "failed" and "returned 3, expected 4" in result.error
