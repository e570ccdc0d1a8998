#!/usr/bin/env python3
"""Checks that resnet-tui computes what PyTorch computes, for `tests/pytorch_equivalence.rs`.

Reads two safetensors files written by the test:
  INIT  the network's initial weights in PyTorch's names (`resnet-tui export --pytorch` layout),
  OURS  what resnet-tui computed from them on one batch of real CIFAR-10 test images: `input`
        (normalised), `labels`, `eval.logits`, and for steps k = 0, 1 of SGD (lr 0.1, momentum
        0.9, weight decay 1e-4) `step{k}.loss`, `step{k}.grad.NAME` and `step{k}.after.NAME`
        (every parameter and BatchNorm buffer after the update).
Builds the project's PyTorch model (scripts/pytorch_reference.py), loads INIT with
`load_state_dict(strict=True)`, does the same with torch.optim.SGD, and compares. Prints the
largest differences; exits 1 when one exceeds its tolerance.

    .venv/bin/python scripts/pytorch_equivalence.py DEPTH INIT OURS [--plain] [--channels-last] [--bf16]

`--plain`: the network is Plain-DEPTH (no shortcuts) instead of ResNet-DEPTH.
`--channels-last`: ours trained in channels-last, as resnet-tui's CPU training does (its fused
pass needs it). It is compared with PyTorch's NCHW steps, and allowed what PyTorch's own
channels-last steps differ from its NCHW ones (below), where that is above the tolerances.
`--bf16` (with `--channels-last`): ours computed in bf16 mixed precision (eval logits and both
steps). It is compared with PyTorch's fp32 NCHW numbers, and allowed what PyTorch's own bf16
autocast (channels-last) differs from them: in bf16 each activation is rounded to 8 bits of
mantissa, so the tolerance is what bf16 itself costs.

What "what PyTorch's own steps differ" means: a difference made by rounding in other places is a
random draw, of a size that the arithmetic sets and a value that the batch and the CPU's kernels
set. One draw cannot bound another: on one batch PyTorch's bf16 loss was 0.00038 from its fp32
loss and ours 0.00092; over eight batches PyTorch's ranged 0.00031-0.0033 and ours 0.00006-0.0033,
with the same root mean square (0.0022). Twice one draw failed a correct pass on some CPUs and
not others. So the spread is measured: PyTorch's differences on the test's batch and on
SPREAD_BATCHES - 1 others (`spread{k}.input`, `spread{k}.labels` in OURS), each group's largest
difference per batch, and ours is allowed SPREAD_FACTOR times their root mean square. For a
difference as wide as PyTorch's, that fails one time in a thousand (a Gaussian draw against
five times a root mean square of eight). What it catches and what it cannot: every bf16 store
scaled by 1.01 fails the ResNet's loss eightfold, but passes the plain net, whose BatchNorms
divide a uniform scale out; a rounding twice as coarse (to 7 bits) passes both (gradients at 1.1
times PyTorch's spread). One batch's bf16 noise cannot tell that apart from bf16's own: our
rounding is checked bit for bit against `half` by the kernels' unit tests, and the whole bf16
pass against float64 by tests/fused_equivalence.rs.
"""
import contextlib
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_reference import ResNet  # noqa: E402

LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 1e-4
# Float32 sums in another order differ in the last bits; gradients through 20 layers a little more.
TOLERANCE = {"logits": 1e-4, "loss": 1e-5, "grad": 1e-4, "after": 1e-5}
# How many batches measure PyTorch's own spread, and how many of its root mean squares ours may
# differ by (see the top of this file).
SPREAD_BATCHES = 8
SPREAD_FACTOR = 5.0
# A plain net's gradients are ill-conditioned in its weights: a relative perturbation of 1e-7 of
# every weight moves Plain-20's gradients by 1.2e-3 at most (ResNet-20's by 5.5e-5; measured with
# this script's model on random images). Step 0 starts from identical weights and keeps the
# tolerances above; from step 1 on, the last-bit differences of step 0's update (3e-8) show
# amplified in the gradients, and through lr 0.1 in the weights after the update.
PLAIN_LATER_STEPS = {"grad": 5e-3, "after": 1e-3}


