"""A model's ``update`` without the terms its known 0 and 1 constants make trivial.

A differentiable run (:mod:`neurosim.backends.torch_unroll`) calls a population's
``update`` once per step on whole tensors, and autograd records every operation it
makes. A parameter that is one number for the whole population and equals 0 or 1
often only switches a term off or on (snnTorch's leaky neuron: ``keep * mem`` with
``keep = 1`` for reset by subtraction, ``+ i_bias`` with no bias). Where such an
argument is an operand, the operation is dropped: ``keep * x`` and ``x * keep`` become
``x`` (``keep`` known to be 1), ``bias + x``, ``x + bias`` and ``x - bias`` become ``x``
(``bias`` known to be 0); then ``where(c, a, a)`` becomes ``a``. Every other use of the
argument is left as it was (the 0-d tensor the run passes in), and nothing is folded.

The source is left alone (``fn`` is returned) when the function rebinds one of the
known names, closes over variables of an enclosing function, or cannot be read. A
removed operation can change a result's shape or dtype (``where(c, a, a)`` has the
shape of ``c``; ``bool * 1`` is a number), so the run checks a specialized update
against the model's own at its first call
(:func:`neurosim.backends.torch_update.same_outputs`). The values are the same numbers
(``x + 0`` may differ from ``x`` only in the sign of a zero); gradients may differ in the last bit where autograd then sums in another order.

:func:`zero_outputs` reads which returned values are written as ``x * 0`` (an input
used once, such as a synaptic input that arrives each step): the run then starts the
next step's sum of arriving input from the first term instead of adding it to zeros.

:func:`specialize` with ``write_into`` also rewrites a returned value's last operation
(``r = elu(z)``) to write into an array the caller passes (``out=``): a normal torch run
then writes a state variable without a new tensor and a copy
(:mod:`neurosim.backends.torch_update`). Only where the variable's old array cannot be
read after the write: no other name holds it, and it is read after the statement only
as the name that statement rebinds.

The model's source stays the only copy of its equations: this transforms it, as the
numba backend does when it compiles it.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
from typing import Any, Callable, Mapping, Sequence

from neurosim.kernel import KERNEL_MATH_NAMES

#: the values a known constant can take to be specialized on
IDENTITIES = (0.0, 1.0)


def _is(node: ast.AST, value: float) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, (int, float))
            and not isinstance(node.value, bool) and float(node.value) == value)


class _DropIdentities(ast.NodeTransformer):
    def __init__(self, ones: set[str], zeros: set[str], where_is_math: bool = True) -> None:
        self.ones, self.zeros, self.where_is_math = ones, zeros, where_is_math

    def _named(self, node: ast.AST, names: set[str]) -> bool:
        return isinstance(node, ast.Name) and node.id in names

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        left, right = node.left, node.right
        if isinstance(node.op, ast.Mult):
            if self._named(left, self.ones):
                return right
            if self._named(right, self.ones):
                return left
        elif isinstance(node.op, ast.Add):
            if self._named(left, self.zeros):
                return right
            if self._named(right, self.zeros):
                return left
        elif isinstance(node.op, ast.Sub) and self._named(right, self.zeros):
            return left
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if (self.where_is_math and isinstance(node.func, ast.Name) and node.func.id == "where" and len(node.args) == 3
                and not node.keywords and ast.dump(node.args[1]) == ast.dump(node.args[2])):
            return node.args[1]
        return node


class _ZeroReturns(ast.NodeTransformer):
    def __init__(self, positions: frozenset[int]) -> None:
        self.positions = positions

    def visit_Return(self, node: ast.Return) -> ast.AST:
        if isinstance(node.value, ast.Tuple):
            node.value.elts = [ast.Constant(0.0) if k in self.positions else item
                               for k, item in enumerate(node.value.elts)]
        return node


def _binds(func: ast.FunctionDef, names: set[str]) -> bool:
    """Whether the function body binds one of ``names`` anywhere (assignment, loop or
    comprehension target, walrus, deletion, import, an inner function's argument, a
    ``match`` capture, ``except ... as``, ``global``/``nonlocal``)."""
    for node in ast.walk(func):
        if node is func:
            continue
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load) and node.id in names:
            return True
        if isinstance(node, ast.arg) and node.arg in names and node not in func.args.args:
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in names:
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                (alias.asname or alias.name).split(".")[0] in names for alias in node.names):
            return True
        if isinstance(node, (ast.MatchAs, ast.MatchStar, ast.ExceptHandler)) and node.name in names:
            return True
        if isinstance(node, ast.MatchMapping) and node.rest in names:
            return True
        if isinstance(node, (ast.Global, ast.Nonlocal)) and set(node.names) & names:
            return True
    return False


def specialize(fn: Callable[..., Any], known: Mapping[str, float],
               zero_returns: frozenset[int] = frozenset(), *,
               write_into: tuple[Sequence[str], Mapping[str, Callable[..., Any]]] | None = None
               ) -> Callable[..., Any]:
    """``fn`` (a model's ``update``, same signature) without the operations that the
    arguments in ``known`` (name -> 0 or 1) make trivial; ``fn`` itself when there is
    nothing to drop or it cannot be transformed safely (see the module docstring).

    ``zero_returns`` (positions from :func:`zero_outputs` with ``own``): return the
    number ``0.0`` there instead of computing ``x * 0``; a normal run then multiplies
    those state variables by 0 in place, one pass instead of a product and a copy.

    ``write_into`` (each returned value's own variable, and the functions that write an
    operation's result into a given array: :data:`INTO_OPERATIONS`' names): returned
    values whose last operation can write into their variable's array directly do
    (:func:`_write_into`); the function then takes those arrays as extra arguments,
    after its own, and lists their positions in ``__neurosim_into__``."""
    ones = {name for name, v in known.items() if float(v) == 1.0}
    zeros = {name for name, v in known.items() if float(v) == 0.0}
    if not (ones or zeros or zero_returns or write_into) or fn.__code__.co_freevars:
        return fn
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return fn
    func = tree.body[0] if tree.body else None
    if not isinstance(func, ast.FunctionDef):
        return fn
    arguments = {a.arg for a in func.args.args}
    if not (ones | zeros) <= arguments or _binds(func, ones | zeros):
        return fn
    func.decorator_list = []
    func.args.defaults, func.args.kw_defaults = [], [None] * len(func.args.kwonlyargs)
    original = ast.dump(func)
    # (a math name the module defines as its own @kernel helper is that helper, which
    # bind() keeps: neither dropped nor trusted here; spike is always the math's own)
    math_names = {name for name in KERNEL_MATH_NAMES if name in ("spike", "spike_above")
                  or not getattr(fn.__globals__.get(name), "__neurosim_kernel__", False)}
    func.body = [_DropIdentities(ones, zeros, "where" in math_names).visit(statement)
                 for statement in func.body]
    if zero_returns:
        func.body = [_ZeroReturns(zero_returns).visit(statement) for statement in func.body]
    positions: tuple[int, ...] = ()
    namespace = fn.__globals__
    if write_into is not None:
        own, operations = write_into
        positions = _write_into(func, list(own), zero_returns, set(operations), math_names)
        if positions:
            namespace = {**fn.__globals__, **{INTO_PREFIX + name: f for name, f in operations.items()}}
    if ast.dump(func) == original:
        return fn
    ast.fix_missing_locations(tree)
    try:
        module = compile(tree, f"<specialized {fn.__qualname__}>", "exec")
        code = next(c for c in module.co_consts if isinstance(c, types.CodeType) and c.co_name == func.name)
    except (SyntaxError, ValueError, StopIteration):
        return fn
    out = types.FunctionType(code, namespace, fn.__name__, fn.__defaults__)
    out.__kwdefaults__ = fn.__kwdefaults__
    out.__doc__ = fn.__doc__
    out.__neurosim_into__ = positions
    return out


#: the operations a value's last operation can be, for it to write into an array: the
#: arithmetic operators by name, and the kernel math functions of these names
INTO_BINARY = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div"}
INTO_PREFIX = "__neurosim_into_"


def _write_into(func: ast.FunctionDef, own: list[str], zero_returns: frozenset[int],
                operations: set[str], math_names: set[str]) -> tuple[int, ...]:
    """Rewrite ``func`` (in place) so that each returned value that can, writes its last
    operation's result into its variable's array, passed as an extra argument; return
    those positions.

    A returned value ``v`` at position ``k`` (its variable's argument ``x = own[k]``)
    qualifies when: the body is straight-line assignments and one final ``return`` of a
    tuple; ``v``'s last binding is a top-level ``v = <a op b>`` or ``v = f(...)`` with
    ``op`` or ``f`` in ``operations``; ``x`` is an argument, read after that statement
    only as the same name rebound by it (``x`` is ``v``) and otherwise never rebound;
    ``x`` is read only as an operand of an operation (never bound to another name or
    returned as it is, which would alias the array the write changes); and ``v`` is not
    returned earlier in the tuple. The run checks the result against the model's own
    before using it (:class:`neurosim.backends.torch_update.PreparedUpdate`)."""
    body = func.body
    if not body or not isinstance(body[-1], ast.Return) or not isinstance(body[-1].value, ast.Tuple):
        return ()
    if not all(isinstance(st, ast.Assign) or _is_docstring(st) for st in body[:-1]):
        return ()
    if any(isinstance(node, (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef, ast.comprehension,
                             ast.NamedExpr, ast.Return, ast.Starred))
           for st in body[:-1] for node in ast.walk(st)):
        return ()
    arguments = [a.arg for a in func.args.args]
    items = body[-1].value.elts
    if any(isinstance(item, ast.Starred) for item in items):
        return ()  # (positions not known from the source)

    def stores(name: str) -> list[int]:
        return [i for i, st in enumerate(body[:-1]) for node in ast.walk(st)
                if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store)]

    def parents() -> dict[int, ast.AST]:
        out = {}
        for node in ast.walk(func):
            for child in ast.iter_child_nodes(node):
                out[id(child)] = node
        return out

    up = parents()
    chosen: list[tuple[int, int, ast.Assign]] = []
    seen: set[str] = set()
    for k, item in enumerate(items[:-1]):
        if not isinstance(item, ast.Name) or item.id in seen or k in zero_returns or k >= len(own):
            if isinstance(item, ast.Name):
                seen.add(item.id)
            continue
        v, x = item.id, own[k]
        seen.add(v)
        bound = stores(v)
        if not bound or x not in arguments:
            continue
        at = bound[-1]
        st = body[at]
        if len(st.targets) != 1 or not isinstance(st.targets[0], ast.Name) or st.targets[0].id != v:
            continue
        value = st.value
        if isinstance(value, ast.BinOp):
            name = INTO_BINARY.get(type(value.op))
        elif (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and not value.keywords
              and value.func.id in math_names):  # (the math functions only, not a helper)
            name = value.func.id
        else:
            continue
        if name not in operations:
            continue
        if x != v and stores(x):
            continue  # (x rebound to another value: too many cases)
        loads = [(i, node) for i, st2 in enumerate(body) for node in ast.walk(st2)
                 if isinstance(node, ast.Name) and node.id == x and isinstance(node.ctx, ast.Load)]
        if x != v and any(i > at for i, _ in loads):
            continue  # (the old values, read after the write)
        # up to the write, x is read as an operand only: no other name holds the array
        if not all(_operand(up.get(id(node)), node, math_names) for i, node in loads if i <= at):
            continue
        chosen.append((k, at, st))
    for k, at, st in chosen:
        value = st.value
        dest = ast.Name(id=f"{INTO_PREFIX}out{k}", ctx=ast.Load())
        if isinstance(value, ast.BinOp):
            call = ast.Call(func=ast.Name(id=INTO_PREFIX + INTO_BINARY[type(value.op)], ctx=ast.Load()),
                            args=[value.left, value.right, dest], keywords=[])
        else:
            call = ast.Call(func=ast.Name(id=INTO_PREFIX + value.func.id, ctx=ast.Load()),
                            args=[*value.args, dest], keywords=[])
        st.value = call
        func.args.args.append(ast.arg(arg=f"{INTO_PREFIX}out{k}"))
    return tuple(k for k, _, _ in chosen)


def _is_docstring(statement: ast.stmt) -> bool:
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str))


def _operand(parent: ast.AST | None, node: ast.AST, math_names: set[str]) -> bool:
    """Whether ``node`` is read as an operand: its value used in a new array, never passed
    on as it is (``+x`` is ``x`` itself on torch; a helper may return its argument)."""
    if isinstance(parent, (ast.BinOp, ast.Compare)):
        return True
    if isinstance(parent, ast.UnaryOp):
        return isinstance(parent.op, (ast.USub, ast.Invert))
    return (isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and node in parent.args
            and parent.func.id in math_names)


def zero_outputs(fn: Callable[..., Any], own: Sequence[str] | None = None) -> frozenset[int]:
    """Positions of the values ``fn`` returns as ``x * 0`` (or ``0 * x``) at every
    ``return``: tensors of zeros (empty when the source cannot be read). With ``own``
    (the name of each returned value's own variable), only those where ``x`` is that
    variable's argument, never rebound in the body: ``x.mul_(0)`` then gives the same."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return frozenset()
    if not tree.body or not isinstance(tree.body[0], ast.FunctionDef):
        return frozenset()
    func = tree.body[0]
    arguments = {a.arg for a in func.args.args}

    def operand(item: ast.BinOp) -> ast.AST:
        return item.right if _is(item.left, 0.0) else item.left

    def zero(k: int, item: ast.AST) -> bool:
        if not (isinstance(item, ast.BinOp) and isinstance(item.op, ast.Mult)
                and (_is(item.left, 0.0) or _is(item.right, 0.0))):
            return False
        if own is None:
            return True
        x = operand(item)
        return (k < len(own) and isinstance(x, ast.Name) and x.id == own[k] and x.id in arguments
                and not _binds(func, {x.id}))

    found: set[int] | None = None
    for node in ast.walk(func):
        if isinstance(node, ast.Return) and node.value is not None:
            items = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            zeros = {k for k, item in enumerate(items) if zero(k, item)}
            found = zeros if found is None else found & zeros
    return frozenset(found or ())
