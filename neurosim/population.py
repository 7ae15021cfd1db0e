"""Populations: a group of neurons of one model, with its state as (batch, n) arrays."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from neurosim.counter_rng import element_keys_at, stream_key
from neurosim.distributions import Normal, Uniform
from neurosim.memory import require
from neurosim.models.base import NeuronModel, describe_parameters
from neurosim.models.spike_generator import SpikeGenerator
from neurosim.parameters import ParameterValue, validate_parameters

InitSpec = float | np.ndarray | torch.Tensor | Uniform | Normal
#: neuron indices are stored as int32 (spike lists, CSR targets)
MAX_NEURONS = 2**31 - 1


class Population:
    """``n`` neurons of one model; built by :meth:`neurosim.Network.population`.

    State variables are tensors of shape ``(batch, n)`` in :attr:`state`;
    per-step inputs (e.g. ``i_ext``, an injected current) in :attr:`inputs`.
    Spikes of the last ``history_length`` steps are kept in a ring so that
    delayed projections can read them.
    """

    def __repr__(self) -> str:
        return f"<Population '{self.name}': {self.n} x {type(self.model).__name__}>"

    def __init__(self, name: str, n: int, model: NeuronModel | SpikeGenerator,
                 init: Mapping[str, InitSpec] | None, batch: int, dt: float,
                 device: torch.device, dtype: torch.dtype, rng_build: np.random.Generator,
                 seed: int, share: tuple[int, int] | None = None,
                 rows: tuple[int, int] | None = None) -> None:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise ValueError(f"population '{name}': size must be a positive integer, got {n!r}")
        if not isinstance(model, (NeuronModel, SpikeGenerator)):
            raise TypeError(f"population '{name}': model must be a NeuronModel or SpikeGenerator, "
                            f"got {type(model).__name__}")
        if n > MAX_NEURONS:
            raise ValueError(f"population '{name}': size must be at most {MAX_NEURONS} (neuron "
                             f"indices are int32), got {n}")
        #: the whole population's size; in a partitioned run (see neurosim.distributed) this
        #: process steps neurons ``offset .. offset + n - 1`` of it, else all (``n == n_global``)
        self.n_global = int(n)
        lo, hi = (0, int(n)) if share is None else (int(share[0]), int(share[1]))
        if not 0 <= lo < hi <= n:
            raise ValueError(f"population '{name}': share [{lo}, {hi}) is not a non-empty range "
                             f"of its {n} neurons")
        self.offset = lo
        #: in a data-parallel run (see neurosim.distributed.data_parallel) this process's
        #: batch rows are rows ``row_offset ..`` of ``batch_global``; random numbers and
        #: drawn initial values are those of the global rows
        self.row_offset, self.batch_global = (0, batch) if rows is None else (int(rows[0]), int(rows[1]))
        self.name, self.n, self.model = name, hi - lo, model
        self.batch, self.dt, self.device, self.dtype = batch, dt, device, dtype
        self._require_memory()
        self.seed = seed
        #: True for a graded population (e.g. :class:`~neurosim.models.graded.Graded`): its
        #: ring holds real values in the state's dtype, and projections deliver ``r * w``
        self.graded = getattr(model, "output", "spike") == "graded"
        self.ring_dtype = dtype if self.graded else torch.bool
        self.history = torch.zeros((1, batch, self.n), dtype=self.ring_dtype, device=device)
        #: the step whose spikes :attr:`spikes` returns (set by the backend)
        self.last_step = -1
        #: the derivative of this population's spikes in differentiable runs (None: atan)
        self.surrogate: Any = None
        #: the per-neuron gain and threshold offset of a gated population (None: ungated;
        #: see :mod:`neurosim.gating`)
        self.gate: Any = None
        self.state: dict[str, torch.Tensor] = {}
        self.inputs: dict[str, torch.Tensor] = {}
        self._initial: dict[str, torch.Tensor] = {}
        if isinstance(model, SpikeGenerator):
            steps, rows, neurons = model.events(self.n, batch, dt)
            # replayed spikes sorted by step (the step numbers stay on the host, where
            # a backend looks up each step's slice without a device sync)
            self._events = {"events.step": torch.as_tensor(np.asarray(steps, np.int64)),
                            "events.row": torch.as_tensor(rows, device=device),
                            "events.neuron": torch.as_tensor(neurons, device=device)}
            self.params: dict[str, ParameterValue] = {}
            self.constants: dict[str, Any] = {}
            if init:
                raise ValueError(f"population '{name}': a SpikeGenerator has no state to initialise")
            return
        whole = validate_parameters(f"population '{name}' ({self.model_name})", model.parameters,
                                    model.params, self.n_global, batch)
        #: the parameters as the log's description gives them (those set since included)
        self.described_parameters = describe_parameters(whole)
        self.params = self._local(whole)
        self._set_constants()
        self._arg_names = type(model).update_arguments()
        expected = (set(model.state_variables) | set(model.inputs) | set(model.random_inputs)
                    | set(self.constants))
        missing = [a for a in self._arg_names if a not in expected]
        if missing:
            raise TypeError(f"{self.model_name}.update takes {missing}, which are neither state "
                            "variables, inputs, random inputs nor constants")
        unknown = sorted(set(init or {}) - set(model.state_variables))
        if unknown:
            raise ValueError(f"population '{name}': cannot initialise unknown state variable(s) "
                             f"{unknown}; {self.model_name} has {list(model.state_variables)}")
        derived = model.initial_values(self.params)
        for var, spec in model.state_variables.items():
            value: Any = (init or {}).get(var, spec.init)
            if isinstance(value, str):
                value = self.params[value] if value in self.params else derived[value]
            self._initial[var] = self._to_state(var, value, rng_build)
        for name_ in model.inputs:
            self.inputs[name_] = torch.zeros((batch, self.n), dtype=dtype, device=device)
        # counter-based streams, one per random input (see neurosim.counter_rng)
        self.random_keys = {r: stream_key(seed, f"population/{name}/{r}") for r in model.random_inputs}
        # keyed by the global index (row x n_global + neuron): any split draws the same numbers
        places = (np.arange(self.row_offset, self.row_offset + batch, dtype=np.int64)[:, None] * self.n_global
                  + np.arange(self.offset, self.offset + self.n, dtype=np.int64)[None, :])
        self._element_keys = {r: torch.as_tensor(element_keys_at(k, places), device=device)
                              for r, k in self.random_keys.items()}
        self.reset()

    # -- construction helpers ---------------------------------------------------------
    def _require_memory(self) -> None:
        """Refuse, with the size in GB, a population that cannot fit (before allocating)."""
        cells = self.batch * self.n
        model = self.model
        if isinstance(model, SpikeGenerator):
            resident, temporary = cells, 0
        else:
            item = torch.empty((), dtype=self.dtype).element_size()
            # state and its initial copy, inputs, random element keys, a one-slot spike ring
            resident = cells * (item * (2 * len(model.state_variables) + len(model.inputs))
                                + 8 * len(model.random_inputs) + 1)
            temporary = cells * 8 * (1 + len(model.random_inputs))  # float64 initial values, keys
        require(f"population '{self.name}' ({self.n} {self.model_name} neurons x batch "
                f"{self.batch})", resident, temporary, self.device,
                "Use fewer neurons or a smaller batch"
                + (" or float32" if self.dtype == torch.float64 and resident > cells else ""))

    @property
    def model_name(self) -> str:
        return type(self.model).__name__

    @property
    def is_generator(self) -> bool:
        return isinstance(self.model, SpikeGenerator)

    def _to_state(self, var: str, value: Any, rng: np.random.Generator) -> torch.Tensor:
        # drawn and checked for the whole population, then this process's share taken:
        # any split of a partitioned run starts from the same values
        shape = (self.batch, self.n_global)
        if isinstance(value, (Uniform, Normal)):  # (drawn for every process's rows)
            value = value.sample(rng, (self.batch_global, self.n_global))
            value = value[self.row_offset:self.row_offset + self.batch]
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        arr = np.asarray(value, dtype=np.float64)
        try:
            arr = np.broadcast_to(arr, shape)
        except ValueError:
            raise ValueError(f"population '{self.name}': initial value of '{var}' has shape "
                             f"{arr.shape}; expected a scalar, ({self.n_global},) or {shape}") from None
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"population '{self.name}': initial value of '{var}' has NaN or inf")
        arr = arr[:, self.offset:self.offset + self.n]
        return torch.as_tensor(np.array(arr), dtype=self.dtype, device=self.device)

    def _local(self, params: dict[str, ParameterValue]) -> dict[str, ParameterValue]:
        """Per-neuron parameter values (checked against the whole population) cut to this
        process's share; the same dict when the population is not partitioned."""
        if self.n == self.n_global:
            return params
        lo, hi = self.offset, self.offset + self.n
        return {k: (v[..., lo:hi] if np.ndim(v) and np.shape(v)[-1] == self.n_global else v)
                for k, v in params.items()}

    def _set_constants(self) -> None:
        consts = self.model.constants(self.params, self.dt)
        # scalars become 0-d tensors so that all arithmetic on them is in the state's
        # precision, as in the compiled backend (Python floats would be float64)
        self.constants: dict[str, Any] = {
            k: torch.as_tensor(np.asarray(v, dtype=np.float64), dtype=self.dtype, device=self.device)
            for k, v in consts.items()}

    # -- public API -------------------------------------------------------------------
    def set_parameters(self, **params: ParameterValue) -> None:
        """Change parameters (scalar, ``(n,)`` or ``(batch, n)``) between or during runs."""
        if self.is_generator:
            raise ValueError(f"population '{self.name}': a SpikeGenerator has no parameters")
        owner = f"population '{self.name}' ({self.model_name})"
        unknown = sorted(set(params) - set(self.model.parameters))
        if unknown:
            raise ValueError(f"{owner}: unknown parameter(s) {unknown}; known: "
                             f"{sorted(self.model.parameters)}")
        merged, checked = dict(self.params), {}
        for k, v in params.items():
            checked[k] = self.model.parameters[k].check(k, owner, v, self.n_global, self.batch)
            merged[k] = self._local({k: checked[k]})[k]
        self.model.check_consistency(merged)
        self.params = merged
        self.described_parameters = {**self.described_parameters, **describe_parameters(checked)}
        self._set_constants()

    def reset(self, learned: bool = False) -> None:
        """Restore the initial state and clear the spike history (inputs are kept).

        State variables marked ``learned`` (e.g. a homeostatic threshold) are kept
        unless ``learned=True``.
        """
        model_vars = getattr(self.model, "state_variables", {})
        for var, value in self._initial.items():
            if var in self.state and model_vars[var].learned and not learned:
                continue
            if var in self.state:  # in place: backends may hold the tensors (the state contract)
                self.state[var].copy_(value)
            else:
                self.state[var] = value.clone()
        self.history.zero_()

    @property
    def spikes(self) -> torch.Tensor:
        """Spikes of the most recent step, ``(batch, n)`` bool."""
        return self.spikes_at(self.last_step)

    def spikes_at(self, step: int) -> torch.Tensor:
        """Spikes emitted at ``step`` (must be within the history length)."""
        return self.history[step % self.history.shape[0]]

    def describe(self) -> dict[str, Any]:
        out = {"name": self.name, "size": self.n_global, **self.model.describe()}
        if "parameters" in out and not self.is_generator:  # (as set since, not as built)
            out["parameters"] = dict(self.described_parameters)
        if self.gate is not None:
            out["gate"] = self.gate.describe()
        if self.surrogate is not None:
            from neurosim.surrogate import describe

            out["surrogate"] = describe(self.surrogate)
        return out

    def arrays(self) -> dict[str, torch.Tensor]:
        """The arrays a backend steps, by name (the population's state contract).

        ``spikes``: the spike ring ``(slots, batch, n)`` bool (graded: the values ``r`` in
        the state's dtype), step ``t`` in slot
        ``t % slots``; ``state.<var>``, ``input.<name>`` ``(batch, n)``; ``const.<name>``
        (0-d, ``(n,)``, ``(1, n)`` or ``(batch, n)``); ``key.<random input>``: the
        counter-RNG element keys ``(batch, n)`` (the stream key is ``random_keys``). A
        spike generator has ``events.step`` (host), ``events.row``, ``events.neuron``.
        Backends and :meth:`reset` update these tensors in place; only
        :meth:`set_parameters` (constants) and :meth:`set_history_length` (the ring)
        replace any, and so does the torch backend's static step at the first run after
        the network changed: it joins populations of one model into shared buffers, and
        each member's tensors become views of them (:mod:`neurosim.backends.torch_merge`).
        Take ``pop.state[...]`` after a run, not before the first.
        """
        if self.is_generator:
            return {"spikes": self.history, **self._events}
        out = {"spikes": self.history}
        out.update({f"state.{k}": v for k, v in self.state.items()})
        out.update({f"input.{k}": v for k, v in self.inputs.items()})
        out.update({f"const.{k}": v for k, v in self.constants.items()})
        out.update({f"key.{k}": v for k, v in self._element_keys.items()})
        if self.gate is not None:
            out.update(self.gate.arrays())
        return out


    def argument_arrays(self) -> list[str]:
        """For each argument of the model's ``update``, in order, its name in :meth:`arrays`
        (random inputs: ``key.<name>``, to be hashed with the step)."""
        kinds = (("state", self.state), ("input", self.inputs), ("const", self.constants),
                 ("key", self._element_keys))
        return [next(f"{kind}.{name}" for kind, table in kinds if name in table)
                for name in self._arg_names]

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {**self.state, **{f"input.{k}": v for k, v in self.inputs.items()},
               "spike_history": self.history}
        if self.gate is not None:
            out.update(self.gate.state_tensors())
        return out

    # -- stepping (torch) -------------------------------------------------------------
    def require_history(self, length: int) -> None:
        """Refuse a spike ring of ``length`` slots that cannot fit (before allocating it)."""
        if length <= self.history.shape[0]:
            return
        # a bool (graded: a value) per slot, batch row and neuron; on the CPU the compiled
        # backend keeps int32 spike lists of the same shape beside it
        item = torch.empty((), dtype=self.ring_dtype).element_size()
        per_cell = item + (4 if self.device.type == "cpu" else 0)
        require(f"the spike ring of population '{self.name}' ({length} slots for delays of up "
                f"to {length - 1} steps, x {self.batch * self.n} neurons)",
                length * self.batch * self.n * per_cell, 0, self.device,
                "Use shorter delays (a longer dt) or fewer neurons")

    def set_history_length(self, length: int) -> None:
        if length != self.history.shape[0]:
            self.require_history(length)
            self.history = torch.zeros((length, self.batch, self.n), dtype=self.ring_dtype,
                                       device=self.device)
