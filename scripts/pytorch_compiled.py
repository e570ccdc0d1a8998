#!/usr/bin/env python3
"""PyTorch's fastest CPU training path for `scripts/bench_compare`: the reference model of
`pytorch_reference.py` under `torch.compile` (TorchInductor, which fuses the elementwise passes
between the convolutions: BatchNorm, ReLU, the residual additions, and their backward).

What is compiled is what a PyTorch user compiles: `torch.compile(model)` (default mode, the
forward and, through AOTAutograd, the backward), with the same eager for-each SGD, the same
augmentation in eager mode and the same loss as the eager reference, so the two scripts differ
only in the compilation. bf16 is autocast around the compiled forward and the loss, fp32 weights.
The first steps compile (tens of seconds on two cores): they are warm-up, never timed.

    .venv/bin/python scripts/pytorch_compiled.py --threads 2 --steps 30 [--precision both] [--json out.json]

Prints one line per measurement: `pytorch compiled_<layout> <img/s> img/s` (`bf16_` before bf16 ones).
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_reference import measure  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=30)
    # Compilation happens in the first step (forward and backward); a few more let Inductor's
    # autotuned kernels and the allocator settle before timing.
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--precision", choices=["fp32", "bf16", "both"], default="fp32")
    p.add_argument("--layout", choices=["nchw", "channels_last", "both"], default="channels_last")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    out = {"torch": torch.__version__, "threads": a.threads, "depth": a.depth, "batch_size": a.batch_size}
    layouts = {"nchw": [False], "channels_last": [True], "both": [False, True]}[a.layout]
    for bf16 in {"fp32": [False], "bf16": [True], "both": [False, True]}[a.precision]:
        for cl in layouts:
            name = ("bf16_" if bf16 else "") + "compiled_" + ("channels_last" if cl else "nchw")
            out[name] = measure(a.depth, a.batch_size, a.steps, a.warmup, cl, torch.device("cpu"), bf16, compile=True)
            print(f"pytorch {name} {out[name]:.1f} img/s", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
