#!/usr/bin/env python3
"""Writes tests/golden/plans.jsonl: for every zoo model at two batch sizes, every
policy, with no budget and at 70% of the default plan's arena, what `dlmem plan --json`
reports (peak_device, device_arena, extra_flops, bytes moved) or that the policy
refused the budget. Run once from the commit whose plans are the reference:

    python3 tests/golden/make_plan_golden.py build/release/dlmem > tests/golden/plans.jsonl

tests/planners/golden_test.cpp plans the same cases through the library and asserts
the same figures (Issue 10: the pass layout must not change any plan).
"""
import json
import subprocess
import sys
import time

DLMEM = sys.argv[1] if len(sys.argv) > 1 else "build/release/dlmem"
FIRST = sys.argv[2] if len(sys.argv) > 2 else None   # resume from this model
TIMEOUT = 120  # seconds; a case that plans longer is left out (and named on stderr)
DEVICE = "v100-16gb"   # a named profile: the swap planners simulate on it, on any machine
BUDGETS = ["", "70%"]
BATCHES = [2, 16]


def lines(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()


def models():
    out = []
    for line in lines([DLMEM, "models"])[2:]:
        name = line.split()[0] if line.strip() else ""
        if name:
            out.append(name)
    return out


def policies():
    for line in lines([DLMEM, "plan", "--help"]):
        if "--policy" in line:  # "-p,--policy TEXT=default    default | compress | ..."
            return [p.strip() for p in line.split("TEXT=default", 1)[1].split("|")]
    raise SystemExit("no --policy line in 'dlmem plan --help'")


def main():
    ms = models()
    if FIRST:
        ms = ms[ms.index(FIRST):]
    for m in ms:
        for b in BATCHES:
            for p in policies():
                for budget in BUDGETS:
                    if p == "recompute:milp" and budget and m not in ("mlp", "lenet-300-100", "lenet5"):
                        continue  # CBC under a time limit is not repeatable on large graphs
                    cmd = [DLMEM, "plan", "-m", m, "-b", str(b), "-p", p, "--device", DEVICE, "--json"]
                    if budget:
                        cmd += ["--budget", budget]
                    t0 = time.time()
                    try:
                        r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
                    except subprocess.TimeoutExpired:
                        print(f"left out (over {TIMEOUT} s): {' '.join(cmd)}", file=sys.stderr, flush=True)
                        continue
                    row = {"model": m, "batch": b, "policy": p, "budget": budget}
                    if r.returncode == 0:
                        j = json.loads(r.stdout)
                        row.update({"budget_bytes": j.get("budget", 0), "peak_device": j["peak_device"],
                                    "device_arena": j["device_arena"], "extra_flops": j["extra_flops"],
                                    "bytes_to_host": j["bytes_to_host"], "bytes_to_device": j["bytes_to_device"]})
                    elif r.returncode == 2 and "error" in r.stderr:
                        row["refused"] = True
                    else:
                        raise SystemExit(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr}")
                    row["seconds"] = round(time.time() - t0, 3)
                    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
