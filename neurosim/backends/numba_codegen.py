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


def _helper_name(fn: Callable[..., Any]) -> str:
    return f"k_{fn.__module__.replace('.', '_')}__{fn.__name__}"


def kernel_source(fn: Callable[..., Any], new_name: str) -> tuple[str, list[Callable[..., Any]]]:
    """Compiled-scalar source of a kernel function and the helpers it calls."""
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
    tree = _Rename({h.__name__: _helper_name(h) for h in helpers}).visit(tree)
    tree = _TypeLiterals().visit(_FoldConstants().visit(tree))
    ast.fix_missing_locations(tree)
    return "@njit(cache=True)\n" + ast.unparse(tree) + "\n", helpers


def model_functions(models: list[type]) -> tuple[str, dict[type, str]]:
    """Source of every model's update (renamed per model) and of all helpers, once each."""
    names = {cls: f"update_{cls.__name__}" for cls in models}
    return kernel_functions([(cls.update, names[cls]) for cls in models]), names


def kernel_functions(functions: list[tuple[Callable[..., Any], str]]) -> str:
    """Compiled source of kernel functions (given with their new names) and their helpers."""
    parts: list[str] = []
    done: set[str] = set()
    pending = list(functions)
    while pending:
        fn, name = pending.pop(0)
        if name in done:
            continue
        src, helpers = kernel_source(fn, name)
        parts.append(src)
        done.add(name)
        pending.extend((h, _helper_name(h)) for h in helpers)
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
    """Write the kernels of ``net``; ``arrays(obj, what)`` returns the live numpy arrays.

    ``compiled_rules`` (None: rules and modulators run in Python) are the rules
    to step inside the kernel, together with every dynamic modulator.
    """
    from neurosim.backends.numba_rules import RuleEmitter
    from neurosim.monitors import SpikeCounter, SpikeMonitor, StateMonitor

    plan = KernelPlan("")
    args = plan.args

    def arg(name: str, getter: Callable[[], Any]) -> str:
        args.append((name, getter))
        return name

    pops = list(net.populations.values())
    pid = {p.name: k for k, p in enumerate(pops)}
    models = sorted({type(p.model) for p in pops if not p.is_generator}, key=lambda c: c.__qualname__)
    model_src, update_names = model_functions(models)
    step_fns: dict[str, str] = {}  # function text -> name
    calls: dict[str, list[str]] = {"inputs": [], "deliver": [], "neurons": [], "traces": [],
                                   "rules": [], "monitors": []}
    # the code of each schedule entry, by (phase, id of its object); assembled below in
    # the schedule's order, which is thus the only source of order
    code: dict[tuple[str, int], list[str]] = {}
    rebuild: list[str] = []
    guards: list[str] = []

    for pop in pops:
        k = pid[pop.name]
        hist = arg(f"p{k}_hist", lambda p=pop: arrays(p, "hist"))
        cnt = arg(f"p{k}_cnt", lambda p=pop: arrays(p, "cnt"))
        idx = arg(f"p{k}_idx", lambda p=pop: arrays(p, "idx"))
        rebuild.append(f"    rebuild_spike_lists({hist}, {cnt}, {idx})")
        phase = "inputs" if pop.is_generator or not pop.model.receptors else "neurons"
        if pop.is_generator:
            ev = [arg(f"p{k}_ev{j}", lambda p=pop, j=j: arrays(p, f"ev{j}")) for j in range(3)]
            code[(phase, id(pop))] = [f"    emit_events(t, {hist}, {cnt}, {idx}, {', '.join(ev)})"]
            continue
        model = type(pop.model)
        own: list[str] = [hist, cnt, idx]
        values: dict[str, str] = {}
        pre: list[str] = []
        rows: list[str] = []  # 1-D views of this batch row: the inner loop is then vectorisable
        for var in model.state_variables:
            own.append(arg(f"p{k}_s_{var}", lambda p=pop, v=var: arrays(p, f"state:{v}")))
            rows.append(f"        r_{var} = {own[-1]}[b]")
            values[var] = f"r_{var}[i]"
        for name in model.inputs:
            own.append(arg(f"p{k}_in_{name}", lambda p=pop, v=name: arrays(p, f"input:{v}")))
            rows.append(f"        r_{name} = {own[-1]}[b]")
            values[name] = f"r_{name}[i]"
        for name in model.random_inputs:
            own.append(arg(f"p{k}_rk_{name}", lambda p=pop, v=name: arrays(p, f"ekey:{v}")))
            own.append(arg(f"p{k}_key_{name}", lambda p=pop, v=name: p.random_keys[v]))
            pre.append(f"    sk_{name} = step_key({own[-1]}, t)")
            rows.append(f"        rowkey_{name} = {own[-2]}[b]")
            values[name] = f"FT(lowbias32(rowkey_{name}[i] ^ sk_{name}) >> 8) * FT(UNIT24)"
        for name, tensor in pop.constants.items():
            own.append(arg(f"p{k}_c_{name}", lambda p=pop, v=name: arrays(p, f"const:{v}")))
            shape = tuple(tensor.shape)
            if len(shape) == 2:
                rows.append(f"        rc_{name} = {own[-1]}[{'0' if shape[0] == 1 else 'b'}]")
                values[name] = f"rc_{name}[i]"
            else:
                values[name] = own[-1] + _index(shape)
        call_args = ", ".join(values[a] for a in model.update_arguments())
        n_state = len(model.state_variables)
        stores = "".join(f"            r_{var}[i] = res[{j}]\n"
                         for j, var in enumerate(model.state_variables))
        text = (
            f"@njit(cache=True{', parallel=True' if net.parallel else ''})\n"
            f"def STEP(t, {', '.join(own)}):\n"
            f"    slot = t % {hist}.shape[0]\n" + "".join(line + "\n" for line in pre) +
            f"    for b in range({hist}.shape[1]):\n"
            f"        spikes = {hist}[slot, b]\n" + "".join(line + "\n" for line in rows) +
            f"        for i in {'prange' if net.parallel else 'range'}({hist}.shape[2]):\n"
            f"            res = {update_names[model]}({call_args})\n" + stores +
            f"            spikes[i] = res[{n_state}]\n"
            # a second, cheap pass lists the spiking neurons, so the update loop stays branch-free
            f"        {cnt}[slot, b] = list_spikes(spikes, {idx}[slot, b])\n")
        # populations of one model with the same parameter layout share one function
        text = text.replace(f"p{k}_", "")
        if text not in step_fns:
            step_fns[text] = f"step_{model.__name__}_{len(step_fns)}"
        code[(phase, id(pop))] = [f"    {step_fns[text]}(t, {', '.join(own)})"]

    for j, proj in enumerate(net.projections.values()):
        pre_k, post_k = pid[proj.pre.name], pid[proj.post.name]
        cnt, idx, hist = f"p{pre_k}_cnt", f"p{pre_k}_idx", f"p{pre_k}_hist"
        target = f"p{post_k}_s_{proj.target}"
        weight = arg(f"j{j}_w", lambda pr=proj: arrays(pr, "weight"))
        indices = arg(f"j{j}_indices", lambda pr=proj: arrays(pr, "indices")) if proj.sparse else None
        deliver = code[("deliver", id(proj))] = []
        for q, block in enumerate(proj.blocks):
            slot = f"(t - {block.delay}) % {hist}.shape[0]"
            if not proj.sparse:
                deliver.append(f"    deliver_dense({cnt}, {idx}, {slot}, {weight}, {target})")
                continue
            indptr = arg(f"j{j}_b{q}_indptr", lambda pr=proj, q=q: arrays(pr, f"indptr:{q}"))
            if block.positions is None:
                deliver.append(f"    deliver_csr({cnt}, {idx}, {slot}, {indptr}, {indices}, "
                               f"{weight}, {target})")
            else:
                pos = arg(f"j{j}_b{q}_pos", lambda pr=proj, q=q: arrays(pr, f"positions:{q}"))
                deliver.append(f"    deliver_csr_positions({cnt}, {idx}, {slot}, {indptr}, "
                               f"{pos}, {indices}, {weight}, {target})")

    if compiled_rules is not None:
        emitter = RuleEmitter(net, ft, arg, pid)
        mod_lines = emitter.modulators(net.modulators)
        if mod_lines:
            code[("traces", id(net.modulators))] = mod_lines
        if len(net.shared_traces):
            code[("traces", id(net.shared_traces))] = emitter.shared_traces(net.shared_traces)
        for r, rule in enumerate(compiled_rules):
            traces_lines, rules_lines = emitter.rule(r, rule)
            if rule.has_step_work:
                code[("traces", id(rule))] = traces_lines
            if rule.apply_at is None:  # else it applies from Python when its event fires
                code[("rules", id(rule))] = rules_lines
        rule_src = kernel_functions([(fn, name) for name, fn in emitter.hooks.items()])
        rule_fns = [text.replace("def RULE(", f"def {name}(") for text, name in emitter.functions.items()]
    else:
        rule_src, rule_fns = "", []

    for m, mon in enumerate(net.monitors.values()):
        if isinstance(mon, SpikeMonitor):
            k = pid[mon.population.name]
            ev = [arg(f"m{m}_ev{j}", lambda mo=mon, j=j: mo._events[j]) for j in range(4)]
            code[("monitors", id(mon))] = [f"    record_events(p{k}_cnt, p{k}_idx, "
                                           f"t % p{k}_hist.shape[0], t, {', '.join(ev)})"]
            # stop before a step whose spikes might not fit; the backend flushes and resumes
            guards.append(f"        if {ev[3]}[0] + p{k}_hist.shape[1] * p{k}_hist.shape[2] > "
                          f"{ev[0]}.shape[0]:\n            return t - t0")
        elif isinstance(mon, SpikeCounter):
            k = pid[mon.population.name]
            counts = arg(f"m{m}_counts", lambda mo=mon: mo.counts.numpy())
            code[("monitors", id(mon))] = [f"    count_spikes(p{k}_cnt, p{k}_idx, t % p{k}_hist.shape[0], "
                                           f"{counts})"]
        elif isinstance(mon, StateMonitor):
            k = pid[mon.population.name]
            neurons = arg(f"m{m}_neurons", lambda mo=mon: arrays(mo, "neurons"))
            row0 = arg(f"m{m}_row0", lambda mo=mon: len(mo._steps))
            e = mon.every
            lines = [f"    if t % {e} == 0:",
                     f"        row = {row0} + t // {e} - (t0 + {e - 1}) // {e}"]
            for v in mon.variables:
                buf = arg(f"m{m}_buf_{v}", lambda mo=mon, v=v: arrays(mo, f"buf:{v}"))
                src = (f"p{k}_s_{v}" if v in mon.population.state else f"p{k}_in_{v}")
                lines.append(f"        record_state({src}, {neurons}, {buf}, row)")
            code[("monitors", id(mon))] = ["\n".join(lines)]
        # weight monitors are recorded from Python at the ends of compiled slices

    # (comments carry the entry's number, not its name: networks of one shape share kernels)
    for e, (phase, _, kind, obj) in enumerate(net._schedule.entries()):
        lines = code.pop((phase, id(obj)), None) if obj is not None else None
        if lines is None:  # run from Python: before the step (inputs) or after it
            where = "before" if phase == "inputs" else "after"
            calls[phase].append(f"    # schedule {e}: {phase} {kind} [from Python, {where} the step]")
            continue
        calls[phase].append(f"    # schedule {e}: {phase} {kind}")
        calls[phase].extend(lines)
    if code:
        raise RuntimeError(f"generated code outside the schedule: {sorted(k[0] for k in code)}")

    all_args = ", ".join(name for name, _ in args)
    phase_fns = []
    if profile:  # one function per phase, so that Python can time each
        for phase, body in calls.items():
            phase_fns.append(f"@njit(cache=True)\ndef phase_{phase}(t, t0, {all_args}):\n"
                             + "\n".join(body + ["    pass"]) + "\n")
        step_body = "".join(f"        phase_{phase}(t, t0, {all_args})\n" for phase in calls)
    else:  # phases written into the step loop: fewer functions to compile
        step_body = "".join(textwrap.indent(line, "    ") + "\n"
                            for body in calls.values() for line in body)
    run = (f"@njit(cache=True, nogil=True)\ndef run(t0, n_steps, {all_args}):\n"
           + "\n".join(rebuild) + "\n"
           "    for t in range(t0, t0 + n_steps):\n" + "".join(g + "\n" for g in guards)
           + step_body + "        pass\n"  # a network without populations still counts steps
           + "    return n_steps\n")
    header = (
        "# Generated by neurosim.backends.numba_codegen from the models' update functions.\n"
        "# Do not edit: it is rewritten whenever the network's structure changes.\n"
        f"# Library kernels: {library_digest()}\n"
        "import numpy as np\n"
        "from numba import njit, prange\n"
        "from neurosim.backends.numba_kernels import (where, list_spikes, rebuild_spike_lists, deliver_csr,\n"
        "    deliver_csr_positions, deliver_dense, emit_events, record_events, record_state, count_spikes)\n"
        "from neurosim.backends.numba_rules import (update_trace, decay_array, step_modulator,\n"
        "    linear_signal, product_signal, sigmoid_signal, rate_signal, count_error_signal)\n"
        "from neurosim.counter_rng import lowbias32, step_key, UNIT24\n"
        f"FT = np.{ft}\n"
        "exp = np.exp\n\n")
    steps_src = [text.replace("def STEP(", f"def {name}(") for text, name in step_fns.items()]
    plan.source = "\n\n".join([header, model_src, rule_src, *steps_src, *rule_fns, *phase_fns, run])
    return plan
