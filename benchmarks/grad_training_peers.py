"""Surrogate-gradient training of a spiking MNIST classifier: the peers (snnTorch, Norse, SpikingJelly).

    python benchmarks/grad_training_peers.py --epochs 1 --limit 2048 --test-limit 1000
    python benchmarks/grad_training_peers.py --peers snntorch,norse --epochs 1

What is measured, for every peer the same network and training: rate-coded MNIST
(Bernoulli spikes with p = pixel intensity in [0, 1] at each of T = 25 steps, as
``snntorch.spikegen.rate``, drawn here from one seeded generator so that every peer
sees the same input spikes), 784 -> ``hidden`` (1000) leaky neurons -> 10 leaky
neurons, ``nn.Linear`` layers with bias (same seeded initial weights), decay 0.95,
threshold 1, reset by subtraction (reset term detached), arctan surrogate (alpha 2);
loss: cross-entropy of the output membrane potential at every step, summed over the
steps (snnTorch tutorial 5); Adam, lr 5e-4, betas (0.9, 0.999); batch 128 (a last
partial batch is dropped). Accuracy: the class with the most output spikes (ties
go to the lower class).

``seconds`` is the wall time of the training loop only (shuffling, encoding,
forward, backward, optimiser step); loading data, building the model and testing
are outside it. ``samples_per_second`` = training samples / ``seconds``.

Each peer runs in its own documented idiom, and the dynamics differ in details:

* snnTorch: ``snn.Leaky(beta=0.95)`` with its defaults, a Python loop over steps
  (tutorial 5). Its reset lags one step: m[t] = 0.95 m[t-1] + I[t] - S[t-1]; the
  loss sees m[t] before that reset.
* Norse: ``LIFBoxCell`` (current-free LIF) with ``dt * tau_mem_inv = 0.05``, input
  scaled by 20 so that v = 0.95 v + I, a ``reset_method`` that subtracts the
  (detached) spike; Python loop over steps. Norse has no arctan surrogate: its
  ``"tanh"`` one with alpha 2 (1 - tanh(2x)^2) has the same peak (1) and area (1).
* SpikingJelly: ``LIFNode(tau=20, decay_input=False, v_reset=None,
  detach_reset=True, ATan(alpha=2))`` in multi-step mode (``step_mode="m"``): each
  ``layer.Linear`` runs once on all T steps, the neuron loops over time inside.
* Norse and SpikingJelly reset in the step that fires (v = 0.95 v + I, then
  v -= S) and the loss sees v after that reset.

Peers that are not installed are skipped (``pip install -c constraints.txt -e ".[grad]"``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import sys
import time
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

BETA, THRESHOLD, ALPHA, LR, ADAM_BETAS = 0.95, 1.0, 2.0, 5e-4, (0.9, 0.999)
PACKAGES = {"snntorch": "snntorch", "norse": "norse", "spikingjelly": "spikingjelly"}


class _SnnTorchNet(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        import snntorch as snn
        self.fc1, self.lif1 = nn.Linear(784, hidden), snn.Leaky(beta=BETA)
        self.fc2, self.lif2 = nn.Linear(hidden, 10), snn.Leaky(beta=BETA)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mem1, mem2 = self.lif1.reset_mem(), self.lif2.reset_mem()
        spk_rec, mem_rec = [], []
        for t in range(x.shape[0]):
            spk1, mem1 = self.lif1(self.fc1(x[t]), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            spk_rec.append(spk2)
            mem_rec.append(mem2)
        return torch.stack(spk_rec), torch.stack(mem_rec)


def _detached_subtract(z: torch.Tensor, v: torch.Tensor, reset: torch.Tensor,
                       th: torch.Tensor) -> torch.Tensor:
    return v - z.detach() * th


class _NorseNet(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        import norse.torch as norse
        p = norse.LIFBoxParameters(tau_mem_inv=torch.as_tensor(1.0 - BETA), v_th=torch.as_tensor(THRESHOLD),
                                   method="tanh", alpha=torch.as_tensor(ALPHA),
                                   reset_method=_detached_subtract)
        self.scale = 1.0 / (1.0 - BETA)  # LIFBox integrates dt*tau_mem_inv*(I - v)
        self.fc1, self.lif1 = nn.Linear(784, hidden), norse.LIFBoxCell(p, dt=1.0)
        self.fc2, self.lif2 = nn.Linear(hidden, 10), norse.LIFBoxCell(p, dt=1.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s1 = s2 = None
        spk_rec, mem_rec = [], []
        for t in range(x.shape[0]):
            z1, s1 = self.lif1(self.fc1(x[t]) * self.scale, s1)
            z2, s2 = self.lif2(self.fc2(z1) * self.scale, s2)
            spk_rec.append(z2)
            mem_rec.append(s2.v)
        return torch.stack(spk_rec), torch.stack(mem_rec)


class _SpikingJellyNet(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        from spikingjelly.activation_based import functional, layer, neuron, surrogate

        def lif(**kw: Any) -> nn.Module:
            return neuron.LIFNode(tau=1.0 / (1.0 - BETA), decay_input=False, v_threshold=THRESHOLD,
                                  v_reset=None, surrogate_function=surrogate.ATan(alpha=ALPHA),
                                  detach_reset=True, step_mode="m", **kw)
        self.net = nn.Sequential(layer.Linear(784, hidden, step_mode="m"), lif(),
                                 layer.Linear(hidden, 10, step_mode="m"), lif(store_v_seq=True))
        self._reset = functional.reset_net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._reset(self.net)
        spk = self.net(x)
        return spk, self.net[3].v_seq


def _as_inputs(x: Any, y: Any, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(np.asarray(x)).reshape(len(x), -1)
    x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
    return x.to(device), torch.as_tensor(np.asarray(y), dtype=torch.long).to(device)


def _encode(x: torch.Tensor, steps: int, gen: torch.Generator) -> torch.Tensor:
    """Bernoulli rate code, time first: (steps, batch, 784), as snntorch.spikegen.rate."""
    return torch.bernoulli(x.unsqueeze(0).expand(steps, *x.shape), generator=gen)


def _run(peer: str, net_cls: Callable[[int], nn.Module], train_x: Any, train_y: Any, test_x: Any,
         test_y: Any, *, epochs: int, steps: int, batch: int, hidden: int, seed: int, device: str,
         limit: int | None, threads: int, progress: bool) -> dict[str, Any]:
    torch.set_num_threads(threads)
    xs, ys = _as_inputs(train_x, train_y, device)
    xt, yt = _as_inputs(test_x, test_y, device)
    torch.manual_seed(seed)
    model = net_cls(hidden).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=LR, betas=ADAM_BETAS)
    order_gen = torch.Generator().manual_seed(seed)
    spike_gen = torch.Generator(device).manual_seed(seed + 1)
    n_epoch = min(len(xs), limit) if limit else len(xs)
    n_batches = n_epoch // batch
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    model.train()
    sync()
    start = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(len(xs), generator=order_gen)[:n_batches * batch].to(device)
        for b in tqdm(range(n_batches), desc=f"{peer} epoch {epoch + 1}/{epochs}", unit="batch",
                      disable=not progress, file=sys.stderr):
            idx = order[b * batch:(b + 1) * batch]
            _, mem = model(_encode(xs[idx], steps, spike_gen))
            # sum over steps of the batch-mean cross-entropy (snnTorch tutorial 5)
            loss = F.cross_entropy(mem.reshape(-1, 10), ys[idx].repeat(steps), reduction="sum") / batch
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    sync()
    seconds = time.perf_counter() - start
    model.eval()
    test_gen = torch.Generator(device).manual_seed(seed + 2)
    correct = 0
    with torch.no_grad():
        for i in range(0, len(xt), 1000):
            spk, _ = model(_encode(xt[i:i + 1000], steps, test_gen))
            correct += int((spk.sum(0).argmax(1) == yt[i:i + 1000]).sum())
    samples = n_batches * batch * epochs
    return {"peer": peer, "version": importlib.metadata.version(PACKAGES[peer]),
            "train_samples": samples, "seconds": seconds,
            "samples_per_second": samples / seconds if seconds > 0 else float("nan"),
            "test_accuracy": correct / max(len(xt), 1), "epochs": epochs}


def train_snntorch(train_x: Any, train_y: Any, test_x: Any, test_y: Any, *, epochs: int, steps: int = 25,
                   batch: int = 128, hidden: int = 1000, seed: int = 0, device: str = "cpu",
                   limit: int | None = None, threads: int = 2, progress: bool = True) -> dict[str, Any]:
    """Train and test with snnTorch (``snn.Leaky``, per-step loop); see the module doc."""
    return _run("snntorch", _SnnTorchNet, train_x, train_y, test_x, test_y, epochs=epochs, steps=steps,
                batch=batch, hidden=hidden, seed=seed, device=device, limit=limit, threads=threads,
                progress=progress)


def train_norse(train_x: Any, train_y: Any, test_x: Any, test_y: Any, *, epochs: int, steps: int = 25,
                batch: int = 128, hidden: int = 1000, seed: int = 0, device: str = "cpu",
                limit: int | None = None, threads: int = 2, progress: bool = True) -> dict[str, Any]:
    """Train and test with Norse (``LIFBoxCell``, per-step loop); see the module doc."""
    return _run("norse", _NorseNet, train_x, train_y, test_x, test_y, epochs=epochs, steps=steps,
                batch=batch, hidden=hidden, seed=seed, device=device, limit=limit, threads=threads,
                progress=progress)


def train_spikingjelly(train_x: Any, train_y: Any, test_x: Any, test_y: Any, *, epochs: int,
                       steps: int = 25, batch: int = 128, hidden: int = 1000, seed: int = 0,
                       device: str = "cpu", limit: int | None = None, threads: int = 2,
                       progress: bool = True) -> dict[str, Any]:
    """Train and test with SpikingJelly (``LIFNode``, multi-step mode); see the module doc."""
    return _run("spikingjelly", _SpikingJellyNet, train_x, train_y, test_x, test_y, epochs=epochs,
                steps=steps, batch=batch, hidden=hidden, seed=seed, device=device, limit=limit,
                threads=threads, progress=progress)


_ALL = {"snntorch": train_snntorch, "norse": train_norse, "spikingjelly": train_spikingjelly}
#: the peers whose package is installed (found without importing it)
PEERS: dict[str, Callable[..., dict[str, Any]]] = {
    name: fn for name, fn in _ALL.items() if importlib.util.find_spec(PACKAGES[name]) is not None}


def peer_versions() -> dict[str, str]:
    """Installed version of each peer package, and of torch."""
    versions = {name: importlib.metadata.version(PACKAGES[name]) for name in PEERS}
    versions["torch"] = torch.__version__
    return versions


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated; installed: {','.join(PEERS)}")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None, help="training samples per epoch (default: all)")
    ap.add_argument("--test-limit", type=int, default=None, help="test samples (default: all 10,000)")
    ap.add_argument("--data", default=None, help="folder with the MNIST IDX files (or its parent)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    sys.path.insert(0, ROOT)
    from neurosim.datasets.mnist import load_mnist
    shared = [os.path.join(os.path.dirname(ROOT), "shared", "datasets")]
    train_x, train_y = load_mnist("train", args.data, also_look_in=shared)
    test_x, test_y = load_mnist("test", args.data, also_look_in=shared)
    test_x, test_y = test_x[:args.test_limit], test_y[:args.test_limit]
    results = []
    print("| peer | version | train samples | seconds | samples/s | test accuracy |")
    print("|---|---|---:|---:|---:|---:|")
    for name in [p for p in args.peers.split(",") if p]:
        if name not in PEERS:
            print(f"| {name} | {'not installed' if name in _ALL else 'unknown peer'} | | | | |")
            continue
        r = PEERS[name](train_x, train_y, test_x, test_y, epochs=args.epochs, limit=args.limit,
                        seed=args.seed, device=args.device, threads=args.threads,
                        progress=not args.no_progress)
        results.append(r)
        print(f"| {r['peer']} | {r['version']} | {r['train_samples']} | {r['seconds']:.1f} | "
              f"{r['samples_per_second']:.1f} | {100 * r['test_accuracy']:.2f}% |", flush=True)
    print(json.dumps({"versions": peer_versions(), "threads": args.threads, "device": args.device,
                      "test_samples": len(test_y), "results": results}))


if __name__ == "__main__":
    main()