def steps(depth, plain, init, x, y, channels_last, bf16=False):
    """What PyTorch computes from INIT on the batch, by the names the test writes: eval logits
    (NCHW), then two SGD steps, in channels-last when asked; under bf16 autocast when asked."""
    model = ResNet(depth, plain=plain)
    model.load_state_dict(init, strict=True)
    out = {}
    model.eval()

    def precision():
        return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    with torch.no_grad(), precision():
        out["eval.logits"] = model(x).float()
    model.train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    for k in range(2):
        opt.zero_grad()
        with precision():
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward()
        out[f"step{k}.loss"] = loss.detach().clone()
        for n, p in model.named_parameters():
            out[f"step{k}.grad.{n}"] = p.grad.detach().contiguous().clone()
        opt.step()
        for n, t in model.state_dict().items():
            if t.is_floating_point():
                out[f"step{k}.after.{n}"] = t.detach().contiguous().clone()
    return out


def reference_spread(depth, plain, init, ours, truth, bf16):
    """PyTorch's own channels-last steps (under bf16 autocast when asked) against its NCHW fp32
    ones, on the test's batch and the others OURS carries: the root mean square over batches of
    each (kind, step) group's largest difference."""
    batches = [(ours["input"], ours["labels"].long(), truth)]
    for k in range(1, SPREAD_BATCHES):
        x, y = ours[f"spread{k}.input"], ours[f"spread{k}.labels"].long()
        batches.append((x, y, steps(depth, plain, init, x, y, channels_last=False)))
    squares = {}
    for x, y, nchw in batches:
        theirs = steps(depth, plain, init, x, y, channels_last=True, bf16=bf16)
        largest = {}
        for key, t in nchw.items():
            group = kind_of(key)
            largest[group] = max(largest.get(group, 0.0), (t.double() - theirs[key].double()).abs().max().item())
        for group, diff in largest.items():
            squares[group] = squares.get(group, 0.0) + diff * diff
    return {group: (total / len(batches)) ** 0.5 for group, total in squares.items()}


def kind_of(key):
    if key == "eval.logits":
        return "logits", 0
    step, kind = key.split(".")[:2]
    return kind, int(step[-1])


def main():
    depth, init_path, ours_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    plain = "--plain" in sys.argv[4:]
    channels_last = "--channels-last" in sys.argv[4:]
    bf16 = "--bf16" in sys.argv[4:]
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    init = load_file(init_path)
    ours = load_file(ours_path)
    x, y = ours["input"], ours["labels"].long()
    truth = steps(depth, plain, init, x, y, channels_last=False)
    spread = reference_spread(depth, plain, init, ours, truth, bf16) if channels_last else {}
    failures = []
    worst = {}

    for key, t in truth.items():
        kind, step = kind_of(key)
        mine = ours[key]
        diff = (t.double() - mine.double()).abs().max().item()
        scale = max(1.0, mine.double().abs().max().item())
        tolerance = PLAIN_LATER_STEPS.get(kind, TOLERANCE[kind]) if plain and step > 0 else TOLERANCE[kind]
        allowed = tolerance * scale
        allowed = max(allowed, SPREAD_FACTOR * spread.get((kind, step), 0.0))
        if diff > allowed:
            failures.append(f"{key}: max difference {diff:.3g} (allowed {allowed:.3g})")
        words = {"logits": "eval logits", "loss": "loss", "grad": "gradients", "after": "weights and buffers after"}
        group = words[kind] if kind == "logits" else f"step{step} {words[kind]}"
        count, most = worst.get(group, (0, 0.0))
        worst[group] = (count + 1, max(most, diff))
    for what, (count, diff) in worst.items():
        print(f"{what} ({count}): max abs difference {diff:.3g}")
    for (kind, step), rms in sorted(spread.items()):
        print(f"PyTorch's own spread, {kind} at step {step}: {rms:.3g} (root mean square of {SPREAD_BATCHES} batches)")
    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)
    print("resnet-tui and PyTorch agree")


if __name__ == "__main__":
    main()
