#!/usr/bin/env python3
"""The bf16 convolution backward as the fused pass asks libtorch for it, against two other ways of
asking the same libtorch (issue 38; docs/performance.md, "On a Zen 4, where bf16 pays"):

  cl        at::convolution_backward on channels-last tensors, the weight cast to bf16 at the call
            (as src/fused/step.rs calls it), input and weight gradients; cl_d and cl_w each alone;
  nchw      the same call on NCHW (contiguous) tensors, the input gradient copied back to
            channels-last (the layout copies included); nchw_d and nchw_w each alone;
  unfold_w  the weight gradient as im2col (`unfold`) and a batched product;
  s2d       at stride 2 only: the input rearranged space-to-depth (each 2x2 block of pixels as four
            times the channels), so that the 3x3 stride-2 convolution becomes a 2x2 stride-1 one
            with 7 of its 16 taps zero, padded on the top and left only; the gradients rearranged
            back (those copies included; the kernel's rearrangement, once a step, left out);
            s2d_d and s2d_w each alone.

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


def backward(g, x, w, stride, mask, padding=1):
    return torch.ops.aten.convolution_backward(
        g, x, w, None, [stride] * 2, [padding] * 2, [1, 1], False, [0, 0], 1, mask)


# The 2x2 kernel's tap `a` over the block's pixel parity `p` is the 3x3 kernel's tap K[(a, p)]: the
# output pixel y reads rows 2y-1 (the block above, odd row), 2y and 2y+1 (its own block).
K = {(0, 1): 0, (1, 0): 1, (1, 1): 2}


def space_to_depth(x):
    n, c, h, w = x.shape
    blocks = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return blocks.reshape(n, c * 4, h // 2, w // 2).contiguous(memory_format=CL)


def depth_to_space(s, c):
    n, _, h, w = s.shape
    pixels = s.reshape(n, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return pixels.reshape(n, c, h * 2, w * 2).contiguous(memory_format=CL)


def kernel_to_s2d(w):
    cout, cin = w.shape[:2]
    out = w.new_zeros(cout, cin, 2, 2, 2, 2)  # cout, cin, row parity, column parity, a, b
    for (a, p), ky in K.items():
        for (b, q), kx in K.items():
            out[:, :, p, q, a, b] = w[:, :, ky, kx]
    return out.reshape(cout, cin * 4, 2, 2).contiguous(memory_format=CL)


def kernel_from_s2d(g, cout, cin):
    g = g.reshape(cout, cin, 2, 2, 2, 2)
    out = g.new_zeros(cout, cin, 3, 3)
    for (a, p), ky in K.items():
        for (b, q), kx in K.items():
            out[:, :, ky, kx] = g[:, :, p, q, a, b]
    return out


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

        w_s2d = kernel_to_s2d(w)

        def s2d(mask=both):
            padded = torch.nn.functional.pad(space_to_depth(x), (1, 0, 1, 0))
            gi, gw, _ = backward(g, padded, w_s2d.to(BF16), 1, mask, padding=0)
            gi = depth_to_space(gi[:, :, 1:, 1:], cin) if gi is not None else None
            return gi, (kernel_from_s2d(gw, cout, cin) if gw is not None else None)

        expected = cl()
        checked = [("nchw", nchw()[1]), ("unfold_w", unfold_w().reshape(expected[1].shape))]
        if stride == 2:
            checked += [("s2d_w", s2d()[1]), ("s2d_d", s2d()[0])]
        for name, got in checked:
            want = expected[0] if name.endswith("_d") else expected[1]
            err = ((got.float() - want.float()).abs().max() / want.float().abs().max()).item()
            if err > 2e-2:
                sys.exit(f"conv_layouts_bf16: {name} differs from cl by {err:.3g} of its largest value")
        variants = [("cl", cl), ("nchw", nchw), ("cl_d", lambda: cl(data)), ("nchw_d", lambda: nchw(data)),
                    ("cl_w", lambda: cl(weight)), ("nchw_w", lambda: nchw(weight)), ("unfold_w", unfold_w)]
        if stride == 2:
            variants += [("s2d", s2d), ("s2d_d", lambda: s2d(data)), ("s2d_w", lambda: s2d(weight))]
        times = ", ".join(f"{name} {median_ms(f):.2f}" for name, f in variants)
        print(f"{cin}->{cout} {side}x{side} stride {stride}: {times}", flush=True)


if __name__ == "__main__":
    main()
