"""A model's ``update`` with the identities of its known 0 and 1 constants removed.

A differentiable run (:mod:`neurosim.backends.torch_unroll`) calls a population's
``update`` once per step on whole tensors, and autograd records every operation it
makes. A parameter that is one number for the whole population and equals 0 or 1
often only switches a term off or on (snnTorch's leaky neuron: ``keep * mem`` with
``keep = 1`` for reset by subtraction, ``+ i_bias`` with no bias). Written into the
source as that number, the terms it makes trivial are dropped: ``1 * x`` and
``x * 1`` become ``x``, ``x + 0``, ``0 + x`` and ``x - 0`` become ``x``, and
``where(c, a, a)`` becomes ``a``. The results are the same numbers (``x + 0`` may
differ from ``x`` only in the sign of a zero), with fewer operations forward and
backward. ``x * 0`` is kept: it makes a tensor of zeros of ``x``'s shape.

The model's source is the only copy of its equations: this transforms it, as the
numba backend does when it compiles it. A model whose source Python cannot find is
used as it is.

:func:`zero_outputs` reads which returned values are written as ``x * 0`` (an input
used once, such as a synaptic input that arrives each step): the run then starts the
next step's sum of arriving input from the first term instead of adding it to zeros.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Any, Callable, Mapping

#: the values a constant is written in as (others stay arguments)
IDENTITIES = (0.0, 1.0)


def _is(node: ast.AST, value: float) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, (int, float))
            and not isinstance(node.value, bool) and float(node.value) == value)


class _Simplify(ast.NodeTransformer):
    def __init__(self, known: Mapping[str, float]) -> None:
        self.known = known

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load) and node.id in self.known:
            return ast.copy_location(ast.Constant(float(self.known[node.id])), node)
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        left, right = node.left, node.right
        if isinstance(left, ast.Constant) and isinstance(right, ast.Constant):
            try:
                value = eval(compile(ast.Expression(node), "<fold>", "eval"))  # noqa: S307 - literals only
            except Exception:  # noqa: BLE001 - leave it as written
                return node
            return ast.copy_location(ast.Constant(value), node)
        if isinstance(node.op, ast.Mult):
            if _is(left, 1.0):
                return right
            if _is(right, 1.0):
                return left
        elif isinstance(node.op, ast.Add):
            if _is(left, 0.0):
                return right
            if _is(right, 0.0):
                return left
        elif isinstance(node.op, ast.Sub) and _is(right, 0.0):
            return left
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if (isinstance(node.func, ast.Name) and node.func.id == "where" and len(node.args) == 3
                and not node.keywords and ast.dump(node.args[1]) == ast.dump(node.args[2])):
            return node.args[1]
        return node


def _returns_tensors(func: ast.FunctionDef) -> bool:
    """Whether every value returned is still computed (not a bare number)."""
    for node in ast.walk(func):
        if isinstance(node, ast.Return) and node.value is not None:
            items = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            if any(isinstance(item, ast.Constant) for item in items):
                return False
    return True


def specialize(fn: Callable[..., Any], known: Mapping[str, float]) -> Callable[..., Any]:
    """``fn`` (a model's ``update``, same signature) with the arguments in ``known``
    (name -> 0 or 1) written in and the identities they make removed; ``fn`` itself
    when there is nothing to remove or its source cannot be read."""
    known = {name: float(v) for name, v in known.items() if float(v) in IDENTITIES}
    if not known:
        return fn
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return fn
    func = tree.body[0]
    if not isinstance(func, ast.FunctionDef) or not all(name in {a.arg for a in func.args.args} for name in known):
        return fn
    func.decorator_list = []
    original = ast.dump(func)
    func.body = [_Simplify(known).visit(statement) for statement in func.body]
    if ast.dump(func) == original or not _returns_tensors(func):
        return fn
    ast.fix_missing_locations(tree)
    namespace: dict[str, Any] = {}
    glob = dict(fn.__globals__)
    exec(compile(tree, f"<specialized {fn.__qualname__}>", "exec"), glob, namespace)  # noqa: S102
    out = namespace[func.name]
    out.__doc__ = fn.__doc__
    return out


def zero_outputs(fn: Callable[..., Any]) -> frozenset[int]:
    """Positions of the values ``fn`` returns as ``x * 0`` (or ``0 * x``) at every
    ``return``: tensors of zeros (empty when the source cannot be read)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return frozenset()
    found: set[int] | None = None
    for node in ast.walk(tree.body[0]):
        if isinstance(node, ast.Return) and node.value is not None:
            items = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            zeros = {k for k, item in enumerate(items)
                     if isinstance(item, ast.BinOp) and isinstance(item.op, ast.Mult)
                     and (_is(item.left, 0.0) or _is(item.right, 0.0))}
            found = zeros if found is None else found & zeros
    return frozenset(found or ())
