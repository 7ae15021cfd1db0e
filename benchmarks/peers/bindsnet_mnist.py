"""BindsNET's Diehl & Cook (2015) model on MNIST, for ``benchmarks/mnist_stdp.py``.

    /path/to/bindsnet-venv/bin/python benchmarks/peers/bindsnet_mnist.py --data samples.npz

Reads the images and labels that ``mnist_stdp.py`` wrote to an ``.npz`` file (so that
both tools see the same samples, and this script needs neither neurosim nor
BindsNET's torchvision-based data sets), then follows BindsNET's own
``examples/mnist/batch_eth_mnist.py`` / ``eth_mnist.py``: ``DiehlAndCook2015``
(exc 22.5, inh 120, norm 78.4, default PostPre STDP), Poisson inputs of
``pixel / 255 * intensity`` Hz (``PoissonEncoder``), a spike monitor on the
excitatory layer ``Ae``, ``network.run`` per sample (or per batch) followed by
``network.reset_state_variables()``. Then, with learning off
(``network.train(False)``), the training images are shown again to assign labels
(``bindsnet.evaluation.assign_labels``) and the test images are classified
(``all_activity``, ``proportion_weighting``). Only the training loop is timed for
the headline figure. The last line printed is one JSON object.

torchvision: bindsnet imports it at start-up, but the torchvision wheels on PyPI
for Linux are CUDA builds that fail to import beside a CPU-only torch
(``operator torchvision::nms does not exist``). Nothing used here needs it, so
when it cannot be imported a stand-in module is put in its place (the JSON says
so in ``torchvision``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import resource
import sys
import time
import types

import numpy as np
import torch


def _stub_torchvision(reason: str) -> str:
    """Put an empty ``torchvision`` (with the submodules bindsnet imports) in sys.modules.

    bindsnet builds its data set wrappers from ``torchvision.datasets`` classes at
    import time, so every attribute of the stand-in is a fresh empty class.
    """
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]  # drop what a failed import left half-initialised
    root = types.ModuleType("torchvision")
    sys.modules["torchvision"] = root
    for sub in ("datasets", "transforms", "utils"):
        mod = types.ModuleType(f"torchvision.{sub}")
        mod.__getattr__ = lambda attr: type(attr, (), {})  # PEP 562 module __getattr__
        sys.modules[mod.__name__] = mod
        setattr(root, sub, mod)
    return f"stand-in ({reason})"


def import_bindsnet() -> str:
    """Import bindsnet; returns how torchvision was provided."""
    try:
        import torchvision

        tv = torchvision.__version__
    except Exception as exc:  # CUDA wheel beside CPU torch raises RuntimeError or OSError
        tv = _stub_torchvision(f"{type(exc).__name__}: {str(exc)[:80]}")
    importlib.import_module("bindsnet")  # the first import is the one that needs torchvision

    return tv


def build(neurons: int, dt: float, time_ms: float, exc: float, inh: float) -> tuple[object, object]:
    """The network (as in BindsNET's examples) and a spike monitor on its excitatory layer."""
    from bindsnet.models import DiehlAndCook2015
    from bindsnet.network.monitors import Monitor

    network = DiehlAndCook2015(n_inpt=784, n_neurons=neurons, exc=exc, inh=inh, dt=dt, norm=78.4,
                               nu=(1e-4, 1e-2), theta_plus=0.05, inpt_shape=(1, 28, 28))
    monitor = Monitor(network.layers["Ae"], state_vars=["s"], time=int(time_ms / dt))
    network.add_monitor(monitor, name="Ae_spikes")
    return network, monitor


def to_rates(images: np.ndarray, intensity: float) -> torch.Tensor:
    """uint8 (n, 28, 28) -> rates in Hz (n, 1, 28, 28): as BindsNET's examples,
    ``ToTensor()`` (0..1) times the intensity."""
    return torch.from_numpy(images).float().div(255.0).mul(intensity).unsqueeze(1)


def present(network: object, monitor: object, encoder: object, images: torch.Tensor,
            time_ms: float, batch: int) -> torch.Tensor:
    """Show ``images`` (rates in Hz, shape (n, 1, 28, 28)) ``batch`` at a time;
    returns the excitatory spike counts, shape (n, neurons)."""
    counts = []
    for start in range(0, len(images), batch):
        # PoissonEncoder encodes any shape: (b, 1, 28, 28) -> (time, b, 1, 28, 28),
        # the [time, batch, *shape] layout that network.run expects
        spikes = encoder(images[start:start + batch])
        network.run(inputs={"X": spikes}, time=time_ms)
        counts.append(monitor.get("s").sum(0).float())  # (time, b, n) -> (b, n)
        network.reset_state_variables()  # BindsNET's stand-in for the paper's 150 ms rest
    return torch.cat(counts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help=".npz with x_train, y_train, x_test, y_test")
    parser.add_argument("--neurons", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1, help="samples per network.run while training")
    parser.add_argument("--eval-batch", type=int, default=16,
                        help="samples per network.run with learning off (label assignment, test)")
    parser.add_argument("--dt", type=float, default=0.5)
    parser.add_argument("--time", type=float, default=350.0, help="presentation, ms")
    parser.add_argument("--intensity", type=float, default=128.0, help="rate of a 255 pixel, Hz")
    parser.add_argument("--exc", type=float, default=22.5)
    parser.add_argument("--inh", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # initial weights, Poisson inputs, one-spike choices

    tv = import_bindsnet()
    from bindsnet.encoding import PoissonEncoder
    from bindsnet.evaluation import all_activity, assign_labels, proportion_weighting

    data = np.load(args.data)
    x_train, x_test = (to_rates(data[k], args.intensity) for k in ("x_train", "x_test"))
    y_train, y_test = torch.from_numpy(data["y_train"]).long(), torch.from_numpy(data["y_test"]).long()

    t0 = time.perf_counter()
    network, monitor = build(args.neurons, args.dt, args.time, args.exc, args.inh)
    build_seconds = time.perf_counter() - t0
    encoder = PoissonEncoder(time=args.time, dt=args.dt)

    network.train(True)
    t0 = time.perf_counter()
    train_counts = present(network, monitor, encoder, x_train, args.time, args.batch)
    train_seconds = time.perf_counter() - t0

    # learning off: no STDP, no threshold adaptation (theta is frozen, as in the paper's test)
    network.train(False)
    assign_counts = present(network, monitor, encoder, x_train, args.time, args.eval_batch)
    t0 = time.perf_counter()
    test_counts = present(network, monitor, encoder, x_test, args.time, args.eval_batch)
    test_seconds = time.perf_counter() - t0
    # the evaluation functions take (samples, time, neurons) and first sum over time:
    # counts with a time axis of one give the same result without keeping every step
    assignments, proportions, _ = assign_labels(assign_counts.unsqueeze(1), y_train, 10)
    pred_all = all_activity(test_counts.unsqueeze(1), assignments, 10)
    pred_prop = proportion_weighting(test_counts.unsqueeze(1), assignments, proportions, 10)

    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in {
        "tool": "bindsnet", "version": importlib.metadata.version("bindsnet"),
        "torch": torch.__version__, "torchvision": tv, "threads": torch.get_num_threads(),
        "batch": args.batch, "eval_batch": args.eval_batch, "dt": args.dt,
        "max_rate_hz": args.intensity, "train_samples": len(x_train), "test_samples": len(x_test),
        "build_seconds": build_seconds, "compile_seconds": 0.0, "train_seconds": train_seconds,
        "train_samples_per_second": len(x_train) / train_seconds,
        "test_samples_per_second": len(x_test) / test_seconds,
        # an abstention (-1: no assigned neuron fired) counts as wrong
        "accuracy_all": (pred_all == y_test).sum().item() / len(y_test),
        "accuracy_proportion": (pred_prop == y_test).sum().item() / len(y_test),
        "train_spikes_per_sample": float(train_counts.sum(1).mean()),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
