"""dlmem: train networks whose memory does not fit, from Python.

    import dlmem
    plan = dlmem.plan("resnet50", batch=64, budget="40%", device="v100-16gb")
    print(plan.peak, plan.arena, plan.chosen)
    for d in plan.decisions[:5]:
        print(d.name, d.decision, d.saved)

    t = dlmem.Trainer("lenet5", batch=64, budget="50%", optimizer="sgd", lr=0.01)
    for x, y in dlmem.fashion_mnist().batches(64, seed=42):
        loss = t.step(x, y)          # NumPy arrays, read in place

A zoo model is a name (``dlmem.models()``); an ONNX model is a path ending in .onnx
(``dlmem.load_onnx``); a PyTorch module goes through ``dlmem.torch``. Every figure is
the one ``dlmem`` on the command line gives for the same arguments.
"""
from __future__ import annotations

import json as _json
import os as _os
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ._errors import Error, OutOfMemory
from . import _dlmem

__all__ = [
    "Error", "OutOfMemory", "ModelInfo", "OnnxModel", "Analysis", "Decision", "Plan", "Simulation", "Trainer",
    "models", "load_onnx", "onnx_ops", "analyze", "plan", "simulate", "load_checkpoint", "fashion_mnist", "run_onnx",
    "read_tensor", "Remat", "remat",
]


def _spec(model, batch=1, image_size=0, seq_len=0, classes=0, optimizer="sgd", device="cpu", threads=0):
    if isinstance(model, OnnxModel):
        model = model.path
    if not isinstance(model, str):
        raise Error(f"model must be a zoo model name or an ONNX path, got {type(model).__name__}")
    if not isinstance(batch, int) or isinstance(batch, bool):
        raise Error(f"batch must be an int, got {batch!r}")
    s = _dlmem.ModelSpec()
    s.model, s.batch, s.image_size, s.seq_len, s.classes = model, batch, image_size, seq_len, classes
    s.optimizer, s.device, s.threads = optimizer, device, threads
    return s


def _budget(budget) -> str:
    if budget is None:
        return ""
    if isinstance(budget, (int, float)) and not isinstance(budget, bool):
        if isinstance(budget, float) and 0 < budget <= 1:
            return f"{budget * 100:.6g}%"
        return str(int(budget))
    if isinstance(budget, str):
        return budget
    raise Error(f"budget must be bytes (int), a share (0.4 or '40%') or a size ('4GiB'), got {budget!r}")


@dataclass(frozen=True)
class ModelInfo:
    """A zoo model: its name, what it is, and its reference parameter count."""
    name: str
    description: str
    parameters: int


def models() -> List[ModelInfo]:
    """The model zoo, as `dlmem models` lists it."""
    return [ModelInfo(**m) for m in _dlmem.models()]


def onnx_ops() -> List[str]:
    """The ONNX op types `load_onnx` imports."""
    return list(_dlmem.onnx_ops())


@dataclass(frozen=True)
class OnnxModel:
    """An ONNX model file, imported: its inputs, outputs, opset and ops."""
    path: str
    inputs: List[Dict[str, Any]]
    outputs: List[Dict[str, Any]]
    opset: int
    producer: str
    op_counts: Dict[str, int]
    parameters: int


def load_onnx(path: str, batch: int = 1) -> OnnxModel:
    """Imports an ONNX model (raises dlmem.Error naming the problem when it cannot).

    The result can be passed wherever a model is taken (analyze, plan, Trainer).
    """
    path = _os.fspath(path)
    info = _dlmem.onnx_info(path, batch)
    return OnnxModel(path=path, **info)


@dataclass(frozen=True)
class Analysis:
    """The memory breakdown of one training step (`dlmem analyze`)."""
    model: str
    batch: int
    optimizer: str
    parameters: int
    bytes_by_role: Dict[str, int]
    stashed_activations: int
    peak_no_free: int
    peak_free_at_last_use: int
    peak_node: str
    lower_bound: int
    lower_bound_node: str
    flops: Dict[str, float]
    nodes: int
    values: int
    layers: Optional[List[Dict[str, Any]]] = None

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        if d["layers"] is None:
            del d["layers"]
        return d


