"""dlmem for PyTorch modules: the module is exported with torch.onnx.export to a
temporary ONNX file and imported (its parameters are the file's initializers, named
as the module names them), so every dlmem policy plans and trains it.

    import dlmem.torch
    plan = dlmem.torch.plan(net, torch.rand(64, 1, 28, 28), budget="50%")
    t = dlmem.torch.Trainer(net, torch.rand(64, 1, 28, 28), budget="50%", lr=0.05)
    for x, y in dlmem.fashion_mnist().batches(64):
        t.step(x, y)
    net.load_state_dict(t.state_dict())     # the trained weights, back in the module

torch is needed only here: ``import dlmem`` works without it. The module must map one
input batch to [batch, classes] logits for training (dlmem adds the cross-entropy).
Batch-norm running variance follows ONNX's BatchNormalization (the batch variance,
where PyTorch's own training keeps the unbiased one).
"""
from __future__ import annotations

import os
import tempfile
from typing import Any, Dict, Optional

import dlmem


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the machine
        raise dlmem.Error("dlmem.torch needs PyTorch (Debian: apt-get install python3-torch)") from e
    return torch


def export(module, example_inputs, path, *, opset: int = 17) -> str:
    """Writes `module` as an ONNX model at `path` (training mode, batch dimension
    dynamic, parameters kept under their names). Returns the path."""
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise dlmem.Error(f"module must be a torch.nn.Module, got {type(module).__name__}")
    args = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    was_training = module.training
    module.train()
    state = {k: v.clone() for k, v in module.state_dict().items()}
    try:
        torch.onnx.export(module, args, os.fspath(path), opset_version=opset,
                          training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    finally:
        module.load_state_dict(state)  # exporting ran a forward: batch-norm statistics moved
        module.train(was_training)
    return os.fspath(path)


def _batch_of(example_inputs, batch):
    if batch is not None:
        return batch
    x = example_inputs[0] if isinstance(example_inputs, tuple) else example_inputs
    return int(x.shape[0])


def plan(module, example_inputs, *, batch: Optional[int] = None, **kwargs) -> dlmem.Plan:
    """dlmem.plan on the exported module (keyword arguments as dlmem.plan's)."""
    with tempfile.TemporaryDirectory(prefix="dlmem-") as d:
        path = export(module, example_inputs, os.path.join(d, "module.onnx"))
        return dlmem.plan(path, _batch_of(example_inputs, batch), **kwargs)


class Trainer(dlmem.Trainer):
    """dlmem.Trainer on the exported module; state_dict() gives torch tensors under the
    module's own names, ready for module.load_state_dict."""

    def __init__(self, module, example_inputs, *, batch: Optional[int] = None, **kwargs):
        self._module = module
        self._dir = tempfile.TemporaryDirectory(prefix="dlmem-")
        self.onnx_path = export(module, example_inputs, os.path.join(self._dir.name, "module.onnx"))
        super().__init__(self.onnx_path, _batch_of(example_inputs, batch), **kwargs)

    def state_dict(self) -> Dict[str, Any]:
        """The module's state_dict with every entry dlmem trains or updates (weights,
        batch-norm running statistics) replaced by dlmem's values."""
        torch = _torch()
        mine = super().state_dict()
        out = {}
        for name, value in self._module.state_dict().items():
            if name in mine:
                out[name] = torch.from_numpy(mine[name].reshape(tuple(value.shape))).to(value.dtype)
            else:
                out[name] = value.clone()  # e.g. num_batches_tracked
        return out

    def export(self, path) -> None:
        """The exported model with the trained weights, as `dlmem train --export`."""
        dlmem._dlmem.export_onnx(self.onnx_path, os.fspath(path), super().state_dict())
