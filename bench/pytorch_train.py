"""Train the plankwatch VGG-style architecture with PyTorch on the CPU and print images/s.

The network mirrors src/learn/architectures.ts: per block, 3x3 convolutions (no bias) with batch
norm and leaky ReLU (0.1), then 2x2 max pooling; flatten, dropout, dense, leaky ReLU, dropout,
121-way classifier; Adam on softmax cross-entropy. Random inputs: this measures speed only.

    python3 bench/pytorch_train.py --size 48 --blocks '[[16,16],[32,32],[64,64],[128,128]]' --threads 2
"""
import argparse
import json
import time

import torch
from torch import nn


def build(size, blocks, dense, classes=121):
    layers, cin = [], 1
    for block in blocks:
        for cout in block:
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout, momentum=0.1), nn.LeakyReLU(0.1)]
            cin = cout
        layers.append(nn.MaxPool2d(2))
        size //= 2
    layers.append(nn.Flatten())
    features = cin * size * size
    if dense:
        layers += [nn.Dropout(0.5), nn.Linear(features, dense), nn.LeakyReLU(0.1), nn.Dropout(0.5)]
        features = dense
    layers.append(nn.Linear(features, classes))
    return nn.Sequential(*layers)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--size', type=int, default=48)
    p.add_argument('--blocks', default='[[16,16],[32,32],[64,64],[128,128]]')
    p.add_argument('--dense', type=int, default=256)
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--seconds', type=float, default=8)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--inference-only', action='store_true', help='measure inference only, of the TorchScript model frozen for inference')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = build(a.size, json.loads(a.blocks), a.dense)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.rand(a.batch_size, 1, a.size, a.size)
    y = torch.arange(a.batch_size) % 121

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    train = float('nan')
    if not a.inference_only:
        model.train()
        step()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < a.seconds or n < 2:
            step()
            n += 1
        train = n * a.batch_size / (time.perf_counter() - t0)
    model.eval()
    if a.inference_only:
        # As deployed for inference: TorchScript, frozen (batch norm folded into the convolutions).
        model = torch.jit.freeze(torch.jit.script(model))
    with torch.no_grad():
        model(x)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < a.seconds or n < 2:
            model(x)
            n += 1
        infer = n * a.batch_size / (time.perf_counter() - t0)
    print(f'train_images_per_s={train:.1f} inference_images_per_s={infer:.1f} threads={a.threads}')


if __name__ == '__main__':
    main()