def analyze(model, batch: int = 64, *, image_size: int = 0, seq_len: int = 0, classes: int = 0,
            optimizer: str = "sgd", layers: bool = False, workspaces: bool = True) -> Analysis:
    """Bytes by role, peaks and the lower bound of a training step, as `dlmem analyze`
    (workspaces: count the cpu kernels' scratch, as the CLI does unless --no-workspace)."""
    d = _dlmem.analyze(_spec(model, batch, image_size, seq_len, classes, optimizer), layers, workspaces)
    return Analysis(**d)


@dataclass(frozen=True)
class Decision:
    """What a plan does with one stashed tensor: keep, share, recompute, swap or encode."""
    name: str
    bytes: int
    decision: str
    detail: str
    cost_seconds: float
    saved: int


@dataclass(frozen=True)
class Simulation:
    """A plan's step on a device profile's cost model (`dlmem simulate`)."""
    device: str
    step_seconds: float
    compute_seconds: float
    stall_seconds: float
    d2h_seconds: float
    h2d_seconds: float
    bound_seconds: float
    step_over_bound: float
    phase_bound_seconds: float
    step_over_phase_bound: float
    unmanaged_step_seconds: float
    step_over_unmanaged: float
    bytes_to_host: int
    bytes_to_device: int
    peak_device: int
    planned_peak: int
    device_arena: int
    device_memory: int
    fits: bool


class Plan:
    """A memory plan: where every byte of a training step lives, and when.

    Attributes come from the same statistics `dlmem plan --json` prints: ``peak``
    (resident device bytes at the peak), ``arena`` (the placed device arena),
    ``budget``, ``policy``, ``chosen`` (what auto chose), ``extra_flops``; ``stats`` has
    them all.
    """

    def __init__(self, handle, model: str, batch: int):
        self._h = handle
        self.model = model
        self.batch = batch
        self.stats: Dict[str, Any] = handle.stats()
        self._decisions: Optional[List[Decision]] = None

    peak = property(lambda self: self.stats["peak_device"], doc="resident device bytes at the peak")
    arena = property(lambda self: self.stats["device_arena"], doc="the placed device arena (bytes)")
    budget = property(lambda self: self.stats["budget"], doc="the budget it was made for (0: none)")
    policy = property(lambda self: self.stats["policy"], doc="the policy that made it")
    chosen = property(lambda self: self.stats.get("chosen", ""), doc="auto: the candidate it kept")
    extra_flops = property(lambda self: self.stats["extra_flops"], doc="FLOPs recomputation adds")
    lower_bound = property(lambda self: self.stats["lower_bound"], doc="no plan keeps less resident")

    @property
    def decisions(self) -> List[Decision]:
        """Per stashed tensor, in forward order: its decision, cost and saving (--explain)."""
        if self._decisions is None:
            self._decisions = [Decision(**t) for t in self._h.explain()["tensors"]]
        return self._decisions

    def totals(self) -> Dict[str, Dict[str, Any]]:
        """Tensors, bytes, bytes saved and simulated cost by decision."""
        return self._h.explain()["totals"]

    def to_json(self) -> str:
        """The plan file `dlmem plan --out` writes (`dlmem simulate --plan` reads it)."""
        return self._h.to_json()

    def save(self, path) -> None:
        """Writes to_json() to `path`, atomically."""
        _dlmem.write_text(_os.fspath(path), self.to_json())

    def plot(self, path) -> None:
        """Writes the resident memory by role over the program as an SVG, atomically."""
        _dlmem.write_text(_os.fspath(path), self._h.svg())

    def report(self, path, compare: Optional["Plan"] = None) -> None:
        """Writes the plan report (`dlmem plan --html`, docs/report.md): one self-contained
        HTML page of memory over time with the tensors resident at every instant, the
        streams and the per-tensor decisions; with `compare`, the two plans side by side."""
        plans = [self._h.report_data()]
        if compare is not None:
            if not isinstance(compare, Plan):
                raise Error(f"report's compare takes a dlmem.Plan, got {type(compare).__name__}")
            plans.append(compare._h.report_data())
        _dlmem.write_report(_os.fspath(path), plans)

    def simulate(self, device: str = "") -> Simulation:
        """The step on `device`'s profile (default: the one it was planned for)."""
        return Simulation(**self._h.simulate(device))

    def __repr__(self) -> str:
        chosen = f" ({self.chosen})" if self.chosen else ""
        return f"<dlmem.Plan {self.model} batch {self.batch}: {self.policy}{chosen}, peak {self.peak}, arena {self.arena}>"


