#!/usr/bin/env python3
"""Data-parallel training across processes: `mpirun --allow-run-as-root --oversubscribe
-np 2 dlmem train --data-parallel` (Open MPI, loopback) for ZeRO 0-3 on LeNet-5 (SGD)
and BERT-tiny (Adam). With --deterministic-reduce the losses, the per-rank counted and
planned peaks and the checkpoint bytes equal those of the same ranks run as threads of
one process (the reference whose sums are in rank order, tests/train/
data_parallel_test.cpp compares it with one process); MPI's own reduction order stays
within 1e-6 of it. A rank killed mid-run makes the job end with an error within a
minute instead of hanging.

    mpi_test.py DLMEM_CLI OUT_DIR
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2"]
CASES = [("lenet5", "sgd", 16), ("bert-tiny", "adam", 8)]


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def train(cmd, name):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    if r.returncode != 0:
        fail("%s: %s exited %d:\n%s" % (name, " ".join(cmd), r.returncode, r.stderr[-2000:]))
    return json.loads(r.stdout)


def main():
    if len(sys.argv) != 3:
        fail(__doc__)
    cli, out = sys.argv[1], sys.argv[2]
    if not shutil.which("mpirun"):
        fail("no mpirun on PATH: install Debian's openmpi-bin (scripts/install-deps.sh does)")
    os.makedirs(out, exist_ok=True)
    for model, opt, batch in CASES:
        base = [cli, "train", "--model", model, "--optimizer", opt, "--batch", str(batch), "--dataset", "synthetic",
                "--epochs", "1", "--steps", "4", "--no-eval", "--seed", "3", "--threads", "1", "--json", "--data-parallel"]
        for zero in range(4):
            name = "%s ZeRO %d" % (model, zero)
            ck_mpi, ck_thr = [os.path.join(out, "%s-z%d-%s.ckpt" % (model, zero, k)) for k in ("mpi", "threads")]
            m = train(MPIRUN + base + ["--zero", str(zero), "--deterministic-reduce", "--save", ck_mpi], name + " (mpi)")
            t = train(base + ["--zero", str(zero), "--ranks", "2", "--save", ck_thr], name + " (threads)")
            if m["data_parallel"]["ranks"] != 2 or not m["data_parallel"]["transport"].startswith("mpi"):
                fail("%s: not an MPI run of 2 ranks: %s" % (name, m["data_parallel"]))
            if m["losses"] != t["losses"]:
                fail("%s: losses over MPI %s differ from the thread ranks' %s" % (name, m["losses"], t["losses"]))
            # The plans differ only by the deterministic reduce-scatter's staging (ZeRO 2, 3:
            # MPI gathers every rank's part of its shard first; threads read them in place).
            same_plan = m["planned_peak"] == t["planned_peak"] if zero < 2 else m["planned_peak"] >= t["planned_peak"]
            if m["measured_peak"] != m["planned_peak"] or not same_plan:
                fail("%s: peaks: MPI measured %d planned %d, threads planned %d"
                     % (name, m["measured_peak"], m["planned_peak"], t["planned_peak"]))
            with open(ck_mpi, "rb") as f, open(ck_thr, "rb") as g:
                if f.read() != g.read():
                    fail("%s: the MPI run's checkpoint differs from the thread ranks'" % name)
            print("ok  %-18s losses %s, per-rank peak %d B (counted = planned), checkpoints identical"
                  % (name, " ".join("%.6f" % x for x in m["losses"]), m["measured_peak"]))
        # MPI's own reduction order (MPI_Allreduce, MPI_Reduce_scatter): within rounding
        # of the rank-order sums -- over 3 ranks, where the order can differ (a + b is
        # b + a in floating point; (a + b) + c need not be a + (b + c)).
        base3 = [a if a != str(batch) else str(batch // 2 * 3) for a in base]
        for zero, what in ((0, "MPI_Allreduce"), (2, "MPI_Reduce_scatter")):
            m = train(MPIRUN[:-1] + ["3"] + base3 + ["--zero", str(zero)], "%s ZeRO %d (%s)" % (model, zero, what))
            t = train(base3 + ["--zero", str(zero), "--ranks", "3"], "%s ZeRO %d (threads)" % (model, zero))
            worst = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(m["losses"], t["losses"]))
            if worst > 1e-6:
                fail("%s: %s's losses differ from the rank-order sums by %g relative" % (model, what, worst))
            print("ok  %-18s %s within %.1e of rank order" % ("%s ZeRO %d" % (model, zero), what, worst))

    # A rank that dies: the job ends with an error, it does not hang.
    cmd = MPIRUN + [cli, "train", "--model", "lenet5", "--optimizer", "sgd", "--batch", "16", "--dataset", "synthetic",
                    "--epochs", "1", "--steps", "100000", "--no-eval", "--threads", "1", "--data-parallel", "--json"]
    job = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    victim = None
    deadline = time.time() + 60
    while victim is None and time.time() < deadline:
        time.sleep(0.5)
        kids = subprocess.run(["pgrep", "-f", "-s", str(job.pid), "dlmem train"], stdout=subprocess.PIPE, text=True).stdout.split()
        kids = [int(k) for k in kids if int(k) != job.pid]
        if len(kids) >= 2:
            time.sleep(2)  # training has started
            victim = kids[-1]
    if victim is None:
        os.killpg(job.pid, signal.SIGKILL)
        fail("the ranks of the fault test never started")
    os.kill(victim, signal.SIGKILL)
    t0 = time.time()
    try:
        _, err = job.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        fail("a rank was killed and the job still ran 60 s later (hang)")
    if job.returncode == 0:
        fail("a rank was killed and the job exited 0")
    print("ok  a killed rank ends the job in %.1f s (exit %d): %s"
          % (time.time() - t0, job.returncode, " ".join(err.split())[:160]))

    # A rank that fails with an error (rank 1 cannot read its --resume file; rank 0 is
    # already waiting in its first collective): the job ends with that error, exit 2.
    base = [cli, "train", "--model", "lenet5", "--batch", "16", "--dataset", "synthetic", "--epochs", "1",
            "--steps", "20", "--no-eval", "--threads", "1", "--data-parallel"]
    missing = os.path.join(out, "missing.ckpt")
    cmd = MPIRUN[:-2] + ["-np", "1"] + base + [":", "-np", "1"] + base + ["--resume", missing]
    t0 = time.time()
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        fail("rank 1 failed and the job still ran 120 s later (hang)")
    if r.returncode != 2:
        fail("a failing rank: the job exited %d, not 2:\n%s" % (r.returncode, r.stderr[-2000:]))
    if "rank 1 of 2" not in r.stderr or "missing.ckpt" not in r.stderr:
        fail("a failing rank: its error is not reported:\n%s" % r.stderr[-2000:])
    print("ok  a failing rank ends the job in %.1f s with its error: %s"
          % (time.time() - t0, [l for l in r.stderr.splitlines() if "rank 1 of 2" in l][0][:160]))


if __name__ == "__main__":
    main()
