"""Brain modes, not brains: one frozen MLP, a rotated-MNIST mode learned as per-neuron gates.

    python examples/mnist_modes.py                 # graded ReLU MLP, about a minute
    python examples/mnist_modes.py --spiking       # the same on spiking (snnTorch Leaky) layers

The protocol of TauGate (Ghasemlou 2026, "Dopamine: Brain Modes, Not Brains"; see
shared/research/algorithms.md section 5):

1. pretrain a 784-256-256-10 MLP on a 50/50 mixture of MNIST and MNIST rotated by 45
   degrees (each training image is shown upright or rotated, by a seeded coin), then
   freeze its weights (``--foundation upright`` pretrains on upright images only);
2. learn a *mode* for the rotated task: every hidden neuron gets a gain and a threshold
   offset (2 parameters per neuron), trained by gradient on rotated images with a
   smooth gate (``r * sigmoid((r - offset) / T)``, T annealed from 0.5 to 0.05), then
   hardened (``r`` where ``r > offset``, else 0) for inference;
3. report rotated and upright test accuracy of the frozen network, the soft- and
   hard-gated rotated mode, and LoRA (rank ``--rank`` adapters on both hidden layers,
   trained the same way) as a reference with its parameter count; the fraction of
   hidden units active in the rotated mode;
4. switch modes at run time, upright -> rotated -> upright, without touching a weight,
   and show each accuracy recovered exactly.

With ``--spiking`` the hidden layers are snnTorch-style leaky integrate-and-fire neurons
(the image is a constant input for ``--steps`` steps; the readout averages an identity
layer over the steps): the gain scales each neuron's input and the offset raises its
threshold; the gradient reaches the offset through the surrogate spike derivative. A
spike is already a hard gate, so there the soft and hard figures are the same network.

Everything runs on the engine (neurosim.networks.gated_mlp.GatedMLP, gated populations
of neurosim.gating), trained through Network.unroll. The log (HDF5, ``--log``) holds the
configuration, the training loss of every epoch of every phase, the frozen weights, both
modes and the LoRA adapters, and the results; the last line printed is JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time

from neurosim.cli_args import add_training_run_flags, log_path, positive_float, positive_int, training_run_error

PHASES = ("pretraining", "rotated mode", "LoRA")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=positive_int, default=2, help="epochs of mode (and LoRA) training")
    parser.add_argument("--pretrain-epochs", type=positive_int, default=2, help="epochs of pretraining")
    parser.add_argument("--foundation", default="mixture", choices=["mixture", "upright"],
                        help="what the frozen network is pretrained on (default: the 50/50 mixture)")
    parser.add_argument("--hidden", type=positive_int, default=256, help="width of both hidden layers")
    parser.add_argument("--batch", type=positive_int, default=128)
    parser.add_argument("--gate-lr", type=positive_float, default=0.01, help="Adam learning rate of the gates")
    parser.add_argument("--lora-lr", type=positive_float, default=0.001, help="Adam learning rate of LoRA")
    parser.add_argument("--rank", type=positive_int, default=4, help="LoRA rank")
    parser.add_argument("--spiking", action="store_true", help="spiking hidden layers")
    parser.add_argument("--steps", type=positive_int, default=8, help="time steps per image (--spiking)")
    parser.add_argument("--train", type=positive_int, default=60000, help="training images used")
    parser.add_argument("--seed", type=int, default=0)
    add_training_run_flags(parser, "modes")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    t_start = time.perf_counter()
    print("[starting: importing torch and neurosim]", file=sys.stderr, flush=True)
    import numpy as np
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    from neurosim.datasets import DatasetError, load_mnist
    from neurosim.datasets.transforms import rotate
    from neurosim.networks.gated_mlp import GatedMLP
    from neurosim.recording.training_log import TrainingLog

    progress = not args.no_progress and None
    beside_clone = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                 "..", "shared", "datasets"))
    log, training_log = args.log, None
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"--device {args.device}: torch sees no CUDA device here; use --device cpu")
        log = log_path(log, "modes")
        torch.manual_seed(args.seed)
        images, labels = load_mnist("train", args.data, also_look_in=[beside_clone])
        test_images, test_labels = load_mnist("test", args.data, also_look_in=[beside_clone])
        images, labels = images[:args.train], labels[:args.train]
        if len(images) < args.batch:
            raise ValueError(f"--train {args.train} leaves fewer images than --batch {args.batch}")
        dev = torch.device(args.device)

        def flat(x):
            return (torch.as_tensor(x).float() / 255.0).flatten(1).to(dev)

        upright, rotated = flat(images), (rotate(images, 45.0) / 255.0).flatten(1).to(dev)
        y = torch.as_tensor(labels).long().to(dev)
        test_upright, test_rotated = flat(test_images), (rotate(test_images, 45.0) / 255.0).flatten(1).to(dev)
        y_test = torch.as_tensor(test_labels).long().to(dev)
        sizes = (784, args.hidden, args.hidden, 10)
        model = GatedMLP(sizes, batch=args.batch, spiking=args.spiking, steps=args.steps, seed=args.seed,
                         device=args.device)
        attrs = {"example": "mnist_modes", "spiking": args.spiking, "foundation": args.foundation,
                 "sizes": list(sizes), "batch": args.batch, "epochs": args.epochs,
                 "pretrain_epochs": args.pretrain_epochs, "gate_lr": args.gate_lr, "lora_lr": args.lora_lr,
                 "rank": args.rank, "steps": args.steps if args.spiking else 1, "seed": args.seed,
                 "train_samples": len(upright), "created_at": datetime.datetime.now().isoformat(),
                 "command": " ".join([os.path.basename(sys.argv[0])] + (argv if argv is not None else sys.argv[1:]))}
        arrays = {f"W{l + 1}": ((a, b), "f4") for l, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))}
        for pop in ("h1", "h2"):
            for mode in ("upright", "rotated"):
                for what in ("gain", "offset"):
                    arrays[f"{pop}.{mode}.{what}"] = ((args.hidden,), "f4")
        for l, (a, b) in enumerate(zip(sizes[:2], sizes[1:3]), start=1):
            arrays[f"lora.A{l}"] = ((a, args.rank), "f4")
            arrays[f"lora.B{l}"] = ((args.rank, b), "f4")
        results = ["frozen_rotated", "soft_rotated", "hard_rotated", "lora_rotated", "upright_frozen",
                   "upright_after_switch", "rotated_after_switch", "lora_upright", "active_fraction",
                   "seconds"]
        training_log = TrainingLog(log, attrs, ["phase", "epoch", "train_loss", "seconds"], arrays, results)
        gen = torch.Generator().manual_seed(args.seed)

        def train(net, params, lr, epochs, phase, data, on_epoch_start=None):
            opt = torch.optim.Adam(params, lr=lr)
            for epoch in range(1, epochs + 1):
                t0 = time.perf_counter()
                if on_epoch_start is not None:
                    on_epoch_start(epoch)
                order = torch.randperm(len(y), generator=gen)
                losses = []
                bar = tqdm(range(0, len(order), args.batch), desc=f"{PHASES[phase]}: epoch {epoch}/{epochs}",
                           unit="batch", disable=progress is False, leave=False)
                for lo in bar:
                    idx = order[lo:lo + args.batch]
                    loss = F.cross_entropy(net.logits(data(idx)), y[idx])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    losses.append(loss.item())
                bar.close()
                record = {"phase": phase, "epoch": epoch, "train_loss": float(np.mean(losses)),
                          "seconds": time.perf_counter() - t0}
                training_log.add_epoch(record)
                print(f"{PHASES[phase]}, epoch {epoch}: loss {record['train_loss']:.4f} "
                      f"({record['seconds']:.1f} s)", file=sys.stderr, flush=True)

        # 1. the foundation, then frozen
        if args.foundation == "mixture":
            def mixture(idx):  # a seeded coin per image and epoch: upright or rotated
                coin = torch.rand(len(idx), generator=gen).to(dev) < 0.5
                return torch.where(coin[:, None], rotated[idx], upright[idx])
            pretrain_data = mixture
        else:
            pretrain_data = upright.__getitem__
        train(model, model.weight_parameters(), 1e-3, args.pretrain_epochs, 0, pretrain_data)
        model.freeze_weights()
        weights_before = [w.copy() for w in model.weights()]
        frozen_rotated = model.accuracy(test_rotated, y_test)
        upright_frozen = model.accuracy(test_upright, y_test)

        # 2. the rotated mode: gates trained on rotated images, smooth then hard
        gates = model.gate_parameters()
        # counted from what the optimiser is handed, not from the design
        n_hidden = sum(pop.n for pop in model.hidden)
        gate_parameters = sum(p.numel() for p in gates)
        soft = not args.spiking
        t_first, t_last = 0.5, 0.05

        def temperature(epoch):
            if soft:
                frac = (epoch - 1) / max(1, args.epochs - 1)
                for pop in model.hidden:
                    pop.gate.activity_gate = "soft"
                    pop.gate.temperature = t_first * (t_last / t_first) ** frac

        train(model, gates, args.gate_lr, args.epochs, 1, rotated.__getitem__, temperature)
        soft_rotated = model.accuracy(test_rotated, y_test)
        for pop in model.hidden:
            pop.gate.store_mode("rotated")
            if soft:
                pop.gate.activity_gate = "hard"
        hard_rotated = model.accuracy(test_rotated, y_test)
        active_fraction = model.active_fraction(test_rotated)

        # 3. switching at run time: no weight moves, each mode's accuracy comes back
        model.use_mode("upright")
        upright_after_switch = model.accuracy(test_upright, y_test)
        model.use_mode("rotated")
        rotated_after_switch = model.accuracy(test_rotated, y_test)
        if any(not np.array_equal(a, b) for a, b in zip(weights_before, model.weights())):
            raise RuntimeError("a mode switch changed a weight")

        # 4. the reference: LoRA adapters on the same frozen weights
        lora = GatedMLP(sizes, batch=args.batch, spiking=args.spiking, steps=args.steps, seed=args.seed,
                        lora_rank=args.rank, weights=weights_before, device=args.device)
        lora.freeze_weights()
        train(lora, lora.adapter_parameters(), args.lora_lr, args.epochs, 2, rotated.__getitem__)
        lora_parameters = sum(p.numel() for p in lora.adapter_parameters())
        lora_rotated = lora.accuracy(test_rotated, y_test)
        lora_upright = lora.accuracy(test_upright, y_test)

        seconds = time.perf_counter() - t_start
        out_arrays = {f"W{l + 1}": w for l, w in enumerate(weights_before)}
        for pop in model.hidden:
            for mode in ("upright", "rotated"):
                gain, offset = pop.gate.modes[mode]
                out_arrays[f"{pop.name}.{mode}.gain"] = gain.cpu().float().numpy()
                out_arrays[f"{pop.name}.{mode}.offset"] = offset.cpu().float().numpy()
        for l, (down, up) in enumerate(lora.adapters, start=1):
            out_arrays[f"lora.A{l}"] = down.weight.detach().cpu().float().numpy()
            out_arrays[f"lora.B{l}"] = up.weight.detach().cpu().float().numpy()
        figures = {"frozen_rotated": frozen_rotated, "soft_rotated": soft_rotated,
                   "hard_rotated": hard_rotated, "lora_rotated": lora_rotated,
                   "upright_frozen": upright_frozen, "upright_after_switch": upright_after_switch,
                   "rotated_after_switch": rotated_after_switch, "lora_upright": lora_upright,
                   "active_fraction": active_fraction, "seconds": seconds}
        training_log.finish(out_arrays, figures)
    except KeyboardInterrupt:
        if training_log is not None:
            training_log.close()
        print(f"mnist_modes.py: interrupted; the log {log} keeps the finished epochs, marked incomplete",
              file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, RuntimeError, DatasetError) as exc:
        if training_log is not None:
            training_log.close()
        print(f"mnist_modes.py: error: {training_run_error(exc, log)}", file=sys.stderr)
        return 2
    result = {k: round(v, 4) for k, v in figures.items() if k != "seconds"}
    result.update({"trainable_per_neuron": gate_parameters / n_hidden, "gate_parameters": gate_parameters,
                   "lora_parameters": lora_parameters, "rank": args.rank, "spiking": args.spiking,
                   "foundation": args.foundation, "epochs": args.epochs,
                   "pretrain_epochs": args.pretrain_epochs, "seconds": round(seconds, 1), "log": log})
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
