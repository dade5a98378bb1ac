#!/usr/bin/python3
"""Writes the small PyTorch models dlmem's ONNX tests import, with PyTorch's own
reference values (Debian's python3-torch and python3-onnx; not needed to build or
test dlmem, only to regenerate this folder):

    /usr/bin/python3 tests/data/onnx/make_models.py [OUT_DIR]      # default: this folder
    /usr/bin/python3 tests/data/onnx/make_models.py --torchvision resnet18 OUT_DIR
                                      # a torchvision model (45 MB: not kept in the repo)

Per model NAME it writes
  NAME.onnx                        the model, exported in training mode (batch-norm
                                   uses batch statistics, as dlmem's training graph)
  NAME/input_0.pb, output_0.pb     one forward pass (ONNX TensorProto files, the
                                   format of the ONNX backend test data)
  NAME/train_input_K.pb, train_label_K.pb
                                   five mini-batches, K = 0..4
  NAME/grad_<initializer>.pb       the gradient of every weight on batch 0
  NAME/reference.json              the losses of 5 SGD steps from the exported weights
                                   and the optimizer's settings

Each model file stays well under 2 MB.
"""
import json
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper

ARGS = [a for a in sys.argv[1:] if a != "--torchvision"]
TORCHVISION = ARGS.pop(0) if "--torchvision" in sys.argv[1:] else None
OUT = ARGS[0] if ARGS else os.path.dirname(os.path.abspath(__file__))
BATCH = 8
STEPS = 5
LR = 0.05
MOMENTUM = 0.9


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


class Cnn(nn.Module):
    """A LeNet-like CNN for 28x28 images: conv, batch-norm, ReLU, pooling, linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        x = nn.functional.avg_pool2d(nn.functional.relu6(self.bn2(self.conv2(x))), 2)
        return self.fc(torch.flatten(x, 1))


class Encoder(nn.Module):
    """A 2-layer transformer encoder over token ids, mean-pooled into 10 classes."""

    def __init__(self, vocab=50, d=32, heads=2, ff=64, seq=12):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(1, seq, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, activation="gelu",
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(d, 10)

    def forward(self, ids):
        h = self.encoder(self.embed(ids) + self.pos)
        return self.head(h.mean(dim=1))


def save_tensor(path, array, name):
    t = numpy_helper.from_array(np.ascontiguousarray(array), name)
    with open(path, "wb") as f:
        f.write(t.SerializeToString())


def export(name, model, example, opset, make_batch, steps=STEPS):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(OUT, name + ".onnx")
    model.train()
    torch.onnx.export(model, (example,), path, opset_version=opset,
                      training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    onnx.checker.check_model(onnx.load(path))

    # The forward on the example (weights as exported; batch-norm in training mode
    # updates its running statistics, so run a copy).
    ref = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        out = model(example)
    model.load_state_dict(ref)
    save_tensor(os.path.join(d, "input_0.pb"), example.numpy(), "input")
    save_tensor(os.path.join(d, "output_0.pb"), out.numpy(), "logits")

    # Five SGD steps on fixed batches; gradients of batch 0.
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for k in range(steps):
        x, y = make_batch(k)
        save_tensor(os.path.join(d, f"train_input_{k}.pb"), x.numpy(), "input")
        save_tensor(os.path.join(d, f"train_label_{k}.pb"), y.numpy(), "label")
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        if k == 0:
            for pname, p in model.named_parameters():
                save_tensor(os.path.join(d, f"grad_{pname}.pb"), p.grad.numpy(), pname)
        opt.step()
        losses.append(float(loss))
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump({"model": name, "opset": opset, "batch": BATCH, "lr": LR,
                   "momentum": MOMENTUM, "losses": losses,
                   "torch": torch.__version__}, f, indent=1)
        f.write("\n")
    print(f"{path}: {os.path.getsize(path)} bytes, losses {losses}")


def main():
    torch.manual_seed(0)
    if TORCHVISION:
        import torchvision
        model = getattr(torchvision.models, TORCHVISION)()

        def images224(k):
            gk = torch.Generator().manual_seed(300 + k)
            return torch.rand(BATCH, 3, 224, 224, generator=gk), torch.randint(0, 1000, (BATCH,), generator=gk)

        export(TORCHVISION, model, torch.rand(BATCH, 3, 224, 224, generator=torch.Generator().manual_seed(3)), 17,
               images224, steps=2)
        return
    g = torch.Generator().manual_seed(1)

    def images(k):
        gk = torch.Generator().manual_seed(100 + k)
        return torch.rand(BATCH, 1, 28, 28, generator=gk), torch.randint(0, 10, (BATCH,), generator=gk)

    def tokens(k):
        gk = torch.Generator().manual_seed(200 + k)
        return torch.randint(0, 50, (BATCH, 12), generator=gk), torch.randint(0, 10, (BATCH,), generator=gk)

    export("mlp", Mlp(), torch.rand(BATCH, 1, 28, 28, generator=g), 13, images)
    export("cnn", Cnn(), torch.rand(BATCH, 1, 28, 28, generator=g), 15, images)
    export("encoder13", Encoder(), torch.randint(0, 50, (BATCH, 12), generator=g), 13, tokens)
    export("encoder17", Encoder(), torch.randint(0, 50, (BATCH, 12), generator=g), 17, tokens)


if __name__ == "__main__":
    main()
