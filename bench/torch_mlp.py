#!/usr/bin/env python3
"""Train batchlab's reference MLP (or a CNN) with PyTorch and print its samples/s.

The model, data and step are batchlab's `train` command's: MNIST, the MLP
784-512-512-10 (ReLU), softmax cross-entropy, momentum SGD (lr 0.1, momentum
0.9), float32. --model lenet5 or cnn:F,F,... trains batchlab's CNN of that
name instead (engine/modelspec.go), on the images as 1×28×28, with PyTorch's
default initialization, which batchlab's follows. Each step gathers the batch from the uint8 images in a fresh
shuffled order, scales it to [0,1], runs forward and backward, updates, and
keeps the batch's loss and correct count (as batchlab does, on the device).
The last epoch's training pass is timed; evaluation is not. One JSON line
goes to stdout. The thread count is torch.set_num_threads; set
OPENBLAS_NUM_THREADS to the same in the environment for the GEMMs
(bench/compare_pytorch.sh does). With --device cuda the data, the model and
the step live on the GPU (the uint8 images uploaded once, as batchlab's
resident strategy does), and the timer stops after torch.cuda.synchronize.
"""

import argparse
import gzip
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(directory, name):
    """An IDX file (name or name.gz in directory) as a numpy array."""
    for path in (os.path.join(directory, name + ".gz"), os.path.join(directory, name)):
        if os.path.exists(path):
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rb") as f:
                raw = f.read()
            dims = raw[3]
            shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
            return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)
    raise SystemExit(f"{name}[.gz] not found in {directory}: run `make data`")


def build_model(spec):
    """The model batchlab's --model spec names (engine/modelspec.go)."""
    if spec == "mlp":
        return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    if spec == "lenet5":
        return nn.Sequential(
            nn.Unflatten(1, (1, 28, 28)),
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    if spec.startswith("cnn:"):
        layers, c, side = [nn.Unflatten(1, (1, 28, 28))], 1, 28
        for f in map(int, spec[4:].split(",")):
            layers += [nn.Conv2d(c, f, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c, side = f, side // 2
        return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * side * side, 10))
    raise SystemExit(f"unknown --model {spec!r} (want mlp, lenet5 or cnn:F,F,...)")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="directory holding the MNIST IDX files")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=2, help="the last one is timed")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--model", default="mlp", help="mlp (784-512-512-10), lenet5 or cnn:F,F,...")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--gemm", action="store_true",
                   help="instead, time torch.matmul on the MLP's products at --batch (GFLOP/s, median of 5)")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    if args.gemm:
        gemm(args.batch, args.threads)
        return
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    images = torch.from_numpy(read_idx(args.data, "train-images-idx3-ubyte").reshape(-1, 784).copy()).to(dev)
    labels = torch.from_numpy(read_idx(args.data, "train-labels-idx1-ubyte").astype(np.int64)).to(dev)
    test_x = torch.from_numpy(read_idx(args.data, "t10k-images-idx3-ubyte").reshape(-1, 784).copy()).to(dev)
    test_y = torch.from_numpy(read_idx(args.data, "t10k-labels-idx1-ubyte").astype(np.int64)).to(dev)

    model = build_model(args.model).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    n, b = images.shape[0], args.batch
    steps = (n + b - 1) // b
    train_seconds = 0.0
    for epoch in range(args.epochs):
        order = torch.randperm(n).to(dev)
        losses = torch.empty(steps, device=dev)
        correct = torch.empty(steps, dtype=torch.int64, device=dev)
        start = time.perf_counter()
        for s in range(steps):
            idx = order[s * b : (s + 1) * b]
            x = images.index_select(0, idx).float().div_(255)
            y = labels.index_select(0, idx)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                losses[s] = loss
                correct[s] = (logits.argmax(1) == y).sum()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        train_seconds += seconds
    with torch.no_grad():  # in chunks of 1000, as batchlab's --eval-batch
        hits = sum((model(test_x[i : i + 1000].float().div_(255)).argmax(1) == test_y[i : i + 1000]).sum().item()
                   for i in range(0, test_x.shape[0], 1000))
        acc = hits / test_x.shape[0]
    print(json.dumps({
        "engine": "pytorch", "torch": torch.__version__, "device": args.device, "model": args.model, "batch": b,
        "threads": args.threads, "lr": args.lr, "momentum": args.momentum, "seed": args.seed,
        "samples_per_sec": n / seconds, "seconds": seconds, "train_seconds": train_seconds,
        "train_loss": losses.mean().item(), "test_accuracy": acc,
    }))


def gemm(b, threads):
    """The products BenchmarkGemm (engine/device) times, through PyTorch."""
    products = {  # name: (op(A), op(B)) as batchlab stores them, transposed by views
        "x·W1": (torch.randn(b, 784), torch.randn(784, 512)),
        "xᵀ·dy": (torch.randn(b, 784).t(), torch.randn(b, 512)),
        "dy·W2ᵀ": (torch.randn(b, 512), torch.randn(512, 512).t()),
    }
    for name, (a, w) in products.items():
        flops = 2 * a.shape[0] * a.shape[1] * w.shape[1]
        reps = max(5, int(2e9 / flops))
        for _ in range(3):
            torch.matmul(a, w)
        rates = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(reps):
                torch.matmul(a, w)
            rates.append(flops * reps / (time.perf_counter() - start) / 1e9)
        print(json.dumps({"engine": "pytorch", "batch": b, "threads": threads, "op": name,
                          "gflops": sorted(rates)[2]}, ensure_ascii=False))


if __name__ == "__main__":
    main()
