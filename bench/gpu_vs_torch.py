#!/usr/bin/env python3
"""dlmem's cuda backend vs PyTorch (2.11, CUDA) on one GPU, side by side in one run.

Rows (issue 9; docs/benchmarks.md records a run):
  plain    resnet50 b64/b128/b256, vgg16 b64, bert-base seq 512 b16: step time and peak
           device memory, dlmem unmanaged ("default") vs PyTorch eager.
  budget   the same models at 50% and 25% of dlmem's unmanaged need, with every dlmem
           policy of the auto / recompute / swap families that this build knows, beside
           PyTorch with torch.utils.checkpoint (sqrt(N) segments for the CNNs, one per
           encoder layer for BERT) and with torch.autograd.graph.save_on_cpu.
  search   (--search) the largest batch each system trains in a fixed budget (--cap,
           16 GiB) at <= 10% slowdown against its own unconstrained step at that batch:
           dlmem's best policy vs PyTorch's plain-or-checkpointed step.

Every measurement is a subprocess (a fresh CUDA context, clean out-of-memory), one
warm-up of 2 steps, the median of --steps steps, each step ended by a device
synchronisation. Both sides: fp32, SGD momentum 0.9, synthetic data, TF32 off unless
--tf32 (then on for both). PyTorch keeps its defaults otherwise (cudnn.benchmark off,
non-deterministic algorithms allowed); dlmem uses only deterministic algorithms.
Memory: dlmem's counted peak of resident bytes (the executor's accounting, <= the
budget) and the device memory its process took (cudaMemGetInfo); PyTorch's
torch.cuda.max_memory_allocated (and max_memory_reserved).

usage: bench/gpu_vs_torch.py BUILD_DIR [--quick] [--search] [--cap 16GiB] [--steps 10]
                             [--tf32] [--rows plain,budget] [--models resnet50,vgg16,bert-base]
Prints one JSON object per row to stdout.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

PLAIN = [("resnet50", 64), ("resnet50", 128), ("resnet50", 256), ("vgg16", 64), ("bert-base", 16)]
QUICK = [("resnet50", 32)]
SEQ_LEN = 512
SEARCH_BATCHES = {"resnet50": [64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048],
                  "vgg16": [32, 48, 64, 96, 128, 192, 256, 384, 512, 768],
                  "bert-base": [8, 12, 16, 24, 32, 48, 64, 96, 128, 192]}


def parse_bytes(s):
    units = {"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
    t = s.strip().lower()
    for u, m in units.items():
        if t.endswith(u):
            return int(float(t[:-len(u)]) * m)
    return int(t)


# ---------------------------------------------------------------- the PyTorch peer (child process)

def torch_models():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Bottleneck(nn.Module):  # torchvision's ResNet v1.5
        def __init__(self, cin, width, stride):
            super().__init__()
            cout = width * 4
            self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width)
            self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
            self.conv3, self.bn3 = nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = F.relu(self.bn1(self.conv1(x)))
            y = F.relu(self.bn2(self.conv2(y)))
            y = self.bn3(self.conv3(y))
            return F.relu(y + (self.down(x) if self.down is not None else x))

    def resnet50():
        try:
            import torchvision
            m = torchvision.models.resnet50(weights=None)
            blocks = [m.conv1, m.bn1, m.relu, m.maxpool, *m.layer1, *m.layer2, *m.layer3, *m.layer4]
            head = nn.Sequential(m.avgpool, nn.Flatten(), m.fc)
            return blocks, head
        except ImportError:
            blocks = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                      nn.MaxPool2d(3, 2, 1)]
            cin = 64
            for width, n, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
                for i in range(n):
                    blocks.append(Bottleneck(cin, width, stride if i == 0 else 1))
                    cin = width * 4
            return blocks, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, 1000))

    def vgg16():
        try:
            import torchvision
            m = torchvision.models.vgg16(weights=None)
            return list(m.features), nn.Sequential(m.avgpool, nn.Flatten(), m.classifier)
        except ImportError:
            layers, cin = [], 3
            for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
                if v == "M":
                    layers.append(nn.MaxPool2d(2, 2))
                else:
                    layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)]
                    cin = v
            head = nn.Sequential(nn.AdaptiveAvgPool2d(7), nn.Flatten(), nn.Linear(512 * 49, 4096), nn.ReLU(True),
                                 nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(),
                                 nn.Linear(4096, 1000))
            return layers, head

    class BertLayer(nn.Module):  # HuggingFace BertLayer, eager attention, post-LN
        def __init__(self, h=768, heads=12, inter=3072, p=0.1):
            super().__init__()
            self.heads = heads
            self.qkv = nn.ModuleList([nn.Linear(h, h) for _ in range(3)])
            self.out, self.ln1 = nn.Linear(h, h), nn.LayerNorm(h, eps=1e-12)
            self.inter, self.out2, self.ln2 = nn.Linear(h, inter), nn.Linear(inter, h), nn.LayerNorm(h, eps=1e-12)
            self.drop = nn.Dropout(p)

        def forward(self, x):
            n, t, h = x.shape
            q, k, v = (m(x).view(n, t, self.heads, h // self.heads).transpose(1, 2) for m in self.qkv)
            a = self.drop(torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(h // self.heads), dim=-1)) @ v
            x = self.ln1(x + self.drop(self.out(a.transpose(1, 2).reshape(n, t, h))))
            return self.ln2(x + self.drop(self.out2(F.gelu(self.inter(x)))))

    class BertEmbeddings(nn.Module):
        def __init__(self, vocab=30522, h=768, positions=512):
            super().__init__()
            self.word, self.pos, self.tok_type = nn.Embedding(vocab, h), nn.Embedding(positions, h), nn.Embedding(2, h)
            self.ln, self.drop = nn.LayerNorm(h, eps=1e-12), nn.Dropout(0.1)

        def forward(self, ids):
            t = ids.shape[1]
            pos = torch.arange(t, device=ids.device)
            return self.drop(self.ln(self.word(ids) + self.pos(pos)[None] + self.tok_type.weight[0]))

    class BertHead(nn.Module):  # pooler (token 0, tanh) + dropout + classifier, 2 labels
        def __init__(self, h=768):
            super().__init__()
            self.pool, self.drop, self.cls = nn.Linear(h, h), nn.Dropout(0.1), nn.Linear(h, 2)

        def forward(self, x):
            return self.cls(self.drop(torch.tanh(self.pool(x[:, 0]))))

    def bert():
        return [BertEmbeddings()] + [BertLayer() for _ in range(12)], BertHead()

    return {"resnet50": resnet50, "vgg16": vgg16, "bert-base": bert}


def torch_row(model, batch, mode, steps, tf32, cap):
    """One PyTorch measurement (runs in a child process)."""
    import torch
    import torch.nn as nn
    from torch.utils.checkpoint import checkpoint, checkpoint_sequential
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    dev = torch.device("cuda")
    if cap:
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, cap / total))
    torch.manual_seed(0)
    blocks, head = torch_models()[model]()
    body = nn.Sequential(*blocks).to(dev)
    head = head.to(dev)
    params = list(body.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    if model == "bert-base":
        x = torch.randint(0, 30522, (batch, SEQ_LEN), device=dev)
        y = torch.randint(0, 2, (batch,), device=dev)
    else:
        x = torch.randn(batch, 3, 224, 224, device=dev)
        y = torch.randint(0, 1000, (batch,), device=dev)
    loss_fn = nn.CrossEntropyLoss()

    def forward():
        if mode == "checkpoint":
            if model == "bert-base":  # one segment per encoder layer, as HF gradient checkpointing
                h = blocks[0](x)
                for layer in blocks[1:]:
                    h = checkpoint(layer, h, use_reentrant=False)
            else:  # Chen et al.'s sqrt(N) segments
                h = checkpoint_sequential(body, max(1, round(math.sqrt(len(blocks)))), x, use_reentrant=False)
            return head(h)
        return head(body(x))

    def step():
        opt.zero_grad(set_to_none=True)
        if mode == "save_on_cpu":
            with torch.autograd.graph.save_on_cpu(pin_memory=True):
                loss = loss_fn(forward(), y)
        else:
            loss = loss_fn(forward(), y)
        loss.backward()
        opt.step()
        return loss

    try:
        for _ in range(2):
            step()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            loss = step()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    except torch.cuda.OutOfMemoryError as e:
        return {"error": str(e).splitlines()[0], "out_of_memory": True}
    times.sort()
    return {"median_step_s": times[len(times) // 2], "min_step_s": times[0], "steps": len(times),
            "max_memory_allocated": torch.cuda.max_memory_allocated(),
            "max_memory_reserved": torch.cuda.max_memory_reserved(), "last_loss": float(loss),
            "torch_version": torch.__version__, "gpu": torch.cuda.get_device_name(0)}


# ---------------------------------------------------------------- the driver

def dlmem_row(build, model, batch, policy, budget, steps, tf32):
    cmd = [os.path.join(build, "cuda_step_bench"), "--model", model, "--batch", str(batch), "--policy", policy,
           "--steps", str(steps), "--warmup", "2"]
    if model == "bert-base":
        cmd += ["--seq-len", str(SEQ_LEN)]
    if budget:
        cmd += ["--budget", budget]
    if tf32:
        cmd.append("--tf32")
    out = subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()
    return json.loads(out[-1]) if out else {"error": "no output", "out_of_memory": False}


def torch_child(model, batch, mode, steps, tf32, cap):
    cmd = [sys.executable, __file__, "--torch-row", json.dumps(
        {"model": model, "batch": batch, "mode": mode, "steps": steps, "tf32": tf32, "cap": cap})]
    r = subprocess.run(cmd, capture_output=True, text=True)
    lines = r.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {"error": r.stderr.strip()[-300:], "out_of_memory": False}


def ratio(a, b):
    return a / b if a and b else None


def emit(obj):
    print(json.dumps(obj), flush=True)


def known_policies(build):
    out = subprocess.run([os.path.join(build, "cuda_step_bench"), "--list-policies"], capture_output=True,
                         text=True).stdout
    names = json.loads(out)["policies"]
    return [p for p in names if p == "auto" or p.startswith(("auto:", "recompute", "swap"))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default="build/release")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--search", action="store_true")
    ap.add_argument("--cap", default="16GiB")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--tf32", action="store_true")
    ap.add_argument("--rows", default="plain,budget")
    ap.add_argument("--models", default="resnet50,vgg16,bert-base")
    ap.add_argument("--torch-row")
    a = ap.parse_args()
    if a.torch_row:
        r = json.loads(a.torch_row)
        emit(torch_row(r["model"], r["batch"], r["mode"], r["steps"], r["tf32"], r["cap"]))
        return

    probe = subprocess.run([os.path.join(a.build, "cuda_step_bench"), "--quick", "--model", "lenet5"],
                           capture_output=True, text=True).stdout
    if '"skipped"' in probe:
        emit({"bench": "gpu_vs_torch", "skipped": json.loads(probe.splitlines()[0])["skipped"]})
        return
    models = set(a.models.split(","))
    rows = [r for r in (QUICK if a.quick else PLAIN) if r[0] in models]
    kinds = a.rows.split(",")
    steps = 3 if a.quick else a.steps
    policies = known_policies(a.build)
    if a.quick:
        policies = policies[:1]

    for model, batch in rows if ("plain" in kinds or "budget" in kinds) else []:
        base = dlmem_row(a.build, model, batch, "default", "", steps, a.tf32)
        tp = torch_child(model, batch, "plain", steps, a.tf32, 0)
        if "plain" in kinds:
            emit({"bench": "gpu_vs_torch", "row": "plain", "model": model, "batch": batch, "dlmem": base,
                  "torch": tp, "step_ratio_dlmem_over_torch": ratio(base.get("median_step_s"), tp.get("median_step_s")),
                  "peak_ratio_dlmem_over_torch": ratio(base.get("peak_device_bytes"), tp.get("max_memory_allocated"))})
        if "budget" not in kinds:
            continue
        peers = {m: torch_child(model, batch, m, steps, a.tf32, 0) for m in ("checkpoint", "save_on_cpu")}
        for share in (["50%"] if a.quick else ["50%", "25%"]):
            for policy in policies:
                d = dlmem_row(a.build, model, batch, policy, share, steps, a.tf32)
                emit({"bench": "gpu_vs_torch", "row": "budget", "model": model, "batch": batch, "budget": share,
                      "policy": policy, "dlmem": d,
                      "dlmem_slowdown": ratio(d.get("median_step_s"), base.get("median_step_s")),
                      "dlmem_peak_over_plain": ratio(d.get("peak_device_bytes"), base.get("peak_device_bytes")),
                      "torch_plain": tp, "torch": peers,
                      "torch_checkpoint_slowdown": ratio(peers["checkpoint"].get("median_step_s"),
                                                         tp.get("median_step_s")),
                      "torch_save_on_cpu_slowdown": ratio(peers["save_on_cpu"].get("median_step_s"),
                                                          tp.get("median_step_s")),
                      "step_ratio_dlmem_over_torch_checkpoint": ratio(d.get("median_step_s"),
                                                                      peers["checkpoint"].get("median_step_s"))})

    if a.search:
        cap = parse_bytes(a.cap)
        for model in [m for m in ("resnet50", "vgg16", "bert-base") if m in models]:
            best = {"dlmem": 0, "torch": 0}
            detail = []
            misses = {"dlmem": 0, "torch": 0}
            for batch in SEARCH_BATCHES[model]:
                if misses["dlmem"] >= 2 and misses["torch"] >= 2:
                    break
                row = {"batch": batch}
                if misses["dlmem"] < 2:
                    ref = dlmem_row(a.build, model, batch, "default", "", steps, a.tf32)
                    ok = None
                    for policy in ["default"] + policies:
                        d = dlmem_row(a.build, model, batch, policy, a.cap, steps, a.tf32)
                        s = ratio(d.get("median_step_s"), ref.get("median_step_s"))
                        if s is not None and s <= 1.10:
                            ok = {"policy": policy, "slowdown": s, "peak": d.get("peak_device_bytes")}
                            break
                    row["dlmem"] = ok
                    if ok:
                        best["dlmem"] = batch
                        misses["dlmem"] = 0
                    else:
                        misses["dlmem"] += 1
                if misses["torch"] < 2:
                    ref = torch_child(model, batch, "plain", steps, a.tf32, 0)
                    ok = None
                    for mode in ("plain", "checkpoint"):
                        t = torch_child(model, batch, mode, steps, a.tf32, cap)
                        s = ratio(t.get("median_step_s"), ref.get("median_step_s"))
                        if s is not None and s <= 1.10:
                            ok = {"mode": mode, "slowdown": s, "peak": t.get("max_memory_allocated")}
                            break
                    row["torch"] = ok
                    if ok:
                        best["torch"] = batch
                        misses["torch"] = 0
                    else:
                        misses["torch"] += 1
                detail.append(row)
            emit({"bench": "gpu_vs_torch", "row": "search", "model": model, "cap_bytes": cap, "max_slowdown": 1.10,
                  "largest_batch_dlmem": best["dlmem"], "largest_batch_torch": best["torch"],
                  "batch_ratio_dlmem_over_torch": ratio(best["dlmem"], best["torch"]), "detail": detail})


if __name__ == "__main__":
    main()
