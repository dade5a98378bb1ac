#!/usr/bin/env python3
"""The plan report (src/report) in a real browser: headless Chromium driven over the
DevTools protocol (on a pipe: --remote-debugging-pipe, no network and no extra
package), for two models under two policies each and one comparison page.

For every page it checks that the page renders without a script error or a console
error; that the peak the header shows is the plan's own peak (`dlmem plan --json`);
that hovering the peak instant with a real mouse event -- on the instruction axis and
on the simulated time axis, switched by clicking the page's radio buttons -- lists
exactly the device buffers the plan file says are resident at the plan's peak
instruction (names, roles, bytes, computed here from the file's buffer lifetimes)
and their total; that clicking a tensor selects it; that the decision table sorts and
filters; that a comparison page lists exactly the tensors whose decision changed
(from both plans' `--explain --json`); and that a truncated plan file gets
simulate's error and writes no page. Writes a screenshot of a page (docs/report.md).

    browser_test.py DLMEM_CLI OUT_DIR [--screenshot PATH]
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

CASES = [  # (model, batch, policy, budget): two models, two policies each
    ("resnet20", 64, "auto", "50%"),
    ("resnet20", 64, "swap:tensor", "70%"),
    ("bert-tiny", 16, "recompute:sqrt", ""),
    ("bert-tiny", 16, "auto", "65%"),
    ("resnet152", 64, "auto", "50%"),  # thousands of buffers: the page stays small and answers
]
MAX_PAGE_BYTES = 4 << 20  # "a ResNet-152 plan under a few MB"


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


class Browser:
    """Chromium over the DevTools protocol on fds 3 (commands) and 4 (replies)."""

    def __init__(self, chromium, profile_dir):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def fds():  # in the child: the pipe ends onto 3 and 4, inheritable
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)  # above 4, so dup2 never maps an fd onto itself
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--remote-debugging-pipe",
             "--user-data-dir=" + profile_dir, "about:blank"],
            preexec_fn=fds, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.session = None

    def _read(self, deadline):
        while b"\0" not in self.buf:
            if time.time() > deadline:
                fail("chromium did not answer within the timeout")
            chunk = os.read(self.from_chrome, 1 << 20)
            if not chunk:
                fail("chromium closed the DevTools pipe (did it start? exit code %s)" % self.proc.poll())
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=True, timeout=60):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            m = self._read(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    fail("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method, timeout=60):
        deadline = time.time() + timeout
        for k, m in enumerate(self.events):
            if m.get("method") == method:
                del self.events[k]
                return m
        while True:
            m = self._read(deadline)
            if m.get("method") == method:
                return m
            self.events.append(m)

    def open_page(self, width=1400, height=1000):
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for m in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.call(m)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def navigate(self, path):
        self.events.clear()
        self.call("Page.navigate", {"url": "file://" + os.path.abspath(path)})
        self.wait_event("Page.loadEventFired")

    def eval(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            fail("evaluating %r: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    def mouse(self, kind, x, y, button="none", clicks=0):
        self.call("Input.dispatchMouseEvent",
                  {"type": kind, "x": x, "y": y, "button": button, "clickCount": clicks})

    def move(self, x, y):
        self.mouse("mouseMoved", x, y)

    def click(self, x, y):
        self.move(x, y)
        self.mouse("mousePressed", x, y, "left", 1)
        self.mouse("mouseReleased", x, y, "left", 1)

    def click_selector(self, selector):
        p = self.eval("(() => { const e = document.querySelector(%s); e.scrollIntoView({block: 'center'});"
                      " const r = e.getBoundingClientRect(); return {x: r.left + Math.min(r.width / 2, 12), y: r.top + r.height / 2}; })()"
                      % json.dumps(selector))
        self.click(p["x"], p["y"])

    def script_errors(self):
        errs = []
        for m in self.events:
            meth, p = m.get("method"), m.get("params", {})
            if meth == "Runtime.exceptionThrown":
                errs.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:500])
            elif meth == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                errs.append("console.error: " + json.dumps(p.get("args", []))[:500])
            elif meth == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                errs.append("log: " + p["entry"].get("text", ""))
        return errs + list(self.eval("window.dlmemReport ? window.dlmemReport.errors : ['no dlmemReport']") or [])

    def screenshot(self, path):
        h = self.eval("document.documentElement.scrollHeight")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": 1400, "height": min(int(h), 2400), "deviceScaleFactor": 1, "mobile": False})
        self.eval("window.scrollTo(0, 0); window.dispatchEvent(new Event('resize')); true")
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path + ".tmp", "wb") as f:
            f.write(base64.b64decode(data))
        os.replace(path + ".tmp", path)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False})

    def close(self):
        try:
            self.call("Browser.close", session=False, timeout=10)
        except SystemExit:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def resident_at_peak(plan):
    """The plan's peak from its own buffers: resident at position i when begin <= i < end
    (device buffers), the first position of largest total, and what is resident there."""
    n = len(plan["program"])
    delta = [0] * (n + 1)
    for b in plan["buffers"]:
        if b["space"] == "device" and b["begin"] < b["end"]:
            delta[b["begin"]] += b["bytes"]
            delta[b["end"]] -= b["bytes"]
    cur, peak, at = 0, -1, 0
    for i in range(n):
        cur += delta[i]
        if cur > peak:
            peak, at = cur, i
    rows = sorted((b["value"], b["role"], b["bytes"]) for b in plan["buffers"]
                  if b["space"] == "device" and b["begin"] <= at < b["end"])
    return peak, at, rows


def page_resident(br, plan_index):
    got = br.eval("""(() => {
      const s = document.querySelector('#plan%d .resident');
      const total = s.querySelector('[data-role=resident-total]');
      const rows = [...s.querySelectorAll('tbody tr')].map((tr) => [...tr.children].map((td) => td.textContent));
      return {total: Number(total.dataset.bytes), text: total.textContent, rows};
    })()""" % plan_index)
    rows = sorted((r[0], r[1], int(r[2].replace(",", ""))) for r in got["rows"])
    return got["total"], got["text"], rows


def hover_peak(br, k, mode):
    br.click_selector("#plan%d input[value=%s]" % (k, mode))
    br.eval("document.querySelector('#plan%d canvas').scrollIntoView({block: 'center'}); true" % k)
    p = br.eval("window.dlmemReport.plans[%d].peakPoint()" % k)
    br.move(p["x"], p["y"])


def check_page(br, html, plan, stats, name):
    br.navigate(html)
    if not br.eval("window.dlmemReport && window.dlmemReport.ready"):
        fail(name + ": the page did not finish drawing")
    errs = br.script_errors()
    if errs:
        fail(name + ": script errors: " + "; ".join(errs))
    peak, at, rows = resident_at_peak(plan)
    if peak != stats["peak_device"]:
        fail("%s: the plan file's buffers give a peak of %d, dlmem plan --json says %d" % (name, peak, stats["peak_device"]))
    shown = br.eval("(() => { const e = document.querySelector('#plan0 [data-role=peak]');"
                    " return {bytes: Number(e.dataset.bytes), text: e.textContent}; })()")
    if shown["bytes"] != peak or "{:,}".format(peak) not in shown["text"]:
        fail("%s: the header shows peak %s, the plan's is %d" % (name, shown, peak))
    # The instruction axis: the peak instant is the plan's peak instruction.
    hover_peak(br, 0, "instr")
    total, text, got = page_resident(br, 0)
    if total != peak or "{:,}".format(peak) not in text:
        fail("%s: hovering the peak (instruction axis) shows %d bytes resident (%r), the plan's peak is %d"
             % (name, total, text, peak))
    if got != rows:
        missing = [r for r in rows if r not in got][:5]
        extra = [r for r in got if r not in rows][:5]
        fail("%s: the tensors listed at the peak differ from the plan's (missing %s, extra %s)" % (name, missing, extra))
    # The simulated time axis: the same bytes at the peak instant.
    hover_peak(br, 0, "time")
    total, text, _ = page_resident(br, 0)
    if total != peak:
        fail("%s: hovering the peak instant (time axis) shows %d bytes, the plan's peak is %d" % (name, total, peak))
    # Clicking the biggest resident tensor selects it.
    biggest = min(rows, key=lambda r: (-r[2], r[0]))[0]  # the page's order: bytes, then name
    br.click_selector("#plan0 .resident tbody tr")
    sel = br.eval("document.querySelector('#plan0 .selinfo').textContent")
    if not sel.startswith(biggest):
        fail("%s: clicking %s shows %r" % (name, biggest, sel))
    # The decision table sorts by bytes (descending on the first click) and filters by decision.
    br.click_selector("#plan0 .decisions th:nth-child(2)")
    col = br.eval("[...document.querySelectorAll('#plan0 .decisions tbody tr td:nth-child(2)')]"
                  ".map((td) => Number(td.textContent.replace(/,/g, '')))")
    if col != sorted(col, reverse=True):
        fail("%s: the decision table is not sorted by bytes after a click: %s" % (name, col[:8]))
    kinds = br.eval("[...document.querySelectorAll('#plan0 .decisions tbody tr td:nth-child(3)')].map((td) => td.textContent)")
    if kinds:
        want = kinds[-1]
        br.eval("(() => { const s = document.querySelector('#plan0 .filters select');"
                " s.value = String([...s.options].findIndex((o) => o.text === %s) - 1);"
                " s.dispatchEvent(new Event('change')); return true; })()" % json.dumps(want))
        after = br.eval("[...document.querySelectorAll('#plan0 .decisions tbody tr td:nth-child(3)')].map((td) => td.textContent)")
        if not after or set(after) != {want} or len(after) != kinds.count(want):
            fail("%s: filtering the decisions by %r shows %s" % (name, want, sorted(set(after))))
    errs = br.script_errors()
    if errs:
        fail(name + ": script errors after the interaction: " + "; ".join(errs))
    size = os.path.getsize(html)
    if size > MAX_PAGE_BYTES:
        fail("%s: the page is %d bytes, over %d" % (name, size, MAX_PAGE_BYTES))
    # How long a hover takes to redraw (reported, not asserted: timings are benchmarks).
    t0 = time.time()
    for k in range(10):
        br.move(300 + 20 * k, br.eval("window.dlmemReport.plans[0].peakPoint().y"))
    hover_ms = (time.time() - t0) * 100
    print("ok  %-40s peak %d B at instruction %d, %d tensors resident, %d instructions, page %d KB, hover %.0f ms"
          % (name, peak, at, len(rows), len(plan["program"]), size // 1024, hover_ms))


def run(cli, args, name):
    r = subprocess.run([cli] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        fail("%s: dlmem %s exited %d: %s" % (name, " ".join(args), r.returncode, r.stderr))
    return r


def main():
    if len(sys.argv) < 3:
        fail(__doc__)
    cli, out = sys.argv[1], sys.argv[2]
    shot = sys.argv[sys.argv.index("--screenshot") + 1] if "--screenshot" in sys.argv else None
    os.makedirs(out, exist_ok=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        fail("no chromium on PATH: install Debian's chromium (scripts/install-deps.sh does)")
    profile = tempfile.mkdtemp(prefix="dlmem-chromium-")
    br = Browser(chromium, profile)
    try:
        br.open_page()
        explains = {}
        for model, batch, policy, budget in CASES:
            name = "%s b%d %s%s" % (model, batch, policy, " " + budget if budget else "")
            stem = os.path.join(out, "%s-%s-%s" % (model, policy.replace(":", "-"), budget.replace("%", "") or "none"))
            args = ["plan", "--model", model, "--batch", str(batch), "--policy", policy, "--device", "v100-16gb",
                    "--out", stem + ".json", "--html", stem + ".html", "--json", "--explain"]
            if budget:
                args += ["--budget", budget]
            stats = json.loads(run(cli, args, name).stdout)
            with open(stem + ".json") as f:
                plan = json.load(f)
            check_page(br, stem + ".html", plan, stats, name)
            explains[stem] = stats["explain"]["tensors"]
        # A comparison: the two resnet20 plans.
        a, b = [os.path.join(out, s) for s in ("resnet20-auto-50", "resnet20-swap-tensor-70")]
        cmp_html = os.path.join(out, "resnet20-compare.html")
        run(cli, ["report", a + ".json", b + ".json", "--device", "v100-16gb", "--html", cmp_html], "compare")
        br.navigate(cmp_html)
        errs = br.script_errors()
        if errs or not br.eval("window.dlmemReport.ready && window.dlmemReport.plans.length === 2"):
            fail("comparison page: not drawn or script errors: %s" % errs)

        def label(t):
            return t["decision"] + (" (" + t["detail"] + ")" if t["detail"] else "")
        da = {t["name"]: label(t) for t in explains[a]}
        db = {t["name"]: label(t) for t in explains[b]}
        want = sorted(n for n in set(da) | set(db) if da.get(n, "not stashed") != db.get(n, "not stashed"))
        got = sorted(br.eval("[...document.querySelectorAll('.changed tbody tr')].map((tr) => tr.dataset.changed)"))
        if got != want:
            fail("comparison page: changed decisions %s, expected %s" % (got[:10], want[:10]))
        print("ok  comparison: %d of %d tensors changed decision" % (len(got), len(set(da) | set(db))))
        if shot:
            br.navigate(b + ".html")  # the swapping plan: every stream busy
            hover_peak(br, 0, "time")
            br.click_selector("#plan0 .resident tbody tr:nth-child(2)")
            br.eval("window.scrollTo(0, 0); true")
            br.screenshot(shot)
            print("wrote " + shot)
        # A truncated plan file: simulate's error, and no page written.
        with open(a + ".json") as f:
            text = f.read()
        bad = os.path.join(out, "truncated.json")
        with open(bad, "w") as f:
            f.write(text[: len(text) // 2])
        page = os.path.join(out, "truncated.html")
        r = subprocess.run([cli, "report", bad, "--html", page], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        s = subprocess.run([cli, "simulate", "--plan", bad], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 2 or r.stderr != s.stderr or "is not valid JSON" not in r.stderr or os.path.exists(page):
            fail("a truncated plan: report exited %d with %r (simulate: %r), page written: %s"
                 % (r.returncode, r.stderr, s.stderr, os.path.exists(page)))
        print("ok  truncated plan: " + r.stderr.strip()[:100])
    finally:
        br.close()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
