"""Make a failing comparison say what the call returned, as pytest's assertion rewriting does.

`assert candidate('x') == 'x'` fails with only its own line; a model fixing the code needs
`candidate('x') returned 'xx', expected 'x'`. The program's syntax tree is rewritten before it
is compiled, only in the assert's message:

    assert (_l := A) == (_r := B), _aimesh_expect_(_l, _r, "A", "==", <the assert's own message>)

The comparison itself is the one written, evaluated in the order written, so the rewrite cannot
change a verdict; the message is built only when the assert fails. Every position is kept, so
reports still show the test's own line. Anything the rewrite cannot handle (a tree too deep for
the transformer, say) compiles the program as written instead. Standard library only: this runs
inside the jail.
"""

from __future__ import annotations

import ast
import builtins
from types import CodeType

HELPER = "_aimesh_expect_"
LEFT, RIGHT = "_aimesh_left_", "_aimesh_right_"
MAX_SHOWN = 300


def _shown(value: object) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the failure
        text = f"<unprintable {type(value).__name__}>"
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def expect(left: object, right: object, call: str, op: str, call_left: bool, own: object) -> str:
    """The message of a failed comparison: what the call returned, and what was expected."""
    actual, expected = (left, right) if call_left else (right, left)
    want = _shown(expected) if op == "==" else f"anything but {_shown(expected)}"
    message = f"{call} returned {_shown(actual)}, expected {want}"
    return message if own is None else f"{message} ({own})"


class _Explain(ast.NodeTransformer):
    def __init__(self, source: str) -> None:
        self.lines = source.splitlines(keepends=True)

    def _text(self, node: ast.expr) -> str:
        """The node's source as written (columns are UTF-8 byte offsets)."""
        if node.end_lineno is None or node.end_col_offset is None:
            return ast.unparse(node)
        first, last = node.lineno - 1, node.end_lineno - 1
        chunk = [line.encode("utf-8") for line in self.lines[first : last + 1]]
        if not chunk:
            return ast.unparse(node)
        if first == last:
            return chunk[0][node.col_offset : node.end_col_offset].decode("utf-8", "replace")
        chunk[0], chunk[-1] = chunk[0][node.col_offset :], chunk[-1][: node.end_col_offset]
        return b"".join(chunk).decode("utf-8", "replace")

    def visit_Assert(self, node: ast.Assert) -> ast.Assert:
        test = node.test
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
            return node
        op = {ast.Eq: "==", ast.NotEq: "!="}.get(type(test.ops[0]))
        left, right = test.left, test.comparators[0]
        call_left = isinstance(left, ast.Call)
        if op is None or not (call_left or isinstance(right, ast.Call)):
            return node
        call = self._text(left if call_left else right)
        test.left = ast.NamedExpr(ast.Name(LEFT, ast.Store()), left)
        test.comparators = [ast.NamedExpr(ast.Name(RIGHT, ast.Store()), right)]
        node.msg = ast.Call(
            func=ast.Name(HELPER, ast.Load()),
            args=[
                ast.Name(LEFT, ast.Load()),
                ast.Name(RIGHT, ast.Load()),
                ast.Constant(call),
                ast.Constant(op),
                ast.Constant(call_left),
                node.msg or ast.Constant(None),
            ],
            keywords=[],
        )
        ast.copy_location(test.left, left)
        ast.copy_location(test.comparators[0], right)
        return node


def compile_explained(source: str, filename: str) -> CodeType:
    """The program compiled with its comparisons explained, or as written when that fails;
    SyntaxError (and ValueError for a null byte) as compile() raises them. Compiled once on
    the way that works: a program with an error of its own fails the rewrite too, and is then
    compiled as written, which raises that error."""
    try:
        tree = _Explain(source).visit(ast.parse(source, filename))
        ast.fix_missing_locations(tree)
        explained = compile(tree, filename, "exec", dont_inherit=True)
    except Exception:  # its own error, or e.g. RecursionError on a very deep expression
        return compile(source, filename, "exec", dont_inherit=True)
    setattr(builtins, HELPER, expect)
    return explained
