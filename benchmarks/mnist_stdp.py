"""Diehl & Cook (2015) STDP on MNIST: neurosim beside BindsNET, on the same budget.

    python benchmarks/mnist_stdp.py                         # 100 neurons, 200 train, 100 test
    python benchmarks/mnist_stdp.py --train 1000 --test 500 --tools neurosim,bindsnet
    python benchmarks/mnist_stdp.py --bindsnet-python /path/to/bindsnet-venv/bin/python

What is compared: the unsupervised network of Diehl & Cook (2015) (784 Poisson
inputs, N excitatory neurons with adaptive thresholds and STDP on their inputs,
N inhibitory neurons for lateral inhibition) as each tool ships it:
``neurosim.networks.diehl_cook.DiehlCook2015`` and ``bindsnet.models.DiehlAndCook2015``.
Both see the same first --train training and --test test images, each shown for
--time ms (350) at step --dt (0.5 ms, the paper's), with the network state reset
between samples. Each tool trains, then with learning off responds to the
training images again to assign each neuron a label, then classifies the test
images by the "all" and "proportion" schemes, each with its own evaluation code
(``DiehlCook2015.assign_labels``/``predict``; ``bindsnet.evaluation``). The headline is
training throughput (samples/s over the timed training loop: encoding, simulation,
STDP, reading the spike counts, reset); the table also gives build and
compilation time (neurosim compiles before the clock starts), test throughput,
accuracy, peak memory, the wall time of the whole process and how many times
faster neurosim (batch --batch) trains than each row.

Tools (--tools): ``neurosim`` (numba backend, --batch samples side by side, its fast
path), ``neurosim-b1`` (the same one sample at a time), ``bindsnet`` (one sample per
``network.run``, as in BindsNET's ``eth_mnist.py``) and ``bindsnet-batch`` (--batch samples per
``network.run``, as in its ``batch_eth_mnist.py``). Every tool runs in its own
subprocess, with --threads torch threads (default 1: neurosim's DiehlCook2015 runs
its numba kernels on one core, and on a busy 2-core machine BindsNET was many times
slower with 2 threads than with 1). BindsNET's evaluation passes run --batch
samples at a time (learning off, so samples are independent) to keep the run short.

Running BindsNET: it runs in whichever Python --bindsnet-python names (default:
$BINDSNET_PYTHON, else this Python if it can import bindsnet, else
``../bindsnet-venv/bin/python`` beside the repository), through
``benchmarks/peers/bindsnet_mnist.py``; the images go to it in a temporary .npz file.
Without one the table says ``bindsnet: not installed (reason)``. bindsnet 0.3.4
requires torch >= 2.14 and pip resolves ``bindsnet`` under this project's
constraints (torch 2.13) to 0.2.7, which fails on torch 2 (``torch._six``); what
works is a separate venv::

    python3 -m venv ../bindsnet-venv
    ../bindsnet-venv/bin/pip install -c constraints.txt -e .
    ../bindsnet-venv/bin/pip install -c constraints.txt --no-deps bindsnet==0.3.4
    ../bindsnet-venv/bin/pip install -c constraints.txt "gymnasium[atari]>=1,<2" "ale-py<1" \\
        "opencv-python>=4.14,<6" "pandas>=3,<4" "scikit-image<1" "scikit-learn>=1,<2" \\
        "tensorboardX>=2.6.4,<3"

(torchvision is left out: PyPI's Linux wheels are CUDA builds that cannot import
beside CPU torch; the peer script puts a stand-in in its place, see there.)

Caveats: the two models are not the same equations. neurosim's neurons are
conductance-based with the paper's parameters, inputs of pixel/4 Hz (63.75 Hz at
255) and the paper's STDP rule; BindsNET's are current-based (voltage jumps; exc
22.5, inh 120 as in its batch example), inputs of pixel/255 x --bindsnet-intensity Hz
(128, its examples' default), pair-based PostPre STDP, reset voltage -60 mV, and
at most one excitatory spike per step. Neither simulates the paper's 150 ms rest
between samples: both reset the state instead (neurosim's example does rest), and
neither shows a sample again when it drew fewer than 5 spikes (neurosim's example
does, as the paper's code: that costs extra presentations late in training, most
at large batch, where one quiet row makes the whole batch run again).
Batched training (neurosim, bindsnet-batch) learns from --batch samples at once,
which is not the same learning as one at a time. With a few hundred training
samples accuracies are far below the paper's and vary with the seed; they are a
sanity check, not a result. Timings on a shared machine vary from run to run.
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from neurosim.datasets import DatasetError, load_mnist

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_DATA = os.path.join(ROOT, "..", "shared", "datasets", "mnist")
DEFAULT_BINDSNET_VENV = os.path.join(ROOT, "..", "bindsnet-venv", "bin", "python")

TOOLS = ("neurosim", "neurosim-b1", "bindsnet", "bindsnet-batch")
LABELS = {"neurosim": "neurosim numba", "neurosim-b1": "neurosim numba",
          "bindsnet": "bindsnet", "bindsnet-batch": "bindsnet (batched)"}
NEUROSIM_MAX_RATE_HZ = 63.75  # neurosim.datasets.present's default: pixel / 4


# -- the neurosim worker (runs in a subprocess: python mnist_stdp.py --worker neurosim) ----
def run_neurosim(npz: str, neurons: int, batch: int, dt: float, time_ms: float, seed: int,
                 threads: int) -> dict:
    """Train, assign labels, test; the figures as a dict (see the peer script's JSON)."""
    import torch

    torch.set_num_threads(threads)
    import neurosim
    from neurosim.networks.diehl_cook import DiehlCook2015

    data = np.load(npz)
    x_train, y_train, x_test, y_test = (data[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    t0 = time.perf_counter()
    # the same work per sample as BindsNET's examples: no silent rest (the state is reset
    # between samples instead) and no re-presentation of samples that drew < 5 spikes
    dc = DiehlCook2015(neurons, batch=batch, dt=dt, seed=seed, backend="numba",
                       duration_ms=time_ms, rest_ms=0.0, min_spikes=0)
    build_seconds = time.perf_counter() - t0
    compile_seconds = dc.net.compile()  # kept out of the training time
    t0 = time.perf_counter()
    train_counts = dc.train(x_train, progress=False)
    train_seconds = time.perf_counter() - t0
    dc.assign_labels(dc.respond(x_train, progress=False), y_train)
    t0 = time.perf_counter()
    counts = dc.respond(x_test, progress=False)
    test_seconds = time.perf_counter() - t0
    out = {
        "tool": "neurosim", "version": neurosim.__version__, "torch": torch.__version__,
        "threads": torch.get_num_threads(), "batch": batch, "eval_batch": batch, "dt": dt,
        "max_rate_hz": NEUROSIM_MAX_RATE_HZ, "train_samples": len(x_train),
        "test_samples": len(x_test), "build_seconds": build_seconds,
        "compile_seconds": compile_seconds, "train_seconds": train_seconds,
        "train_samples_per_second": len(x_train) / train_seconds,
        "test_samples_per_second": len(x_test) / test_seconds,
        "accuracy_all": float((dc.predict(counts, "all") == y_test).mean()),
        "accuracy_proportion": float((dc.predict(counts, "proportion") == y_test).mean()),
        "train_spikes_per_sample": float(train_counts.sum(1).mean()),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


# -- the driver ---------------------------------------------------------------------------
def write_samples(data_dir: str | None, n_train: int, n_test: int, path: str) -> None:
    """The first n_train / n_test MNIST images and labels, in one .npz for every tool."""
    x_train, y_train = load_mnist("train", data_dir)
    x_test, y_test = load_mnist("test", data_dir)
    if not (0 < n_train <= len(x_train) and 0 < n_test <= len(x_test)):
        raise ValueError(f"--train must be in 1..{len(x_train)} and --test in 1..{len(x_test)}")
    np.savez(path, x_train=x_train[:n_train], y_train=y_train[:n_train],
             x_test=x_test[:n_test], y_test=y_test[:n_test])


def find_bindsnet_python(given: str | None) -> tuple[str | None, str]:
    """The Python to run BindsNET with, or None and why there is none."""
    if given:
        return (given, "") if os.path.exists(given) else (None, f"--bindsnet-python {given} not found")
    if os.environ.get("BINDSNET_PYTHON"):
        return os.environ["BINDSNET_PYTHON"], ""
    if importlib.util.find_spec("bindsnet") is not None:
        return sys.executable, ""
    if os.path.exists(DEFAULT_BINDSNET_VENV):
        return os.path.normpath(DEFAULT_BINDSNET_VENV), ""
    return None, "not importable here and no ../bindsnet-venv; see --bindsnet-python"


def command(tool: str, args: argparse.Namespace, npz: str, bindsnet_python: str | None) -> list[str] | None:
    common = ["--neurons", str(args.neurons), "--dt", str(args.dt), "--seed", str(args.seed),
              "--threads", str(args.threads)]
    if tool.startswith("neurosim"):
        batch = 1 if tool == "neurosim-b1" else args.batch
        return [sys.executable, os.path.abspath(__file__), "--worker", "neurosim", "--npz", npz,
                "--batch", str(batch), "--time", str(args.time)] + common
    if bindsnet_python is None:
        return None
    batch = args.batch if tool == "bindsnet-batch" else 1
    return [bindsnet_python, os.path.join(HERE, "peers", "bindsnet_mnist.py"), "--data", npz,
            "--batch", str(batch), "--eval-batch", str(args.batch), "--time", str(args.time),
            "--intensity", str(args.bindsnet_intensity)] + common


def run_tool(tool: str, cmd: list[str], threads: int, timeout: float) -> dict:
    """Run one tool's subprocess; its last stdout line (JSON), plus wall time, or an error."""
    # the OpenMP pool of torch (and of any BLAS) gets the same number of threads
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        if last.startswith(("ModuleNotFoundError", "ImportError")):  # bindsnet or a dependency
            return {"error": f"not installed ({last[:160]})", "not_installed": True}
        return {"error": last[:160]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_seconds"] = round(wall, 2)
    return out


def ratios(results: dict[str, dict]) -> dict[str, float | None]:
    """Training throughput of neurosim over BindsNET's: headline (neurosim's batch vs
    BindsNET's usual one sample at a time) and at equal batch."""
    def rate(tool: str) -> float | None:
        r = results.get(tool)
        return r["train_samples_per_second"] if r and "error" not in r else None

    pairs = {"neurosim/bindsnet": ("neurosim", "bindsnet"),
             "neurosim-b1/bindsnet": ("neurosim-b1", "bindsnet"),
             "neurosim/bindsnet-batch": ("neurosim", "bindsnet-batch")}
    out = {}
    for key, (a, b) in pairs.items():
        ra, rb = rate(a), rate(b)
        out[key] = round(ra / rb, 2) if ra and rb else None
    return out


def print_table(args: argparse.Namespace, results: dict[str, dict], ratio: dict) -> None:
    print(f"\nDiehl & Cook (2015) STDP on MNIST: {args.neurons} excitatory neurons, "
          f"{args.train} training and {args.test} test images, {args.time:g} ms each, "
          f"dt {args.dt:g} ms, seed {args.seed}, {args.threads} torch thread(s), "
          f"{os.cpu_count()} CPU cores\n")
    head = (f"{'tool':<20} {'batch':>5} {'eval b':>6} {'thr':>3} {'in Hz':>6} {'build s':>7} "
            f"{'compile s':>9} {'train s':>8} {'train/s':>8} {'test/s':>8} {'acc all':>7} "
            f"{'acc prop':>8} {'spk/smp':>7} {'RSS MB':>6} {'wall s':>7} {'neurosim x':>10}")
    print(head)
    print("-" * len(head))
    ref = results.get("neurosim", {}).get("train_samples_per_second")
    for tool, r in results.items():
        if "error" in r:
            print(f"{LABELS[tool]}: {r['error']}" if r.get("not_installed")
                  else f"{LABELS[tool]:<20} failed: {r['error']}")
            continue
        speed = r["train_samples_per_second"]
        x = f"{ref / speed:.2f}" if ref else "-"
        print(f"{LABELS[tool]:<20} {r['batch']:>5} {r['eval_batch']:>6} {r['threads']:>3} "
              f"{r['max_rate_hz']:>6g} {r['build_seconds']:>7.2f} {r['compile_seconds']:>9.2f} "
              f"{r['train_seconds']:>8.2f} {speed:>8.2f} {r['test_samples_per_second']:>8.2f} "
              f"{100 * r['accuracy_all']:>6.1f}% {100 * r['accuracy_proportion']:>7.1f}% "
              f"{r['train_spikes_per_sample']:>7.1f} {r['peak_rss_mb']:>6.0f} "
              f"{r['wall_seconds']:>7.1f} {x:>10}")
    versions = [f"{r['tool']} {r['version']} (torch {r['torch']})" for r in results.values()
                if "version" in r]
    tv = next((r["torchvision"] for r in results.values() if "torchvision" in r), None)
    print(f"\n{', '.join(dict.fromkeys(versions))}" + (f"; bindsnet's torchvision: {tv}" if tv else ""))
    print("training throughput, neurosim / bindsnet: " + ", ".join(
        f"{k} = {'-' if v is None else f'{v:.2f}'}" for k, v in ratio.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--neurons", type=int, default=100, help="excitatory neurons (default 100)")
    parser.add_argument("--train", type=int, default=200, help="training images (default 200)")
    parser.add_argument("--test", type=int, default=100, help="test images (default 100)")
    parser.add_argument("--batch", type=int, default=16,
                        help="samples side by side: neurosim, bindsnet-batch, and evaluation")
    parser.add_argument("--time", type=float, default=350.0, help="presentation per sample, ms")
    parser.add_argument("--dt", type=float, default=0.5, help="time step, ms (both tools)")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset of: " + ", ".join(TOOLS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per tool (default 1)")
    parser.add_argument("--data", default=None,
                        help="directory with the MNIST IDX files (default: ../shared/datasets/mnist "
                             "beside the repository if there, else neurosim's own search)")
    parser.add_argument("--bindsnet-python", default=None,
                        help="Python with bindsnet installed (default: $BINDSNET_PYTHON, this one, "
                             "or ../bindsnet-venv/bin/python)")
    parser.add_argument("--bindsnet-intensity", type=float, default=128.0,
                        help="BindsNET input rate of a 255 pixel, Hz (its examples' 128)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per tool run")
    parser.add_argument("--worker", choices=["neurosim"], help=argparse.SUPPRESS)
    parser.add_argument("--npz", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_neurosim(args.npz, args.neurons, args.batch, args.dt, args.time,
                                      args.seed, args.threads)))
        return 0
    tools = args.tools.split(",")
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        parser.error(f"unknown tool(s) {', '.join(unknown)}; choose from {', '.join(TOOLS)}")
    data_dir = args.data or (DEFAULT_DATA if os.path.isdir(DEFAULT_DATA) else None)
    bindsnet_python, why = find_bindsnet_python(args.bindsnet_python)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="mnist-stdp-") as tmp:
        npz = os.path.join(tmp, "samples.npz")
        try:
            write_samples(data_dir, args.train, args.test, npz)
        except (ValueError, OSError, DatasetError) as exc:
            print(f"mnist_stdp.py: error: {exc}", file=sys.stderr)
            return 2
        for tool in tools:
            cmd = command(tool, args, npz, bindsnet_python)
            if cmd is None:
                results[tool] = {"error": f"not installed ({why})", "not_installed": True}
            else:
                results[tool] = run_tool(tool, cmd, args.threads, args.timeout)
            print(f"# {tool}: {json.dumps(results[tool])}", file=sys.stderr)
    ratio = ratios(results)
    print_table(args, results, ratio)
    print(json.dumps({"benchmark": "mnist_stdp", "neurons": args.neurons, "train": args.train,
                      "test": args.test, "time_ms": args.time, "dt": args.dt, "seed": args.seed,
                      "threads": args.threads, "cpu_count": os.cpu_count(),
                      "throughput_ratio": ratio, "tools": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
