"""A population's update on torch, prepared once: its 0/1 constants written in, its
cleared inputs cleared in place, and the order of its writes known.

A normal torch run calls each population's ``update`` (the model's own, bound to torch
math) once per step and copies what it returns into the state arrays. Much of that is
the same every step and is worked out once here, per population:

* **constants that are 0 or 1** (one number for the whole population, e.g. a graded
  unit's ``bias = 0``) are written into the update's source, so ``x + bias`` is ``x``
  (:func:`neurosim.specialize.specialize`; the differentiable mode does the same). On
  the CPU only: a CUDA graph replays its captured operations, and would not see such a
  constant written in place later;
* **a variable returned as ``x * 0`` of itself** (an input used once: a synaptic input
  cleared after the update) is multiplied by 0 in place, one pass instead of a product
  and a copy, with the same values (a NaN stays NaN, as in the model's own update);
* **values written into their arrays by the update itself** (CPU): a returned value
  whose last operation is an arithmetic operator or one of the math functions (``z =
  i + i_ext``, ``r = elu(z)``) writes its result into its variable's array (``out=``)
  instead of into a new tensor that is then copied (:func:`neurosim.specialize.specialize`'s
  ``write_into``, which refuses any value whose variable's old array could still be
  read after the write); one pass and one allocation fewer per value;
* **the order of the writes**: an update may return one state variable's array as
  another's new value (``x_prev = x``); that one is written first, before the array
  changes (values that wait on each other, a swap, are copied first). Which outputs
  alias an array is fixed by the update's (branch-free) code, so it is found at the
  first call, not checked every step.

At its first call the prepared update runs once for the step, and the model's own runs
on copies of the arguments beside it: shapes, dtypes and values must agree (the source
transformation cannot see shapes), else the model's own is used from then on. The
version that writes into the arrays is tried then too, on copies of the arrays that
alias as they do; it must write into the arrays it is given (not resize them) and give
the same values, and it is tried again when an argument array is replaced. The
values are the same numbers: ``x + 0`` differs from ``x`` only in the sign of a zero. It
is prepared again when a constant written in is replaced or written (a parameter set);
a constant that became 0 or 1 since is written in at the next preparation (running it
as before is right, only slower).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import torch

from neurosim.kernel import TORCH_MATH, bind
from neurosim.specialize import IDENTITIES, INTO_BINARY, specialize, zero_outputs

if TYPE_CHECKING:
    from neurosim.population import Population

#: (constant arrays, their versions and grad flags), and the 0/1 constants they give
KnownConstants = tuple[tuple[tuple[torch.Tensor, int, bool], ...], tuple[tuple[str, float], ...]]


def known_constants(pop: "Population", a: Mapping[str, torch.Tensor], raised: str | None,
                    cache: dict[str, KnownConstants]) -> tuple[tuple[str, float], ...]:
    """The update's constant arguments that are one number for the population and 0 or 1,
    as (argument, value), to be written into the update. Read from the device only when
    a constant array was replaced or written (``cache`` holds what was read, by
    population); ``raised``: a gated threshold argument, never written in."""
    names = [(arg, name) for arg, name in zip(pop._arg_names, pop.argument_arrays())
             if name.startswith("const.") and name != raised]
    # (the arrays themselves, not their ids: a freed array's id can come back)
    signature = tuple((a[name], a[name]._version, a[name].requires_grad) for _, name in names)
    cached = cache.get(pop.name)
    if cached is not None and len(cached[0]) == len(signature) and all(
            c[0] is s[0] and c[1:] == s[1:] for c, s in zip(cached[0], signature)):
        return cached[1]
    known = tuple((arg, float(a[name])) for arg, name in names
                  if a[name].dim() == 0 and not a[name].requires_grad and float(a[name]) in IDENTITIES)
    cache[pop.name] = (signature, known)
    return known


def same_outputs(fast: Callable[..., Any], plain: Callable[..., Any], args: Sequence[Any],
                 zeros: frozenset[int] = frozenset()) -> bool:
    """Whether ``fast`` gives what ``plain`` (the model's own update) does on ``args``
    (see :func:`same_values`)."""
    with torch.no_grad():
        try:
            got = fast(*args)
        except Exception:  # noqa: BLE001 - e.g. an operation refused on a changed dtype
            return False
        want = plain(*args)
    return same_values(got, want, zeros)


def same_values(got: Sequence[Any], want: Sequence[Any], zeros: frozenset[int] = frozenset()) -> bool:
    """The same shapes, dtypes and values (NaN where ``want`` has NaN); at ``zeros``,
    anything where ``want`` holds zeros (a value the caller clears itself)."""

    def same(g: Any, w: Any) -> bool:
        if not (isinstance(g, torch.Tensor) and isinstance(w, torch.Tensor)
                and g.shape == w.shape and g.dtype == w.dtype):
            return False
        if g.dtype.is_floating_point:
            return bool(torch.allclose(g, w, rtol=0.0, atol=0.0, equal_nan=True))
        return torch.equal(g, w)

    def zero(w: Any) -> bool:
        return isinstance(w, torch.Tensor) and w.is_floating_point() and not bool(w.any())

    return len(got) == len(want) and all(
        zero(w) if k in zeros else same(g, w) for k, (g, w) in enumerate(zip(got, want)))


def write_order(values: Sequence[Any], targets: Sequence[torch.Tensor]) -> tuple[list[int], frozenset[int]]:
    """The order to write ``values`` into ``targets`` in, and which values to copy first.

    A value that shares storage with another target (``z = i`` before ``i`` is cleared;
    ``x_prev = x``) is written before that target is; where two wait on each other
    (a swap), the values involved are copied first."""
    storages = [x.untyped_storage().data_ptr() for x in targets]
    # before[j]: the outputs whose values are target j's array, to be written before j
    before = {j: {k for k, v in enumerate(values) if k != j and isinstance(v, torch.Tensor)
                  and v.untyped_storage().data_ptr() == p} for j, p in enumerate(storages)}
    order: list[int] = []
    waiting = list(range(len(values)))
    while waiting:
        ready = [j for j in waiting if not before[j] - set(order)]
        if not ready:  # a cycle: copy what the waiting ones read, then write in any order
            clones = frozenset(k for j in waiting for k in before[j])
            return order + waiting, clones
        order += ready
        waiting = [j for j in waiting if j not in ready]
    return order, frozenset()


def _written(value: Any, out: torch.Tensor) -> Any:
    """``value`` in ``out`` (an operation without an ``out=`` form for these operands)."""
    if value is out or not isinstance(value, torch.Tensor):
        return value
    return out.copy_(value)


def _add_into(a: Any, b: Any, out: torch.Tensor) -> Any:
    if isinstance(a, torch.Tensor):
        return torch.add(a, b, out=out)
    return torch.add(b, a, out=out) if isinstance(b, torch.Tensor) else a + b  # (a + b is b + a)


def _mul_into(a: Any, b: Any, out: torch.Tensor) -> Any:
    if isinstance(a, torch.Tensor):
        return torch.mul(a, b, out=out)
    return torch.mul(b, a, out=out) if isinstance(b, torch.Tensor) else a * b


def _sub_into(a: Any, b: Any, out: torch.Tensor) -> Any:
    return torch.sub(a, b, out=out) if isinstance(a, torch.Tensor) else _written(a - b, out)


def _div_into(a: Any, b: Any, out: torch.Tensor) -> Any:
    return torch.div(a, b, out=out) if isinstance(a, torch.Tensor) else _written(a / b, out)


def _extreme_into(clamp: Callable[..., Any], both: Callable[..., Any],
                  of_numbers: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    """``maximum`` or ``minimum`` into ``out``, as :func:`neurosim.kernel.torch_maximum`
    computes it: a clamp when one side is a number."""
    def into(a: Any, b: Any, out: torch.Tensor) -> Any:
        if not isinstance(b, torch.Tensor):
            return clamp(a, b, out=out) if isinstance(a, torch.Tensor) else of_numbers(a, b)
        if not isinstance(a, torch.Tensor):
            return clamp(b, a, out=out)
        return both(a, b, out=out)
    return into


_maximum_into = _extreme_into(torch.clamp_min, torch.maximum, max)
_minimum_into = _extreme_into(torch.clamp_max, torch.minimum, min)


def _where_into(c: Any, a: Any, b: Any, out: torch.Tensor) -> Any:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return torch.where(c, a, b, out=out)
    return _written(torch.where(c, a, b), out)


#: each operation an update's value may end with, writing its result into ``out``, as
#: the torch math (:data:`neurosim.kernel.TORCH_MATH`) computes it
INTO_OPERATIONS: Mapping[str, Callable[..., Any]] = {
    "add": _add_into, "sub": _sub_into, "mul": _mul_into, "div": _div_into,
    "exp": lambda x, out: torch.exp(x, out=out),
    "elu": lambda x, out: torch._C._nn.elu(x, out=out),  # (F.elu's alpha 1)
    "sigmoid": lambda x, out: torch.sigmoid(x, out=out),
    "tanh": lambda x, out: torch.tanh(x, out=out),
    "maximum": _maximum_into, "minimum": _minimum_into, "where": _where_into,
}


def into_operations(math: Mapping[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """:data:`INTO_OPERATIONS` for an update bound to ``math``: the operators, and each
    math function ``math`` binds as the torch math does (a gated population's firing
    condition, say, is its own)."""
    return {name: f for name, f in INTO_OPERATIONS.items()
            if name in INTO_BINARY.values() or math.get(name) is TORCH_MATH.get(name)}


class PreparedUpdate:
    """One population's update for normal (non-differentiable) torch runs.

    Args:
        model: the population's model class (its ``update`` is the source).
        math: the torch math to bind it to (a gated population's own).
        plain: its update bound to ``math`` as the model wrote it (the backend's own).
        known: the 0/1 constants to write in (:func:`known_constants`).
        wrap: applied to the bound update once checked, with whether it is the model's
            own (on CUDA, fusing it).
    """

    def __init__(self, model: type, math: Mapping[str, Callable[..., Any]], plain: Callable[..., Any],
                 known: tuple[tuple[str, float], ...],
                 wrap: Callable[[Callable[..., Any], bool], Callable[..., Any]] | None = None,
                 write_into: bool = False) -> None:
        self.model, self.known = model, known
        self.names: list[str] = []  # the update's arguments' array names (guard_with)
        self.arrays: tuple[torch.Tensor, ...] = ()  # and the arrays
        self._held: Mapping[str, torch.Tensor] | None = None
        self.plain_names = False
        self.guard: tuple[tuple[str, torch.Tensor, int], ...] = ()
        variables = list(model.state_variables)
        self.target_names = [f"state.{var}" for var in variables]  # (the arrays written)
        zeros = zero_outputs(model.update, variables)  # (each a variable's own x * 0)
        fast = specialize(model.update, dict(known), zeros)
        self.plain = plain
        self.fast = bind(fast, math) if fast is not model.update else None
        self.zeros = zeros if self.fast is not None else frozenset()
        self.wrap = wrap
        self.update: Callable[..., Any] | None = None  # set at the first call
        self.clones: frozenset[int] = frozenset()
        self.order: list[int] = list(range(len(variables)))
        #: the writes in order: (k, None) copies output k, (k, a 0-d zero) clears variable k
        self.writes: list[tuple[int, torch.Tensor | None]] = []
        #: None: emit what the update returned; k >= 0: target k (written with it); -1: a copy
        self.emit: int | None = None
        # the update writing values into their arrays itself (specialize's write_into),
        # tried at the first call; dests: the positions it writes, once it is used
        self.into: Callable[..., Any] | None = None
        self.into_positions: tuple[int, ...] = ()  # (the positions it would write)
        self.dests: tuple[int, ...] = ()
        if write_into:
            operations = into_operations(math)
            into = specialize(model.update, dict(known), zeros, write_into=(variables, operations))
            self.into_positions = getattr(into, "__neurosim_into__", ())
            if self.into_positions:
                self.into = bind(into, math)

    def guard_with(self, pop: "Population", a: Mapping[str, torch.Tensor]) -> None:
        """Remember ``pop``'s argument names and the arrays written in, as they are now."""
        names = pop.argument_arrays()
        arrays = tuple(a[name] for name in names)
        if self.dests and (names != self.names or any(x is not y for x, y in zip(arrays, self.arrays))):
            # an argument replaced (a parameter set anew, perhaps of another shape): the
            # update that writes into the arrays is checked again at the next call
            self.update, self.dests, self.clones = None, (), frozenset()
        self.names, self.arrays = names, arrays
        self._held = None  # (the table of arrays last found to hold them)
        #: every argument is an array as it is (no random input; a gated threshold is
        #: left to the caller, which knows it)
        self.plain_names = not any(name.startswith("key.") for name in self.names)
        by_arg = dict(zip(pop._arg_names, self.names))
        self.guard = tuple((by_arg[arg], a[by_arg[arg]], a[by_arg[arg]]._version) for arg, _ in self.known)

    def holds(self, model: type, a: Mapping[str, torch.Tensor]) -> bool:
        """Whether it still fits (each step): the same model, and every array written in
        is still there, unwritten; an update that writes into the arrays also needs every
        argument array the same as when it was checked. (A constant that became 0 or 1
        since is left to the next preparation: running it unspecialized is right, only
        slower.)"""
        if model is not self.model:
            return False
        if a is not self._held:  # (a new table of arrays: each looked up; the same table
            # holds the same arrays, so only their versions need reading again)
            if not (all(a[name] is x for name, x, _ in self.guard)
                    and (not self.dests or all(a[name] is x for name, x in zip(self.names, self.arrays)))):
                return False
            self._held = a
        return all(x._version == v for _, x, v in self.guard)

    def __call__(self, args: Sequence[Any], targets: Sequence[torch.Tensor]) -> Any:
        """Run the update on ``args`` (once) and write its new state into ``targets`` (in
        place); return what the population emits."""
        if self.update is None:  # (this step's writes and emission: the next may differ)
            out, writes, emit = self._first_call(args, targets)
        else:
            writes, emit = self.writes, self.emit
            if self.dests:  # (those values written by the update itself)
                out = self.update(*args, *[targets[k] for k in self.dests])
            else:
                out = self.update(*args)
                if self.clones:  # (before anything is written)
                    out = [v.clone() if k in self.clones else v for k, v in enumerate(out)]
        emitted = out[-1] if emit is None else (targets[emit] if emit >= 0 else out[-1].clone())
        for k, zero in writes:
            if zero is None:
                targets[k].copy_(out[k])
            else:
                target = targets[k]
                # (by a 0-d tensor of its dtype: a Python 0.0 is wrapped in one each call)
                target.mul_(zero if zero.dtype is target.dtype else 0.0)
        return emitted

    def _first_call(self, args: Sequence[Any], targets: Sequence[torch.Tensor]
                    ) -> tuple[Sequence[Any], list[tuple[int, torch.Tensor | None]], int | None]:
        """This step's outputs, writes and emission (see :attr:`writes`, :attr:`emit`);
        settles which update runs from the next step on, and the order of its writes."""
        fast = self.fast
        checking = fast is not None or self.into is not None
        # (the model's own runs on copies: the step's own call is the only one on the arrays)
        seen = [x.clone() if isinstance(x, torch.Tensor) else x for x in args] if checking else args
        update = fast or self.plain
        try:
            out = update(*args)
        except Exception:  # noqa: BLE001 - e.g. an operation refused on a changed dtype
            if fast is None:
                raise
            out = None
        arrays = targets  # what the values may be
        want = None
        if checking:
            with torch.no_grad():
                want = self.plain(*seen)
        if fast is not None and (out is None or not same_values(out, want, self.zeros)):
            # the model's own from now on; this step's values are its values on the
            # copies, which they may alias in place of the arrays
            update, out, self.zeros, self.into = self.plain, want, frozenset(), None
            arrays = [next((c for x, c in zip(args, seen) if x is t), t) for t in targets]
        self.order, self.clones = write_order(out[:-1], arrays)
        if self.clones:
            out = [v.clone() if k in self.clones else v for k, v in enumerate(out)]
        self.emit = self._emitted_from(out, arrays)
        self.writes = [(k, self._zero(targets[k]) if k in self.zeros else None) for k in self.order]
        writes, emit = self.writes, self.emit
        if self.into is not None and not self.clones and self.wrap is None and self._writes_into(args, targets, want):
            update = self.into
        self.update = self.wrap(update, update is self.plain) if self.wrap is not None else update
        return out, writes, emit

    def _emitted_from(self, out: Sequence[Any], arrays: Sequence[torch.Tensor]) -> int | None:
        """:attr:`emit` for outputs ``out`` of an update writing ``arrays``: what it emits
        may be an array a write changes (x_prev = x, emitting x): then the variable it was
        also written to, or a copy."""
        emitted = out[-1]
        if isinstance(emitted, torch.Tensor) and any(
                emitted.untyped_storage().data_ptr() == x.untyped_storage().data_ptr() for x in arrays):
            same = [k for k, v in enumerate(out[:-1]) if v is emitted and k not in self.zeros]
            return same[0] if same else -1
        return None

    @staticmethod
    def _zero(target: torch.Tensor) -> torch.Tensor:
        return torch.zeros((), dtype=target.dtype, device=target.device)

    def _writes_into(self, args: Sequence[Any], targets: Sequence[torch.Tensor], want: Sequence[Any]) -> bool:
        """Whether the update that writes values into their arrays itself (:attr:`into`)
        gives the model's own values (``want``, on copies of ``args``): it runs on copies of
        the arrays, each copied once so that they alias as the arrays do, must write into
        those it was given (not resize or replace them) and need no copy first. If so, it
        is used from the next step on, with its own writes and what it emits."""
        positions = self.into_positions
        copies: dict[int, torch.Tensor] = {}

        def copy_of(x: Any) -> Any:
            if not isinstance(x, torch.Tensor):
                return x
            if id(x) not in copies:
                copies[id(x)] = x.clone()
            return copies[id(x)]

        args2, targets2 = [copy_of(x) for x in args], [copy_of(t) for t in targets]
        dests = [targets2[k] for k in positions]
        layout = [(d.shape, d.stride(), d.data_ptr()) for d in dests]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # (a resized output warns)
                got = self.into(*args2, *dests)
        except Exception:  # noqa: BLE001 - e.g. an output that cannot take the result's dtype
            return False
        if not (all(got[k] is d for k, d in zip(positions, dests))
                and layout == [(d.shape, d.stride(), d.data_ptr()) for d in dests]
                and same_values(got, want, self.zeros)):
            return False
        order, clones = write_order(got[:-1], targets2)
        if clones:
            return False
        self.order, self.dests = order, positions
        self.emit = self._emitted_from(got, targets2)
        self.writes = [(k, self._zero(targets[k]) if k in self.zeros else None) for k in order
                       if k not in positions]
        return True
