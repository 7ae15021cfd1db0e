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
    from neurosim.network import Network

# what a pair kernel does with the change of a synapse
TO_WEIGHT, TO_ELIGIBILITY = 0, 1


@njit(cache=True)
def update_trace(value, before, decay, nearest, cnt, idx, slot):
    """``before = value * decay``; then ``value = before (+1 | =1 at spikes)``."""
    for b in range(value.shape[0]):
        rv = value[b]
        rb = before[b]
        for i in range(rv.shape[0]):
            x = rv[i] * decay
            rb[i] = x
            rv[i] = x
        for k in range(cnt[slot, b]):
            i = idx[slot, b, k]
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
def _new_weight(x, ltp, ltd, lr, w_min, w_max, multiplicative):
    # scalars only: a helper taking arrays would pay reference counting on every synapse
    if multiplicative:
        ltp = ltp * (w_max - x)
        ltd = ltd * (x - w_min)
    d = lr * (ltp - ltd)
    if d == 0:  # bounds apply to the weights a rule moves
        return x
    return min(max(x + d, w_min), w_max)


@njit(cache=True)
def _changed(value, ltp, ltd, mode, synapse, lr, w_min, w_max, multiplicative):
    """The new eligibility or weight of one synapse (``synapse``: its mask value, 0 or 1).

    Scalars only: a helper taking arrays would pay reference counting on every synapse.
    """
    if mode == TO_ELIGIBILITY:
        return value + (ltp - ltd) if synapse != 0 else value  # none without a synapse
    return _new_weight(value, ltp, ltd, lr, w_min, w_max, multiplicative) * synapse


@njit(cache=True)
def _rows_of(hist, slot, i, rows):
    n = 0
    for b in range(hist.shape[1]):
        if hist[slot, b, i]:
            rows[n] = b
            n += 1
    return n


@njit(cache=True)
def pair_rule(pre_hist, pre_cnt, pre_idx, pre_slot, post_hist, post_cnt, post_idx, post_slot,
              x_pre, f_post, use_f, y_dep, a_plus, a_minus, lr, w_min, w_max, multiplicative,
              mode, w, elig, mask, indptr, indices, colptr, col_syn, syn_row, n_post,
              row_flag, col_flag, rows_a, rows_b):
    """One step of a pair rule on a dense (``indptr`` empty) or CSR projection.

    Weights, eligibility and mask are flat views (dense: ``s = i * n_post + j``).
    ``row_flag``/``col_flag`` are zeroed scratch flags, left zeroed on return.
    """
    dense = indptr.shape[0] == 0
    zero = w.dtype.type(0.0)
    one = w.dtype.type(1.0)
    masked = mask.shape[0] != 0
    target = elig if mode == TO_ELIGIBILITY else w
    for b in range(pre_cnt.shape[1]):
        for k in range(pre_cnt[pre_slot, b]):
            row_flag[pre_idx[pre_slot, b, k]] = 1
    for b in range(post_cnt.shape[1]):
        for k in range(post_cnt[post_slot, b]):
            col_flag[post_idx[post_slot, b, k]] = 1
    # rows: synapses of presynaptic neurons that spiked (LTD, and LTP where the post fired too)
    for b0 in range(pre_cnt.shape[1]):
        for k0 in range(pre_cnt[pre_slot, b0]):
            i = pre_idx[pre_slot, b0, k0]
            if row_flag[i] != 1:
                continue
            row_flag[i] = 2
            na = _rows_of(pre_hist, pre_slot, i, rows_a)
            lo = i * n_post if dense else indptr[i]
            hi = lo + n_post if dense else indptr[i + 1]
            for s in range(lo, hi):
                j = s - lo if dense else indices[s]
                ltd = zero
                for q in range(na):
                    ltd += y_dep[rows_a[q], j]
                ltp = zero
                if col_flag[j] != 0:
                    for b in range(post_hist.shape[1]):
                        if post_hist[post_slot, b, j]:
                            ltp += x_pre[b, i] * f_post[b, j] if use_f else x_pre[b, i]
                target[s] = _changed(target[s], ltp * a_plus, ltd * a_minus, mode,
                                     mask[s] if masked else one, lr, w_min, w_max, multiplicative)
    # columns: synapses onto postsynaptic neurons that fired, in rows not done above (LTP only)
    for b0 in range(post_cnt.shape[1]):
        for k0 in range(post_cnt[post_slot, b0]):
            j = post_idx[post_slot, b0, k0]
            if col_flag[j] != 1:
                continue
            col_flag[j] = 2
            nb = _rows_of(post_hist, post_slot, j, rows_b)
            n_syn = x_pre.shape[1] if dense else colptr[j + 1] - colptr[j]
            for q0 in range(n_syn):
                if dense:
                    i = q0
                    s = i * n_post + j
                else:
                    s = col_syn[colptr[j] + q0]
                    i = syn_row[s]
                if row_flag[i] != 0:
                    continue
                ltp = zero
                for q in range(nb):
                    b = rows_b[q]
                    ltp += x_pre[b, i] * f_post[b, j] if use_f else x_pre[b, i]
                target[s] = _changed(target[s], ltp * a_plus, zero, mode,
                                     mask[s] if masked else one, lr, w_min, w_max, multiplicative)
    for b in range(pre_cnt.shape[1]):
        for k in range(pre_cnt[pre_slot, b]):
            row_flag[pre_idx[pre_slot, b, k]] = 0
    for b in range(post_cnt.shape[1]):
        for k in range(post_cnt[post_slot, b]):
            col_flag[post_idx[post_slot, b, k]] = 0


