"""Generate the numba kernels of a network from its models' one source.

A model's ``update`` (and the ``@kernel`` helpers it calls) is copied from its
source into a generated module, with two mechanical changes: decorators are
dropped and numeric literals are typed in the state precision (``FT(0.04)``), so
that compiled scalar code rounds exactly as torch does on float32 tensors (where a
Python number is cast to the tensor's dtype). Constant subexpressions are folded
first, in float64, as Python would. Around each update the generator writes the
loop over (batch row, neuron); around the populations, a loop over steps that
runs the phases of the schedule. The module is written to a disk cache named by
the hash of its text, so numba's own on-disk cache (``cache=True``) makes the
second run of the same network skip compilation.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:
    from neurosim.backends.view import SimulatedNetwork


# -- model source transformation -------------------------------------------------------
class _FoldConstants(ast.NodeTransformer):
    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.left, ast.Constant) and isinstance(node.right, ast.Constant):
            try:
                value = eval(compile(ast.Expression(node), "<fold>", "eval"))  # noqa: S307 - literals only
            except Exception:  # noqa: BLE001 - leave unfoldable expressions alone
                return node
            return ast.copy_location(ast.Constant(value), node)
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.operand, ast.Constant) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
            return ast.copy_location(ast.Constant(value), node)
        return node


class _TypeLiterals(ast.NodeTransformer):
    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            call = ast.Call(func=ast.Name("FT", ast.Load()), args=[ast.Constant(float(node.value))],
                            keywords=[])
            return ast.copy_location(call, node)
        return node


class _Rename(ast.NodeTransformer):
    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in self.names:
            return ast.copy_location(ast.Name(self.names[node.id], node.ctx), node)
        return node


class _OffsetSpikes(ast.NodeTransformer):
    """``spike(x)`` -> ``spike(x - gate_offset)`` (and ``spike_above``): a gated
    population's threshold offset, in the update's own firing condition."""

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id in ("spike", "spike_above") and len(node.args) == 1:
            shifted = ast.BinOp(node.args[0], ast.Sub(), ast.Name("gate_offset", ast.Load()))
            node.args = [ast.copy_location(shifted, node.args[0])]
        return node


def _helper_name(fn: Callable[..., Any]) -> str:
    return f"k_{fn.__module__.replace('.', '_')}__{fn.__name__}"


def kernel_source(fn: Callable[..., Any], new_name: str,
                  gate_offset: bool = False) -> tuple[str, list[Callable[..., Any]]]:
    """Compiled-scalar source of a kernel function and the helpers it calls; with
    ``gate_offset``, a last argument ``gate_offset`` shifts its firing condition."""
    helpers = [fn.__globals__[n] for n in fn.__code__.co_names
               if getattr(fn.__globals__.get(n), "__neurosim_kernel__", False)]
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError) as exc:
        raise ValueError(f"{fn.__qualname__}: the numba backend compiles a kernel from its source, "
                         "which Python cannot find (was it defined in an interactive session?); "
                         "define it in a file, or use backend='torch'") from exc
    tree = ast.parse(textwrap.dedent(source))
    func = tree.body[0]
    if not isinstance(func, ast.FunctionDef):
        raise TypeError(f"{fn.__qualname__}: a kernel must be a plain function (def, not lambda)")
    func.decorator_list = []
    func.name = new_name
    func.returns = None
    for arg in func.args.args:
        arg.annotation = None
    if gate_offset:
        func.args.args.append(ast.arg("gate_offset"))
        tree = _OffsetSpikes().visit(tree)
    tree = _Rename({h.__name__: _helper_name(h) for h in helpers}).visit(tree)
    tree = _TypeLiterals().visit(_FoldConstants().visit(tree))
    ast.fix_missing_locations(tree)
    return "@njit(cache=True)\n" + ast.unparse(tree) + "\n", helpers


def model_functions(models: list[type], gated: list[type] = ()) -> tuple[str, dict[Any, str]]:
    """Source of every model's update (renamed per model), of the threshold-offset
    variants of the ``gated`` ones (keyed ``(cls, "gated")``), and of all helpers, once each."""
    names: dict[Any, str] = {cls: f"update_{cls.__name__}" for cls in models}
    names.update({(cls, "gated"): f"update_{cls.__name__}_gated" for cls in gated})
    functions = [(cls.update, names[cls], False) for cls in models]
    functions += [(cls.update, names[(cls, "gated")], True) for cls in gated]
    return kernel_functions(functions), names


def kernel_functions(functions: list[tuple[Any, ...]]) -> str:
    """Compiled source of kernel functions (given as ``(fn, new name)`` or ``(fn, new
    name, gate_offset)``) and their helpers."""
    parts: list[str] = []
    done: set[str] = set()
    pending = [tuple(f) + (False,) * (3 - len(f)) for f in functions]
    while pending:
        fn, name, offset = pending.pop(0)
        if name in done:
            continue
        src, helpers = kernel_source(fn, name, offset)
        parts.append(src)
        done.add(name)
        pending.extend((h, _helper_name(h), False) for h in helpers)
    return "\n".join(parts)


# -- network kernel generation -----------------------------------------------------------
@functools.lru_cache(maxsize=1)
def library_digest() -> str:
    """Hash of the compiled modules the generated code calls.

    numba's disk cache checks only the generated file's own timestamp, not those of
    the functions it calls and inlines; naming the generated file by this hash too
    makes a changed library compile afresh instead of running stale machine code.
    """
    from neurosim import counter_rng
    from neurosim.backends import numba_kernels, numba_rules

    h = hashlib.sha256()
    for module in (numba_kernels, numba_rules, counter_rng):
        h.update(inspect.getsource(module).encode())
    return h.hexdigest()[:16]



@dataclass
class KernelPlan:
    """Generated source plus the ordered arguments (name, getter) of its functions."""

    source: str
    args: list[tuple[str, Callable[[], Any]]] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()[:20]


def _index(shape: tuple[int, ...]) -> str:
    if len(shape) == 0:
        return ""
    if len(shape) == 1:
        return "[i]"
    return "[0, i]" if shape[0] == 1 else "[b, i]"


def generate(net: "SimulatedNetwork", ft: str, arrays: Callable[[Any, str], Any],
             profile: bool = False, compiled_rules: list[Any] | None = None) -> KernelPlan:
    """Write the kernels of ``net``; ``arrays(obj, name)`` returns the live numpy array
    that ``obj`` declares as ``name`` in its ``arrays()`` (the state contract).

    ``compiled_rules`` (None: rules and modulators run in Python) are the rules
    to step inside the kernel, together with every dynamic modulator.
    """
    return KernelWriter(net, ft, arrays, compiled_rules).write(profile)


class KernelWriter:
    """Writes one network's kernel: the code of each schedule entry, by its kind
    (``emit_<kind>``, one method per kind of :data:`neurosim.schedule.KINDS`), in the
    schedule's order, which is thus the only source of order. ``None`` from an
    emitter means the entry runs from Python (before the step in the inputs phase,
    after it otherwise)."""

    def __init__(self, net: "SimulatedNetwork", ft: str, arrays: Callable[[Any, str], Any],
                 compiled_rules: list[Any] | None) -> None:
        from neurosim.backends.numba_rules import RuleEmitter

        self.net, self.ft, self.arrays = net, ft, arrays
        self.plan = KernelPlan("")
        pops = list(net.populations.values())
        self.pid = {p.name: k for k, p in enumerate(pops)}
        models = sorted({type(p.model) for p in pops if not p.is_generator}, key=lambda c: c.__qualname__)
        gated = sorted({type(p.model) for p in pops if p.gate is not None and not p.graded
                        and getattr(type(p.model), "threshold_argument", None) is None},
                       key=lambda c: c.__qualname__)
        self.model_src, self.update_names = model_functions(models, gated)
        if any(p.gate is not None and p.gate.activity_gate != "none" for p in pops):
            from neurosim.gating import hard_activity_gate, soft_activity_gate

            self.model_src += "\n" + kernel_functions([(soft_activity_gate, "soft_activity_gate"),
                                                       (hard_activity_gate, "hard_activity_gate")])
        self.step_fns: dict[str, str] = {}  # function text -> name
        self.guards: list[str] = []
        self.rebuild: list[str] = []
        self.compiled = {id(r): r_i for r_i, r in enumerate(compiled_rules or [])}
        self.rules = None if compiled_rules is None else RuleEmitter(net, ft, self.arg, self.pid)
        self._rule_lines: dict[int, tuple[list[str], list[str]]] = {}
        # every population's arrays are arguments before any entry's code refers to them
        self.pop_args = {p.name: self.bind_population(p) for p in pops}

    def arg(self, name: str, getter: Callable[[], Any]) -> str:
        self.plan.args.append((name, getter))
        return name

    def bind_population(self, pop: Any) -> dict[str, str]:
        """Register the arrays of ``pop``'s contract as kernel arguments; returns
        {contract name: argument name}. ``cnt``/``idx``: the backend's spike lists."""
        k, arrays = self.pid[pop.name], self.arrays
        names = {"spikes": self.arg(f"p{k}_hist", lambda p=pop: arrays(p, "spikes")),
                 "cnt": self.arg(f"p{k}_cnt", lambda p=pop: arrays(p, "cnt")),
                 "idx": self.arg(f"p{k}_idx", lambda p=pop: arrays(p, "idx"))}
        rebuild = "rebuild_value_lists" if pop.graded else "rebuild_spike_lists"
        self.rebuild.append(f"    {rebuild}({names['spikes']}, {names['cnt']}, {names['idx']})")
        short = {"state": "s", "input": "in", "key": "rk", "const": "c", "events": "ev", "gate": "g"}
        for name in pop.arrays():
            if name == "spikes":
                continue
            kind, _, var = name.partition(".")
            names[name] = self.arg(f"p{k}_{short[kind]}_{var.replace('.', '_')}",
                                   lambda p=pop, n=name: arrays(p, n))
            if kind == "key":
                names[f"stream.{var}"] = self.arg(f"p{k}_key_{var}", lambda p=pop, v=var: p.random_keys[v])
        return names

    # -- one emitter per kind of schedule entry -----------------------------------------
    def emit_population(self, pop: Any) -> list[str]:
        a = self.pop_args[pop.name]
        hist, cnt, idx = a["spikes"], a["cnt"], a["idx"]
        if pop.is_generator:
            ev = ", ".join(a[f"events.{e}"] for e in ("step", "row", "neuron"))
            return [f"    emit_events(t, {hist}, {cnt}, {idx}, {ev})"]
        model = type(pop.model)
        own: list[str] = [hist, cnt, idx]
        values: dict[str, str] = {}
        pre: list[str] = []
        rows: list[str] = []  # 1-D views of this batch row: the inner loop is then vectorisable
        for var in model.state_variables:
            own.append(a[f"state.{var}"])
            rows.append(f"        r_{var} = {own[-1]}[b]")
            values[var] = f"r_{var}[i]"
        for name in model.inputs:
            own.append(a[f"input.{name}"])
            rows.append(f"        r_{name} = {own[-1]}[b]")
            values[name] = f"r_{name}[i]"
        for name in model.random_inputs:
            own += [a[f"key.{name}"], a[f"stream.{name}"]]
            pre.append(f"    sk_{name} = step_key({own[-1]}, t)")
            rows.append(f"        rowkey_{name} = {own[-2]}[b]")
            values[name] = f"FT(lowbias32(rowkey_{name}[i] ^ sk_{name}) >> 8) * FT(UNIT24)"
        for name, tensor in pop.constants.items():
            own.append(a[f"const.{name}"])
            shape = tuple(tensor.shape)
            if len(shape) == 2:
                rows.append(f"        rc_{name} = {own[-1]}[{'0' if shape[0] == 1 else 'b'}]")
                values[name] = f"rc_{name}[i]"
            else:
                values[name] = own[-1] + _index(shape)
        gate, take, sent = pop.gate, "", f"res[{len(model.state_variables)}]"
        update_name = self.update_names[model]
        if gate is not None:
            take, sent, update_name = self._gate(pop, a, own, rows, values, sent)
        call_args = ", ".join(values[arg] for arg in model.update_arguments())
        if update_name != self.update_names[model]:  # the threshold-offset variant
            call_args += ", gate_offset"
        stores = "".join(f"            r_{var}[i] = res[{j}]\n"
                         for j, var in enumerate(model.state_variables))
        parallel = self.net.parallel
        text = (
            f"@njit(cache=True{', parallel=True' if parallel else ''})\n"
            f"def STEP(t, {', '.join(own)}):\n"
            f"    slot = t % {hist}.shape[0]\n" + "".join(line + "\n" for line in pre) +
            f"    for b in range({hist}.shape[1]):\n"
            f"        spikes = {hist}[slot, b]\n" + "".join(line + "\n" for line in rows) +
            f"        for i in {'prange' if parallel else 'range'}({hist}.shape[2]):\n" + take +
            f"            res = {update_name}({call_args})\n" + stores +
            f"            spikes[i] = {sent}\n" +
            # a second, cheap pass lists the spiking neurons, so the update loop stays branch-free
            f"        {cnt}[slot, b] = {'list_nonzero' if pop.graded else 'list_spikes'}(spikes, {idx}[slot, b])\n")
        # populations of one model with the same parameter layout share one function
        text = text.replace(f"p{self.pid[pop.name]}_", "")
        if text not in self.step_fns:
            self.step_fns[text] = f"step_{model.__name__}_{len(self.step_fns)}"
        return [f"    {self.step_fns[text]}(t, {', '.join(own)})"]

    def _gate(self, pop: Any, a: dict[str, str], own: list[str], rows: list[str],
              values: dict[str, str], sent: str) -> tuple[str, str, str]:
        """The lines of a gated population's update loop (see :mod:`neurosim.gating`):
        adds its gate's arrays to ``own``/``rows``; returns (lines before the update, the
        value sent, the update's name)."""
        gate, model = pop.gate, type(pop.model)
        for key in ("gain", "offset"):
            own.append(a[f"gate.{key}"])
            rows.append(f"        r_gate_{key} = {own[-1]}[b]")
        # the gate in force as locals (deliveries applied the gain to synaptic input). A
        # signal the step changes: the gate computed from it every step, in the update's
        # loop (one pass); a held one (only Python writes it) is computed between
        # stretches (Gate.follow_held_signal) and read here as a mode
        if gate.driver is not None and not gate.held:
            sig = gate.signal
            for key in ("low_gain", "span_gain", "low_offset", "span_offset", "signal"):
                own.append(a[f"gate.{key}"])
            lo_g, sp_g, lo_o, sp_o, signal = own[-5:]
            row = f"{signal}[b]" if sig.dim() == 2 else signal
            rows.append(f"        sig_row = {row}")
            if sig.dim() >= 1:
                m = "sig_row[i]"
            else:
                rows.append("        m_row = sig_row[0]")
                m = "m_row"
            take = (f"            gate_offset = {lo_o}[i] + {m} * {sp_o}[i]\n"
                    "            r_gate_offset[i] = gate_offset\n"
                    f"            r_gate_gain[i] = {lo_g}[i] + {m} * {sp_g}[i]\n")
        else:  # the gain acts in the deliveries: only the offset is read here
            take = "            gate_offset = r_gate_offset[i]\n"
        threshold = getattr(model, "threshold_argument", None)
        if threshold is not None:  # the model's threshold argument, raised by the offset
            values[threshold] = f"({values[threshold]} + gate_offset)"
            return take, sent, self.update_names[model]
        if pop.graded:
            if gate.activity_gate == "soft":
                own.append(self.arg(f"p{self.pid[pop.name]}_g_temperature",
                                    lambda g=gate, ft=self.ft: getattr(np, ft)(g.temperature)))
                sent = f"soft_activity_gate({sent}, gate_offset, {own[-1]})"
            elif gate.activity_gate == "hard":
                sent = f"hard_activity_gate({sent}, gate_offset)"
            return take, sent, self.update_names[model]
        return take, sent, self.update_names[(model, "gated")]

    def emit_delivery(self, proj: Any) -> list[str]:
        pre, post = self.pop_args[proj.pre.name], self.pop_args[proj.post.name]
        cnt, idx, hist = pre["cnt"], pre["idx"], pre["spikes"]
        target = post[f"state.{proj.target}"]
        # into a gated population: weights pre-scaled by the gain, or the gain per event
        gain = post["gate.gain"] if proj.post.gate is not None and not proj.gate_scaled else "None"
        j, arrays = len(self.plan.args), self.arrays  # (a unique prefix for this projection)
        name = "weight.delivered" if proj.gate_scaled else "weight"
        weight = self.arg(f"j{j}_w", lambda pr=proj, n=name: arrays(pr, n))
        indices = self.arg(f"j{j}_indices", lambda pr=proj: arrays(pr, "indices")) if proj.sparse else None
        lines = []
        # a graded population's values multiply the weights (its lists hold the nonzero values)
        values, src = ("_values", f"{hist}, ") if proj.pre.graded else ("", "")
        for q, block in enumerate(proj.blocks):
            slot = f"(t - {block.delay}) % {hist}.shape[0]"
            if not proj.sparse:
                lines.append(f"    deliver_dense{values}({cnt}, {idx}, {slot}, {src}{weight}, {target}, {gain})")
                continue
            indptr = self.arg(f"j{j}_b{q}_indptr", lambda pr=proj, q=q: arrays(pr, f"block{q}.indptr"))
            if block.positions is None:
                lines.append(f"    deliver_csr{values}({cnt}, {idx}, {slot}, {src}{indptr}, {indices}, "
                             f"{weight}, {target}, {gain})")
            else:
                pos = self.arg(f"j{j}_b{q}_pos", lambda pr=proj, q=q: arrays(pr, f"block{q}.positions"))
                targets = self.arg(f"j{j}_b{q}_indices", lambda pr=proj, q=q: arrays(pr, f"block{q}.indices"))
                lines.append(f"    deliver_csr_block{values}({cnt}, {idx}, {slot}, {src}{indptr}, "
                             f"{pos}, {targets}, {weight}, {target}, {gain})")
        return lines

    def emit_modulators(self, mods: Any) -> list[str] | None:
        return None if self.rules is None else self.rules.modulators(mods)

    def emit_spike_traces(self, bank: Any) -> list[str] | None:
        return None if self.rules is None else self.rules.shared_traces(bank)

    def _rule(self, rule: Any) -> tuple[list[str], list[str]] | None:
        if id(rule) not in self.compiled:
            return None
        if id(rule) not in self._rule_lines:
            self._rule_lines[id(rule)] = self.rules.rule(self.compiled[id(rule)], rule)
        return self._rule_lines[id(rule)]

    def emit_rule_traces(self, rule: Any) -> list[str] | None:
        lines = self._rule(rule)
        return None if lines is None else lines[0]

    def emit_rule_apply(self, rule: Any) -> list[str] | None:
        lines = self._rule(rule)
        return None if lines is None else lines[1]

    def emit_record_spikes(self, mon: Any) -> list[str]:
        p = self.pop_args[mon.population.name]
        m = len(self.plan.args)
        ev = [self.arg(f"m{m}_ev{e}", lambda mo=mon, e=e: self.arrays(mo, f"events.{e}"))
              for e in ("step", "neuron", "batch", "fill")]
        # stop before a step whose spikes might not fit; the backend flushes and resumes
        self.guards.append(f"        if {ev[3]}[0] + {p['spikes']}.shape[1] * {p['spikes']}.shape[2] > "
                           f"{ev[0]}.shape[0]:\n            return t - t0")
        active = self.arg(f"m{m}_active", lambda mo=mon: bool(mo.active))
        return [f"    if {active}:\n        record_events({p['cnt']}, {p['idx']}, t % {p['spikes']}.shape[0], "
                f"t, {', '.join(ev)})"]

    def emit_count_spikes(self, mon: Any) -> list[str]:
        p = self.pop_args[mon.population.name]
        m = len(self.plan.args)
        counts = self.arg(f"m{m}_counts", lambda mo=mon: self.arrays(mo, "counts"))
        active = self.arg(f"m{m}_active", lambda mo=mon: bool(mo.active))
        return [f"    if {active}:\n        count_spikes({p['cnt']}, {p['idx']}, t % {p['spikes']}.shape[0], {counts})"]

    def emit_record_state(self, mon: Any) -> list[str]:
        p = self.pop_args[mon.population.name]
        m = len(self.plan.args)
        neurons = self.arg(f"m{m}_neurons", lambda mo=mon: self.arrays(mo, "neurons"))
        row0 = self.arg(f"m{m}_row0", lambda mo=mon: mo.rows_filled)
        e = mon.every
        active = self.arg(f"m{m}_active", lambda mo=mon: bool(mo.active))
        lines = [f"    if t % {e} == 0 and {active}:", f"        row = {row0} + t // {e} - (t0 + {e - 1}) // {e}"]
        for v in mon.variables:
            buf = self.arg(f"m{m}_buf_{v}", lambda mo=mon, v=v: self.arrays(mo, f"buffer.{v}"))
            lines.append(f"        record_state({p[mon.source(v)]}, {neurons}, {buf}, row)")
        return ["\n".join(lines)]

    def emit_python(self, fn: Any) -> None:
        return None

    # -- the module ------------------------------------------------------------------------
    def write(self, profile: bool) -> KernelPlan:
        calls: dict[str, list[str]] = {"inputs": [], "deliver": [], "neurons": [], "traces": [],
                                       "rules": [], "monitors": []}
        # (comments carry the entry's number, not its name: networks of one shape share kernels)
        for e, (phase, _, kind, obj) in enumerate(self.net._schedule.entries()):
            lines = getattr(self, f"emit_{kind}")(obj)
            if lines is None:  # run from Python: before the step (inputs) or after it
                where = "before" if phase == "inputs" else "after"
                calls[phase].append(f"    # schedule {e}: {phase} {kind} [from Python, {where} the step]")
                continue
            calls[phase].append(f"    # schedule {e}: {phase} {kind}")
            calls[phase].extend(lines)
        if self.rules is not None:
            rule_src = kernel_functions([(fn, name) for name, fn in self.rules.hooks.items()])
            rule_fns = [text.replace("def RULE(", f"def {name}(")
                        for text, name in self.rules.functions.items()]
        else:
            rule_src, rule_fns = "", []
        all_args = ", ".join(name for name, _ in self.plan.args)
        phase_fns = []
        if profile:  # one function per phase, so that Python can time each
            for phase, body in calls.items():
                phase_fns.append(f"@njit(cache=True)\ndef phase_{phase}(t, t0, {all_args}):\n"
                                 + "\n".join(body + ["    pass"]) + "\n")
            step_body = "".join(f"        phase_{phase}(t, t0, {all_args})\n" for phase in calls)
        else:  # phases written into the step loop: fewer functions to compile
            step_body = "".join(textwrap.indent(line, "    ") + "\n"
                                for body in calls.values() for line in body)
        # the spike lists are rebuilt from the rings unless the caller knows they are current
        rebuild = "\n".join("    " + line for line in self.rebuild) if self.rebuild else "        pass"
        run = (f"@njit(cache=True, nogil=True)\ndef run(t0, n_steps, rebuild, {all_args}):\n"
               + "    if rebuild:\n" + rebuild + "\n"
               "    for t in range(t0, t0 + n_steps):\n" + "".join(g + "\n" for g in self.guards)
               + step_body + "        pass\n"  # a network without populations still counts steps
               + "    return n_steps\n")
        header = (
            "# Generated by neurosim.backends.numba_codegen from the models' update functions.\n"
            "# Do not edit: it is rewritten whenever the network's structure changes.\n"
            f"# Library kernels: {library_digest()}\n"
            "import numpy as np\n"
            "from numba import njit, prange\n"
            "from neurosim.backends.numba_kernels import (where, maximum, minimum, spike, spike_above, elu, sigmoid, tanh,\n"
            "    list_spikes, rebuild_spike_lists, deliver_csr,\n"
            "    deliver_csr_block, deliver_dense, emit_events, record_events, record_state, count_spikes,\n"
            "    list_nonzero, rebuild_value_lists, deliver_dense_values, deliver_csr_values,\n"
            "    deliver_csr_block_values)\n"
            "from neurosim.backends.numba_rules import (update_trace, decay_array, step_modulator,\n"
            "    linear_signal, product_signal, sigmoid_signal, rate_signal, count_error_signal,\n"
            "    softmax_signal, population_error_signal)\n"
            "from neurosim.counter_rng import lowbias32, step_key, UNIT24\n"
            f"FT = np.{self.ft}\n"
            "exp = np.exp\n\n")
        steps_src = [text.replace("def STEP(", f"def {name}(") for text, name in self.step_fns.items()]
        self.plan.source = "\n\n".join([header, self.model_src, rule_src, *steps_src, *rule_fns,
                                         *phase_fns, run])
        return self.plan
