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
pass needs it). It is compared with PyTorch's NCHW steps, and allowed twice the largest
difference between PyTorch's own channels-last steps and its NCHW ones (by step and kind of
tensor) where that is above the tolerances.
`--bf16` (with `--channels-last`): ours computed in bf16 mixed precision (eval logits and both
steps). It is compared with PyTorch's fp32 NCHW numbers, and allowed twice the largest difference
of PyTorch's own bf16 autocast (channels-last) from them, by step and kind of tensor: in bf16
each activation is rounded to 8 bits of mantissa, so the tolerance is what bf16 itself costs.
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
    # PyTorch's own channels-last training is less exact than its NCHW one (libtorch's
    # channels-last BatchNorm sums in another order: up to 1e-3 of a gradient here). Compared in
    # channels-last, ours must be as close to PyTorch's NCHW as PyTorch's channels-last is: within
    # twice its largest difference among the same step's tensors of the same kind, or within the
    # tolerances above. In bf16, the same with PyTorch's bf16 autocast in channels-last.
    theirs_cl = steps(depth, plain, init, x, y, channels_last=True, bf16=bf16) if channels_last else None
    # PyTorch channels-last's largest difference from its NCHW, by step and kind of tensor.
    cl_worst = {}
    for key, t in truth.items() if theirs_cl is not None else ():
        group = kind_of(key)
        cl_worst[group] = max(cl_worst.get(group, 0.0), (t.double() - theirs_cl[key].double()).abs().max().item())
    failures = []
    worst = {}

    for key, t in truth.items():
        kind, step = kind_of(key)
        mine = ours[key]
        diff = (t.double() - mine.double()).abs().max().item()
        scale = max(1.0, mine.double().abs().max().item())
        tolerance = PLAIN_LATER_STEPS.get(kind, TOLERANCE[kind]) if plain and step > 0 else TOLERANCE[kind]
        allowed = tolerance * scale
        allowed = max(allowed, 2.0 * cl_worst.get((kind, step), 0.0))
        if diff > allowed:
            failures.append(f"{key}: max difference {diff:.3g} (allowed {allowed:.3g})")
        words = {"logits": "eval logits", "loss": "loss", "grad": "gradients", "after": "weights and buffers after"}
        group = words[kind] if kind == "logits" else f"step{step} {words[kind]}"
        count, most = worst.get(group, (0, 0.0))
        worst[group] = (count + 1, max(most, diff))
    for what, (count, diff) in worst.items():
        print(f"{what} ({count}): max abs difference {diff:.3g}")
    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)
    print("resnet-tui and PyTorch agree")


if __name__ == "__main__":
    main()
