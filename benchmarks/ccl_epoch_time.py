"""Time per epoch of CCL training: neurosim's forms against a plain PyTorch implementation.

    python benchmarks/ccl_epoch_time.py                  # 1 epoch of MNIST (54,000 images), 3 repeats
    python benchmarks/ccl_epoch_time.py --batches 50     # a quick look
    python benchmarks/ccl_epoch_time.py --batches 60 --breakdown   # and one batch's parts

Rows, all training the same 784-256x5-10 ELU MLP by CCL (batch 256, SGD lr 1, clip 1):

* ``plain PyTorch``: the algorithm written here directly in PyTorch, independent of
  neurosim (two lists of ``nn.Linear``, detached inputs, the unnormalised local loss, two
  optimisers with clipping), as a user would write it;
* ``neurosim CCLNet``: :class:`neurosim.networks.ccl.CCLNet` with its trainer (autograd);
* ``neurosim rules``: :class:`neurosim.networks.ccl_rule_net.CCLRuleNet`, the same
  update as CounterCurrent rules on graded populations stepped by the engine (its
  default, torch for both networks; numba for the feedback network; numba for both);
* ``plain PyTorch BP``: backprop on the forward MLP alone, for scale.

The forms run interleaved (one repeat of each in turn) in one process, so machine load
affects them alike; the table gives the median seconds per epoch and the ratio to
plain PyTorch. Say the machine and its load when quoting the figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class PlainCCL:
    """CCL written directly in PyTorch (the reference the issue compares against)."""

    def __init__(self, sizes, seed):
        torch.manual_seed(seed)
        self.fw = [nn.Linear(a, b, bias=False) for a, b in zip(sizes[:-1], sizes[1:])]
        self.bw = [nn.Linear(b, a, bias=False) for a, b in zip(sizes[:-1], sizes[1:])]
        self.fp = [l.weight for l in self.fw]
        self.bp = [l.weight for l in self.bw]
        self.opt_f = torch.optim.SGD(self.fp, lr=1.0)
        self.opt_b = torch.optim.SGD(self.bp, lr=1.0)
        self.classes = sizes[-1]

    def step(self, x, y, times=None):
        """One update; with ``times`` (a dict), the seconds of its three phases added in."""
        t0 = time.perf_counter()
        acts = [x]
        for k, layer in enumerate(self.fw):
            z = layer(acts[-1].detach())
            acts.append(F.elu(z) if k < len(self.fw) - 1 else z)
        sig = [torch.eye(self.classes)]
        for k in range(len(self.bw) - 1, -1, -1):
            z = self.bw[k](sig[0].detach())
            sig.insert(0, F.elu(z) if k > 0 else z)
        t1 = time.perf_counter()
        target = (y[:, None] == torch.arange(self.classes)).float()
        loss = F.cross_entropy(acts[-1], y)
        for a, b in zip(acts[:-1], sig[:-1]):
            loss = loss + F.mse_loss(a @ b.T, target) / a.shape[1] * 0.5 * 256
        self.opt_f.zero_grad()
        self.opt_b.zero_grad()
        loss.backward()
        t2 = time.perf_counter()
        nn.utils.clip_grad_norm_(self.fp, 1.0)
        nn.utils.clip_grad_norm_(self.bp, 1.0)
        self.opt_f.step()
        self.opt_b.step()
        if times is not None:
            for key, dt in (("forward and feedback passes", t1 - t0), ("loss and backward", t2 - t1),
                            ("clip and SGD", time.perf_counter() - t2)):
                times[key] = times.get(key, 0.0) + dt


class PlainBP:
    def __init__(self, sizes, seed):
        torch.manual_seed(seed)
        self.layers = [nn.Linear(a, b, bias=False) for a, b in zip(sizes[:-1], sizes[1:])]
        self.params = [l.weight for l in self.layers]
        self.opt = torch.optim.SGD(self.params, lr=1.0)

    def step(self, x, y):
        for k, layer in enumerate(self.layers):
            x = layer(x)
            if k < len(self.layers) - 1:
                x = F.elu(x)
        loss = F.cross_entropy(x, y)
        self.opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()


def breakdown(rules, plain: PlainCCL, x: torch.Tensor, y: torch.Tensor, steps: int, repeats: int) -> None:
    """Milliseconds per batch of the rule form and of plain PyTorch, in parts, on one
    batch (``steps`` updates, ``repeats`` times, interleaved; the fastest repeat)."""
    parts: dict[str, float] = {}

    def timed(obj, name: str, key: str) -> None:  # (wraps a method of this one object)
        own = getattr(obj, name)

        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return own(*a, **k)
            finally:
                parts[key] = parts.get(key, 0.0) + time.perf_counter() - t0
        setattr(obj, name, wrapper)

    timed(rules, "_forward", "forward network's step")
    timed(rules.feedback_net, "run", "feedback network's step")
    timed(rules.forward_net, "trigger", "rule triggers")
    timed(rules.feedback_net, "trigger", "rule triggers")
    best: dict[str, tuple[float, dict[str, float]]] = {}
    for _ in range(repeats):
        for form, step in (("rules", rules.step), ("plain", plain.step)):
            parts.clear()
            kwargs = {"times": parts} if form == "plain" else {}
            t0 = time.perf_counter()
            for _ in range(steps):
                step(x, y, **kwargs)
            total = time.perf_counter() - t0
            if form not in best or total < best[form][0]:
                rest = total - sum(parts.values())
                best[form] = (total, {**parts, **({"local errors, clip and SGD": rest} if form == "rules" else {})})
    ratio = best["rules"][0] / best["plain"][0]
    print(f"\nper batch of {x.shape[0]} (ms; fastest of {repeats} x {steps} updates): "
          f"rules {best['rules'][0] / steps * 1e3:.2f}, plain PyTorch {best['plain'][0] / steps * 1e3:.2f} "
          f"({ratio:.2f}x)")
    for form in ("rules", "plain"):
        for key, seconds in best[form][1].items():
            print(f"  {form:6s} {key:30s} {seconds / steps * 1e3:6.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=211, help="batches per timed epoch (211: 54,000 images)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--data", default=None)
    parser.add_argument("--breakdown", action="store_true",
                        help="also time one batch's parts, rule form against plain PyTorch")
    args = parser.parse_args()
    if args.batches < 1 or args.repeats < 1:
        parser.error("--batches and --repeats must be positive")
    if args.threads:
        torch.set_num_threads(args.threads)
    from neurosim.datasets import load_mnist
    from neurosim.datasets.standardize import PIXEL_STATISTICS, standardized
    from neurosim.networks.ccl import CCLNet
    from neurosim.networks.ccl_rule_net import CCLRuleNet
    from neurosim.networks.ccl_training import Trainer

    sizes = (784, 256, 256, 256, 256, 256, 10)
    images, labels = load_mnist("train", args.data)
    n = min(len(images), args.batches * 256)
    x = standardized(images[:n], *PIXEL_STATISTICS["mnist"]).flatten(1)
    y = torch.as_tensor(labels[:n]).long()
    batches = [(x[i:i + 256], y[i:i + 256]) for i in range(0, n, 256)]

    ccl = CCLNet.mlp(sizes, seed=0)
    trainer = Trainer(ccl, lr=1.0, clip=1.0)
    forms = {
        "plain PyTorch CCL": PlainCCL(sizes, 0).step,
        "neurosim CCLNet (autograd)": lambda xb, yb: trainer.step(xb, yb),
        "neurosim rules (default: torch for both networks)": CCLRuleNet(sizes, batch=256).step,
        "neurosim rules, torch forward, numba feedback": CCLRuleNet(sizes, batch=256,
                                                                    backend=("torch", "numba")).step,
        "neurosim rules, numba for both networks": CCLRuleNet(sizes, batch=256, backend="numba").step,
        "plain PyTorch BP (forward net only)": PlainBP(sizes, 0).step,
    }
    for step in forms.values():  # warm-up: compile, allocate
        for xb, yb in batches[:2]:
            step(xb, yb)
    times: dict[str, list[float]] = {k: [] for k in forms}
    for r in range(args.repeats):
        for name, step in forms.items():
            t0 = time.perf_counter()
            for xb, yb in batches:
                step(xb, yb)
            times[name].append(time.perf_counter() - t0)
        print(f"repeat {r + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    scale = 211 / len(batches)
    ref = statistics.median(times["plain PyTorch CCL"])
    print(f"CCL MLP 784-256x5-10, batch 256; seconds per epoch of 54,000 images (median of "
          f"{args.repeats}, measured on {len(batches)} batches), torch threads {torch.get_num_threads()}")
    print("| form | s/epoch | vs plain PyTorch CCL |")
    print("|---|---|---|")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"| {name} | {med * scale:.2f} | {med / ref:.2f}x |")
    if args.breakdown:
        breakdown(CCLRuleNet(sizes, batch=256), PlainCCL(sizes, 0), *batches[0], steps=100,
                  repeats=max(3, args.repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
