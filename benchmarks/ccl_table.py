"""The CCL MLP table: CCL, BP, FA and DFA on MNIST and Fashion-MNIST, mean +- std over seeds.

    python benchmarks/ccl_table.py                         # 3 seeds x 2 data sets x 4 methods, 100 epochs
    python benchmarks/ccl_table.py --epochs 5 --seeds 1    # a quick look

Runs ``examples/mnist_ccl.py`` once per (method, data set, seed), one after another, with
--threads torch threads each, appends every run's JSON line to --out, and prints a
table with the paper's Table 1 figures beside ours. Runs already in --out (same
method, data set, seed and epochs) are not repeated, so an interrupted table resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "examples", "mnist_ccl.py")
#: Kao & Hariharan 2024, Table 1 (test accuracy %, 5 seeds)
PAPER = {("ccl", "mnist"): "98.13 +- 0.10", ("ccl", "fashion"): "88.58 +- 0.29",
         ("bp", "mnist"): "98.19 +- 0.10", ("bp", "fashion"): "89.58 +- 0.25",
         ("fa", "mnist"): "96.96 +- 0.05", ("fa", "fashion"): "87.38 +- 0.12",
         ("dfa", "mnist"): "97.27 +- 0.06", ("dfa", "fashion"): "87.35 +- 0.99"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3, help="seeds 2023, 2024, ... (default 3)")
    parser.add_argument("--methods", default="ccl,bp,fa,dfa")
    parser.add_argument("--datasets", default="mnist,fashion")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="runs/ccl_table.jsonl")
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    if args.epochs < 1 or args.seeds < 1 or args.threads < 1:
        parser.error("--epochs, --seeds and --threads must be positive")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    done = []
    if os.path.exists(args.out):
        with open(args.out) as f:
            done = [json.loads(line) for line in f if line.strip()]
    key = lambda r: (r["method"], r["dataset"], r["seed"], r["epochs"])  # noqa: E731
    have = {key(r) for r in done}
    for method in args.methods.split(","):
        for dataset in args.datasets.split(","):
            for seed in range(2023, 2023 + args.seeds):
                if (method, dataset, seed, args.epochs) in have:
                    continue
                log = os.path.join(os.path.dirname(os.path.abspath(args.out)),
                                   f"ccl-{method}-{dataset}-{seed}-{args.epochs}ep.h5")
                cmd = [sys.executable, EXAMPLE, "--method", method, "--dataset", dataset, "--seed", str(seed),
                       "--epochs", str(args.epochs), "--threads", str(args.threads), "--no-progress",
                       "--log", log] + (["--data", args.data] if args.data else [])
                if os.path.exists(log):
                    os.unlink(log)  # an earlier, unfinished run of this cell
                print(" ".join(cmd[1:]), file=sys.stderr, flush=True)
                run = subprocess.run(cmd, capture_output=True, text=True)
                if run.returncode != 0:
                    lines = run.stderr.strip().splitlines()
                    print(lines[-1] if lines else f"exit status {run.returncode}", file=sys.stderr)
                    return 1
                record = json.loads(run.stdout.strip().splitlines()[-1])
                with open(args.out, "a") as f:
                    f.write(json.dumps(record) + "\n")
                done.append(record)
    print(f"| method | data set | test accuracy % (mean +- std, n) | s/epoch | paper |")
    print("|---|---|---|---|---|")
    for method in args.methods.split(","):
        for dataset in args.datasets.split(","):
            rows = [r for r in done if r["method"] == method and r["dataset"] == dataset
                    and r["epochs"] == args.epochs]
            if not rows:
                continue
            acc = [100 * r["test_accuracy"] for r in rows]
            std = statistics.stdev(acc) if len(acc) > 1 else 0.0
            spe = statistics.mean(r["seconds_per_epoch"] for r in rows)
            print(f"| {method} | {dataset} | {statistics.mean(acc):.2f} +- {std:.2f} ({len(acc)}) | "
                  f"{spe:.2f} | {PAPER.get((method, dataset), '-')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
