#!/usr/bin/env python3
"""Figure 7's layer responses computed the PyTorch way, for `tests/pytorch_responses.rs`.

Loads weights in PyTorch's names (`resnet-tui export --pytorch`) into the project's PyTorch model
(scripts/pytorch_reference.py), runs the first COUNT images of DATA/test_batch.bin (normalised as
resnet-tui does) through it in eval mode, and takes every BatchNorm's output with a forward hook:
in forward order, these are the outputs of each 3x3 convolution after BN and before the ReLU or
the addition. Each is pooled as resnet-tui pools it: the population standard deviation of each
channel over images and positions, then the mean over channels. Prints them as a JSON list.

    .venv/bin/python scripts/pytorch_responses.py DEPTH WEIGHTS DATA COUNT [--plain]
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_reference import MEAN, STD, ResNet  # noqa: E402

RECORD = 1 + 3 * 32 * 32


def test_images(data_dir, count):
    raw = np.fromfile(os.path.join(data_dir, "test_batch.bin"), dtype=np.uint8).reshape(-1, RECORD)[:count]
    images = torch.from_numpy(raw[:, 1:].copy()).view(-1, 3, 32, 32).float() / 255.0
    return (images - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def main():
    depth, weights, data_dir, count = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    torch.set_num_threads(1)
    model = ResNet(depth, plain="--plain" in sys.argv[5:])
    model.load_state_dict(load_file(weights), strict=True)
    model.eval()
    stds = []

    def hook(_module, _inputs, out):
        per_channel = out.transpose(0, 1).reshape(out.shape[1], -1).double()
        stds.append(per_channel.std(dim=1, unbiased=False).mean().item())

    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(test_images(data_dir, count))
    print(json.dumps(stds))


if __name__ == "__main__":
    main()
