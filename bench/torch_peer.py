#!/usr/bin/python3
"""dlmem vs PyTorch (Debian's python3-torch, CPU) on the same models and batches.

For every row this runs dlmem's bench/train_step and then the same training step in
PyTorch, back to back, and prints one JSON line with both medians and their ratio.
Fair-peer settings from ../shared/BENCHMARKING.md: 2 threads for both, OpenBLAS with
one thread, SGD with momentum 0.9, synthetic input, one warm-up step, median of >= 3
steps (more for fast rows). PyTorch's stashed bytes are counted with
saved_tensors_hooks (deduplicated by storage), the figure beside dlmem's stashed bytes.

usage: bench/torch_peer.py BUILD_DIR [--quick]
"""
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torchvision  # noqa: E402

THREADS = 2
torch.set_num_threads(THREADS)

ROWS = [("resnet18", 16), ("resnet18", 32), ("resnet50", 8), ("resnet50", 16), ("vgg16", 4), ("vgg16", 8),
        ("mlp", 128), ("mlp", 512), ("lenet5", 64), ("lenet5", 256)]
QUICK = [("resnet18", 16), ("mlp", 128), ("lenet5", 64)]


def lenet5():
    # Caffe LeNet-5 as in Deep Compression (dlmem's "lenet5").
    return nn.Sequential(nn.Conv2d(1, 20, 5), nn.MaxPool2d(2, 2), nn.Conv2d(20, 50, 5), nn.MaxPool2d(2, 2),
                         nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                         nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))


def build(name):
    if name == "lenet5":
        return lenet5(), (1, 28, 28), 10
    if name == "mlp":
        return mlp(), (1, 28, 28), 10
    return getattr(torchvision.models, name)(weights=None), (3, 224, 224), 1000


def torch_row(name, batch, min_steps=3, min_seconds=1.0):
    torch.manual_seed(0)
    model, shape, classes = build(name)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, *shape)
    y = torch.arange(batch) % classes
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    step()  # warm-up
    # Stashed activation bytes (saved for backward), deduplicated by storage; parameters
    # and the input batch are not activations (dlmem counts them as weights and input).
    seen = {}
    skip = {p.storage().data_ptr() for p in model.parameters()} | {x.storage().data_ptr()}

    def pack(t):
        # torch 1.13 has no untyped_storage(); TypedStorage gives the same figures.
        s = t.storage()
        if s.data_ptr() not in skip:
            seen[s.data_ptr()] = s.nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_fn(model(x), y)
    stashed = sum(seen.values())
    del loss
    times = []
    total = 0.0
    while len(times) < min_steps or total < min_seconds:
        t0 = time.perf_counter()
        step()
        dt = time.perf_counter() - t0
        times.append(dt)
        total += dt
        if len(times) > 200:
            break
    times.sort()
    return {"median_step_s": times[len(times) // 2], "steps": len(times), "stashed_bytes": stashed}


def main():
    build_dir = sys.argv[1] if len(sys.argv) > 1 else "build/release"
    rows = QUICK if "--quick" in sys.argv else ROWS
    exe = os.path.join(build_dir, "train_step")
    for name, batch in rows:
        load_before = os.getloadavg()[0]
        out = subprocess.run([exe, "--model", name, "--batch", str(batch), "--threads", str(THREADS)],
                             check=True, capture_output=True, text=True).stdout
        d = json.loads(out.strip().splitlines()[-1])
        t = torch_row(name, batch)
        print(json.dumps({
            "bench": "train_vs_pytorch", "model": name, "batch": batch, "threads": THREADS,
            "dlmem_step_s": d["median_step_s"], "pytorch_step_s": t["median_step_s"],
            "ratio_dlmem_over_pytorch": d["median_step_s"] / t["median_step_s"],
            "dlmem_peak_device_bytes": d["peak_device_bytes"], "dlmem_stashed_bytes": d["stashed_bytes"],
            "pytorch_stashed_bytes": t["stashed_bytes"],
            "stashed_ratio_dlmem_over_pytorch": d["stashed_bytes"] / max(t["stashed_bytes"], 1),
            "loadavg_1m_before": load_before, "loadavg_1m_after": os.getloadavg()[0],
            "torch_version": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