@njit(cache=True)
def apply_eligibility(w, elig, mask, m, per_post, indices, n_post, lr, w_min, w_max):
    """``w = clip(w + lr * M * e)``: ``m`` holds one value, or one per postsynaptic neuron."""
    dense = indices.shape[0] == 0
    if not per_post:
        scale = lr * m[0]
        if scale == 0.0:  # no modulator, no change
            return
    for s in range(w.shape[0]):
        if per_post:
            j = s % n_post if dense else indices[s]
            d = (lr * m[j]) * elig[s]
        else:
            d = scale * elig[s]
        if d == 0:
            continue
        x = min(max(w[s] + d, w_min), w_max)
        if mask.shape[0] != 0:
            x = x * mask[s]
        w[s] = x


# -- code generation ------------------------------------------------------------------------
class RuleEmitter:
    """Writes the compiled calls of the rules and modulators of one network.

    ``arg(name, getter)`` registers a kernel argument (the getter is called before
    every compiled stretch, so flags such as ``rule.learning`` are read live).
    """

    def __init__(self, net: "Network", ft: str, arg: Callable[[str, Callable[[], Any]], str],
                 pid: dict[str, int]) -> None:
        self.net, self.arg, self.pid = net, arg, pid
        self.ft = np.dtype(ft).type
        self.traces: list[str] = []
        self.rules: list[str] = []
        self._scratch: dict[str, np.ndarray] = {}

    def scalar(self, name: str, getter: Callable[[], float]) -> str:
        ft = self.ft
        return self.arg(name, lambda: ft(getter()))

    def array(self, name: str, getter: Callable[[], torch.Tensor]) -> str:
        return self.arg(name, lambda: getter().detach().numpy())

    def flat(self, name: str, getter: Callable[[], torch.Tensor]) -> str:
        return self.arg(name, lambda: getter().detach().numpy().reshape(-1))

    # -- modulators ----------------------------------------------------------------------
    def modulator(self, m: int, mod: Any) -> None:
        if not mod.dynamic:
            return
        value = self.arg(f"mod{m}_value", lambda mo=mod: mo.value.numpy().reshape(-1))
        decay = self.scalar(f"mod{m}_decay", lambda mo=mod: mo.decay)
        base = self.scalar(f"mod{m}_base", lambda mo=mod: mo.baseline)
        if mod.driver is not None:
            pop, _ = mod.driver
            k = self.pid[pop.name]
            gain = self.scalar(f"mod{m}_gain", lambda mo=mod: mo.driver[1])
            self.traces.append(f"    step_modulator({value}, {decay}, {base}, True, p{k}_cnt, "
                               f"t % p{k}_hist.shape[0], {pop.batch * pop.n}, {gain})")
        else:
            self.traces.append(f"    step_modulator({value}, {decay}, {base}, False, p0_cnt, 0, 1, {decay})")

    # -- rules ----------------------------------------------------------------------------
    def rule(self, r: int, rule: Any) -> None:
        """Emit the compiled form of ``rule`` (it must pass :func:`compiled`)."""
        from neurosim.rules import DiehlCookSTDP, RewardModulatedSTDP
        from neurosim.rules.base import SpikeTrace

        proj = rule.projection
        pre_k, post_k = self.pid[proj.pre.name], self.pid[proj.post.name]
        pre_slot = f"(t - {proj.min_delay}) % p{pre_k}_hist.shape[0]"
        post_slot = f"t % p{post_k}_hist.shape[0]"
        pre = f"p{pre_k}_cnt, p{pre_k}_idx, {pre_slot}"
        post = f"p{post_k}_cnt, p{post_k}_idx, {post_slot}"
        traces = [(name, t) for name, t in vars(rule).items() if isinstance(t, SpikeTrace)]
        for name, trace in traces:
            side = pre if trace.side == "pre" else post
            value = self.array(f"r{r}_{name}_v", lambda tr=trace: tr.value)
            before = self.array(f"r{r}_{name}_b", lambda tr=trace: tr.before)
            decay = self.scalar(f"r{r}_{name}_decay", lambda tr=trace: tr.decay)
            self.traces.append(f"    update_trace({value}, {before}, {decay}, "
                               f"{trace.mode == 'nearest'}, {side})")

        if isinstance(rule, DiehlCookSTDP):
            x_pre, f_post, y_dep = "x", "y2", "y1"
            a_plus = self.scalar(f"r{r}_ap", lambda ru=rule: ru.nu_post)
            a_minus = self.scalar(f"r{r}_am", lambda ru=rule: ru.nu_pre)
            multiplicative = False
        else:
            x_pre, f_post, y_dep = "x_pre", None, "x_post"
            a_plus = self.scalar(f"r{r}_ap", lambda ru=rule: ru.a_plus)
            a_minus = self.scalar(f"r{r}_am", lambda ru=rule: ru.a_minus)
            multiplicative = rule.weight_dependence == "multiplicative"
        x_pre = self.array(f"r{r}_xpre", lambda ru=rule, a=x_pre: getattr(ru, a).value)
        y_dep = self.array(f"r{r}_ydep", lambda ru=rule, a=y_dep: getattr(ru, a).before)
        f_arr = (self.array(f"r{r}_fpost", lambda ru=rule, a=f_post: getattr(ru, a).before)
                 if f_post else x_pre)
        lr = self.scalar(f"r{r}_lr", lambda ru=rule: ru.effective_lr)  # per application
        w_min = self.scalar(f"r{r}_wmin", lambda ru=rule: ru.w_min)
        w_max = self.scalar(f"r{r}_wmax", lambda ru=rule: ru.w_max)
        w = self.flat(f"r{r}_w", lambda p=proj: p.weight)
        mask = self.flat(f"r{r}_mask", lambda p=proj: p.mask if p.mask is not None
                         else torch.zeros(0, dtype=p.dtype))  # empty: no mask
        learning = self.arg(f"r{r}_learning", lambda ru=rule: bool(ru.learning))
        structure = self._structure(r, proj)
        scratch = self._scratch_args(r, proj)
        common = (f"p{pre_k}_hist, {pre}, p{post_k}_hist, {post}, {x_pre}, {f_arr}, "
                  f"{f_post is not None}, {y_dep}, {a_plus}, {a_minus}, {lr}, {w_min}, {w_max}, "
                  f"{multiplicative}")
        if isinstance(rule, RewardModulatedSTDP):
            elig = self.flat(f"r{r}_elig", lambda ru=rule: ru.eligibility)
            decay_e = self.scalar(f"r{r}_decay_e", lambda ru=rule: ru.decay_e)
            mod = self.net.modulators[rule.modulator_name]
            m = self.arg(f"r{r}_mod", lambda mo=mod: mo.value.numpy().reshape(-1))
            self.traces.append(f"    decay_array({elig}, {decay_e})")
            self.traces.append(f"    pair_rule({common}, {TO_ELIGIBILITY}, {w}, {elig}, {mask}, "
                               f"{structure}, {scratch})")
            indices = f"r{r}_indices" if proj.sparse else f"r{r}_indptr"  # empty: dense
            self.rules.append(f"    if {learning} and t % {rule.every} == 0:\n"
                              f"        apply_eligibility({w}, {elig}, {mask}, {m}, {mod.size is not None}, "
                              f"{indices}, {proj.post.n}, {lr}, {w_min}, {w_max})")
        else:
            self.rules.append(f"    if {learning} and t % {rule.every} == 0:\n"
                              f"        pair_rule({common}, {TO_WEIGHT}, {w}, {w}, {mask}, "
                              f"{structure}, {scratch})")

    def _structure(self, r: int, proj: Any) -> str:
        """indptr, indices, colptr, col_syn, syn_row, n_post (empty arrays when dense)."""
        if not proj.sparse:
            empty = lambda: np.zeros(0, np.int32)  # noqa: E731
            names = [self.arg(f"r{r}_{n}", empty) for n in ("indptr", "indices", "colptr", "colsyn", "synrow")]
            return ", ".join(names) + f", {proj.post.n}"
        indices = proj.indices
        order = torch.argsort(indices, stable=True).to(torch.int32)
        colptr = torch.zeros(proj.post.n + 1, dtype=torch.int64)
        colptr[1:] = torch.cumsum(torch.bincount(indices.long(), minlength=proj.post.n), 0)
        counts = proj.indptr[1:] - proj.indptr[:-1]
        rows = torch.repeat_interleave(torch.arange(proj.pre.n, dtype=torch.int32), counts)
        fixed = {"colptr": colptr.numpy(), "colsyn": order.numpy(), "synrow": rows.numpy()}
        names = [self.arg(f"r{r}_indptr", lambda p=proj: p.indptr.numpy()),
                 self.arg(f"r{r}_indices", lambda p=proj: p.indices.numpy())]
        names += [self.arg(f"r{r}_{n}", lambda a=a: a) for n, a in fixed.items()]
        return ", ".join(names) + f", {proj.post.n}"

    def _scratch_args(self, r: int, proj: Any) -> str:
        batch = self.net.batch
        arrays = {"rowflag": np.zeros(proj.pre.n, np.int8), "colflag": np.zeros(proj.post.n, np.int8),
                  "rowsa": np.zeros(batch, np.int64), "rowsb": np.zeros(batch, np.int64)}
        return ", ".join(self.arg(f"r{r}_{n}", lambda a=a: a) for n, a in arrays.items())


def compiled(rule: Any) -> bool:
    """Whether the numba backend runs ``rule`` inside its compiled step loop."""
    from neurosim.rules import STDP, DiehlCookSTDP, RewardModulatedSTDP

    if rule.as_gradient or type(rule) not in (STDP, RewardModulatedSTDP, DiehlCookSTDP):
        return False
    if isinstance(rule, RewardModulatedSTDP):
        mod = rule.net.modulators[rule.modulator_name]
        return mod.feedback is None
    return True


def keeps_traces(rule: Any) -> bool:
    """Whether a rule must see every step (it overrides ``update_traces``)."""
    from neurosim.rules.base import Rule

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
