// The dlmem plan report (src/report/html.h, Note [Report data]): reads the plans from
// the page's JSON and draws, per plan, memory over time stacked by role, the streams
// with their stalls, the tensors resident at the cursor and the per-tensor decisions;
// with two plans, a comparison first. Plain DOM and canvas, no libraries, no network.
'use strict';
(function () {
  const ROLE_COLORS = ['#9aa5b8', '#c9a2ad', '#4c78a8', '#f58518', '#54a24b', '#e45756', '#72b7b2', '#eeca3b',
                       '#b279a2', '#ff9da6'];
  const ORIGIN_COLORS = {'computed': '#2563eb', 'recomputed': '#f58518', 'host copy': '#7c3aed', 'swapped in': '#16a34a',
                         'encoded': '#a16207', 'decoded': '#ca8a04', 'preloaded': '#64748b', 'workspace': '#94a3b8'};
  const KIND = ['compute', 'free', 'swap out', 'swap in', 'compress', 'decompress', 'recompute'];
  const PHASE = ['forward', 'backward', 'update'];
  const STREAMS = ['compute', 'device \u2192 host', 'host \u2192 device'];
  const M = {left: 96, right: 12, top: 12, bottom: 26};

  const report = {ready: false, errors: [], plans: []};
  window.dlmemReport = report;
  window.addEventListener('error', (e) => report.errors.push(String(e.message)));

  // ---- formatting -------------------------------------------------------------
  function human(b) {
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0, v = b;
    while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; ++i; }
    return (i === 0 ? String(v) : v.toFixed(Math.abs(v) < 10 ? 2 : Math.abs(v) < 100 ? 1 : 0)) + ' ' + u[i];
  }
  function exact(b) { return Math.round(b).toLocaleString('en-US'); }
  function dur(s) {
    if (!(s > 0)) return '0';
    if (s < 1e-6) return (s * 1e9).toFixed(0) + ' ns';
    if (s < 1e-3) return (s * 1e6).toFixed(1) + ' \u00b5s';
    if (s < 1) return (s * 1e3).toFixed(3) + ' ms';
    return s.toFixed(3) + ' s';
  }
  function ratio(x) { return isFinite(x) ? x.toFixed(3) + 'x' : '-'; }
  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  }
  function metric(key, value, note, attrs) {
    return el('div', Object.assign({class: 'metric'}, attrs || {}), el('div', {class: 'k', text: key}),
              el('div', {class: 'v', text: value}), note ? el('div', {class: 'n', text: note}) : null);
  }
  // First index in the sorted array a with a[i] > x.
  function upperBound(a, x, lo, hi) {
    while (lo < hi) { const m = (lo + hi) >> 1; if (a[m] <= x) lo = m + 1; else hi = m; }
    return lo;
  }

  // ---- one plan's figures -----------------------------------------------------
  class Model {
    constructor(d, index) {
      this.d = d; this.h = d.header; this.index = index; this.names = d.names;
      const B = d.buffers, P = d.program, R = d.roles.length;
      this.B = B; this.P = P; this.R = R;
      const n = P.k.length;
      this.n = n;
      // Position i lasts from its instruction's start (a copy: its issue, where its
      // destination becomes resident) to the next position's.
      this.tau = new Float64Array(n + 1);
      let end = 0;
      for (let i = 0; i < n; ++i) {
        const t = (P.s[i] === 0 ? P.t0[i] : P.i[i]) * 1e-9;
        this.tau[i] = i ? Math.max(t, this.tau[i - 1]) : t;
        end = Math.max(end, P.t1[i] * 1e-9);
      }
      this.tau[n] = Math.max(end, n ? this.tau[n - 1] : 0);
      // Resident device bytes by role at every position: plan::compute_stats's rule.
      const delta = new Float64Array((n + 1) * R);
      for (let b = 0; b < B.b.length; ++b) {
        if (B.s[b] !== 0 || B.a[b] >= B.e[b]) continue;
        delta[B.a[b] * R + B.r[b]] += B.b[b];
        delta[B.e[b] * R + B.r[b]] -= B.b[b];
      }
      this.live = new Float64Array(n * R);
      this.total = new Float64Array(n);
      const cur = new Float64Array(R);
      this.rolesUsed = new Array(R).fill(false);
      this.peak = 0; this.peakPos = 0;
      for (let i = 0; i < n; ++i) {
        let t = 0;
        for (let r = 0; r < R; ++r) {
          cur[r] += delta[i * R + r];
          this.live[i * R + r] = cur[r];
          t += cur[r];
          if (cur[r] > 0) this.rolesUsed[r] = true;
        }
        this.total[i] = t;
        if (t > this.peak) { this.peak = t; this.peakPos = i; }
      }
      // On the time axis a position may last no time (a free, a copy issued while the
      // compute stream runs on): the peak instant there is the first peak position that lasts.
      this.peakTimePos = this.peakPos;
      for (let i = this.peakPos; i < n; ++i)
        if (this.total[i] === this.peak && this.tau[i + 1] > this.tau[i]) { this.peakTimePos = i; break; }
      this.byValue = new Map();
      for (let b = 0; b < B.b.length; ++b) {
        const v = B.v[b];
        if (!this.byValue.has(v)) this.byValue.set(v, []);
        this.byValue.get(v).push(b);
      }
      this.lanes = [[], [], []];
      for (let i = 0; i < n; ++i) if (P.k[i] !== 1) this.lanes[P.s[i]].push(i);
      this.laneStart = this.lanes.map((l) => Float64Array.from(l, (i) => P.t0[i] * 1e-9));
    }
    name(b) { return this.names[this.B.v[b]]; }
    decision(b) { const k = this.B.d[b]; return k >= 0 ? this.d.decisions[k] : ''; }
    origin(b) { return this.d.origins[this.B.o[b]]; }
    instrLabel(i) {
      const P = this.P, k = P.k[i];
      if (k === 0 || k === 6) return this.names[P.n[i]] + ' (' + (k === 6 ? 'recompute' : PHASE[P.ph[i]]) + ')';
      const b = P.src[i] >= 0 ? P.src[i] : P.w[i];
      return KIND[k] + (b >= 0 ? ' ' + this.name(b) : '');
    }
    // Device buffers resident at position i, biggest first.
    residentAt(i) {
      const B = this.B, out = [];
      for (let b = 0; b < B.b.length; ++b) if (B.s[b] === 0 && B.a[b] <= i && i < B.e[b]) out.push(b);
      out.sort((x, y) => B.b[y] - B.b[x] || (this.name(x) < this.name(y) ? -1 : 1));
      return out;
    }
    // The instructions that make, move or free a value's buffers.
    instrsOf(v) {
      const bufs = new Set(this.byValue.get(v) || []), out = [];
      for (let i = 0; i < this.n; ++i)
        if (bufs.has(this.P.w[i]) || bufs.has(this.P.src[i])) out.push(i);
      return out;
    }
  }

  // The x axis of one plan's charts: simulated time or program position, zoomable.
  class Axis {
    constructor(m) { this.m = m; this.mode = 'time'; this.listeners = []; this.reset(); }
    extent() { return this.mode === 'time' ? [0, this.m.tau[this.m.n]] : [0, this.m.n]; }
    reset() { [this.lo, this.hi] = this.extent(); if (this.hi <= this.lo) this.hi = this.lo + 1; }
    setMode(mode) { this.mode = mode; this.reset(); this.changed(); }
    changed() { for (const f of this.listeners) f(); }
    posX(i) { return this.mode === 'time' ? this.m.tau[i] : i; }
    timeX(t) {
      if (this.mode === 'time') return t;
      const tau = this.m.tau, n = this.m.n;
      const j = Math.min(Math.max(upperBound(tau, t, 0, n + 1) - 1, 0), n - 1);
      const span = tau[j + 1] - tau[j];
      return j + (span > 0 ? Math.min(1, (t - tau[j]) / span) : 0);
    }
    posOf(v) {
      const n = this.m.n;
      if (this.mode === 'instr') return Math.min(Math.max(Math.floor(v), 0), n - 1);
      return Math.min(Math.max(upperBound(this.m.tau, v, 0, n) - 1, 0), n - 1);
    }
    px(v, w) { return M.left + (v - this.lo) / (this.hi - this.lo) * (w - M.left - M.right); }
    unpx(x, w) { return this.lo + (x - M.left) / (w - M.left - M.right) * (this.hi - this.lo); }
    zoom(at, factor) {
      const [a, b] = this.extent();
      const span = Math.min(b - a, Math.max((this.hi - this.lo) * factor, (b - a) * 1e-6));
      let lo = at - (at - this.lo) * span / (this.hi - this.lo);
      lo = Math.min(Math.max(lo, a), b - span);
      this.lo = lo; this.hi = lo + span; this.changed();
    }
    pan(dv) {
      const [a, b] = this.extent(), span = this.hi - this.lo;
      this.lo = Math.min(Math.max(this.lo + dv, a), b - span); this.hi = this.lo + span; this.changed();
    }
    ticks(w) {
      const span = this.hi - this.lo, want = Math.max(2, Math.floor((w - M.left - M.right) / 110));
      const raw = span / want, p = Math.pow(10, Math.floor(Math.log10(raw)));
      const step = [1, 2, 5, 10].map((k) => k * p).find((s) => s >= raw);
      const out = [];
      for (let v = Math.ceil(this.lo / step) * step; v <= this.hi; v += step) out.push(v);
      return out;
    }
    label(v) { return this.mode === 'time' ? dur(v) || '0' : String(Math.round(v)); }
  }

  // A base canvas redrawn on zoom, and an overlay for the cursor and the selection.
  class Chart {
    constructor(parent, height, view) {
      this.view = view; this.height = height;
      this.box = el('div', {class: 'chartbox'});
      this.base = el('canvas'); this.over = el('canvas');
      this.over.style.position = 'absolute'; this.over.style.left = '0'; this.over.style.top = '0';
      this.box.append(this.base, this.over);
      parent.append(this.box);
      let drag = null;
      // Mouse x, y in the canvas's CSS pixels (offsetX/Y round where clientX/Y truncate).
      const pos = (e) => { const r = this.over.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
      this.over.addEventListener('mousemove', (e) => {
        const [x, y] = pos(e);
        if (drag !== null && e.buttons === 1) {
          const ax = view.axis, dv = ax.unpx(drag, this.w) - ax.unpx(x, this.w);
          drag = x; ax.pan(dv); return;
        }
        this.hover(x, y);
      });
      this.over.addEventListener('mousedown', (e) => { this.downAt = pos(e); drag = this.downAt[0]; });
      this.over.addEventListener('mouseup', (e) => {
        drag = null;
        const [x, y] = pos(e);
        if (this.downAt && Math.abs(x - this.downAt[0]) < 3 && Math.abs(y - this.downAt[1]) < 3) this.click(x, y);
      });
      this.over.addEventListener('mouseleave', () => { drag = null; });
      this.over.addEventListener('wheel', (e) => {
        e.preventDefault();
        const ax = view.axis;
        ax.zoom(ax.unpx(pos(e)[0], this.w), e.deltaY < 0 ? 1 / 1.25 : 1.25);
      }, {passive: false});
      this.over.addEventListener('dblclick', () => { view.axis.reset(); view.axis.changed(); });
    }
    size() {
      const dpr = window.devicePixelRatio || 1;
      this.w = Math.max(300, this.box.clientWidth);
      for (const c of [this.base, this.over]) {
        c.width = Math.round(this.w * dpr); c.height = Math.round(this.height * dpr);
        c.style.width = this.w + 'px'; c.style.height = this.height + 'px';
        c.getContext('2d').setTransform(dpr, 0, 0, dpr, 0, 0);
      }
    }
    xAxis(g) {
      const ax = this.view.axis, y = this.height - M.bottom;
      g.strokeStyle = '#888'; g.fillStyle = '#555'; g.font = '11px system-ui, sans-serif'; g.textAlign = 'center';
      g.beginPath(); g.moveTo(M.left, y + 0.5); g.lineTo(this.w - M.right, y + 0.5); g.stroke();
      for (const v of ax.ticks(this.w)) {
        const x = Math.round(ax.px(v, this.w)) + 0.5;
        g.beginPath(); g.moveTo(x, y); g.lineTo(x, y + 4); g.stroke();
        const text = ax.label(v), half = g.measureText(text).width / 2;
        g.fillText(text, Math.min(Math.max(x, M.left + half), this.w - half - 2), y + 15);
      }
    }
    hover() {}
    click() {}
  }

  class MemoryChart extends Chart {
    constructor(parent, view) { super(parent, 300, view); }
    y(bytes) { return M.top + (1 - bytes / this.view.ymax) * (this.height - M.top - M.bottom); }
    draw() {
      this.size();
      const g = this.base.getContext('2d'), m = this.view.m, ax = this.view.axis, R = m.R, W = this.w;
      g.clearRect(0, 0, W, this.height);
      // Each pixel column shows the position of largest total in it: no peak is hidden.
      const cols = Math.ceil(W), best = new Int32Array(cols).fill(-1);
      const i0 = ax.posOf(ax.lo), i1 = ax.posOf(ax.hi);
      for (let i = i0; i <= i1; ++i) {
        const x0 = ax.px(ax.posX(i), W), x1 = ax.px(ax.posX(i + 1), W);
        const c0 = Math.max(Math.floor(x0), M.left), c1 = Math.min(Math.max(Math.floor(x0), Math.ceil(x1) - 1), W - M.right - 1);
        for (let c = c0; c <= c1; ++c) if (best[c] < 0 || m.total[i] > m.total[best[c]]) best[c] = i;
      }
      this.best = best;
      for (let c = 0; c < cols; ++c) {
        const i = best[c];
        if (i < 0) continue;
        let acc = 0;
        for (let r = 0; r < R; ++r) {
          const v = m.live[i * R + r];
          if (v <= 0) continue;
          const ya = this.y(acc + v), yb = this.y(acc);
          g.fillStyle = ROLE_COLORS[r % ROLE_COLORS.length];
          g.fillRect(c, ya, 1, yb - ya);
          acc += v;
        }
      }
      // y axis
      g.strokeStyle = '#888'; g.fillStyle = '#555'; g.font = '11px system-ui, sans-serif'; g.textAlign = 'right';
      const top = this.view.ymax, raw = top / 5, p = Math.pow(2, Math.floor(Math.log2(raw)));
      const step = [1, 2, 4, 8].map((k) => k * p).find((s) => s >= raw) || raw;
      for (let v = 0; v <= top; v += step) {
        const y = Math.round(this.y(v)) + 0.5;
        g.globalAlpha = 0.25; g.beginPath(); g.moveTo(M.left, y); g.lineTo(W - M.right, y); g.stroke(); g.globalAlpha = 1;
        g.fillText(human(v), M.left - 6, y + 4);
      }
      this.xAxis(g);
      // budget, arena, device memory
      const h = m.h, lines = [['arena', h.arena, '#1d2330'], ['budget', h.budget, '#c62828'], ['device memory', h.device_memory, '#7c3aed']];
      g.textAlign = 'left';
      for (const [name, v, color] of lines) {
        if (!(v > 0) || v > top) continue;
        const y = Math.round(this.y(v)) + 0.5;
        g.strokeStyle = color; g.fillStyle = color; g.setLineDash([6, 4]);
        g.beginPath(); g.moveTo(M.left, y); g.lineTo(W - M.right, y); g.stroke(); g.setLineDash([]);
        g.textAlign = name === 'arena' ? 'right' : 'left';  // the budget is often just above the arena
        g.fillText(name + ' ' + human(v), name === 'arena' ? W - M.right - 6 : M.left + 6, name === 'arena' ? y + 13 : y - 4);
      }
      this.drawOverlay();
    }
    drawOverlay() {
      const g = this.over.getContext('2d'), m = this.view.m, ax = this.view.axis, W = this.w, sel = this.view.selected;
      g.clearRect(0, 0, W, this.height);
      // the peak
      const pp = this.view.peakPos(), px = ax.px(ax.posX(pp) + (ax.posX(pp + 1) - ax.posX(pp)) / 2, W);
      if (px >= M.left && px <= W - M.right) {
        g.fillStyle = '#c62828'; g.beginPath(); const py = this.y(m.peak);
        g.moveTo(px, py - 2); g.lineTo(px - 5, py - 10); g.lineTo(px + 5, py - 10); g.fill();
      }
      if (sel !== null) {
        for (const b of m.byValue.get(sel) || []) {
          if (m.B.a[b] >= m.B.e[b]) continue;
          const x0 = Math.max(M.left, ax.px(ax.posX(m.B.a[b]), W)), x1 = Math.min(W - M.right, ax.px(ax.posX(m.B.e[b]), W));
          if (x1 < M.left || x0 > W - M.right) continue;
          const color = ORIGIN_COLORS[m.origin(b)] || '#333';
          const host = m.B.s[b] !== 0;
          g.fillStyle = color; g.globalAlpha = host ? 0.10 : 0.16;
          g.fillRect(x0, M.top, Math.max(2, x1 - x0), this.height - M.top - M.bottom);
          g.globalAlpha = 1; g.strokeStyle = color; g.lineWidth = 2;
          const y = host ? M.top + 4 : this.y(m.B.b[b]);
          g.beginPath(); g.moveTo(x0, y); g.lineTo(Math.max(x0 + 2, x1), y); g.stroke(); g.lineWidth = 1;
          g.fillStyle = color; g.font = '11px system-ui, sans-serif'; g.textAlign = 'left';
          g.fillText(m.origin(b) + (host ? ' (host)' : ''), x0 + 3, (host ? M.top + 16 : y - 4));
        }
      }
      if (this.view.cursor !== null) {
        const i = this.view.cursor, x = Math.round(ax.px(ax.posX(i), W)) + 0.5, x1 = ax.px(ax.posX(i + 1), W);
        g.fillStyle = 'rgba(37,99,235,0.18)'; g.fillRect(x, M.top, Math.max(1, x1 - x), this.height - M.top - M.bottom);
        g.strokeStyle = '#2563eb'; g.beginPath(); g.moveTo(x, M.top); g.lineTo(x, this.height - M.bottom); g.stroke();
      }
    }
    // The position under the mouse: where a pixel column holds several, the one it
    // draws (the largest total), so that what is listed is what is seen.
    at(x) {
      const c = Math.floor(x);
      if (this.best && c >= 0 && c < this.best.length && this.best[c] >= 0) return this.best[c];
      const ax = this.view.axis;
      return ax.posOf(ax.unpx(x, this.w));
    }
    hover(x) {
      if (x < M.left || x > this.w - M.right) return;
      this.view.setCursor(this.at(x));
    }
    click(x) { this.view.pin(this.at(x)); }
  }

  class StreamChart extends Chart {
    constructor(parent, view) { super(parent, 3 * 26 + M.top + M.bottom + 6, view); }
    laneY(s) { return M.top + 6 + s * 26; }
    color(i) {
      const P = this.view.m.P, k = P.k[i];
      if (k === 6) return '#f58518';
      if (k === 0) return ['#4c78a8', '#72b7b2', '#54a24b'][P.ph[i]] || '#4c78a8';
      if (k === 2 || k === 3) return '#7c3aed';
      return '#ca8a04';
    }
    draw() {
      this.size();
      const g = this.base.getContext('2d'), m = this.view.m, ax = this.view.axis, W = this.w, P = m.P;
      g.clearRect(0, 0, W, this.height);
      g.font = '11px system-ui, sans-serif'; g.textAlign = 'right'; g.fillStyle = '#555';
      for (let s = 0; s < 3; ++s) g.fillText(STREAMS[s], M.left - 6, this.laneY(s) + 15);
      g.save(); g.beginPath(); g.rect(M.left, 0, W - M.left - M.right, this.height); g.clip();
      for (let s = 0; s < 3; ++s) {
        const y = this.laneY(s);
        g.fillStyle = '#f1f3f6'; g.fillRect(M.left, y, W - M.left - M.right, 20);
        for (const i of m.lanes[s]) {
          const x0 = ax.px(ax.timeX(P.t0[i] * 1e-9), W), x1 = ax.px(ax.timeX(P.t1[i] * 1e-9), W);
          if (x1 < M.left || x0 > W - M.right) continue;
          g.fillStyle = this.color(i); g.fillRect(x0, y + 2, Math.max(1, x1 - x0), 16);
          if (s === 0 && P.t0[i] > P.i[i]) {  // a stall: the compute stream waits on a copy
            const xs = ax.px(ax.timeX(P.i[i] * 1e-9), W);
            g.fillStyle = '#c62828'; g.fillRect(xs, y, Math.max(1, x0 - xs), 20);
          }
        }
      }
      g.restore();
      this.xAxis(g);
      this.drawOverlay();
    }
    drawOverlay() {
      const g = this.over.getContext('2d'), m = this.view.m, ax = this.view.axis, W = this.w, P = m.P;
      g.clearRect(0, 0, W, this.height);
      if (this.view.selected !== null) {
        g.strokeStyle = '#111'; g.lineWidth = 2;
        for (const i of this.view.selectedInstrs) {
          if (P.k[i] === 1) continue;
          const x0 = ax.px(ax.timeX(P.t0[i] * 1e-9), W), x1 = ax.px(ax.timeX(P.t1[i] * 1e-9), W);
          g.strokeRect(x0 - 1, this.laneY(P.s[i]) + 1, Math.max(3, x1 - x0 + 2), 18);
        }
        g.lineWidth = 1;
      }
      if (this.view.cursor !== null) {
        const x = Math.round(ax.px(ax.posX(this.view.cursor), W)) + 0.5;
        g.strokeStyle = '#2563eb'; g.beginPath(); g.moveTo(x, M.top); g.lineTo(x, this.height - M.bottom); g.stroke();
      }
    }
    at(x, y) {
      const m = this.view.m, ax = this.view.axis, s = Math.floor((y - M.top - 6) / 26);
      if (s < 0 || s > 2 || x < M.left) return -1;
      // the time under the mouse, then the last instruction of the lane starting before it
      const v = ax.unpx(x, this.w);
      const t = ax.mode === 'time' ? v : m.tau[ax.posOf(v)] + (v - Math.floor(v)) * (m.tau[ax.posOf(v) + 1] - m.tau[ax.posOf(v)]);
      const k = upperBound(m.laneStart[s], t + 1e-12, 0, m.lanes[s].length) - 1;
      if (k < 0) return -1;
      const i = m.lanes[s][k];
      return m.P.t1[i] * 1e-9 >= t - (ax.hi - ax.lo) / this.w * 2 ? i : -1;
    }
    hover(x, y) {
      const i = this.at(x, y);
      if (i < 0) return;
      const P = this.view.m.P;
      this.view.setCursor(i, this.view.m.instrLabel(i) + ' on ' + STREAMS[P.s[i]] + ': ' + dur(P.t0[i] * 1e-9) + ' \u2013 ' +
                          dur(P.t1[i] * 1e-9) + ' (' + dur((P.t1[i] - P.t0[i]) * 1e-9) + ')' +
                          (P.t0[i] > P.i[i] ? ', stalled ' + dur((P.t0[i] - P.i[i]) * 1e-9) : ''));
    }
    click(x, y) {
      const i = this.at(x, y), P = this.view.m.P;
      if (i < 0) return;
      const b = P.src[i] >= 0 ? P.src[i] : P.w[i];
      if (b >= 0) this.view.select(this.view.m.B.v[b]);
    }
  }

  // ---- one plan's section -----------------------------------------------------
  class PlanView {
    constructor(root, m, ymax) {
      this.m = m; this.ymax = ymax; this.axis = new Axis(m);
      this.cursor = null; this.pinned = false; this.selected = null; this.selectedInstrs = [];
      const h = m.h;
      this.root = el('section', {class: 'plan', id: 'plan' + m.index});
      root.append(this.root);
      this.root.append(el('h2', {text: (m.index === 0 ? 'A' : 'B') + ': ' + h.model + ', batch ' + h.batch + ', ' + h.policy +
                                         (h.chosen ? ' (' + h.chosen + ')' : '')}));
      this.header();
      const toolbar = el('div', {class: 'toolbar'});
      for (const [mode, label] of [['time', 'simulated time'], ['instr', 'instruction']]) {
        const r = el('input', {type: 'radio', name: 'axis' + m.index, value: mode});
        r.checked = mode === 'time';
        r.addEventListener('change', () => this.setAxis(mode));
        toolbar.append(el('label', {}, r, ' ' + label));
      }
      const legend = el('div', {class: 'legend'});
      m.rolesUsed.forEach((used, r) => {
        if (used) legend.append(el('span', {}, el('i', {style: 'background:' + ROLE_COLORS[r % ROLE_COLORS.length]}), m.d.roles[r]));
      });
      toolbar.append(el('span', {class: 'sub', text: 'x axis'}), legend,
                     el('span', {class: 'sub', text: 'wheel: zoom, drag: pan, double-click: reset, click: pin the instant or pick a tensor'}));
      this.root.append(toolbar);
      const charts = el('div', {class: 'charts'});
      const left = el('div');
      this.status = el('div', {class: 'status'});
      this.selinfo = el('div', {class: 'selinfo'});
      this.mem = new MemoryChart(left, this);
      left.append(this.status);
      this.streams = new StreamChart(left, this);
      const kinds = el('div', {class: 'legend'});
      for (const [name, color] of [['forward', '#4c78a8'], ['backward', '#72b7b2'], ['update', '#54a24b'], ['recompute', '#f58518'],
                                   ['swap', '#7c3aed'], ['encode / decode', '#ca8a04'], ['stall (waits on a copy)', '#c62828']])
        kinds.append(el('span', {}, el('i', {style: 'background:' + color}), name));
      left.append(kinds, this.selinfo);
      const side = el('div', {class: 'side resident'});
      this.sideHead = el('div', {class: 'head'});
      this.sideBody = el('div', {class: 'body'});
      side.append(this.sideHead, this.sideBody);
      charts.append(left, side);
      this.root.append(charts);
      this.decisions();
      this.axis.listeners.push(() => this.draw());
      window.addEventListener('resize', () => this.draw());
    }
    peakPos() { return this.axis.mode === 'time' ? this.m.peakTimePos : this.m.peakPos; }
    header() {
      const m = this.m, h = m.h, box = el('div', {class: 'metrics'});
      const bad = m.peak !== h.planned_peak;
      if (bad) {
        const msg = 'the page computes a peak of ' + exact(m.peak) + ' B from the buffers, the plan says ' + exact(h.planned_peak) + ' B';
        report.errors.push(msg);
        console.error(msg);
      }
      box.append(
        metric('device', h.device, h.device_description),
        metric('budget', h.budget ? human(h.budget) : 'none', h.budget ? exact(h.budget) + ' B' : ''),
        metric('peak (max live)', human(m.peak), exact(m.peak) + ' B at instruction ' + m.peakPos + (bad ? ' (PLAN SAYS ' + exact(h.planned_peak) + ')' : ''),
               {'data-role': 'peak', 'data-bytes': String(m.peak)}),
        metric('arena', human(h.arena), 'placement: ' + (h.placement || '-') + ', ' + ratio(h.arena / Math.max(1, m.peak)) + ' max live'),
        metric('unmanaged', human(h.unmanaged_arena), 'this plan: ' + ratio(h.arena / Math.max(1, h.unmanaged_arena)) + ' the arena'),
        metric('step time', dur(h.step_seconds), 'simulated, ' + h.cost_model + ' costs', {'data-role': 'step'}),
        metric('vs unmanaged', ratio(h.step_seconds / h.unmanaged_step_seconds), 'unmanaged step ' + dur(h.unmanaged_step_seconds)),
        metric('vs bound', ratio(h.step_seconds / h.bound_seconds), 'busiest stream ' + dur(h.bound_seconds)),
        metric('stall', dur(h.stall_seconds), (100 * h.stall_seconds / Math.max(h.step_seconds, 1e-12)).toFixed(1) + '% of the step'),
        metric('recomputation', dur(h.recompute_seconds), (100 * h.extra_flops / Math.max(1, h.flops - h.extra_flops)).toFixed(2) + '% extra FLOPs'),
        metric('to host / back', human(h.bytes_to_host) + ' / ' + human(h.bytes_to_device), 'host arena ' + human(h.host_arena)),
        metric('program', m.n + ' instructions', m.B.b.length + ' buffers'));
      this.root.append(box);
    }
    setAxis(mode) { this.axis.setMode(mode); }
    draw() { this.mem.draw(); this.streams.draw(); }
    overlays() { this.mem.drawOverlay(); this.streams.drawOverlay(); }
    setCursor(i, note) {
      if (this.pinned && note === undefined) return;
      this.cursor = i;
      const m = this.m, t = m.tau[i];
      this.status.textContent = (note ? note + ' | ' : '') + 'instruction ' + i + ' (' + m.instrLabel(i) + '), t = ' + dur(t) +
                                ': ' + human(m.total[i]) + ' resident';
      this.resident(i);
      this.overlays();
    }
    pin(i) { this.pinned = false; this.setCursor(i); this.pinned = true; }
    resident(i) {
      const m = this.m, list = m.residentAt(i);
      this.sideHead.replaceChildren(el('b', {text: 'Resident at instruction ' + i}), el('br'),
                                    el('span', {'data-role': 'resident-total', 'data-bytes': String(m.total[i]),
                                                text: exact(m.total[i]) + ' B (' + human(m.total[i]) + ') in ' + list.length + ' tensors'}));
      const body = el('tbody');
      for (const b of list) {
        const tr = el('tr', {'data-buffer': String(b), onclick: () => this.select(m.B.v[b])},
                      el('td', {text: m.name(b), title: m.name(b)}), el('td', {text: m.d.roles[m.B.r[b]]}),
                      el('td', {class: 'num', text: exact(m.B.b[b])}), el('td', {text: m.decision(b) || m.origin(b)}));
        if (m.B.v[b] === this.selected) tr.className = 'sel';
        body.append(tr);
      }
      const t = el('table', {}, el('thead', {}, el('tr', {}, el('th', {text: 'tensor'}), el('th', {text: 'role'}),
                                                      el('th', {class: 'num', text: 'bytes'}), el('th', {text: 'decision'}))), body);
      this.sideBody.replaceChildren(t);
    }
    select(v) {
      const m = this.m;
      this.selected = v; this.selectedInstrs = m.instrsOf(v);
      const parts = [];
      for (const b of m.byValue.get(v) || []) {
        if (m.B.a[b] >= m.B.e[b]) continue;
        parts.push(m.origin(b) + (m.B.s[b] ? ' on the host' : '') + ' ' + exact(m.B.b[b]) + ' B, instructions ' + m.B.a[b] + '\u2013' +
                   m.B.e[b] + ' (' + dur(m.tau[m.B.a[b]]) + ' \u2013 ' + dur(m.tau[Math.min(m.B.e[b], m.n)]) + ')');
      }
      const b0 = (m.byValue.get(v) || [])[0];
      this.selinfo.style.display = 'block';
      this.selinfo.replaceChildren(el('b', {text: m.names[v]}),
                                   document.createTextNode(b0 !== undefined ? ' (' + m.d.roles[m.B.r[b0]] + (m.decision(b0) ? ', ' + m.decision(b0) : '') + '): ' : ': '),
                                   document.createTextNode(parts.join('; ')));
      for (const tr of this.root.querySelectorAll('tr[data-value], tr[data-buffer]')) {
        const tv = tr.dataset.value !== undefined ? Number(tr.dataset.value) : m.B.v[Number(tr.dataset.buffer)];
        tr.classList.toggle('sel', tv === v);
      }
      this.overlays();
    }
    decisions() {
      const m = this.m, rows = m.d.explain;
      this.root.append(el('h2', {text: 'Stashed tensors: what the plan does with each (' + rows.length + ')'}));
      const filters = el('div', {class: 'filters'});
      const q = el('input', {type: 'search', placeholder: 'filter by tensor or detail'});
      const which = el('select', {}, el('option', {value: '', text: 'every decision'}),
                       ...m.d.decisions.map((d, k) => el('option', {value: String(k), text: d})));
      const count = el('span', {class: 'sub'});
      filters.append(q, which, count);
      this.root.append(filters);
      const cols = [['tensor', (r) => m.names[r[0]], false], ['bytes', (r) => r[1], true], ['decision', (r) => m.d.decisions[r[2]], false],
                    ['detail', (r) => r[3], false], ['cost', (r) => r[4], true], ['saved', (r) => r[5], true]];
      let sortBy = -1, asc = true;
      const head = el('tr'), body = el('tbody');
      const render = () => {
        const text = q.value.toLowerCase(), d = which.value;
        let shown = rows.filter((r) => (d === '' || String(r[2]) === d) &&
                                       (!text || m.names[r[0]].toLowerCase().includes(text) || r[3].toLowerCase().includes(text)));
        if (sortBy >= 0) {
          const key = cols[sortBy][1];
          shown = shown.slice().sort((a, b) => { const x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); });
        }
        count.textContent = shown.length + ' of ' + rows.length + ' tensors';
        body.replaceChildren(...shown.map((r) => {
          const tr = el('tr', {'data-value': String(r[0]), onclick: () => this.select(r[0])},
                        el('td', {text: m.names[r[0]]}), el('td', {class: 'num', text: exact(r[1])}),
                        el('td', {text: m.d.decisions[r[2]]}), el('td', {text: r[3]}),
                        el('td', {class: 'num', text: r[4] > 0 ? dur(r[4]) : '-'}), el('td', {class: 'num', text: r[5] ? human(r[5]) : '-'}));
          if (r[0] === this.selected) tr.className = 'sel';
          return tr;
        }));
      };
      cols.forEach(([name, , num], k) => {
        head.append(el('th', {class: num ? 'num' : '', text: name, onclick: () => {
          if (sortBy === k) asc = !asc; else { sortBy = k; asc = !num; }
          render();
        }}));
      });
      q.addEventListener('input', render);
      which.addEventListener('change', render);
      this.root.append(el('div', {class: 'tablebox decisions'}, el('table', {}, el('thead', {}, head), body)));
      render();
    }
    // For tests and scripts: a point on the screen inside the pixel column that draws
    // position i of the memory chart (the column of the middle of its span).
    clientPoint(i) {
      const r = this.mem.over.getBoundingClientRect(), ax = this.axis;
      const x = (ax.px(ax.posX(i), this.mem.w) + ax.px(ax.posX(i + 1), this.mem.w)) / 2;
      return {x: r.left + Math.floor(x) + 0.25, y: r.top + this.mem.height / 2};
    }
  }

  // ---- two plans: what changed ------------------------------------------------
  function comparison(root, a, b) {
    root.append(el('h2', {text: 'A against B'}));
    const rows = [
      ['policy', (m) => m.h.policy + (m.h.chosen ? ' (' + m.h.chosen + ')' : ''), null],
      ['budget', (m) => m.h.budget ? human(m.h.budget) : 'none', null],
      ['peak (max live)', (m) => human(m.peak), (m) => m.peak],
      ['arena', (m) => human(m.h.arena), (m) => m.h.arena],
      ['host arena', (m) => human(m.h.host_arena), (m) => m.h.host_arena],
      ['step time', (m) => dur(m.h.step_seconds), (m) => m.h.step_seconds],
      ['vs unmanaged', (m) => ratio(m.h.step_seconds / m.h.unmanaged_step_seconds), (m) => m.h.step_seconds / m.h.unmanaged_step_seconds],
      ['stall', (m) => dur(m.h.stall_seconds), (m) => m.h.stall_seconds],
      ['recomputation', (m) => dur(m.h.recompute_seconds), (m) => m.h.recompute_seconds],
      ['copied to host', (m) => human(m.h.bytes_to_host), (m) => m.h.bytes_to_host]];
    const body = el('tbody');
    for (const [name, show, val] of rows) {
      const tr = el('tr', {}, el('td', {text: name}), el('td', {class: 'num', text: show(a)}), el('td', {class: 'num', text: show(b)}));
      if (val) {
        const x = val(a), y = val(b), r = x > 0 ? y / x : (y > 0 ? Infinity : 1);
        tr.append(el('td', {class: 'num ' + (r < 1 ? 'better' : r > 1 ? 'worse' : ''), text: isFinite(r) ? r.toFixed(3) + 'x' : '-'}));
      } else tr.append(el('td'));
      body.append(tr);
    }
    root.append(el('div', {class: 'tablebox compare'}, el('table', {}, el('thead', {}, el('tr', {}, el('th', {text: ''}),
      el('th', {class: 'num', text: 'A'}), el('th', {class: 'num', text: 'B'}), el('th', {class: 'num', text: 'B / A'}))), body)));
    // decisions by tensor name
    const da = new Map(a.d.explain.map((r) => [a.names[r[0]], r])), db = new Map(b.d.explain.map((r) => [b.names[r[0]], r]));
    const changed = [];
    for (const [name, ra] of da) {
      const rb = db.get(name);
      const x = a.d.decisions[ra[2]] + (ra[3] ? ' (' + ra[3] + ')' : ''), y = rb ? b.d.decisions[rb[2]] + (rb[3] ? ' (' + rb[3] + ')' : '') : 'not stashed';
      if (x !== y) changed.push([name, ra[1], x, y]);
    }
    for (const [name, rb] of db) if (!da.has(name)) changed.push([name, rb[1], 'not stashed', b.d.decisions[rb[2]]]);
    changed.sort((x, y) => y[1] - x[1]);
    root.append(el('h2', {text: 'Tensors whose decision changed (' + changed.length + ' of ' + Math.max(da.size, db.size) + ')'}));
    const cb = el('tbody', {}, ...changed.map((c) => el('tr', {'data-changed': c[0]}, el('td', {text: c[0]}),
      el('td', {class: 'num', text: exact(c[1])}), el('td', {text: c[2]}), el('td', {text: c[3]}))));
    root.append(el('div', {class: 'tablebox changed'}, el('table', {}, el('thead', {}, el('tr', {}, el('th', {text: 'tensor'}),
      el('th', {class: 'num', text: 'bytes'}), el('th', {text: 'A'}), el('th', {text: 'B'}))), cb)));
  }

  function main() {
    const plans = JSON.parse(document.getElementById('dlmem-data').textContent);
    const models = plans.map((d, k) => new Model(d, k));
    const page = el('div', {class: 'page'});
    document.getElementById('app').append(page);
    const h = models[0].h;
    page.append(el('h1', {text: 'dlmem plan report: ' + h.model + ', batch ' + h.batch}),
                el('div', {class: 'sub', text: models.map((m) => m.h.policy + (m.h.source ? ' (' + m.h.source + ')' : '')).join(' vs ') +
                                                ' on ' + h.device}));
    if (models.length === 2) comparison(page, models[0], models[1]);
    // One y scale for every plan on the page, so that heights compare.
    let ymax = 0;
    for (const m of models) ymax = Math.max(ymax, m.peak, m.h.arena, m.h.budget);
    ymax = ymax * 1.08 || 1;
    for (const m of models) {
      const v = new PlanView(page, m, ymax);
      v.draw();
      v.setCursor(v.peakPos());
      report.plans.push({peak: m.peak, peakPos: m.peakPos, peakTimePos: m.peakTimePos, plannedPeak: m.h.planned_peak,
                         setAxis: (mode) => v.setAxis(mode), peakPoint: () => v.clientPoint(v.peakPos()),
                         point: (i) => v.clientPoint(i), select: (name) => v.select(m.names.indexOf(name))});
    }
    report.ready = true;
  }
  try {
    main();
  } catch (e) {
    report.errors.push(String(e && e.stack || e));
    console.error(e);
    document.body.append(el('pre', {class: 'warn', text: 'dlmem report: ' + (e && e.stack || e)}));
  }
})();