def plan(model, batch: int = 64, *, policy: Optional[str] = None, budget=None, device: str = "cpu",
         image_size: int = 0, seq_len: int = 0, classes: int = 0, optimizer: str = "sgd",
         time_limit: float = 60, place_time_limit: float = 1, lossy: str = "") -> Plan:
    """Plans a training step of `model` (`dlmem plan`).

    policy: any of `dlmem plan --help`'s; default ``"auto"`` with a budget, else
        ``"default"``.
    budget: bytes (int), a share of the default plan's arena (0.4 or "40%") or a size
        ("4GiB"); None: no limit.
    device: "cpu", or a device profile to plan for ("v100-16gb", "h100-80gb", a file).

    Raises dlmem.OutOfMemory (with .min_budget when the policy knows it) when the
    budget cannot be met, dlmem.Error for bad arguments.
    """
    spec = _spec(model, batch, image_size, seq_len, classes, optimizer, device)
    h = _dlmem.plan(spec, policy or "", _budget(budget), float(time_limit), float(place_time_limit), lossy)
    return Plan(h, spec.model, batch)


def simulate(plan: Plan, device: str = "") -> Simulation:
    """`plan.simulate(device)`."""
    if not isinstance(plan, Plan):
        raise Error(f"simulate takes a dlmem.Plan, got {type(plan).__name__}")
    return plan.simulate(device)


@dataclass(frozen=True)
class Remat:
    """A recomputation planner's schedule of a graph from the rematerialisation
    literature (`dlmem remat`; the file format is in docs/recomputation.md)."""
    graph: str
    nodes: int
    backward_nodes: int
    policy: str
    topological_peak: int
    budget: int
    peak: int
    peak_over_budget: float
    lower_bound: int
    cost: float
    base_cost: float
    extra_cost_pct: float
    computations: int
    status: str
    optimal: bool
    objective: float
    bound: float
    gap_pct: float
    seconds: float


def remat(graph: str, budget=0.8, *, policy: str = "greedy", time_limit: float = 60.0) -> Remat:
    """Plans the node-link JSON graph `graph` with a recomputation policy (sqrt, chain,
    milp, greedy) within `budget`: a fraction of its topological order's peak (0.8),
    "80%", bytes as an int, or "1.5GiB". Raises OutOfMemory when the policy cannot
    reach it."""
    if isinstance(budget, bool) or not isinstance(budget, (int, float, str)):
        raise Error(f"budget must be a fraction (0.8), bytes (int) or a string (\"80%\", \"1.5GiB\"), got {budget!r}")
    if isinstance(budget, int) and budget > 1:
        text = f"{budget}B"
    else:
        text = repr(float(budget)) if isinstance(budget, (int, float)) else budget
    return Remat(**_dlmem.remat(_os.fspath(graph), policy, text, float(time_limit)))


