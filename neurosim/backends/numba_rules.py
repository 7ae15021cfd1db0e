"""Compiled traces, neuromodulators and pair-based plasticity for the numba backend.

The built-in spike-timing rules (:class:`~neurosim.rules.STDP`,
:class:`~neurosim.rules.RewardModulatedSTDP`, :class:`~neurosim.rules.DiehlCookSTDP`)
and modulators that decay or are driven by a population run inside the compiled
step loop, so a plastic network needs no Python between steps. Other rules keep
running as tensor code: per step when they keep traces, otherwise only on the
steps they apply (``every``), between compiled stretches.

The pair kernels are event-driven: only synapses whose presynaptic spike
arrives this step (a row) or whose postsynaptic neuron fires (a column) can
change, so only those are visited. Each visited synapse gets the same change the
tensor code computes, ``lr * (A+ * sum_b x[b, i] f[b, j] post[b, j] -
A- * sum_b pre[b, i] y[b, j])`` with the batch summed in row order, then the
weight dependence and the clip. At batch 1 this is bit-identical to the torch
backend; with larger batches the batch sums may round differently from torch's
matrix product.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
from numba import njit

if TYPE_CHECKING:
    from neurosim.backends.view import SimulatedNetwork as Network  # (what a backend sees)

# what a pair kernel does with the change of a synapse
TO_WEIGHT, TO_ELIGIBILITY = 0, 1


@njit(cache=True)
def update_trace(value, before, decay, nearest, cnt, idx, t, slots, delays, n):
    """``before = value * decay``; then ``value = before (+1 | =1 at spikes)``. The trace
    has one block of ``n`` columns per delay (one block: a population's trace); block
    ``q`` takes the spikes of slot ``(t - delays[q]) % slots``."""
    for b in range(value.shape[0]):
        rv = value[b]
        rb = before[b]
        for i in range(rv.shape[0]):
            x = rv[i] * decay
            rb[i] = x
            rv[i] = x
        for q in range(delays.shape[0]):
            slot = (t - delays[q]) % slots
            for k in range(cnt[slot, b]):
                i = q * n + idx[slot, b, k]
                rv[i] = value.dtype.type(1.0) if nearest else rb[i] + value.dtype.type(1.0)


@njit(cache=True)
def decay_array(values, decay):
    flat = values.reshape(-1)
    for s in range(flat.shape[0]):
        flat[s] = flat[s] * decay


@njit(cache=True)
def step_modulator(value, decay, baseline, driven, cnt, slot, n_total, gain):
    """Relax a modulator to its baseline; add ``gain`` times the fraction of the driving
    population that fired."""
    for k in range(value.shape[0]):
        if baseline != 0:
            value[k] = (value[k] - baseline) * decay + baseline
        else:
            value[k] = value[k] * decay
    if driven:
        total = 0
        for b in range(cnt.shape[1]):
            total += cnt[slot, b]
        mean = value.dtype.type(total) / value.dtype.type(n_total)
        for k in range(value.shape[0]):
            value[k] = value[k] + mean * gain


@njit(cache=True)
def linear_signal(out, matrix, source):
    """``out = matrix @ source`` summed in column order (as the torch backend sums it);
    ``source`` and ``out`` are (n,) or (batch, n)."""
    for b in range(out.shape[0]):
        for k in range(matrix.shape[0]):
            acc = out.dtype.type(0.0)
            for q in range(matrix.shape[1]):
                acc += matrix[k, q] * source[b, q]
            out[b, k] = acc


@njit(cache=True)
def product_signal(out, a, b):
    """``out = a * b`` on 2-D views, broadcasting rows and columns of length 1."""
    for r in range(out.shape[0]):
        for k in range(out.shape[1]):
            out[r, k] = a[r % a.shape[0], k % a.shape[1]] * b[r % b.shape[0], k % b.shape[1]]


@njit(cache=True)
def sigmoid_signal(out, x, gain, threshold):
    one = out.dtype.type(1.0)
    for k in range(out.shape[0]):
        out[k] = one / (one + np.exp(-(gain * (x[k] - threshold))))


@njit(cache=True)
def rate_signal(value, decay, scale, per_neuron, cnt, idx, slot, n_total):
    """Filtered firing rate: per neuron and row (``value`` is (batch, n)) or of the
    whole population (``value`` is (1, 1))."""
    if per_neuron:
        for b in range(value.shape[0]):
            for i in range(value.shape[1]):
                value[b, i] = value[b, i] * decay
            for k in range(cnt[slot, b]):
                i = idx[slot, b, k]
                value[b, i] = value[b, i] + scale  # value * decay + 1 * scale
        return
    total = 0
    for b in range(cnt.shape[1]):
        total += cnt[slot, b]
    fired = value.dtype.type(total) / value.dtype.type(n_total)
    value[0, 0] = value[0, 0] * decay + fired * scale


@njit(cache=True)
def count_error_signal(value, counts, target, scale, cnt, idx, slot):
    for b in range(counts.shape[0]):
        for k in range(cnt[slot, b]):
            i = idx[slot, b, k]
            counts[b, i] += counts.dtype.type(1.0)
        for i in range(counts.shape[1]):
            value[b, i] = target[b, i] - scale * counts[b, i]


@njit(cache=True)
def population_error_signal(value, counts, target, scale, per_class, wta, cnt, idx, slot):
    """PopulationError.update: count this step's spikes, then per class ``target - scale *
    mean count``; with ``wta`` only the labelled and the winning class keep theirs."""
    classes = target.shape[1]
    for b in range(counts.shape[0]):
        for k in range(cnt[slot, b]):
            i = idx[slot, b, k]
            counts[b, i] += counts.dtype.type(1.0)
        label = 0
        winner = 0
        best = counts.dtype.type(-1.0)
        for c in range(classes):
            acc = counts.dtype.type(0.0)
            for q in range(c * per_class, (c + 1) * per_class):
                acc += counts[b, q]
            mean = acc / counts.dtype.type(per_class)
            value[b, c] = target[b, c] - scale * mean
            if mean > best:
                best = mean
                winner = c
            if target[b, c] > target[b, label]:
                label = c
        if wta:
            for c in range(classes):
                if c != label and c != winner:
                    value[b, c] = value.dtype.type(0.0)


@njit(cache=True)
def softmax_signal(out, x, inv_t, channels):
    """Per row and position p: exp(x * inv_t - max) / (their running sum) over the
    channels' neurons k * L + p (L = n / channels), as SoftCompetition.update."""
    n_pos = x.shape[1] // channels
    for b in range(x.shape[0]):
        for p in range(n_pos):
            top = x[b, p] * inv_t
            for k in range(channels):
                top = max(top, x[b, k * n_pos + p] * inv_t)
            total = out.dtype.type(0.0)
            for k in range(channels):
                e = np.exp(x[b, k * n_pos + p] * inv_t - top)
                out[b, k * n_pos + p] = e
                total += e
            for k in range(channels):
                out[b, k * n_pos + p] = out[b, k * n_pos + p] / total


class NumpyViews:
    """numpy views of tensors, made once per tensor object.

    The kernels' arguments are fetched before every compiled stretch (a stretch can be
    a few steps when callbacks run often); converting a tensor costs microseconds, so
    the view is kept as long as the same tensor object is passed (in-place updates
    keep it valid; a replaced tensor gets a new view)."""

    def __init__(self) -> None:
        self._views: dict[tuple[int, bool], tuple[torch.Tensor, np.ndarray]] = {}

    def __call__(self, tensor: torch.Tensor, flat: bool = False) -> np.ndarray:
        key = (id(tensor), flat)
        hit = self._views.get(key)
        if hit is not None and hit[0] is tensor:
            return hit[1]
        if len(self._views) > 4096:  # tensors replaced over and over (e.g. by resets)
            self._views.clear()
        view = tensor.detach().numpy()
        view = view.reshape(-1) if flat else view
        self._views[key] = (tensor, view)
        return view


# -- code generation ------------------------------------------------------------------------
class RuleEmitter:
    """Writes the compiled code of the rules and modulators of one network.

    ``arg(name, getter)`` registers a kernel argument (the getter is called before
    every compiled stretch, so flags such as ``rule.learning`` and parameters such
    as ``rule.a_plus`` are read live). Each rule becomes two generated functions,
    its traces phase and its rules phase, built from its recipe's hooks, whose
    source is copied in (as a model's ``update`` is).
    """

    def __init__(self, net: "Network", ft: str, arg: Callable[[str, Callable[[], Any]], str],
                 pid: dict[str, int]) -> None:
        self.net, self.arg, self.pid = net, arg, pid
        self.ft = np.dtype(ft).type
        self.traces: list[str] = []
        self.rules: list[str] = []
        #: kernel functions (hooks and their helpers) to include, by generated name
        self.hooks: dict[str, Callable[..., Any]] = {}
        self.views = NumpyViews()
        #: generated rule functions: text -> name (rules of one shape share one function)
        self.functions: dict[str, str] = {}

    def scalar(self, name: str, getter: Callable[[], float]) -> str:
        ft = self.ft
        return self.arg(name, lambda: ft(getter()))

    def array(self, name: str, getter: Callable[[], torch.Tensor]) -> str:
        view = self.views
        return self.arg(name, lambda: view(getter()))

    def flat(self, name: str, getter: Callable[[], torch.Tensor]) -> str:
        view = self.views
        return self.arg(name, lambda: view(getter(), True))

    # -- modulators ----------------------------------------------------------------------
    def modulators(self, mods: Any) -> list[str]:
        """Lines stepping every modulator, in registration order (as ``Modulators.step``:
        dynamic ones first, then those derived from others)."""
        start = len(self.traces)
        for m, mod in enumerate(mods):
            self.modulator(m, mod, derived=False)
        for m, mod in enumerate(mods):
            self.modulator(m, mod, derived=True)
        return self.traces[start:]

    def modulator(self, m: int, mod: Any, derived: bool) -> None:
        if mod.dynamic and not derived:
            value = self.arg(f"mod{m}_value", lambda mo=mod: mo.arrays()["value"].numpy().reshape(-1))
            decay = self.scalar(f"mod{m}_decay", lambda mo=mod: mo.decay)
            base = self.scalar(f"mod{m}_base", lambda mo=mod: mo.baseline)
            if mod.driver is not None:
                pop, _ = mod.driver
                k = self.pid[pop.name]
                gain = self.scalar(f"mod{m}_gain", lambda mo=mod: mo.driver[1])
                self.traces.append(f"    step_modulator({value}, {decay}, {base}, True, p{k}_cnt, "
                                   f"t % p{k}_hist.shape[0], {pop.batch * pop.n}, {gain})")
            else:
                self.traces.append(f"    step_modulator({value}, {decay}, {base}, False, p0_cnt, "
                                   f"0, 1, {decay})")
        d = mod.derived
        if d is not None and d.stateful == (not derived):
            self._derived_signal(m, mod)
        if mod.feedback is not None and derived:
            out = self.arg(f"mod{m}_rows", lambda mo=mod: mo.arrays()["value"].numpy().reshape(-1, mo.size))
            src, matrix = mod.feedback
            source = self.arg(f"mod{m}_src", lambda s=src: s.arrays()["value"].numpy().reshape(-1, s.size))
            mat = self.arg(f"mod{m}_matrix", lambda mo=mod: mo.arrays()["matrix"].numpy())
            self.traces.append(f"    linear_signal({out}, {mat}, {source})")

    def _derived_signal(self, m: int, mod: Any) -> None:
        from neurosim.derived_signals import (CountError, PopulationError, PopulationRate, Product, Sigmoid,
                                              SoftCompetition)

        d = mod.derived
        def rows(signal: Any) -> np.ndarray:  # one row per sample (a single row if not per sample)
            value = signal.arrays()["value"]
            return value.numpy().reshape(-1, value.shape[-1] if value.dim() else 1)

        out = self.arg(f"mod{m}_out", lambda mo=mod: rows(mo))
        if isinstance(d, Product):
            a = self.arg(f"mod{m}_a", lambda s=d.a: rows(s))
            b = self.arg(f"mod{m}_b", lambda s=d.b: rows(s))
            self.traces.append(f"    product_signal({out}, {a}, {b})")
        elif isinstance(d, Sigmoid):
            flat = self.arg(f"mod{m}_flat", lambda mo=mod: mo.arrays()["value"].numpy().reshape(-1))
            x = self.arg(f"mod{m}_x", lambda s=d.source: s.arrays()["value"].numpy().reshape(-1))
            gain = self.scalar(f"mod{m}_gain", lambda dd=d: dd.gain)
            threshold = self.scalar(f"mod{m}_threshold", lambda dd=d: dd.threshold)
            self.traces.append(f"    sigmoid_signal({flat}, {x}, {gain}, {threshold})")
        elif isinstance(d, PopulationRate):
            k = self.pid[d.population.name]
            decay = self.scalar(f"mod{m}_decay", lambda dd=d: dd.decay)
            scale = self.scalar(f"mod{m}_scale", lambda dd=d: dd.scale)
            pop = d.population
            self.traces.append(f"    rate_signal({out}, {decay}, {scale}, {d.per_neuron}, p{k}_cnt, "
                               f"p{k}_idx, t % p{k}_hist.shape[0], {pop.batch * pop.n})")
        elif isinstance(d, (CountError, PopulationError)):  # counts since the sample began
            k = self.pid[d.population.name]
            counts = self.arg(f"mod{m}_counts", lambda mo=mod: mo.arrays()["counts"].numpy())
            target = self.arg(f"mod{m}_target", lambda mo=mod: mo.arrays()["target"].numpy())
            scale = self.scalar(f"mod{m}_scale", lambda dd=d: dd.scale)
            kernel, extra = (("count_error_signal", "") if isinstance(d, CountError) else
                             ("population_error_signal", f"{d.per_class}, {d.wta}, "))
            self.traces.append(f"    {kernel}({out}, {counts}, {target}, {scale}, {extra}p{k}_cnt, "
                               f"p{k}_idx, t % p{k}_hist.shape[0])")
        elif isinstance(d, SoftCompetition):
            x = self.array(f"mod{m}_x", lambda dd=d: dd.population.state[dd.variable])
            inv_t = self.scalar(f"mod{m}_inv_t", lambda dd=d: dd.inverse_temperature)
            self.traces.append(f"    softmax_signal({out}, {x}, {inv_t}, {d.channels})")
        else:
            raise TypeError(f"modulator '{mod.name}': no compiled form of {type(d).__name__}")

    # -- spike traces ---------------------------------------------------------------------
    def shared_traces(self, bank: Any) -> list[str]:
        """Lines updating each shared spike trace once per step."""
        lines = []
        for q, (pop, delay, trace) in enumerate(bank.entries()):
            k = self.pid[pop.name]
            value = self.array(f"tr{q}_value", lambda tr=trace: tr.value)
            before = self.array(f"tr{q}_before", lambda tr=trace: tr.before)
            decay = self.scalar(f"tr{q}_decay", lambda tr=trace: tr.decay)
            # one column block per delay (several with per-synapse delays)
            delays = np.array(delay if isinstance(delay, tuple) else (delay,), np.int64)
            handle = self.arg(f"tr{q}_delays", lambda d=delays: d)
            lines.append(f"    update_trace({value}, {before}, {decay}, {trace.mode == 'nearest'}, "
                         f"p{k}_cnt, p{k}_idx, t, p{k}_hist.shape[0], {handle}, {pop.n})")
        return lines

    # -- rules ----------------------------------------------------------------------------
    def rule(self, r: int, rule: Any) -> tuple[list[str], list[str]]:
        """Emit the compiled form of declared ``rule``: (traces lines, rules lines)."""
        t0, r0 = len(self.traces), len(self.rules)
        self._rule(r, rule)
        return self.traces[t0:], self.rules[r0:]

    def _rule(self, r: int, rule: Any) -> None:
        code = RuleCode(rule, self.ft)
        bound: list[tuple[str, str]] = []  # (name inside the function, argument of run)
        proj = rule.projection
        pre_k, post_k = self.pid[proj.pre.name], self.pid[proj.post.name]
        for local, what in (("ph", "hist"), ("pc", "cnt"), ("pi", "idx")):
            bound.append((local, f"p{pre_k}_{what}"))
        for local, what in (("qh", "hist"), ("qc", "cnt"), ("qi", "idx")):
            bound.append((local, f"p{post_k}_{what}"))
        bound.append(("w", self.flat(f"r{r}_w", lambda ru=rule: ru.arrays()["weight"])))
        bound.append(("mask", self.flat(f"r{r}_mask", lambda p=proj: p.mask if p.mask is not None
                                        else torch.zeros(0, dtype=p.dtype))))
        if code.deferred:
            bound.append(("pend", self.flat(f"r{r}_pend", lambda ru=rule: ru.pending)))
        for name, getter in self._structure(proj).items():
            bound.append((name, self.arg(f"r{r}_{name}", getter)))
        batch = self.net.batch
        delays = rule.pre_delays
        if delays is not None:  # per-synapse delays: each block's synapses by presynaptic neuron
            for name, a in self._delay_blocks(rule).items():
                bound.append((name, self.arg(f"r{r}_{name}", lambda a=a: a)))
        blocks = 1 if delays is None else len(delays)
        scratch = {"rowflag": np.zeros(proj.pre.n * blocks, np.int8),
                   "colflag": np.zeros(proj.post.n, np.int8),
                   "colsum": np.zeros(proj.post.n, self.ft), "rows_a": np.zeros(batch, np.int64),
                   "rows_b": np.zeros(batch, np.int64),
                   "dw": np.zeros(proj.weight.numel() if code.two_pass else 0, self.ft)}
        for name, a in scratch.items():
            bound.append((name, self.arg(f"r{r}_{name}", lambda a=a: a)))
        if code.tied:  # each synapse's kernel entry, and a sum per entry
            tie = proj.tie.cpu().numpy().astype(np.int64)
            tsum = np.zeros(proj.connector.n_tied, self.ft)
            bound.append(("tie", self.arg(f"r{r}_tie", lambda a=tie: a)))
            bound.append(("tsum", self.arg(f"r{r}_tsum", lambda a=tsum: a)))
        for trace in code.recipe.traces:
            bound.append((f"tv_{trace.name}", self.array(f"r{r}_tv_{trace.name}",
                                                         lambda ru=rule, n=trace.name: ru.arrays()[f"trace.{n}"])))
            bound.append((f"tb_{trace.name}", self.array(f"r{r}_tb_{trace.name}",
                                                         lambda ru=rule, n=trace.name: ru.arrays()[f"trace.{n}.before"])))
        for state in code.recipe.neuron_state:
            bound.append((f"st_{state.name}", self.array(f"r{r}_st_{state.name}",
                                                         lambda ru=rule, n=state.name: ru.arrays()[f"state.{n}"])))
        for side, var in sorted(code.neuron_vars):
            k = pre_k if side == "pre" else post_k
            bound.append((f"nv_{side}_{var}", f"p{k}_s_{var}"))
        for arg_name, mod_name in sorted(code.recipe.signals.items()):
            mod = self.net.modulators[mod_name]
            two_d = mod.value.dim() == 2
            bound.append((f"sg_{arg_name}", self.arg(
                f"r{r}_sg_{arg_name}", lambda mo=mod, two=two_d: mo.arrays()["value"].numpy() if two
                else mo.arrays()["value"].numpy().reshape(-1))))
        if getattr(rule, "folded", False):  # the eligibility feed's buffers (folded from Python)
            for name in ("pre", "post", "fill"):
                bound.append((f"feed_{name}", self.arg(f"r{r}_feed_{name}",
                                                       lambda ru=rule, n=name: ru.feed.arrays()[n].numpy())))
        if code.recipe.eligibility is not None and not getattr(rule, "folded", False):
            per_row = rule.eligibility_per_row
            bound.append(("el", self.arg(f"r{r}_el", lambda ru=rule, pr=per_row: (
                ru.arrays()["eligibility"].numpy().reshape(ru.batch, -1) if pr
                else ru.arrays()["eligibility"].numpy().reshape(-1)))))
            bound.append(("decay_e", self.scalar(f"r{r}_decay_e", lambda ru=rule: ru.decay_e)))
        for attr in sorted(code.params):
            bound.append((f"pa_{attr}", self.scalar(f"r{r}_pa_{attr}",
                                                    lambda ru=rule, a=attr: getattr(ru, a))))
        bound.append(("w_min", self.scalar(f"r{r}_wmin", lambda ru=rule: ru.clip_bounds[0])))
        bound.append(("w_max", self.scalar(f"r{r}_wmax", lambda ru=rule: ru.clip_bounds[1])))
        learning = self.arg(f"r{r}_learning", lambda ru=rule: bool(ru.learning and not ru.held))
        self.hooks.update(code.hook_names)
        params = ", ".join(local for local, _ in bound)
        values = ", ".join(value for _, value in bound)
        delay = proj.min_delay
        # a rule applied at an event runs its rules phase from Python when the event fires
        rules_body = code.rules_body() if rule.apply_at is None else ""
        for phase, body in (("traces", code.traces_body()), ("rules", rules_body)):
            if not body:
                continue
            slots = ("    NP = ph.shape[2]\n    for kb in range(bdelay.shape[0]):\n"
                     "        pslot[kb] = (t - bdelay[kb]) % ph.shape[0]\n") if delays is not None else ""
            text = (f"@njit(cache=True)\ndef RULE(t, {params}):\n"
                    f"    ps = (t - {delay}) % ph.shape[0]\n    qs = t % qh.shape[0]\n{slots}"
                    f"    B = {batch}  # known when the kernel is generated: loops over rows unroll\n    ZERO = FT(0.0)\n" + body)
            if text not in self.functions:
                self.functions[text] = f"rule_{phase}_{type(rule).__name__}_{len(self.functions)}"
            call = f"{self.functions[text]}(t, {values})"
            if phase == "traces":
                self.traces.append(f"    {call}")
            else:
                self.rules.append(f"    if {learning} and t % {rule.every} == 0:\n        {call}")

    @staticmethod
    def _delay_blocks(rule: Any) -> dict[str, np.ndarray]:
        """A projection with per-synapse delays: ``bdelay[q]`` (block ``q``'s delay),
        ``bptr[q, i]:bptr[q, i + 1]`` (neuron i's synapses of block q in ``bpos``),
        ``bpos`` (those synapses' places in the weights), ``synblock[s]`` (synapse
        ``s``'s block), ``pslot`` (scratch: each block's history slot this step)."""
        proj = rule.projection
        ptrs, positions, offset = [], [], 0
        for block in proj.blocks:
            ptrs.append(block.indptr.cpu().numpy().astype(np.int64) + offset)
            positions.append(block.positions.cpu().numpy().astype(np.int64))
            offset += positions[-1].size
        return {"bdelay": np.array(rule.pre_delays, np.int64), "bptr": np.stack(ptrs),
                "bpos": np.concatenate(positions),
                "synblock": rule.synapse_blocks.cpu().numpy().astype(np.int64),
                "pslot": np.zeros(len(proj.blocks), np.int64)}

    def _structure(self, proj: Any) -> dict[str, Callable[[], np.ndarray]]:
        """indptr, indices, colptr, colsyn, synrow (empty arrays when dense)."""
        if not proj.sparse:
            empty = lambda: np.zeros(0, np.int32)  # noqa: E731
            return {n: empty for n in ("indptr", "indices", "colptr", "colsyn", "synrow")}
        indices = proj.indices
        order = torch.argsort(indices, stable=True).to(torch.int32)
        colptr = torch.zeros(proj.post.n + 1, dtype=torch.int64)
        colptr[1:] = torch.cumsum(torch.bincount(indices.long(), minlength=proj.post.n), 0)
        counts = proj.indptr[1:] - proj.indptr[:-1]
        rows = torch.repeat_interleave(torch.arange(proj.pre.n, dtype=torch.int32), counts)
        fixed = {"colptr": colptr.numpy(), "colsyn": order.numpy(), "synrow": rows.numpy()}
        out = {"indptr": lambda p=proj: p.indptr.numpy(), "indices": lambda p=proj: p.indices.numpy()}
        out.update({n: (lambda a=a: a) for n, a in fixed.items()})
        return out


class RuleCode:
    """The generated loops of one declared rule (see :mod:`neurosim.rules.recipe` for
    the order of sums that every backend follows)."""

    def __init__(self, rule: Any, ft: Any) -> None:
        self.rule = rule
        self.recipe = rule.declared
        self.dense = not rule.projection.sparse
        #: per-synapse delays: each synapse reads its presynaptic slot and trace column
        #: through its delay block (see Rule.pre_index)
        self.delayed = rule.pre_delays is not None
        self.masked = rule.projection.mask is not None
        #: tied weights (a Convolution): every change is summed per kernel entry first
        self.tied = rule.projection.tie is not None
        #: a weight window: changes go to the rule's pending sum, not the weights
        self.deferred = getattr(rule, "pending", None) is not None
        self.per_row_e = self.recipe.eligibility is not None and rule.eligibility_per_row
        self.args = {h: rule.hook_arguments(h, fn) for h, fn in self.recipe.hooks().items()}
        self.update_args = {s.name: rule.hook_arguments("update", s.update)
                            for s in self.recipe.neuron_state}
        self.hook_names = {hook_name(fn): fn for fn in self.recipe.hooks().values()}
        self.hook_names.update({hook_name(s.update): s.update for s in self.recipe.neuron_state})
        every_arg = [a for args in (*self.args.values(), *self.update_args.values()) for a in args]
        self.params = {a.key for a in every_arg if a.kind == "param"}
        self.neuron_vars = {a.key for a in every_arg if a.kind == "neuron"}
        recipe = self.recipe
        # a rule that changes every synapse each step sums its terms into a buffer first
        # and then writes all weights in one flat loop: gathering per-neuron values and
        # clipping in one loop keeps the compiler from vectorising either
        # (not with a column hook: its on_apply reads the column sum, per neuron)
        # (tied weights always: the changes are summed per kernel entry between the passes)
        self.two_pass = self.tied or (recipe.eligibility is None and not recipe.event_driven
                         and recipe.column is None
                         and (recipe.on_pre or recipe.on_post or recipe.per_step) is not None
                         and not any(a.side in ("pre", "post") or a.kind == "post_sum"
                                     for a in self.args.get("on_apply", ())))

    # -- expressions ------------------------------------------------------------------
    def expr(self, a: Any) -> str:
        idx = "i" if a.side == "pre" else "j"
        if a.kind == "w":
            return "w0"
        if a.kind == "e":
            return "el[b, s]" if a.per_row else "el[s]"
        if a.kind == "d":
            return "d"
        if a.kind == "post_sum":
            return "colsum[j]"
        if a.kind == "trace":
            name, which = a.key
            if a.side == "pre" and self.delayed:
                idx = "ip"
            return f"t{'v' if which == 'value' else 'b'}_{name}[b, {idx}]"
        if a.kind == "state":
            return f"st_{a.key}[{idx}]"
        if a.kind == "neuron":
            return f"nv_{a.key[0]}_{a.key[1]}[b, {idx}]"
        if a.kind == "signal":
            if a.side == "scalar":
                return f"sg_{a.name}[0]"
            return f"sg_{a.name}[b, j]" if a.per_row else f"sg_{a.name}[j]"
        return f"pa_{a.key}"

    def call(self, hook: str) -> str:
        fn = getattr(self.recipe, hook)
        return f"{hook_name(fn)}({', '.join(self.expr(a) for a in self.args[hook])})"

    def row_terms(self, pad: str, per_step: bool) -> list[str]:
        """Lines adding row ``b``'s on_pre, on_post (and per_step) terms to ``d``."""
        out = []
        if self.recipe.on_pre is not None:
            out += [f"{pad}if ph[ps, b, i]:", f"{pad}    d += {self.call('on_pre')}"]
        if self.recipe.on_post is not None:
            out += [f"{pad}if qh[qs, b, j]:", f"{pad}    d += {self.call('on_post')}"]
        if per_step and self.recipe.per_step is not None:
            out.append(f"{pad}d += {self.call('per_step')}")
        return out

    def finish(self, pad: str, every_synapse: bool = False) -> list[str]:
        """Lines writing synapse ``s``'s new weight from ``d``.

        ``every_synapse``: in a loop over all synapses, write the same values without a
        branch (a select and a store every time), which the compiler vectorises."""
        new = self.call("on_apply") if self.recipe.on_apply is not None else "w0 + d"
        if self.deferred:  # a weight window: the change waits in pend, the weights stay
            if every_synapse:
                return [f"{pad}nw = {new}", f"{pad}pend[s] += nw - w0"]
            return [f"{pad}nw = {new}", f"{pad}if nw != w0:", f"{pad}    pend[s] += nw - w0"]
        if every_synapse:
            # an unchanged weight is rewritten as it was (off the mask it is already zero)
            kept = "nw * mask[s]" if self.masked else "nw"
            clipped = "min(max(nw, w_min), w_max) * mask[s]" if self.masked else "min(max(nw, w_min), w_max)"
            return [f"{pad}nw = {new}", f"{pad}w[s] = {clipped} if nw != w0 else {kept}"]
        # an unchanged weight is left alone (no store): bounds hold for the weights a rule
        # moves, and a kept weight is already zero off the mask
        out = [f"{pad}nw = {new}", f"{pad}if nw != w0:",
               f"{pad}    nw = min(max(nw, w_min), w_max)"]
        if self.masked:
            out.append(f"{pad}    nw = nw * mask[s]")
        return out + [f"{pad}    w[s] = nw"]

    def row_loop(self, pad: str, rows: str | None) -> tuple[list[str], list[str]]:
        """(loop header lines over batch rows ``b``, the terms' lines inside it).

        ``rows``: None: every row, each term where its spike happened; ``"pre"``: only
        the rows whose presynaptic spike arrived (``rows_a[:na]``), the synapse's column
        did not fire in any row; ``"post"``: only the rows where the column fired
        (``rows_b[:nb]``), no presynaptic spike in any row. Same terms, same order."""
        inner = pad + "    "
        if rows is None:
            return [f"{pad}for b in range(B):"], self.row_terms(inner, per_step=False)
        which, n, hook = ("rows_a", "na", "on_pre") if rows == "pre" else ("rows_b", "nb", "on_post")
        return ([f"{pad}for q in range({n}):", f"{inner}b = {which}[q]"],
                [f"{inner}d += {self.call(hook)}"])

    def all_rows_terms(self, pad: str, per_step: bool) -> list[str]:
        """Lines adding the on_pre terms of every batch row in order, then their on_post
        terms (then per_step terms) to ``d``: the recipe's order of sums."""
        out = []
        if self.recipe.on_pre is not None:
            out += [f"{pad}for b in range(B):", f"{pad}    if ph[ps, b, i]:",
                    f"{pad}        d += {self.call('on_pre')}"]
        if self.recipe.on_post is not None:
            out += [f"{pad}for b in range(B):", f"{pad}    if qh[qs, b, j]:",
                    f"{pad}        d += {self.call('on_post')}"]
        if per_step and self.recipe.per_step is not None:
            out += [f"{pad}for b in range(B):", f"{pad}    d += {self.call('per_step')}"]
        return out

    def visit(self, pad: str, target: str, rows: str | None = None) -> list[str]:
        """Lines for synapse ``(s, i, j)``: its weight (``target="w"``) or eligibility."""
        out = [f"{pad}w0 = w[s]"]
        head, terms = self.row_loop(pad, rows)
        if target == "w":
            if rows is None:
                return out + [f"{pad}d = ZERO"] + self.all_rows_terms(pad, False) + self.finish(pad)
            return out + [f"{pad}d = ZERO"] + head + terms + self.finish(pad)
        skip = f"{pad}if mask[s] != 0:" if self.masked else None
        inner = pad + ("    " if self.masked else "")
        if self.per_row_e:
            out += head + [f"{pad}    d = ZERO"] + terms
            out += ([f"{pad}    if mask[s] != 0:", f"{pad}        el[b, s] += d"] if self.masked
                    else [f"{pad}    el[b, s] += d"])
            return out
        out += [f"{pad}d = ZERO"] + (self.all_rows_terms(pad, False) if rows is None else head + terms)
        return out + ([skip, f"{inner}el[s] += d"] if skip else [f"{inner}el[s] += d"])

    def all_synapses(self, body: list[str], hooks: tuple[str, ...] = ()) -> list[str]:
        """Loop ``body`` (written at 4 spaces) over every synapse, rows in order
        (one flat loop when ``hooks`` read nothing per neuron)."""
        per_neuron = any(a.side in ("pre", "post") for h in hooks for a in self.args.get(h, ()))
        if hooks and not per_neuron:
            return ["    for s in range(w.shape[0]):"] + ["    " + line for line in body]
        if self.dense:
            head = ["    n_post = qh.shape[2]", "    for i in range(ph.shape[2]):",
                    "        for j in range(n_post):", "            s = i * n_post + j"]
            return head + [" " * 8 + line for line in body]
        # CSR: one flat loop in storage order (rows ascending, as nested loops would go),
        # each synapse's row from synrow: long loops run faster than ~n_post/10-long rows
        head = ["    for s in range(w.shape[0]):", "        i = synrow[s]", "        j = indices[s]"]
        return head + self.synapse_delay("        ") + [" " * 4 + line for line in body]

    def synapse_delay(self, pad: str) -> list[str]:
        """With per-synapse delays: lines setting synapse ``s``'s presynaptic slot ``ps``
        and its column ``ip`` in the presynaptic traces (its delay block's)."""
        if not self.delayed:
            return []
        return [f"{pad}sb = synblock[s]", f"{pad}ps = pslot[sb]", f"{pad}ip = sb * NP + i"]

    def touched_synapses(self, target: str) -> list[str]:
        """Visit only synapses of presynaptic rows that received a spike and of
        postsynaptic columns that fired (each synapse once). With per-synapse delays
        a row is a (delay block, presynaptic neuron) pair: the spikes that arrive
        through that block's delay, at the block's synapses of the neuron."""
        on_pre, on_post = self.recipe.on_pre is not None, self.recipe.on_post is not None
        delayed = self.delayed
        # rows of presynaptic spikes: over the delay blocks (each its own slot) or one slot
        blocks, pad = (["    for kb in range(bdelay.shape[0]):", "        ps = pslot[kb]"], "    ") \
            if delayed else ([], "")
        row = "kb * NP + " if delayed else ""
        flag = "ip" if delayed else "i"
        out = []
        if on_pre:
            out += blocks + [f"{pad}    for b in range(B):", f"{pad}        for k in range(pc[ps, b]):",
                             f"{pad}            rowflag[{row}pi[ps, b, k]] = 1"]
        if on_post:
            out += ["    for b in range(B):", "        for k in range(qc[qs, b]):",
                    "            colflag[qi[qs, b, k]] = 1"]
        if on_pre:
            p = pad + " " * 12
            out += blocks + [f"{pad}    for b0 in range(B):", f"{pad}        for k0 in range(pc[ps, b0]):",
                             f"{p}i = pi[ps, b0, k0]"]
            out += [f"{p}ip = kb * NP + i"] if delayed else []
            out += [f"{p}if rowflag[{flag}] != 1:", f"{p}    continue", f"{p}rowflag[{flag}] = 2"]
            out += [f"{p}na = 0", f"{p}for b in range(B):", f"{p}    if ph[ps, b, i]:",
                    f"{p}        rows_a[na] = b", f"{p}        na += 1"]
            if self.dense:
                out += [f"{p}n_post = qh.shape[2]", f"{p}for s in range(i * n_post, i * n_post + n_post):",
                        f"{p}    j = s - i * n_post"]
            elif delayed:  # the block's synapses of neuron i, at their places in the weights
                out += [f"{p}for u in range(bptr[kb, i], bptr[kb, i + 1]):", f"{p}    s = bpos[u]",
                        f"{p}    j = indices[s]"]
            else:
                out += [f"{p}for s in range(indptr[i], indptr[i + 1]):", f"{p}    j = indices[s]"]
            v = p + "    "
            if on_post:  # a column that fired in some row: every row, both terms
                out += [f"{v}if colflag[j] == 0:"] + self.visit(v + "    ", target, "pre")
                out += [f"{v}else:"] + self.visit(v + "    ", target)
            else:
                out += self.visit(v, target, "pre")
        if on_post:
            out += ["    for b0 in range(B):", "        for k0 in range(qc[qs, b0]):",
                    "            j = qi[qs, b0, k0]", "            if colflag[j] != 1:",
                    "                continue", "            colflag[j] = 2", "            nb = 0",
                    "            for b in range(B):", "                if qh[qs, b, j]:",
                    "                    rows_b[nb] = b", "                    nb += 1"]
            if self.dense:
                out += ["            n_post = qh.shape[2]", "            for i in range(ph.shape[2]):",
                        "                s = i * n_post + j"]
            else:
                out += ["            for q in range(colptr[j], colptr[j + 1]):",
                        "                s = colsyn[q]", "                i = synrow[s]"]
                out += self.synapse_delay(" " * 16)
            if on_pre:
                out += [f"                if rowflag[{flag}] != 0:", "                    continue"]
            out += self.visit(" " * 16, target, "post")
        if on_pre:
            out += blocks + [f"{pad}    for b in range(B):", f"{pad}        for k in range(pc[ps, b]):",
                             f"{pad}            rowflag[{row}pi[ps, b, k]] = 0"]
        if on_post:
            out += ["    for b in range(B):", "        for k in range(qc[qs, b]):",
                    "            colflag[qi[qs, b, k]] = 0"]
        return out

    # -- phases -------------------------------------------------------------------------
    def traces_body(self) -> str:
        recipe, out = self.recipe, []
        for state in recipe.neuron_state:
            idx = "i" if state.side == "pre" else "j"
            hist = "ph" if state.side == "pre" else "qh"
            fn = hook_name(state.update)
            args = ", ".join(self.expr(a) for a in self.update_args[state.name])
            out += [f"    for {idx} in range({hist}.shape[2]):", "        acc = ZERO",
                    "        for b in range(B):", f"            acc += {fn}({args})",
                    f"        st_{state.name}[{idx}] = acc / FT(B)"]
        if getattr(self.rule, "folded", False):
            out += self.feed_step()
        elif recipe.eligibility is not None:
            events = recipe.on_pre is not None or recipe.on_post is not None
            # without event terms the decay and the per-step term share one pass
            if events or recipe.per_step is None:
                out.append("    decay_array(el, decay_e)")
            if events:
                out += self.touched_synapses("e")
            if recipe.per_step is not None:
                out += self.eligibility_steps(fused=not events)
        return "\n".join(out) + "\n" if out else ""

    def feed_step(self) -> list[str]:
        """Lines storing this step's presynaptic trace and postsynaptic factor (the per-step
        hook with the trace set to 1) into the eligibility feed (see
        neurosim.rules.eligibility_feed); Python folds them into the eligibility."""
        factor = self.recipe.per_step_factor
        fn = self.recipe.per_step
        args = ", ".join("FT(1.0)" if a.name == factor else self.expr(a) for a in self.args["per_step"])
        return ["    slot = feed_fill[0]", "    for b in range(B):",
                f"        for i in range(tv_{factor}.shape[1]):", f"            feed_pre[slot, b, i] = tv_{factor}[b, i]",
                "        for j in range(qh.shape[2]):", f"            feed_post[slot, b, j] = {hook_name(fn)}({args})",
                "    feed_fill[0] = slot + 1"]

    def eligibility_steps(self, fused: bool) -> list[str]:
        """Lines adding every synapse's per_step term to its eligibility (after the event
        terms; ``fused``: the decay in the same pass, ``el * decay_e + term``)."""
        keep = "el[b, s] * decay_e" if fused else "el[b, s]"
        factor = self.recipe.per_step_factor
        if self.per_row_e and self.dense and factor is not None:
            # rows whose presynaptic trace is 0 get a zero term: only the decay (if any)
            row = [f"            if tv_{factor}[b, i] == ZERO:"]
            row += (["                if decay_e != FT(1.0):",
                     "                    for s in range(i * n_post, i * n_post + n_post):",
                     "                        el[b, s] = el[b, s] * decay_e"] if fused else [])
            row += ["                continue"]
            body = [f"el[b, s] = {keep} + {self.call('per_step')}"]
            if self.masked:
                body = ["if mask[s] != 0:", "    " + body[0]] + (
                    ["else:", "    el[b, s] = el[b, s] * decay_e"] if fused else [])
            return (["    n_post = qh.shape[2]", "    for b in range(B):", "        for i in range(ph.shape[2]):"]
                    + row + ["            for j in range(n_post):", "                s = i * n_post + j"]
                    + [" " * 16 + line for line in body])
        if self.per_row_e:  # one row at a time: each row's eligibility is contiguous
            body = [f"    el[b, s] = {keep} + {self.call('per_step')}"]
            if self.masked:
                body = ["    if mask[s] != 0:", "    " + body[0]] + (
                    ["    else:", "        el[b, s] = el[b, s] * decay_e"] if fused else [])
            loop = self.all_synapses(body, ("per_step",))
            return ["    for b in range(B):"] + ["    " + line for line in loop]
        keep = keep.replace("el[b, s]", "el[s]")
        body = ["    d = ZERO", "    for b in range(B):", f"        d += {self.call('per_step')}"]
        if self.masked:
            body += ["    if mask[s] != 0:", f"        el[s] = {keep} + d"]
            body += ["    else:", "        el[s] = el[s] * decay_e"] if fused else []
        else:
            body += [f"    el[s] = {keep} + d"]
        return self.all_synapses(body, ("per_step",))

    def column_sums(self) -> list[str]:
        """Lines summing the column hook over each postsynaptic neuron's synapses, in
        synapse order, into ``colsum`` (none without a column hook)."""
        if self.recipe.column is None:
            return []
        return (["    for j in range(qh.shape[2]):", "        colsum[j] = ZERO"]
                + self.all_synapses(["    w0 = w[s]", f"    colsum[j] += {self.call('column')}"]))

    def tied_passes(self) -> list[str]:
        """Tied weights: every synapse's change into ``dw`` (the recipe's order of terms,
        each synapse visited even if no spike touched it), summed per kernel entry in
        synapse order, then the entry's sum written to each of its synapses."""
        body = ["    w0 = w[s]", "    d = ZERO"]
        if self.recipe.eligibility is not None:
            if self.per_row_e:
                body += ["    for b in range(B):", f"        d += {self.call('gate')}"]
            else:
                body += [f"    d += {self.call('gate')}"]
        else:
            body += self.all_rows_terms("    ", per_step=True)
        out = self.all_synapses(body + ["    dw[s] = d"])
        out += ["    for k in range(tsum.shape[0]):", "        tsum[k] = ZERO",
                "    for s in range(w.shape[0]):", "        tsum[tie[s]] += dw[s]",
                "    for s in range(w.shape[0]):", "        w0 = w[s]", "        d = tsum[tie[s]]"]
        return out + self.finish("        ", True)

    def rules_body(self) -> str:
        recipe = self.recipe
        if self.tied:
            out = self.tied_passes()
        elif recipe.eligibility is not None:
            out = self.column_sums()
            body = ["    w0 = w[s]", "    d = ZERO"]
            if self.per_row_e:
                body += ["    for b in range(B):", f"        d += {self.call('gate')}"]
            else:
                body += [f"    d += {self.call('gate')}"]
            # (with a column hook, on_apply reads the column sum: loop with j known)
            out += self.all_synapses(body + self.finish("    ", True),
                                     ("gate", "on_apply") if recipe.column is None else ())
        elif recipe.event_driven:
            out = self.touched_synapses("w")
        else:
            out = self.column_sums()
            body = ["    w0 = w[s]", "    d = ZERO"]
            if recipe.on_pre or recipe.on_post or recipe.per_step:
                body += self.all_rows_terms("    ", per_step=True)
            if self.two_pass:
                out += self.all_synapses(body + ["    dw[s] = d"])
                out += ["    for s in range(w.shape[0]):", "        w0 = w[s]", "        d = dw[s]"]
                out += self.finish("        ", True)
            else:
                out += self.all_synapses(body + self.finish("    ", True))
        return "\n".join(out) + "\n"


def hook_name(fn: Callable[..., Any]) -> str:
    return "hook_" + f"{fn.__module__}__{fn.__qualname__}".replace(".", "_").replace("<", "").replace(">", "")


def compiled(rule: Any) -> bool:
    """Whether the numba backend runs ``rule`` inside its compiled step loop (every
    declared rule, unless it writes gradients for an optimiser)."""
    return rule.declared is not None and not rule.as_gradient


def keeps_traces(rule: Any) -> bool:
    """Whether a rule must see every step (it keeps traces or eligibility)."""
    from neurosim.rules.base import Rule

    if rule.declared is not None:
        return bool(rule.declared.traces or rule.declared.neuron_state
                    or rule.declared.eligibility is not None)
    return type(rule).update_traces is not Rule.update_traces


def split_rules(net: "Network") -> tuple[list[Any], list[Any]] | None:
    """(rules compiled into the step loop, trace-free rules run from Python on their steps).

    None when some rule keeps traces but has no compiled form: then every rule
    and modulator runs from Python after each step, as tensor code.
    """
    inside, outside = [], []
    for rule in net.rules.values():
        if compiled(rule):
            if any(o.projection is rule.projection for o in outside):
                return None  # a Python rule must change these weights first, as on torch
            inside.append(rule)
        elif keeps_traces(rule):
            return None
        else:
            outside.append(rule)
    return inside, outside
