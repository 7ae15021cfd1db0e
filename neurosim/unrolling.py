"""What :meth:`neurosim.Network.unroll` and :meth:`~neurosim.Network.detach_state` do.

``unroll`` checks its arguments, then runs the network's schedule through the run loop
(:class:`neurosim.runner.Runner`, so the log, monitors and Ctrl-C behave as in ``run``)
with a torch backend in differentiable mode (:mod:`neurosim.backends.torch_unroll`):
the network's own backend when it is torch, else one made over the same arrays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import torch

from neurosim.population import Population

if TYPE_CHECKING:
    from neurosim.backends.torch_backend import TorchBackend

Outputs = dict[str, dict[str, torch.Tensor]]
#: the most elements of the dense matrices a CSR projection is delivered by in a
#: differentiable run (one ``(n_pre, n_post)`` per delay block)
MAX_DENSE_BLOCKS = 2**26


def torch_backend(net: Any) -> "TorchBackend":
    """The torch backend that unrolls ``net``: its own, or one over the same arrays."""
    from neurosim.backends.torch_backend import TorchBackend

    if isinstance(net.backend, TorchBackend):
        return net.backend
    if net._unroll_backend is None:
        net._unroll_backend = TorchBackend(net)
    return net._unroll_backend


def _population(net: Any, key: Any, what: str) -> Population:
    pop = net.populations.get(key) if isinstance(key, str) else key
    if not isinstance(pop, Population) or net.populations.get(pop.name) is not pop:
        raise ValueError(f"unroll: {what}: {key!r} is not a population of this network; "
                         f"populations: {list(net.populations)}")
    return pop


def _given_spikes(net: Any, key: Any, value: Any, steps: int) -> tuple[str, torch.Tensor]:
    pop = _population(net, key, "spikes")
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"unroll: spikes of '{pop.name}' must be a torch tensor, got "
                        f"{type(value).__name__}")
    if tuple(value.shape) != (steps, net.batch, pop.n):
        raise ValueError(f"unroll: spikes of '{pop.name}' have shape {tuple(value.shape)}; "
                         f"expected (steps, batch, n) = ({steps}, {net.batch}, {pop.n})")
    return pop.name, value.to(net.device)


def unroll(net: Any, steps: int, spikes: Mapping[Any, torch.Tensor] | None,
           record: Mapping[Any, Sequence[str] | str] | None,
           on_step: Callable[[int, Outputs], Any] | None, progress: bool | None) -> Outputs:
    """See :meth:`neurosim.Network.unroll`."""
    try:
        n_steps = net._runner.steps_for(None, steps)
    except ValueError as exc:
        raise ValueError(str(exc).replace("run:", "unroll:", 1)) from None
    net._prepare()
    # CSR weights are delivered as dense matrices, one per delay block (per-synapse delays
    # need CSR): refuse those whose matrices would not fit
    large = [p.name for p in net.projections.values()
             if p.sparse and len(p.blocks) * p.pre.n * p.post.n > MAX_DENSE_BLOCKS]
    if large:
        raise ValueError(f"unroll: projections {large} store their weights sparse (CSR) and are too "
                         f"large for a differentiable run, which delivers dense matrix products "
                         f"(one (n_pre, n_post) matrix per delay, at most {MAX_DENSE_BLOCKS} "
                         "elements): build smaller ones, with sparse=False where they have one delay")
    given = dict(_given_spikes(net, key, value, n_steps) for key, value in (spikes or {}).items())
    wanted = []
    for key, variables in (record or {}).items():
        pop = _population(net, key, "record")
        for var in ([variables] if isinstance(variables, str) else list(variables)):
            if var != "spikes" and var not in pop.state:
                raise ValueError(f"unroll: record: population '{pop.name}' has no variable "
                                 f"{var!r}; record 'spikes' or one of {list(pop.state)}")
            wanted.append((pop, var))
    from neurosim.backends.torch_unroll import is_differentiable

    stepped = [pop.name for pop in net.populations.values() if pop.name not in given
               and not pop.is_generator and pop.model.receptors and not is_differentiable(pop)]
    if stepped:  # before the run: a refusal must not leave the network halted
        raise TypeError(f"unroll: populations {stepped} write their firing condition as a "
                        "comparison; write it with neurosim.kernel.spike (or spike_above) so "
                        "that differentiable runs can give it a gradient, or give their spikes")
    if on_step is not None and not callable(on_step):
        raise TypeError(f"unroll: on_step must be callable, got {type(on_step).__name__}")
    # delay-0 projections whose weights no rule changes: their input from given spikes
    # can be computed for all steps at once
    changing = {id(rule.projection) for rule in net.rules.values()}
    fixed = [p for p in net.projections.values() if p.max_delay == 0 and id(p) not in changing]
    net._sync_gates()
    backend = torch_backend(net)
    backend.unroll.begin(net.clock.step, given, wanted, fixed, on_step)
    backend.unrolling = True
    try:
        net._runner.run(steps=n_steps, progress=progress, backend=backend)
    finally:
        backend.unrolling = False
        out = backend.unroll.end()
    return out


def forget(net: Any) -> None:
    """The arrays were written by something else than ``unroll``: drop its graph values."""
    backend = net.backend if hasattr(net.backend, "unroll") else net._unroll_backend
    if backend is not None:
        backend.unroll.forget()