class Trainer:
    """Trains a model under a memory plan, one NumPy batch at a time.

        t = dlmem.Trainer("lenet5", batch=64, budget="50%", optimizer="sgd", lr=0.01)
        loss = t.step(images, labels)    # float32 [64,1,28,28] and int32 [64]

    The weights start as `dlmem train --seed` initialises them (or from the ONNX
    file's initializers); `step` reads the arrays in place when they are C-contiguous
    of the model's dtype (float32 inputs or int32 token ids, int32 labels).
    """

    def __init__(self, model, batch: int = 64, *, policy: Optional[str] = None, budget=None,
                 optimizer: str = "sgd", lr: Optional[float] = None, momentum: float = 0.9,
                 weight_decay: float = 0.0, seed: int = 42, device: str = "cpu", threads: int = 0,
                 image_size: int = 0, seq_len: int = 0, classes: int = 0, dataset: str = "none",
                 resume: Optional[str] = None, lossy: str = ""):
        spec = _spec(model, batch, image_size, seq_len, classes, optimizer, device, threads)
        self.model = spec.model
        self.batch = batch
        self._h = _dlmem.trainer(spec, policy or "", _budget(budget), -1.0 if lr is None else float(lr),
                                 float(momentum), float(weight_decay), int(seed), dataset, resume or "", lossy)

    @property
    def plan_stats(self) -> Dict[str, Any]:
        """The training plan's statistics (as Plan.stats)."""
        return self._h.plan_stats()

    @property
    def measured_peak(self) -> int:
        """Device bytes the executor has used at most so far."""
        return self._h.measured_peak()

    @property
    def steps_done(self) -> int:
        return self._h.steps_done()

    @property
    def input_shape(self) -> Tuple[int, ...]:
        return tuple(self._h.input_shape())

    def step(self, inputs, labels) -> float:
        """One training step on a batch; returns its loss."""
        import numpy as np
        if not isinstance(inputs, np.ndarray):
            raise Error(f"inputs must be a NumPy array, got {type(inputs).__name__}")
        if not isinstance(labels, np.ndarray):
            raise Error(f"labels must be a NumPy array, got {type(labels).__name__}")
        return self._h.step(inputs, labels)

    def predict(self, inputs):
        """The model's logits on one batch, in inference mode (batch-norm on running statistics)."""
        return self._h.predict(inputs)

    def evaluate(self, inputs, labels) -> float:
        """Accuracy over arrays of any length (a multiple of the batch is fastest; the
        last partial batch is padded)."""
        import numpy as np
        n = len(inputs)
        if len(labels) != n:
            raise Error(f"labels has {len(labels)} rows, inputs {n}")
        correct = 0
        for i in range(0, n, self.batch):
            x = inputs[i:i + self.batch]
            k = len(x)
            if k < self.batch:
                pad = np.zeros((self.batch - k,) + x.shape[1:], dtype=x.dtype)
                x = np.concatenate([x, pad])
            logits = self.predict(np.ascontiguousarray(x))
            correct += int((logits[:k].argmax(axis=1) == labels[i:i + k]).sum())
        return correct / n if n else 0.0

    def fit(self, epochs: int = 1, steps: int = 0, progress: bool = False) -> Dict[str, Any]:
        """Runs `dlmem train`'s loop on the trainer's dataset (Trainer(dataset=...)):
        epochs of `steps` steps (0: the whole dataset). progress: dlmem's progress bar."""
        return self._h.run(int(epochs), int(steps), bool(progress))

    def state_dict(self) -> Dict[str, Any]:
        """Every weight and optimizer state by name, as NumPy arrays (copies)."""
        return self._h.state()

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Sets weights (and optimizer state) by name."""
        self._h.load_state(dict(state))

    def save(self, path) -> None:
        """A checkpoint as `dlmem train --save` writes it (atomically)."""
        self._h.save(_os.fspath(path))


def load_checkpoint(path) -> Dict[str, Any]:
    """A checkpoint's model, step, epoch, optimizer and tensors (NumPy arrays by name)."""
    return _dlmem.load_checkpoint(_os.fspath(path))


class _FashionMnist:
    """Fashion-MNIST from Debian's dataset-fashion-mnist, in the trainer's order."""

    def __init__(self, split: str, data_dir: str):
        self._d = _dlmem.fashion_mnist(split, data_dir)

    def __len__(self) -> int:
        return len(self._d)

    def batches(self, batch: int = 64, *, seed: int = 42, epoch: int = 0, shuffle: bool = True,
                drop_last: bool = True) -> List[Tuple[Any, Any]]:
        """(images float32 [B,1,28,28], labels int32 [B]) in the order `dlmem train
        --seed SEED` visits them in that epoch."""
        return self._d.batches(batch, shuffle, seed, drop_last, epoch)


def fashion_mnist(split: str = "train", data_dir: str = "") -> _FashionMnist:
    """The Fashion-MNIST split ("train" or "test"), normalised as dlmem trains on it."""
    return _FashionMnist(split, data_dir)


def read_tensor(path):
    """An ONNX TensorProto file (the ONNX test data's input_0.pb) as a NumPy array."""
    return _dlmem.read_tensor(_os.fspath(path))


def run_onnx(path, inputs: Dict[str, Any], *, policy: str = "default", budget=None):
    """Forward inference of an ONNX model (`dlmem run`): inputs and outputs by name."""
    outputs, _memory = _dlmem.run_onnx(_os.fspath(path), dict(inputs), policy, _budget(budget))
    return outputs
