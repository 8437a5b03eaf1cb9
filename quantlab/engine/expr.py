"""A tiny, safe expression language for constraints and lookbacks.

Used for strategy constraints (``"fast < slow"``), lookbacks (``"max(entry, atr_period) + 1"``)
and result filters (``"max_drawdown > -0.25"``). Only names, numbers, arithmetic,
comparisons, ``and``/``or``/``not`` and ``min``/``max``/``abs`` are allowed; evaluation
works elementwise on numpy arrays as well as on scalars.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

import numpy as np

from quantlab.errors import ParameterError, suggest

_BINOPS = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.FloorDiv: np.floor_divide,
    ast.Mod: np.mod,
    ast.Pow: np.power,
}
_CMPOPS = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}
_FUNCS = {"min": np.minimum, "max": np.maximum, "abs": np.abs}
#: Operators a user may type that the language lacks, shown as written (not as AST names).
_UNSUPPORTED_OPS = {
    ast.RShift: ">>",
    ast.LShift: "<<",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.MatMult: "@",
    ast.Invert: "~",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}


def parse(text: str, names: set[str] | frozenset[str], what: str = "expression") -> ast.Expression:
    """Parse ``text`` and check that it only uses allowed syntax and known ``names``."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise ParameterError(
            f"could not parse the {what}", found=repr(text), fix="write e.g. 'fast < slow' or 'max_drawdown > -0.25'"
        ) from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in names and node.id not in _FUNCS:
            hint = suggest(node.id, sorted(names), otherwise=f"use one of: {', '.join(sorted(names))}")
            raise ParameterError(f"unknown name {node.id!r} in the {what} {text!r}", fix=hint)
        allowed = (
            ast.Expression,
            ast.BinOp,
            ast.UnaryOp,
            ast.BoolOp,
            ast.Compare,
            ast.Name,
            ast.Load,
            ast.Constant,
            ast.Call,
            ast.And,
            ast.Or,
            ast.Not,
            ast.USub,
            ast.UAdd,
            *_BINOPS,
            *_CMPOPS,
        )
        if not isinstance(node, allowed):
            op = _UNSUPPORTED_OPS.get(type(node))
            raise ParameterError(
                f"the {what} {text!r} uses unsupported operator {op!r}"
                if op
                else f"the {what} {text!r} uses unsupported syntax ({type(node).__name__})",
                fix="use names, numbers, + - * /, comparisons, and/or/not, min/max/abs",
            )
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)):
            raise ParameterError(f"the {what} {text!r} contains a non-numeric constant", found=repr(node.value))
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _FUNCS):
            raise ParameterError(f"the {what} {text!r} calls an unsupported function", fix="only min, max, abs")
    return tree


def evaluate(tree: ast.Expression, values: Mapping[str, Any]) -> Any:
    """Evaluate a parsed expression with ``values`` (scalars or equal-length arrays)."""
    return _eval(tree.body, values)


def _eval(node: ast.AST, values: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, values)
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.Not):
            return np.logical_not(operand)
        return operand
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_eval(node.left, values), _eval(node.right, values))
    if isinstance(node, ast.BoolOp):
        parts = [_eval(v, values) for v in node.values]
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        combined = parts[0]
        for part in parts[1:]:
            combined = combine(combined, part)
        return combined
    if isinstance(node, ast.Compare):
        left = _eval(node.left, values)
        result: Any = True
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, values)
            result = np.logical_and(result, _CMPOPS[type(op)](left, right))
            left = right
        return result
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        args = [_eval(a, values) for a in node.args]
        func = _FUNCS[node.func.id]
        if node.func.id == "abs":
            return func(*args)
        result = args[0]
        for arg in args[1:]:
            result = func(result, arg)
        return result
    raise ParameterError("unsupported expression node", found=type(node).__name__)
