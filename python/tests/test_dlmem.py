"""The Python package against the command line and PyTorch (make test runs these with
Debian's pytest; PYTHONPATH, DLMEM_CLI and DLMEM_SOURCE_DIR come from ctest)."""
import json
import os
import subprocess

import numpy as np
import pytest

import dlmem

CLI = os.environ.get("DLMEM_CLI", "dlmem")
SRC = os.environ.get("DLMEM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
ONNX = os.path.join(SRC, "tests", "data", "onnx")
HAVE_FASHION = os.path.isdir("/usr/share/datasets/fashion-mnist")


def cli(*args):
    r = subprocess.run([CLI, *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def cli_json(*args):
    return json.loads(cli(*args, "--json"))


def test_models_and_onnx_ops():
    names = [m.name for m in dlmem.models()]
    assert "resnet50" in names and "lenet5" in names
    assert next(m for m in dlmem.models() if m.name == "resnet50").parameters == 25557032
    assert "Conv" in dlmem.onnx_ops() and "LayerNormalization" in dlmem.onnx_ops()


@pytest.mark.parametrize("model,batch,image,policy,budget,device", [
    ("resnet18", 64, 64, None, "80%", "v100-16gb"),                 # auto (chooses recompute:greedy)
    ("mobilenet_v2", 32, 64, "swap:tensor", "60%", "v100-16gb"),
    ("bert-tiny", 32, 0, None, "80%", "h100-80gb"),
])
def test_plan_gives_the_clis_numbers(tmp_path, model, batch, image, policy, budget, device):
    p = dlmem.plan(model, batch, policy=policy, budget=budget, device=device, image_size=image)
    args = ["plan", "--model", model, "--batch", str(batch), "--budget", budget, "--device", device]
    if image:
        args += ["--image-size", str(image)]
    if policy:
        args += ["--policy", policy]
    c = cli_json(*args)
    for key in ["peak_device", "device_arena", "extra_flops", "lower_bound", "budget", "policy"]:
        assert p.stats[key] == c[key], key
    assert p.chosen == c.get("chosen", "")
    # The simulated step: dlmem simulate on the CLI's plan file equals Plan.simulate().
    f = tmp_path / "plan.json"
    cli(*args, "--out", str(f))
    s = cli_json("simulate", "--plan", str(f), "--device", device)
    sim = p.simulate()
    assert sim.step_seconds == s["step_seconds"]
    assert sim.bytes_to_host == s["bytes_to_host"]
    # The plan file round-trips through the CLI too.
    p.save(tmp_path / "mine.json")
    s2 = cli_json("simulate", "--plan", str(tmp_path / "mine.json"), "--device", device)
    assert s2["step_seconds"] == s["step_seconds"]


def test_plan_objects(tmp_path):
    p = dlmem.plan("resnet18", 64, budget=0.8, device="v100-16gb", image_size=64)
    assert p.peak <= p.arena <= p.budget
    assert p.decisions and {d.decision for d in p.decisions} <= {"keep", "share", "recompute", "swap", "encode"}
    assert sum(t["tensors"] for t in p.totals().values()) == len(p.decisions)
    json.loads(p.to_json())
    p.plot(tmp_path / "m.svg")
    assert (tmp_path / "m.svg").read_text().startswith("<svg")
    assert "resnet18" in repr(p)


def page_data(path):
    text = path.read_text()
    start = text.index('<script id="dlmem-data" type="application/json">') + len('<script id="dlmem-data" type="application/json">')
    return json.loads(text[start:text.index("</script>", start)])


def test_plan_report_is_the_clis_page(tmp_path):
    p = dlmem.plan("resnet20", 32, budget="60%", device="v100-16gb")
    q = dlmem.plan("resnet20", 32, policy="swap:tensor", budget="70%", device="v100-16gb")
    p.report(tmp_path / "p.html")
    p.report(tmp_path / "pq.html", compare=q)
    cli_json("plan", "--model", "resnet20", "--batch", "32", "--budget", "60%", "--device", "v100-16gb",
             "--html", str(tmp_path / "cli.html"))
    mine, cli = page_data(tmp_path / "p.html"), page_data(tmp_path / "cli.html")
    assert len(mine) == 1 and len(page_data(tmp_path / "pq.html")) == 2
    for k in ("buffers", "program", "explain", "names"):
        assert mine[0][k] == cli[0][k], k
    assert mine[0]["header"]["planned_peak"] == p.peak
    with pytest.raises(dlmem.Error, match="compare takes a dlmem.Plan"):
        p.report(tmp_path / "x.html", compare="resnet20")


def test_analyze_gives_the_clis_numbers():
    a = dlmem.analyze("lenet5", 64)
    c = cli_json("analyze", "--model", "lenet5", "--batch", "64")
    for key in ["parameters", "bytes_by_role", "peak_no_free", "peak_free_at_last_use", "lower_bound", "nodes"]:
        assert getattr(a, key) == c[key], key
    assert a.to_dict()["parameters"] == 431080


@pytest.mark.skipif(not HAVE_FASHION, reason="dataset-fashion-mnist is not installed")
def test_training_lenet5_from_numpy_is_bit_identical_to_dlmem_train(tmp_path):
    steps = 30
    ck = tmp_path / "cli.ckpt"
    c = cli_json("train", "--model", "lenet5", "--dataset", "fashion-mnist", "--epochs", "1", "--steps", str(steps),
                 "--batch", "64", "--optimizer", "sgd", "--lr", "0.01", "--seed", "42", "--no-eval", "--save", str(ck))
    t = dlmem.Trainer("lenet5", 64, optimizer="sgd", lr=0.01, seed=42)
    losses = []
    for x, y in dlmem.fashion_mnist().batches(64, seed=42, epoch=0)[:steps]:
        losses.append(t.step(x, y))
    assert sum(losses) / steps == c["epochs"][0]["train_loss"]
    saved = dlmem.load_checkpoint(ck)["tensors"]
    mine = t.state_dict()
    assert set(mine) <= set(saved)
    for name, value in mine.items():
        assert np.array_equal(value.reshape(-1), saved[name].reshape(-1)), name
    # And the state round-trips: a fresh trainer loaded with it continues identically.
    t2 = dlmem.Trainer("lenet5", 64, optimizer="sgd", lr=0.01, seed=7)
    t2.load_state_dict(mine)
    x, y = dlmem.fashion_mnist().batches(64, seed=42, epoch=0)[steps]
    assert t2.step(x, y) == t.step(x, y)


def test_onnx_model_from_python(tmp_path):
    m = dlmem.load_onnx(os.path.join(ONNX, "cnn.onnx"))
    assert m.inputs[0]["name"] == "input" and m.op_counts["Conv"] == 2
    # dlmem.run_onnx gives what `dlmem run` writes.
    out = tmp_path / "out"
    cli("run", "--onnx", os.path.join(ONNX, "cnn.onnx"), "--input", "input=" + os.path.join(ONNX, "cnn", "input_0.pb"),
        "--output-dir", str(out))
    x = dlmem.read_tensor(os.path.join(ONNX, "cnn", "input_0.pb"))
    y = dlmem.run_onnx(os.path.join(ONNX, "cnn.onnx"), {"input": x})["logits"]
    assert np.array_equal(y, dlmem.read_tensor(out / "output_0.pb"))
    assert np.allclose(y, dlmem.read_tensor(os.path.join(ONNX, "cnn", "output_0.pb")), rtol=1e-4, atol=1e-6)
    p = dlmem.plan(m, 8, budget="60%")
    assert p.peak < dlmem.plan(m, 8).peak


def test_bad_arguments_raise_with_the_argument_named():
    with pytest.raises(dlmem.Error, match="policy"):
        dlmem.plan("lenet5", 8, policy="nonsense")
    with pytest.raises(dlmem.Error, match="unknown model"):
        dlmem.plan("no-such-net", 8)
    with pytest.raises(dlmem.OutOfMemory) as e:
        dlmem.plan("lenet5", 64, policy="recompute:greedy", budget=1 << 16)
    assert isinstance(e.value.min_budget, int) and e.value.min_budget > (1 << 16)
    assert isinstance(e.value, MemoryError)
    with pytest.raises(dlmem.Error, match="batch"):
        dlmem.plan("lenet5", 0)
    with pytest.raises(dlmem.Error, match="budget"):
        dlmem.plan("lenet5", 8, budget=[1])
    t = dlmem.Trainer("lenet5", 4, optimizer="sgd")
    x = np.zeros((4, 1, 28, 28), np.float32)
    y = np.zeros(4, np.int32)
    with pytest.raises(dlmem.Error, match="inputs"):
        t.step(np.zeros((3, 1, 28, 28), np.float32), y)
    with pytest.raises(dlmem.Error, match="inputs must be a C-contiguous float32"):
        t.step(x.astype(np.float64), y)
    with pytest.raises(dlmem.Error, match="labels"):
        t.step(x, y.astype(np.int64))
    with pytest.raises(dlmem.Error, match="labels must be a NumPy array"):
        t.step(x, [0, 1, 2, 3])
    with pytest.raises(dlmem.Error, match="label"):
        t.step(x, np.full(4, 99, np.int32))  # out of range for 10 classes
    assert np.isfinite(t.step(x, y))



def _remat_chain(path, layers=12):
    """A training chain in node-link JSON: forward layers, then their gradients."""
    nodes, links = [], []
    for i in range(layers):
        nodes.append({"id": i, "cost_cpu": 1 + i % 3, "cost_ram": (1 + i % 4) << 20})
        if i:
            links.append({"source": i - 1, "target": i})
    for i in reversed(range(1, layers)):
        g = len(nodes)
        nodes.append({"id": g, "cost_cpu": 2, "cost_ram": 1 << 20, "backward": True})
        links += [{"source": i, "target": g}, {"source": i - 1, "target": g}]
        if g > layers:
            links.append({"source": g - 1, "target": g})
    path.write_text(json.dumps({"directed": True, "nodes": nodes, "links": links}))
    return path


def test_remat_of_an_external_graph_is_the_clis(tmp_path):
    path = _remat_chain(tmp_path / "chain.json")
    r = dlmem.remat(path, 0.7)
    j = cli_json("remat", "--graph", str(path), "--budget", "0.7")["results"][0]
    assert isinstance(r, dlmem.Remat) and r.policy == "recompute:greedy" and r.nodes == 23
    assert r.peak == j["peak"] and r.extra_cost_pct == j["extra_cost_pct"] and r.computations == j["computations"]
    assert r.peak <= r.budget < r.topological_peak and r.extra_cost_pct > 0
    assert dlmem.remat(path, "70%").peak == r.peak
    assert dlmem.remat(path, r.budget).peak == r.peak  # bytes
    with pytest.raises(dlmem.OutOfMemory):
        dlmem.remat(path, 0.05)
    with pytest.raises(dlmem.Error, match="fraction"):
        dlmem.remat(path, 1.5)
    with pytest.raises(dlmem.Error, match="sqrt, chain, milp or greedy"):
        dlmem.remat(path, 0.8, policy="share")
    with pytest.raises(dlmem.Error, match="missing.json"):
        dlmem.remat(tmp_path / "missing.json")


def test_bad_files_raise_with_the_file_named(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf")
    with pytest.raises(dlmem.Error, match="bad.onnx: not an ONNX model"):
        dlmem.load_onnx(bad)
    with pytest.raises(dlmem.Error, match="missing.ckpt"):
        dlmem.load_checkpoint(tmp_path / "missing.ckpt")


@pytest.mark.skipif(not HAVE_FASHION, reason="dataset-fashion-mnist is not installed")
def test_torch_cnn_trained_under_half_the_memory_loads_back_with_dlmems_accuracy():
    torch = pytest.importorskip("torch", reason="python3-torch is not installed")
    import dlmem.torch as dt
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(16 * 7 * 7, 10))
    t = dt.Trainer(net, torch.rand(64, 1, 28, 28), budget="50%", optimizer="sgd", lr=0.05)
    assert t.plan_stats["budget"] > 0
    for x, y in dlmem.fashion_mnist().batches(64, seed=1)[:150]:
        t.step(x, y)
    assert t.measured_peak <= t.plan_stats["device_arena"]
    test = dlmem.fashion_mnist("test").batches(64, shuffle=False)[:40]
    xs = np.concatenate([x for x, _ in test])
    ys = np.concatenate([y for _, y in test])
    ours = t.evaluate(xs, ys)
    assert ours > 0.6
    net.load_state_dict(t.state_dict())
    net.eval()
    with torch.no_grad():
        theirs = float((net(torch.from_numpy(xs)).argmax(1).numpy() == ys).mean())
    assert abs(ours - theirs) <= 0.001, (ours, theirs)
