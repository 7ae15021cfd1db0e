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
* **the order of the writes**: an update may return one state variable's array as
  another's new value (``x_prev = x``); that one is written first, before the array
  changes (values that wait on each other, a swap, are copied first). Which outputs
  alias an array is fixed by the update's (branch-free) code, so it is found at the
  first call, not checked every step.

At its first call the prepared update runs once for the step, and the model's own runs
on copies of the arguments beside it: shapes, dtypes and values must agree (the source
transformation cannot see shapes), else the model's own is used from then on. The
values are the same numbers: ``x + 0`` differs from ``x`` only in the sign of a zero. It
is prepared again when a constant written in is replaced or written (a parameter set);
a constant that became 0 or 1 since is written in at the next preparation (running it
as before is right, only slower).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import torch

from neurosim.kernel import bind
from neurosim.specialize import IDENTITIES, specialize, zero_outputs

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
                 wrap: Callable[[Callable[..., Any], bool], Callable[..., Any]] | None = None) -> None:
        self.model, self.known = model, known
        self.names: list[str] = []  # the update's arguments' array names (guard_with)
        self.guard: tuple[tuple[str, torch.Tensor, int], ...] = ()
        variables = list(model.state_variables)
        zeros = zero_outputs(model.update, variables)  # (each a variable's own x * 0)
        fast = specialize(model.update, dict(known), zeros)
        self.plain = plain
        self.fast = bind(fast, math) if fast is not model.update else None
        self.zeros = zeros if self.fast is not None else frozenset()
        self.wrap = wrap
        self.update: Callable[..., Any] | None = None  # set at the first call
        self.clones: frozenset[int] = frozenset()
        self.order: list[int] = list(range(len(variables)))
        #: None: emit what the update returned; k >= 0: target k (written with it); -1: a copy
        self.emit: int | None = None

    def guard_with(self, pop: "Population", a: Mapping[str, torch.Tensor]) -> None:
        """Remember ``pop``'s argument names and the arrays written in, as they are now."""
        self.names = pop.argument_arrays()
        by_arg = dict(zip(pop._arg_names, self.names))
        self.guard = tuple((by_arg[arg], a[by_arg[arg]], a[by_arg[arg]]._version) for arg, _ in self.known)

    def holds(self, model: type, a: Mapping[str, torch.Tensor]) -> bool:
        """Whether it still fits (each step): the same model, and every array written in
        is still there, unwritten. (A constant that became 0 or 1 since is left to the
        next preparation: running it unspecialized is right, only slower.)"""
        return model is self.model and all(a[name] is x and x._version == v for name, x, v in self.guard)

    def __call__(self, args: Sequence[Any], targets: Sequence[torch.Tensor]) -> Any:
        """Run the update on ``args`` (once) and write its new state into ``targets`` (in
        place); return what the population emits."""
        if self.update is None:
            out = self._first_call(args, targets)
        else:
            out = self.update(*args)
            if self.clones:  # (before anything is written)
                out = [v.clone() if k in self.clones else v for k, v in enumerate(out)]
        emitted = out[-1] if self.emit is None else (targets[self.emit] if self.emit >= 0 else out[-1].clone())
        zeros = self.zeros
        for k in self.order:
            if k in zeros:
                targets[k].mul_(0.0)
            else:
                targets[k].copy_(out[k])
        return emitted

    def _first_call(self, args: Sequence[Any], targets: Sequence[torch.Tensor]) -> Sequence[Any]:
        """This step's outputs; settles which update runs and the order of the writes."""
        fast = self.fast
        # (the model's own runs on copies: the step's own call is the only one on the arrays)
        seen = [x.clone() if isinstance(x, torch.Tensor) else x for x in args] if fast is not None else args
        update = fast or self.plain
        try:
            out = update(*args)
        except Exception:  # noqa: BLE001 - e.g. an operation refused on a changed dtype
            if fast is None:
                raise
            out = None
        arrays = targets  # what the values may be
        if fast is not None:
            with torch.no_grad():
                want = self.plain(*seen)
            if out is None or not same_values(out, want, self.zeros):
                # the model's own from now on; this step's values are its values on the
                # copies, which they may alias in place of the arrays
                update, out, self.zeros = self.plain, want, frozenset()
                arrays = [next((c for x, c in zip(args, seen) if x is t), t) for t in targets]
        self.order, self.clones = write_order(out[:-1], arrays)
        if self.clones:
            out = [v.clone() if k in self.clones else v for k, v in enumerate(out)]
        # what it emits may be an array a write changes (x_prev = x, emitting x): then
        # the variable it was also written to, or a copy
        emitted = out[-1]
        if isinstance(emitted, torch.Tensor) and any(
                emitted.untyped_storage().data_ptr() == x.untyped_storage().data_ptr() for x in arrays):
            same = [k for k, v in enumerate(out[:-1]) if v is emitted and k not in self.zeros]
            self.emit = same[0] if same else -1
        self.update = self.wrap(update, update is self.plain) if self.wrap is not None else update
        return out
