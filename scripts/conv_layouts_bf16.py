#!/usr/bin/env python3
"""The bf16 convolution backward as the fused pass asks libtorch for it, against two other ways of
asking the same libtorch (issue 38; docs/performance.md, "On a Zen 4, where bf16 pays"):

  cl        at::convolution_backward on channels-last tensors, the weight cast to bf16 at the call
            (as src/fused/step.rs calls it), input and weight gradients; cl_d and cl_w each alone;
  nchw      the same call on NCHW (contiguous) tensors, the input gradient copied back to
            channels-last (the layout copies included); nchw_d and nchw_w each alone;
  unfold_w  the weight gradient as im2col (`unfold`) and a batched product.

    .venv/bin/python scripts/conv_layouts_bf16.py [THREADS]

Each figure is the median of 50 calls after 5; every variant's weight gradient is checked against
cl's first. Pause other work first (a background run with SIGSTOP).
"""
import statistics
import sys
import time

import torch

BF16 = torch.bfloat16
CL = torch.channels_last
# ResNet-20's 3x3 convolutions at batch 128 but the stem: (in, out, map side, stride).
SHAPES = [(16, 32, 32, 2), (32, 64, 16, 2), (16, 16, 32, 1), (32, 32, 16, 1), (64, 64, 8, 1)]


def median_ms(f, reps=50, warmup=5):
    for _ in range(warmup):
        f()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def backward(g, x, w, stride, mask):
    return torch.ops.aten.convolution_backward(g, x, w, None, [stride] * 2, [1, 1], [1, 1], False, [0, 0], 1, mask)


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    torch.set_num_threads(threads)
    print(f"bf16 convolution backward, batch 128, {threads} thread(s), torch {torch.__version__}: ms a call")
    for cin, cout, side, stride in SHAPES:
        out = side // stride
        x = torch.randn(128, cin, side, side).to(BF16).to(memory_format=CL)
        w = torch.randn(cout, cin, 3, 3).to(memory_format=CL)
        g = torch.randn(128, cout, out, out).to(BF16).to(memory_format=CL)
        both, data, weight = [True, True, False], [True, False, False], [False, True, False]

        def cl(mask=both):
            return backward(g, x, w.to(BF16), stride, mask)

        def nchw(mask=both):
            gi, gw, _ = backward(g.contiguous(), x.contiguous(), w.to(BF16).contiguous(), stride, mask)
            return (gi.contiguous(memory_format=CL) if gi is not None else None), gw

        def unfold_w():
            cols = torch.nn.functional.unfold(x, 3, padding=1, stride=stride)  # n, cin*9, pixels
            return torch.einsum("nop,nkp->ok", g.contiguous().reshape(128, cout, out * out), cols)

        expected = cl()[1].float()
        for name, got in [("nchw", nchw()[1]), ("unfold_w", unfold_w().reshape(expected.shape))]:
            err = ((got.float() - expected).abs().max() / expected.abs().max()).item()
            if err > 2e-2:
                sys.exit(f"conv_layouts_bf16: {name} differs from cl by {err:.3g} of its largest value")
        variants = [("cl", cl), ("nchw", nchw), ("cl_d", lambda: cl(data)), ("nchw_d", lambda: nchw(data)),
                    ("cl_w", lambda: cl(weight)), ("nchw_w", lambda: nchw(weight)), ("unfold_w", unfold_w)]
        times = ", ".join(f"{name} {median_ms(f):.2f}" for name, f in variants)
        print(f"{cin}->{cout} {side}x{side} stride {stride}: {times}", flush=True)


if __name__ == "__main__":
    main()
