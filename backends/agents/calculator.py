"""A calculator that never calls `eval`: the expression is parsed with `ast` and walked node by node.

Only numbers, + - * / // % **, unary + and -, parentheses and a few named functions (sqrt, round,
abs, min, max, floor, ceil, log, exp) are allowed; any other node (a name, an attribute, a call of
anything else, a subscript, a string, a comprehension) is refused with a message naming it.
Exponents and results have size limits, so `9**9**9` or `10**100000` ends in a message, not a hung
server.
"""

from __future__ import annotations

import ast
import math
import operator

from backends.core.coded import CodedError

MAX_CHARS = 200
MAX_EXPONENT = 1000  # |b| in a ** b
MAX_ABS = 1e300  # a result beyond this is refused (floats overflow near 1.8e308)
MAX_DEPTH = 40


class CalculatorError(CodedError, ValueError):
    """A refused expression: the English message (what the model reads back) plus `code` and
    `values` for the page's translated sentence (agents.err.<code>)."""


BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
FUNCTIONS = {
    "sqrt": math.sqrt,
    "round": round,
    "abs": abs,
    "min": min,
    "max": max,
    "floor": math.floor,
    "ceil": math.ceil,
    "log": math.log,
    "exp": math.exp,
}


def _check_size(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CalculatorError(f"Not a number: {value!r}.", "calc.not_number", value=repr(value))
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise CalculatorError("The result is not a finite number.", "calc.not_finite")
    if abs(value) > MAX_ABS:
        raise CalculatorError(f"The result is too large (over {MAX_ABS:g}).", "calc.too_large", limit=f"{MAX_ABS:g}")
    return value


def _walk(node, depth: int = 0):
    if depth > MAX_DEPTH:
        raise CalculatorError("The expression is nested too deeply.", "calc.too_deep")
    if isinstance(node, ast.Expression):
        return _walk(node.body, depth + 1)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise CalculatorError(
                f"Only numbers are allowed, not {node.value!r}.", "calc.only_numbers", value=repr(node.value)
            )
        return _check_size(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
        return _check_size(UNARY[type(node.op)](_walk(node.operand, depth + 1)))
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
        left, right = _walk(node.left, depth + 1), _walk(node.right, depth + 1)
        if isinstance(node.op, ast.Pow):
            if abs(right) > MAX_EXPONENT:
                raise CalculatorError(
                    f"The exponent {right!r} is over the limit of {MAX_EXPONENT}.",
                    "calc.exponent",
                    value=repr(right),
                    limit=MAX_EXPONENT,
                )
            if abs(left) > 1 and abs(right) * math.log10(abs(left)) > math.log10(MAX_ABS):
                raise CalculatorError(
                    f"{left!r} ** {right!r} is too large.", "calc.power", power=f"{left!r} ** {right!r}"
                )
        try:
            value = BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise CalculatorError("Division by zero.", "calc.div_zero") from None
        except (OverflowError, ValueError, TypeError) as exc:
            raise CalculatorError(f"Cannot compute: {exc}.", "calc.cannot", detail=str(exc)) from None
        return _check_size(value)  # outside the try: its own refusal is not "cannot compute"
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            shown = ast.unparse(node.func)
            allowed = ", ".join(sorted(FUNCTIONS))
            raise CalculatorError(
                f"Unknown function {shown!r}; allowed: {allowed}.",
                "calc.unknown_function",
                name=shown,
                allowed=allowed,
            )
        if node.keywords:
            raise CalculatorError("Functions take positional arguments only.", "calc.positional")
        args = [_walk(a, depth + 1) for a in node.args]
        try:
            value = FUNCTIONS[node.func.id](*args)
        except (ValueError, TypeError, OverflowError) as exc:
            raise CalculatorError(
                f"{node.func.id}: {exc}.", "calc.function", name=node.func.id, detail=str(exc)
            ) from None
        return _check_size(value)
    if isinstance(node, ast.Name):
        raise CalculatorError(f"Names are not allowed: {node.id!r}.", "calc.name", name=node.id)
    kind = type(node).__name__
    raise CalculatorError(f"Not allowed in an expression: {kind}.", "calc.not_allowed", node=kind)


def calculate(expression: str) -> int | float:
    """The value of an arithmetic expression (`^` is read as `**`); CalculatorError when refused."""
    if not isinstance(expression, str) or not expression.strip():
        raise CalculatorError("The expression is empty.", "calc.empty")
    if len(expression) > MAX_CHARS:
        raise CalculatorError(
            f"The expression is longer than {MAX_CHARS} characters.", "calc.too_long", limit=MAX_CHARS
        )
    text = expression.replace("^", "**").replace("×", "*").replace("÷", "/")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise CalculatorError(
            f"Not an arithmetic expression: {expression!r}.", "calc.syntax", expression=expression
        ) from None
    return _walk(tree)
