"""Counter-current learning on MNIST / Fashion-MNIST, beside backprop, FA and DFA.

    python examples/mnist_ccl.py --epochs 5                          # CCL MLP, 5 epochs
    python examples/mnist_ccl.py                                     # the paper's run: 100 epochs
    python examples/mnist_ccl.py --dataset fashion --method fa       # a baseline, same MLP
    python examples/mnist_ccl.py --arch cnn --epochs 1 --width 0.25  # the max-pool CNN, narrower
    python examples/mnist_ccl.py --dataset fashion --arch ae         # the convolutional autoencoder

CCL (Kao & Hariharan, NeurIPS 2024) trains a forward network (image -> classes) and a
feedback network (class one-hots -> image) of mirrored shapes; each layer's input is
detached, so each layer learns only from its own local loss (see
neurosim/networks/ccl.py). The configuration is the authors' code's: MLP 784-256x5-10,
ELU, no bias; SGD lr 1 for both networks, gradient clipping 1.0 per network, batch 256,
100 epochs; the unnormalised local loss (kappa 0.5, 256/d); inputs standardised with
the dataset's mean and std. --method bp|fa|dfa trains the same MLP by backprop,
feedback alignment or direct feedback alignment with the same optimiser settings (the
authors' BP config) except the learning rate: 1.0 (bp), 0.3 (fa), 0.1 (dfa), chosen
on the validation split, and DFA's activation, tanh (with ELU its weights diverge). 10% of the training set is held out; the weights of the epoch with
the lowest validation loss are evaluated on the test set.

--engine numba|torch trains the MLP as a simulation instead: graded populations joined
by delay-0 projections, each learning by a CounterCurrent rule from a per-sample error
signal (neurosim/networks/ccl_rule_net.py); same update, same figures up to float
rounding.

--arch cnn: five conv 3x3 -> ELU -> max-pool layers (128,128,256,256,512 channels,
times --width) on images padded to 32x32, the paper's normalised loss with
decorrelation 0.5, warm-up 100 batches, gradient centralisation, cosine schedule, and
the authors' CIFAR-10 max-pool optimiser settings (momentum 0.8, clip 0.3, weight decay
1e-6; without momentum it reached 43% against 79% on the validation split after 3
epochs of 9,000 images at --width 0.25; on CIFAR: kappa 1.0, and for CIFAR-100 momentum
0.5 without clipping). Not reproduced from the authors' CIFAR runs: their random crops
and flips, ImageNet normalisation and "filter target" step.
--arch snn: the spiking variant (neurosim/networks/ccl_spiking.py): 784-256-256-10
layers of leaky spiking neurons (decay 0.9, threshold 1), images as Bernoulli spikes
over --steps steps, local losses on firing rates through the differentiable mode
(Network.unroll); batch 64, SGD lr 1, clip 1 (lr chosen on the validation split).
--arch ae: the convolutional autoencoder (encoder 4 x conv stride 2, decoder mirrored,
ReLU, the image as feedback target, MSE between every pair), reported as test MSE.

The HDF5 log (--log) holds the configuration, one row per epoch (train loss,
validation loss and accuracy, seconds) flushed as each epoch ends, the final weights
and the test figures; a run that stops early leaves it marked incomplete. The last
line printed is one JSON object.

Where the data are looked for: --data DIR, $NEUROSIM_DATA, ../shared/datasets beside
this clone, ~/.cache/neurosim/datasets/<name>, /usr/share/datasets/<name>.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time

from neurosim.cli_args import log_path, missing_log_file, positive_float, positive_int


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "fashion", "cifar10", "cifar100"],
                        help="mnist, fashion (Fashion-MNIST); cifar10/cifar100 if you have them "
                             "(the python version, in --data or $NEUROSIM_DATA)")
    parser.add_argument("--arch", default="mlp", choices=["mlp", "cnn", "ae", "snn"])
    parser.add_argument("--steps", type=positive_int, default=16, help="time steps per image (--arch snn)")
    parser.add_argument("--activation", default=None, choices=["elu", "tanh", "relu", "sigmoid"],
                        help="hidden activation of the MLP (default elu; dfa: tanh)")
    parser.add_argument("--method", default="ccl", choices=["ccl", "bp", "fa", "dfa"],
                        help="ccl, or a baseline on the same MLP (bp, fa, dfa)")
    parser.add_argument("--loss", default=None, choices=["code", "normalized"],
                        help="CCL's local loss: the authors' code (MLP default) or the paper's "
                             "normalised Eq. 2 (CNN default)")
    parser.add_argument("--engine", default="autograd", choices=["autograd", "numba", "torch"],
                        help="autograd: CCLNet (default); numba/torch: the same update as "
                             "CounterCurrent rules on graded populations stepped by that backend")
    parser.add_argument("--epochs", type=positive_int, default=100)
    parser.add_argument("--batch", type=positive_int, default=None, help="default 256 (MLP), 128 (CNN), 32 (AE)")
    parser.add_argument("--lr", type=positive_float, default=None,
                        help="SGD learning rate of both networks (default 1.0; AE 0.01; fa 0.3, dfa 0.1)")
    parser.add_argument("--clip", type=positive_float, default=None,
                        help="gradient clipping per network (default 1.0; AE 0.2)")
    parser.add_argument("--momentum", type=float, default=None,
                        help="SGD momentum of both networks (default 0; CNN 0.8; AE 0.9)")
    parser.add_argument("--width", type=positive_float, default=1.0,
                        help="scale the CNN/AE channel counts (default 1: the paper's)")
    parser.add_argument("--train", type=positive_int, default=None,
                        help="use the first N training images (default all)")
    parser.add_argument("--seed", type=int, default=2023, help="weights, split and order (default 2023)")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data", default=None, metavar="DIR",
                        help="folder with the four IDX files, or its parent")
    parser.add_argument("--log", "--log-file", dest="log", default=None,
                        help="HDF5 log (default runs/ccl-<dataset>-<time>.h5; under torchrun say "
                             "--log-file, which torchrun does not take for its --log-dir)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.arch != "mlp" and args.method != "ccl":
        parser.error(f"--method {args.method} runs on the MLP only; use --arch mlp or --method ccl")
    if args.engine != "autograd" and (args.arch != "mlp" or args.method != "ccl" or args.loss == "normalized"):
        parser.error("--engine numba/torch runs the CCL MLP with the code's loss only "
                     "(--arch mlp --method ccl)")
    if args.engine != "autograd" and args.momentum:
        parser.error("--momentum: the rule form (--engine numba/torch) steps by plain SGD")
    if args.activation is not None and args.arch != "mlp":
        parser.error("--activation applies to --arch mlp")
    if args.dataset.startswith("cifar") and args.arch in ("ae", "snn"):
        parser.error(f"--arch {args.arch} runs on mnist or fashion")
    if args.arch == "ae" and args.loss is not None:
        parser.error("--loss applies to classification; the autoencoder's local loss is MSE")
    return args


#: SGD learning rates of the baselines, chosen on the validation split (MNIST, 3 epochs,
#: from 0.03, 0.1, 0.3, 1): at lr 1 FA learns slowly and DFA diverges
BASELINE_LR = {"bp": 1.0, "fa": 0.3, "dfa": 0.1}


#: DFA's hidden activation: with ELU its weights grow without bound (its error signal
#: does not shrink as activity grows; 92.3% against 97.2% on the validation split after
#: 15 epochs with tanh, whose activity is bounded; the paper's baselines use tanh)
BASELINE_ACTIVATION = {"dfa": "tanh"}


def configuration(args: argparse.Namespace) -> dict:
    """The trainer's settings for --arch (the authors' configs; see the module doc)."""
    if args.arch == "mlp":
        cfg = dict(batch=256, lr=1.0, clip=1.0, momentum=0.0, weight_decay=0.0, warmup=0,
                   cosine_epochs=0, gradient_centralization=False)
    elif args.arch == "snn":
        cfg = dict(batch=64, lr=1.0, clip=1.0, momentum=0.0, weight_decay=0.0, warmup=0,
                   cosine_epochs=0, gradient_centralization=False)
    elif args.arch == "cnn":
        cfg = dict(batch=128, lr=1.0, clip=0.3, momentum=0.8, weight_decay=1e-6, warmup=100,
                   cosine_epochs=args.epochs, gradient_centralization=True)
        if args.dataset == "cifar100":  # the authors' CIFAR-100 settings
            cfg.update(momentum=0.5, clip=None)
    else:
        cfg = dict(batch=32, lr=0.01, clip=0.2, momentum=0.9, weight_decay=1e-4, warmup=100,
                   cosine_epochs=args.epochs, gradient_centralization=False)
    if args.method in BASELINE_LR:
        cfg["lr"] = BASELINE_LR[args.method]
    for key in ("batch", "lr", "clip", "momentum"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    return cfg


def build(args: argparse.Namespace):
    from neurosim.networks.ccl import CCLNet
    from neurosim.networks.feedback_alignment import AlignmentMLP

    classes = 100 if args.dataset == "cifar100" else 10
    # the authors' MLPs: 784-256x5-10 for the digits, 3072-1024x3-C for CIFAR
    sizes = ((3072, 1024, 1024, 1024, classes) if args.dataset.startswith("cifar")
             else (784, 256, 256, 256, 256, 256, 10))
    channels = 3 if args.dataset.startswith("cifar") else 1
    act = args.activation or BASELINE_ACTIVATION.get(args.method, "elu")
    if args.method != "ccl":
        return AlignmentMLP(sizes, method=args.method, seed=args.seed, activation_name=act)
    if args.arch == "mlp":
        return CCLNet.mlp(sizes, seed=args.seed, loss=args.loss or "code", activation_name=act)
    if args.arch == "snn":
        from neurosim.networks.ccl_spiking import SpikingCCL

        if args.loss == "normalized":
            raise ValueError("--arch snn uses the code's local loss; leave out --loss")
        return SpikingCCL(steps=args.steps, batch=configuration(args)["batch"], seed=args.seed,
                          device=args.device)
    scale = lambda cs: [max(1, round(c * args.width)) for c in cs]  # noqa: E731
    if args.arch == "cnn":
        return CCLNet.cnn(channels, 32, scale((128, 128, 256, 256, 512)), classes, seed=args.seed,
                          loss=args.loss or "normalized",
                          kappa=1.0 if args.dataset.startswith("cifar") else 0.5)
    return CCLNet.autoencoder(1, 28, scale((32, 64, 128, 256)), seed=args.seed)


def error_message(exc: BaseException, dataset: str, log: str | None) -> str:
    """One line naming what is wrong and the flag to change."""
    from neurosim.datasets import DatasetNotFoundError

    if isinstance(exc, DatasetNotFoundError):
        what = ("the extracted python version" if dataset.startswith("cifar")
                else "the four IDX files")
        return (f"{dataset} not found; looked in {', '.join(exc.searched)}. Pass --data DIR (the folder "
                f"with {what}, or its parent) or set NEUROSIM_DATA=DIR")
    if isinstance(exc, FileExistsError):
        return (f"{exc.filename or log}: the log exists; choose another --log, or leave --log out "
                "for a new name under runs/")
    if isinstance(exc, FloatingPointError):
        return f"{exc} (--lr, --clip)"
    flag = " (--log)" if isinstance(exc, OSError) and getattr(exc, "filename", None) else ""
    return f"{exc}{flag}"


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    progress = False if args.no_progress else None
    t_start = time.perf_counter()
    print("[starting: importing torch and neurosim]", file=sys.stderr, flush=True)
    import torch
    from tqdm.auto import tqdm

    from neurosim.datasets import DatasetError, load_fashion_mnist, load_mnist
    from neurosim.datasets.cifar import (CHANNEL_STATISTICS, load_cifar10, load_cifar100,
                                         standardized_channels)
    from neurosim.datasets.standardize import PIXEL_STATISTICS, standardized
    from neurosim.distributed.launch import join_torchrun
    from neurosim.networks.ccl_training import Split, Trainer, evaluate, fit, train_validation_split
    from neurosim.recording.training_log import TrainingLog

    dp, args.device = join_torchrun(args.device)  # under torchrun: data-parallel (gradients summed)
    writer = dp is None or dp.rank == 0
    if dp is not None:
        if args.engine != "autograd":
            print("mnist_ccl.py: error: under torchrun, --engine autograd (the rule form runs in "
                  "one process, so far)", file=sys.stderr)
            return 2
        # summing each share's gradient is the whole batch's only for losses that are means
        # over samples: the CNN's normalised loss compares samples, the autoencoder
        # normalises over the batch, the spiking variant draws per batch
        if args.arch != "mlp" or (args.method == "ccl" and args.loss not in (None, "code")):
            print("mnist_ccl.py: error: under torchrun, --arch mlp with the code's loss (leave out "
                  "--loss): the other architectures' losses are not sums over samples, so split "
                  "batches would not train as one", file=sys.stderr)
            return 2
        if missing_log_file("mnist_ccl.py", args.log):
            return 2
        if not writer:
            progress = False

    name = {"mnist": "mnist", "fashion": "fashion-mnist"}.get(args.dataset, args.dataset)
    beside_clone = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                 "..", "shared", "datasets"))
    log = args.log
    training_log = None
    try:
        log = log_path(log, f"ccl-{args.dataset}")
        if args.threads:
            torch.set_num_threads(args.threads)
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"--device {args.device}: torch sees no CUDA device here; use --device cpu")
        loader = {"mnist": load_mnist, "fashion": load_fashion_mnist, "cifar10": load_cifar10,
                  "cifar100": load_cifar100}[args.dataset]
        images, labels = loader("train", args.data, also_look_in=[beside_clone])
        test_images, test_labels = loader("test", args.data, also_look_in=[beside_clone])
        images, labels = images[:args.train], labels[:args.train]
        pad = 2 if args.arch == "cnn" and images.shape[-1] == 28 else 0  # 28 -> 32: five halvings to 1x1

        def tensors(imgs, labs):
            if args.arch == "snn":  # intensities in [0, 1]: spike probabilities
                x = torch.as_tensor(imgs).float().flatten(1) / 255.0
            elif args.dataset.startswith("cifar"):  # per-channel statistics, as the authors
                x = standardized_channels(imgs, *CHANNEL_STATISTICS[args.dataset])
                x = x.flatten(1) if args.arch == "mlp" else x
            else:
                x = standardized(imgs, *PIXEL_STATISTICS[name], pad)
                x = x.flatten(1) if args.arch == "mlp" else x
            y = torch.as_tensor(labs).long() if args.arch != "ae" else None
            return x.to(device), (y.to(device) if y is not None else None)

        x, y = tensors(images, labels)
        train, validation = train_validation_split(x, y, args.seed)
        cfg = configuration(args)
        if len(train) < cfg["batch"]:
            raise ValueError(f"--train leaves {len(train)} training images, fewer than --batch {cfg['batch']}")
        if args.engine == "autograd":
            model = build(args).to(device)
            trainer = Trainer(model, lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"],
                              clip=cfg["clip"], gradient_centralization=cfg["gradient_centralization"],
                              warmup=cfg["warmup"], cosine_epochs=cfg["cosine_epochs"], data_parallel=dp)
        else:
            from neurosim.networks.ccl_rule_net import CCLRuleNet

            model = trainer = CCLRuleNet(batch=cfg["batch"], lr=cfg["lr"], clip=cfg["clip"],
                                         weights=build(args), backend=args.engine, device=args.device)
        metrics = ["train_loss", "validation_loss", "validation_accuracy", "seconds"]
        state = model.state_dict()
        attrs = {"dataset": name, "arch": args.arch, "method": args.method, "engine": args.engine,
                 "loss": getattr(model, "loss_name", "cross-entropy"), "epochs": args.epochs,
                 "activation": getattr(model, "activation_name", getattr(model, "phi_name", "")),
                 "seed": args.seed, "train_samples": len(train), "validation_samples": len(validation),
                 "created_at": datetime.datetime.now().isoformat(), "configuration": cfg,
                 "command": " ".join([os.path.basename(sys.argv[0])] + (argv if argv is not None else sys.argv[1:]))}
        if writer:  # (process 0 writes the log)
            training_log = TrainingLog(log, attrs, metrics,
                                       {k: (tuple(v.shape), "f4") for k, v in state.items()},
                                       ["test_loss", "test_accuracy", "best_epoch", "seconds"])
        epoch_bar = tqdm(total=args.epochs, desc=f"{args.method} {args.arch} on {args.dataset}: epochs",
                         unit="epoch", disable=progress is False)
        clock = {"last": time.perf_counter()}
        train_seconds = [0.0]

        def on_epoch(epoch, record):
            now = time.perf_counter()
            record["seconds"] = now - clock["last"]
            train_seconds[0] += record["seconds"]
            clock["last"] = now
            if training_log is None:
                return
            training_log.add_epoch(record)
            epoch_bar.update(1)
            shown = {k: round(v, 4) for k, v in record.items() if k != "epoch"}
            epoch_bar.write(f"epoch {epoch}: {shown}")

        result = fit(model, trainer, train, validation, epochs=args.epochs, batch=cfg["batch"],
                     seed=args.seed, progress=progress, on_epoch=on_epoch, data_parallel=dp)
        epoch_bar.close()
        test = evaluate(model, Split(*tensors(test_images, test_labels)))
        seconds = train_seconds[0]
        results = {"test_loss": test["loss"], "test_accuracy": test.get("accuracy", float("nan")),
                   "best_epoch": result.best_epoch, "seconds": seconds}
        best = result.history[result.best_epoch - 1]  # the checkpoint tested: for model selection
        if training_log is not None:
            training_log.finish({k: v.detach().cpu().float().numpy() for k, v in model.state_dict().items()},
                                results)
    except KeyboardInterrupt:
        if training_log is not None:
            training_log.close()  # incomplete: the epochs done stay readable
        print(f"mnist_ccl.py: interrupted; the log {log} keeps the finished epochs, marked incomplete",
              file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, RuntimeError, FloatingPointError, DatasetError) as exc:
        if training_log is not None:
            training_log.close()
        print(f"mnist_ccl.py: error: {error_message(exc, name, log)}", file=sys.stderr)
        return 2
    if dp is not None:
        from neurosim.distributed.launch import leave_torchrun

        leave_torchrun(dp)
        if not writer:
            return 0
    out = {"test_accuracy": round(test["accuracy"], 4) if "accuracy" in test else None,
           "test_mse": round(test["loss"], 5) if args.arch == "ae" else None,
           "epochs": args.epochs, "seconds": round(seconds, 1),
           "seconds_per_epoch": round(seconds / args.epochs, 2), "method": args.method,
           "engine": args.engine, "arch": args.arch, "dataset": args.dataset, "best_epoch": result.best_epoch,
           "validation_loss": round(best["validation_loss"], 5),
           "validation_accuracy": (round(best["validation_accuracy"], 4)
                                   if "validation_accuracy" in best else None),
           "seed": args.seed, "batch": cfg["batch"], "lr": cfg["lr"], "clip": cfg["clip"],
           "processes": dp.size if dp else 1,
           "total_seconds": round(time.perf_counter() - t_start, 1), "log": log}
    # (test_accuracy always: null for the autoencoder, which has test_mse instead)
    print(json.dumps({k: v for k, v in out.items() if v is not None or k == "test_accuracy"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
