"""Make a failing comparison say what the call returned, as pytest's assertion rewriting does.

`assert candidate('x') == 'x'` fails with only its own line; a model fixing the code needs
`candidate('x') returned 'xx', expected 'x'`. The program's syntax tree is rewritten before it
is compiled: `assert CALL == EXPECTED` becomes `assert _aimesh_expect_(CALL, EXPECTED, ...)`,
keeping every position, so tracebacks and reports still show the test's own line as written.
Standard library only: this runs inside the jail.
"""

from __future__ import annotations

import ast
import builtins

HELPER = "_aimesh_expect_"
MAX_SHOWN = 300


def _shown(value: object) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the failure
        text = f"<unprintable {type(value).__name__}>"
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def expect(actual: object, expected: object, call: str, equal: bool) -> bool:
    """True when the comparison holds; else an AssertionError naming both values."""
    if (actual == expected) == equal:
        return True
    want = _shown(expected) if equal else f"anything but {_shown(expected)}"
    raise AssertionError(f"{call} returned {_shown(actual)}, expected {want}")


class _Explain(ast.NodeTransformer):
    def __init__(self, source: str) -> None:
        self.source = source

    def visit_Assert(self, node: ast.Assert) -> ast.Assert:
        test = node.test
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
            return node
        if not isinstance(test.ops[0], (ast.Eq, ast.NotEq)):
            return node
        left, right = test.left, test.comparators[0]
        if not isinstance(left, ast.Call) and isinstance(right, ast.Call):
            left, right = right, left  # `assert 3 == f(1)`
        if not isinstance(left, ast.Call):
            return node
        call = ast.get_source_segment(self.source, left) or ast.unparse(left)
        checked = ast.Call(
            func=ast.Name(HELPER, ast.Load()),
            args=[left, right, ast.Constant(call), ast.Constant(isinstance(test.ops[0], ast.Eq))],
            keywords=[],
        )
        node.test = ast.copy_location(checked, test)
        return node


def explained(source: str, filename: str) -> ast.Module:
    """The program's tree with its comparisons explained; SyntaxError as compile() raises it."""
    tree = ast.parse(source, filename)
    tree = _Explain(source).visit(tree)
    ast.fix_missing_locations(tree)
    setattr(builtins, HELPER, expect)
    return tree
