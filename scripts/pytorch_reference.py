#!/usr/bin/env python3
"""PyTorch eager reference for `resnet-tui bench`: the same network and recipe, written the plain way.

ResNet-(6n+2) option A (He init, BatchNorm, no conv bias), or with `plain=True` the plain network of
the same layers without shortcuts (the paper's baseline), the paper's augmentation on whole batches
(pad 4, random 32x32 crop, random horizontal flip, per-channel normalisation), SGD momentum 0.9 and
weight decay 1e-4 (torch.optim.SGD, its default for-each implementation), batch 128, cross-entropy.
Measures steady-state training images/s after a warm-up, in NCHW and in channels_last, on random
byte images held in memory (the data set is not needed: the step does not depend on pixel values).
Each timed iteration includes its augmentation, as a plain PyTorch loop runs it (in series).
`--precision bf16` (or `both`) measures bf16 mixed precision the way PyTorch users run it:
`torch.autocast` around the forward pass and the loss, fp32 weights and optimizer. `--matmul` adds
the matrix-product ceiling of the device in fp32 and bf16 (GFLOP/s of a square product).

    .venv/bin/python scripts/pytorch_reference.py --threads 2 --steps 30 [--precision both] [--json out.json]

Prints one line per measurement: `pytorch <name> <img/s> img/s` (`bf16_` names for autocast).
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


class Block(nn.Module):
    def __init__(self, cin, cout, stride, plain=False):
        super().__init__()
        self.plain = plain
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.extra = cout - cin  # option A: subsample and zero-pad the new channels
        self.stride = stride

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.plain:
            return F.relu(y)
        if self.stride != 1 or self.extra:
            x = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 0, self.extra))
        return F.relu(y + x)


class ResNet(nn.Module):
    """ResNet-`depth` with option A shortcuts; `plain=True` gives Plain-`depth`: the same layers
    and parameter names without the shortcuts."""

    def __init__(self, depth, plain=False):
        super().__init__()
        n = (depth - 2) // 6
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for s, width in enumerate((16, 32, 64)):
            for b in range(n):
                blocks.append(Block(cin, width, 2 if s > 0 and b == 0 else 1, plain))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, 10)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def augment(images, mean, std):
    """Pad 4, random crop, random flip and normalise a batch of byte images (B, 3, 32, 32)."""
    b, dev = images.shape[0], images.device
    padded = F.pad(images, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (b,), device=dev)
    dx = torch.randint(0, 9, (b,), device=dev)
    rows = (torch.arange(32, device=dev)[None, :] + dy[:, None])[:, None, :, None].expand(b, 3, 32, 40)
    cols = torch.arange(32, device=dev)[None, :] + dx[:, None]
    flip = torch.rand(b, device=dev) < 0.5
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :].expand(b, 3, 32, 32)
    out = padded.gather(2, rows).gather(3, cols)
    return (out.float() / 255.0 - mean) / std


def matmul_gflops(dtype, device, n=1024, seconds=1.0):
    """GFLOP/s of an n x n by n x n product in `dtype`, after one warm-up product, repeated for
    about `seconds` (a CPU without bf16 units can be 100 times slower in bf16: no fixed count)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    a @ b
    sync()
    reps, t0 = 0, time.perf_counter()
    while reps == 0 or time.perf_counter() - t0 < seconds:
        a @ b
        sync()
        reps += 1
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def measure(depth, batch, steps, warmup, channels_last, device, bf16=False, compile=False):
    """Training images/s; `compile` puts the model under `torch.compile` (scripts/pytorch_compiled.py)."""
    torch.manual_seed(0)
    model = ResNet(depth)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    forward = torch.compile(model) if compile else model
    data = torch.randint(0, 256, (10 * batch, 3, 32, 32), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 10, (10 * batch,), device=device)
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    model.train()
    times = []
    for i in range(warmup + steps):
        idx = torch.randint(0, data.shape[0], (batch,), device=device)
        t0 = time.perf_counter()
        x = augment(data[idx], mean, std).contiguous(memory_format=fmt)
        y = labels[idx]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(forward(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return batch * len(times) / sum(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--only", choices=["nchw", "channels_last", "bf16_nchw", "bf16_channels_last"], default=None)
    p.add_argument("--precision", choices=["fp32", "bf16", "both"], default="fp32")
    p.add_argument("--matmul", action="store_true", help="also the fp32 and bf16 matrix-product GFLOP/s")
    p.add_argument("--device", default="cpu", help="cpu or cuda (cuDNN autotuning on, as ours)")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.backends.cudnn.benchmark = True
    out = {"torch": torch.__version__, "threads": a.threads, "depth": a.depth, "batch_size": a.batch_size,
           "device": a.device}
    precisions = {"fp32": [False], "bf16": [True], "both": [False, True]}[a.precision]
    for bf16 in precisions:
        for layout, cl in (("nchw", False), ("channels_last", True)):
            name = f"bf16_{layout}" if bf16 else layout
            if a.only and a.only != name:
                continue
            ips = measure(a.depth, a.batch_size, a.steps, a.warmup, cl, torch.device(a.device), bf16)
            out[name] = ips
            print(f"pytorch {name} {ips:.1f} img/s", flush=True)
    if a.matmul:
        for name, dtype in (("matmul_fp32_gflops", torch.float32), ("matmul_bf16_gflops", torch.bfloat16)):
            out[name] = matmul_gflops(dtype, torch.device(a.device))
            print(f"pytorch {name} {out[name]:.1f}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
