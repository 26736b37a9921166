// toolkit report: everything is drawn here from the data embedded in the page; nothing is
// fetched. Instances are columns of numbers (see toolkit/report/data.py), the timeline and
// the histograms are canvases, and the instance table shows one page of rows at a time:
// a 100,000-instance run never becomes 100,000 DOM nodes.
"use strict";

(function () {
  const COLOURS = {
    ok: "#2e7d32", failed: "#c62828", timeout: "#ef6c00", crashed: "#6a1b9a", skipped: "#9e9e9e",
  };
  const PAGE = 50;

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function fmtDur(s) {
    if (s === null || s === undefined || s < 0 || Number.isNaN(s)) return "-";
    if (s < 0.001) return (s * 1e6).toFixed(0) + " µs";
    if (s < 1) return (s * 1000).toFixed(s < 0.01 ? 2 : 1) + " ms";
    if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + " s";
    const m = Math.floor(s / 60), sec = Math.round(s % 60);
    if (m < 60) return `${m}m${String(sec).padStart(2, "0")}s`;
    return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
  }
  function fmtNum(n, digits) {
    if (n === null || n === undefined || Number.isNaN(n)) return "-";
    return n.toLocaleString("en-US", { maximumFractionDigits: digits === undefined ? 0 : digits });
  }
  function fmtTime(text) {
    if (!text) return "-";
    return String(text).replace("T", " ").replace(/\.\d+Z$/, "Z");
  }
  function badge(status) {
    return h("span", { class: `badge st-${status}` }, status);
  }

  async function inflate(b64) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return JSON.parse(await new Response(stream).text());
  }

  // -- the model: columns as typed arrays --------------------------------------------------
  function model(data) {
    const c = data.columns;
    const n = c.id.length;
    const m = {
      data, n, ids: c.id,
      task: Int32Array.from(c.task), status: Int8Array.from(c.status),
      start: Float64Array.from(c.start, (v) => (v < 0 ? -1 : v / 1e6)),
      dur: Float64Array.from(c.dur, (v) => (v < 0 ? -1 : v / 1e6)),
      lane: Int32Array.from(c.lane), attempts: Int32Array.from(c.attempts),
      rss: Float64Array.from(c.rss, (v) => (v < 0 ? -1 : v / 10)),
      cached: new Uint8Array(n), statuses: data.statuses, tasks: data.tasks, lanes: data.lanes,
      params: data.params, logs: data.logs || {},
    };
    for (const i of c.cached) m.cached[i] = 1;
    m.end = new Float64Array(n);
    let span = 0;
    for (let i = 0; i < n; i++) {
      m.end[i] = m.start[i] < 0 ? -1 : m.start[i] + Math.max(0, m.dur[i]);
      if (m.end[i] > span) span = m.end[i];
    }
    m.span = span;
    return m;
  }
  function paramsOf(m, i) {
    const out = [];
    const p = m.params;
    for (let k = 0; k < p.names.length; k++) {
      const code = p.codes[k][i];
      if (code >= 0) out.push(`${p.names[k]}=${p.values[k][code]}`);
    }
    return out;
  }
  function logHref(m, base, i) {
    const name = m.logs[String(i)];
    if (!name) return null;
    if (base.ui) return `log?instance=${encodeURIComponent(m.ids[i])}`;
    return `${base.run}logs/${encodeURIComponent(name)}`;
  }

  // -- summary ---------------------------------------------------------------------------
  function summary(m, base) {
    const s = m.data.summary;
    const counts = s.counts || {};
    const out = h("section", { id: "summary" });
    const line = h("p", {}, badge(s.status), " ",
      s.reason ? h("span", {}, s.reason) : null,
      s.description ? h("span", { class: "note" }, " ", s.description) : null);
    out.append(line);
    if (s.live) {
      out.append(h("p", { class: "banner" },
        `This run is still going: the report shows the ${fmtNum(m.n)} instances finished when it was written (${fmtTime(m.data.generated)}). `,
        "Write it again with ", h("code", {}, "toolkit report"), ", or follow the run live in ", h("code", {}, "toolkit ui"), "."));
    } else if (s.status === "dead") {
      out.append(h("p", { class: "banner bad" },
        "The manifest still says running, but the run's process is gone: it was killed before it could finish. ",
        "The instances below are the ones it finished."));
    } else if (s.status === "damaged") {
      out.append(h("p", { class: "banner bad" },
        "This run's manifest.toml is damaged (see above): the report shows what could be read of it, and every record in results.jsonl."));
    }
    const chips = [];
    for (const st of m.statuses) {
      if (counts[st]) chips.push(h("span", {}, badge(st), ` ${fmtNum(counts[st])}  `));
    }
    if (counts.not_run) chips.push(h("span", {}, h("span", { class: "badge" }, "not run"), ` ${fmtNum(counts.not_run)}`));
    const facts = [
      ["run", s.run_id], ["recipe", s.recipe + (s.recipe_path ? `  (${s.recipe_path})` : "")],
      ["counts", h("span", {}, `${fmtNum(counts.total)} total: `, chips.length ? chips : "nothing ran")],
      ["started", fmtTime(s.started)], ["finished", s.finished ? fmtTime(s.finished) : "-"],
      ["duration", fmtDur(s.duration_s)],
      ["executor", `${s.executor || "-"}${s.executor_reason ? ` (${s.executor_reason})` : ""}`],
      ["workers", `${s.workers ?? "-"}${s.start_method ? ` (${s.start_method})` : ""}`],
      ["host", s.host || "-"],
    ];
    if (s.scheduled_for) facts.push(["scheduled for", fmtTime(s.scheduled_for)]);
    if (s.resumed && s.resumed.length) facts.push(["resumed", s.resumed.map(fmtTime).join(", ")]);
    const plugins = Object.entries(s.plugins || {}).map(([k, v]) => `${k} ${v}`.trim());
    facts.push(["versions", `toolkit ${s.toolkit || "?"}, Python ${s.python || "?"}` +
      (s.platform ? `, ${s.platform}` : "") + (plugins.length ? `; plugins: ${plugins.join(", ")}` : "")]);
    const overrides = s.overrides || [];
    facts.push(["--set", overrides.length ? h("code", {}, overrides.join("  ")) : "none"]);
    facts.push(["files", h("span", {},
      h("a", { href: `${base.run}manifest.toml` }, "manifest.toml"), " · ",
      h("a", { href: `${base.run}results.jsonl` }, "results.jsonl"))]);
    out.append(h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
    return out;
  }

  // -- per task --------------------------------------------------------------------------
  function taskTable(m) {
    const head = ["task", "uses", "done", ...m.statuses, "p50", "p95", "max", "throughput", "peak memory"];
    const rows = m.tasks.map((t) => h("tr", {},
      h("td", {}, t.name), h("td", {}, h("code", {}, t.uses)), h("td", { class: "num" }, fmtNum(t.done)),
      m.statuses.map((st) => h("td", { class: "num" }, t.counts[st] ? fmtNum(t.counts[st]) : "")),
      h("td", { class: "num" }, fmtDur(t.p50)), h("td", { class: "num" }, fmtDur(t.p95)),
      h("td", { class: "num" }, fmtDur(t.max)),
      h("td", { class: "num" }, t.throughput ? `${fmtNum(t.throughput, t.throughput < 10 ? 2 : 0)}/s` : "-"),
      h("td", { class: "num" }, t.peak_rss_mib === null ? "-" : `${fmtNum(t.peak_rss_mib, 1)} MiB`)));
    return h("section", { id: "tasks" }, h("h2", {}, "Tasks"),
      h("table", {}, h("thead", {}, h("tr", {}, head.map((x, i) => h("th", { class: i >= 2 ? "num" : "" }, x)))),
        h("tbody", {}, rows)),
      h("p", { class: "note" }, "Durations are per instance (the final attempt); throughput is instances finished per second of the task's span; peak memory is the highest resident size a worker reported."));
  }

  // -- canvas helpers -----------------------------------------------------------------------
  function sizeCanvas(canvas, cssW, cssH) {
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
    canvas.style.height = cssH + "px";
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  }
  function ticks(lo, hi, count) {
    const span = hi - lo;
    if (span <= 0) return [lo];
    const raw = span / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => span / s <= count) || 10 * mag;
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-12; t += step) out.push(t);
    return out;
  }

  // -- timeline -----------------------------------------------------------------------------
  function timeline(m, tip, base) {
    const section = h("section", { id: "timeline" }, h("h2", {}, "Timeline"));
    const withTimes = m.start.filter((s) => s >= 0).length;
    if (!withTimes) {
      section.append(h("p", { class: "note" }, m.data.columns.cached.length
        ? "Every instance came from the cache (results copied from an earlier run): nothing ran in this one."
        : "No instance has a start time yet."));
      return { section, draw() {} };
    }
    const nl = Math.max(1, m.lanes.length);
    const laneH = Math.max(4, Math.min(22, Math.floor(520 / nl)));
    const gutter = 170, top = 22, height = top + nl * laneH + 8;
    const canvas = h("canvas", { id: "timeline-canvas", "aria-label": "timeline of every instance on its worker" });
    const chart = h("div", { class: "chart" }, canvas);
    const busy = new Float64Array(nl);
    const perLane = Array.from({ length: nl }, () => []);
    for (let i = 0; i < m.n; i++) {
      if (m.start[i] < 0 || m.lane[i] < 0) continue;
      perLane[m.lane[i]].push(i);
      busy[m.lane[i]] += Math.max(0, m.dur[i]);
    }
    for (const rows of perLane) rows.sort((a, b) => m.start[a] - m.start[b]);
    const totalBusy = busy.reduce((a, b) => a + b, 0);
    const util = m.span > 0 ? totalBusy / (m.span * nl) : 0;
    const legend = h("p", { class: "legend" },
      m.statuses.map((st) => h("span", {}, h("i", { style: `background:${COLOURS[st]}` }), st)),
      h("span", {}, h("i", { style: "background:#eceff1" }), "idle"),
      h("span", {}, `lanes busy ${fmtNum(util * 100, 1)}% of the run's span; wheel to zoom, drag to pan, double-click to reset`));
    section.append(legend, chart);
    const cached = m.data.columns.cached.length;
    if (cached) {
      section.append(h("p", { class: "note", id: "timeline-cached" }, `${fmtNum(cached)} cached instance${cached === 1 ? "" : "s"} (results copied from an earlier run) did not run in this one: they are not on the timeline.`));
    }
    let v0 = 0, v1 = m.span > 0 ? m.span : 1;
    let drawn = [];
    let cssW = 0;

    function x(t) { return gutter + ((t - v0) / (v1 - v0)) * (cssW - gutter - 8); }
    function draw() {
      cssW = chart.clientWidth || 1000;
      const ctx = sizeCanvas(canvas, cssW, height);
      ctx.clearRect(0, 0, cssW, height);
      ctx.font = "11px system-ui, sans-serif";
      ctx.textBaseline = "middle";
      ctx.fillStyle = "#59636e";
      for (const t of ticks(v0, v1, Math.max(2, Math.floor((cssW - gutter) / 110)))) {
        const px = x(t);
        ctx.fillRect(px, top - 4, 1, 4);
        ctx.fillText(fmtDur(t), px + 2, 9);
      }
      for (let l = 0; l < nl; l++) {
        const y = top + l * laneH;
        ctx.fillStyle = "#eceff1";
        ctx.fillRect(gutter, y + 1, cssW - gutter - 8, laneH - 2);
        if (laneH >= 9) {
          ctx.fillStyle = "#59636e";
          const label = `${m.lanes[l]} · ${m.span > 0 ? Math.round((busy[l] / m.span) * 100) : 0}%`;
          ctx.fillText(label.length > 26 ? label.slice(0, 25) + "…" : label, 4, y + laneH / 2);
        }
      }
      drawn = [];
      const width = cssW - gutter - 8;
      let last = null;
      for (let l = 0; l < nl; l++) {
        const y = top + l * laneH + 1, bh = Math.max(1, laneH - 2);
        for (const i of perLane[l]) {
          if (m.end[i] < v0 || m.start[i] > v1) continue;
          // whole pixels: crisp edges, and a 1-pixel bar keeps its colour
          const x0 = Math.round(Math.max(gutter, x(m.start[i])));
          const x1 = Math.round(Math.min(gutter + width, x(m.end[i])));
          const w = Math.max(1, x1 - x0);
          const colour = COLOURS[m.statuses[m.status[i]]];
          if (colour !== last) { ctx.fillStyle = colour; last = colour; }
          ctx.fillRect(x0, y, w, bh);
          drawn.push(i);
        }
      }
      canvas.dataset.bars = String(drawn.length);
    }
    function rowAt(px, py) {
      const l = Math.floor((py - top) / laneH);
      if (l < 0 || l >= nl || px < gutter) return -1;
      const t = v0 + ((px - gutter) / (cssW - gutter - 8)) * (v1 - v0);
      const tol = (3 / (cssW - gutter - 8)) * (v1 - v0);
      const rows = perLane[l];
      let lo = 0, hi = rows.length - 1, at = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (m.start[rows[mid]] <= t + tol) { at = mid; lo = mid + 1; } else hi = mid - 1;
      }
      let best = -1, bestD = Infinity;
      for (let k = at; k >= 0 && k > at - 64; k--) {
        const i = rows[k];
        const d = t < m.start[i] ? m.start[i] - t : t > m.end[i] ? t - m.end[i] : 0;
        if (d <= tol && d < bestD) { best = i; bestD = d; }
      }
      return best;
    }
    canvas.addEventListener("mousemove", (ev) => {
      const r = canvas.getBoundingClientRect();
      const i = rowAt(ev.clientX - r.left, ev.clientY - r.top);
      if (drag) return;
      if (i < 0) { tip.hide(); return; }
      tip.show(ev, describe(m, i));
    });
    canvas.addEventListener("mouseleave", () => tip.hide());
    canvas.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const r = canvas.getBoundingClientRect();
      const px = ev.clientX - r.left;
      if (px < gutter) return;
      const t = v0 + ((px - gutter) / (cssW - gutter - 8)) * (v1 - v0);
      const f = ev.deltaY > 0 ? 1.25 : 0.8;
      const minSpan = Math.max(1e-6, (m.span || 1) / 1e6);
      const span = Math.max(minSpan, (v1 - v0) * f);
      v0 = t - (t - v0) * (span / (v1 - v0));
      v1 = v0 + span;
      draw();
    }, { passive: false });
    let drag = null;
    canvas.addEventListener("mousedown", (ev) => { drag = { x: ev.clientX, v0, v1 }; });
    window.addEventListener("mouseup", () => { drag = null; });
    window.addEventListener("mousemove", (ev) => {
      if (!drag) return;
      const dt = ((ev.clientX - drag.x) / (cssW - gutter - 8)) * (drag.v1 - drag.v0);
      v0 = drag.v0 - dt; v1 = drag.v1 - dt;
      draw();
    });
    canvas.addEventListener("dblclick", () => { v0 = 0; v1 = m.span > 0 ? m.span : 1; draw(); });
    window.addEventListener("resize", draw);
    return {
      section, draw,
      // the geometry of every bar drawn, in CSS pixels of the canvas (for tests and tools)
      bars() {
        const width = cssW - gutter - 8;
        return drawn.map((i) => {
          const x0 = Math.round(Math.max(gutter, x(m.start[i])));
          const x1 = Math.round(Math.min(gutter + width, x(m.end[i])));
          return { id: m.ids[i], status: m.statuses[m.status[i]], x: x0, y: top + m.lane[i] * laneH + 1,
            w: Math.max(1, x1 - x0), h: Math.max(1, laneH - 2) };
        });
      },
    };
  }

  function describe(m, i) {
    const lines = [m.ids[i], `${m.statuses[m.status[i]]}${m.cached[i] ? " (cached)" : ""} after ${m.attempts[i]} attempt${m.attempts[i] === 1 ? "" : "s"}`,
      `duration ${fmtDur(m.dur[i])}` + (m.start[i] >= 0 ? `, started at +${fmtDur(m.start[i])}` : "")];
    if (m.lane[i] >= 0) lines.push(`worker ${m.lanes[m.lane[i]]}`);
    if (m.rss[i] >= 0) lines.push(`peak memory ${fmtNum(m.rss[i], 1)} MiB`);
    const p = paramsOf(m, i);
    if (p.length) lines.push(p.join(", "));
    return lines.join("\n");
  }

  function tooltip() {
    const el = h("div", { class: "tip", id: "tip" });
    document.body.append(el);
    return {
      show(ev, text) {
        el.textContent = text;
        el.style.display = "block";
        const x = Math.min(ev.clientX + 14, window.innerWidth - el.offsetWidth - 8);
        el.style.left = x + "px";
        el.style.top = ev.clientY + 14 + "px";
      },
      hide() { el.style.display = "none"; },
    };
  }

  // -- durations -------------------------------------------------------------------------
  function histograms(m) {
    const section = h("section", { id: "durations" }, h("h2", {}, "Durations"));
    const box = h("div", { class: "hists" });
    section.append(box);
    const draws = [];
    m.tasks.forEach((t, ti) => {
      const vals = [];
      for (let i = 0; i < m.n; i++) if (m.task[i] === ti && m.dur[i] >= 0) vals.push(m.dur[i]);
      if (!vals.length) return;
      let lo = Infinity, hi = -Infinity, low = Infinity;
      for (const v of vals) { if (v < lo) lo = v; if (v > hi) hi = v; if (v > 0 && v < low) low = v; }
      // a long tail (tiny tasks with a few slow ones) reads better on a log scale
      const log = low < Infinity && hi / low > 50;
      if (log) lo = low;
      const f = log ? (v) => Math.log10(Math.max(v, low)) : (v) => v;
      const a = f(lo), b = f(hi) === f(lo) ? f(lo) + 1e-9 : f(hi);
      const bins = new Array(30).fill(0);
      for (const v of vals) bins[Math.min(29, Math.floor(((f(v) - a) / (b - a)) * 30))]++;
      const canvas = h("canvas", { class: "hist" });
      const chart = h("div", { class: "chart" }, canvas);
      box.append(h("div", {}, h("h3", {}, `${t.name} `, h("span", { class: "note" },
        `${fmtNum(vals.length)} instances, p50 ${fmtDur(t.p50)}, p95 ${fmtDur(t.p95)}${log ? ", log scale" : ""}`)), chart));
      draws.push(() => {
        const W = chart.clientWidth || 360, H = 130;
        const ctx = sizeCanvas(canvas, W, H);
        const peak = Math.max(...bins);
        const bw = (W - 20) / 30;
        ctx.fillStyle = "#1565c0";
        bins.forEach((c, k) => {
          const bh = peak ? (c / peak) * (H - 36) : 0;
          ctx.fillRect(10 + k * bw + 1, H - 20 - bh, bw - 2, bh);
        });
        const inv = (v) => 10 + ((f(v) - a) / (b - a)) * (W - 20);
        for (const [q, colour] of [[t.p50, "#2e7d32"], [t.p95, "#c62828"]]) {
          if (q === null) continue;
          ctx.fillStyle = colour;
          ctx.fillRect(inv(q), 8, 1.5, H - 28);
        }
        ctx.fillStyle = "#59636e";
        ctx.font = "11px system-ui, sans-serif";
        ctx.textBaseline = "alphabetic";
        ctx.fillText(fmtDur(lo), 10, H - 5);
        const right = fmtDur(hi);
        ctx.fillText(right, W - 10 - ctx.measureText(right).width, H - 5);
        ctx.fillText(`max ${fmtNum(peak)} per bin`, 10, 12);
      });
    });
    if (!draws.length) box.append(h("p", { class: "note" }, "No durations yet."));
    return { section, draw() { draws.forEach((d) => d()); } };
  }

  function slowest(m, show) {
    const rows = m.data.slowest.map((i) => h("tr", {},
      h("td", { class: "id" }, h("a", { class: "link", onclick: () => show(m.ids[i]) }, m.ids[i])),
      h("td", {}, badge(m.statuses[m.status[i]])), h("td", { class: "num" }, fmtDur(m.dur[i])),
      h("td", { class: "num" }, m.start[i] >= 0 ? `+${fmtDur(m.start[i])}` : "-"),
      h("td", {}, m.lane[i] >= 0 ? m.lanes[m.lane[i]] : "-")));
    return h("section", { id: "slowest" }, h("h2", {}, `Slowest ${rows.length} instances`),
      rows.length ? h("table", {}, h("thead", {}, h("tr", {}, ["instance", "status", "duration", "started", "worker"].map((x) => h("th", {}, x)))), h("tbody", {}, rows))
        : h("p", { class: "note" }, "No durations yet."));
  }

  // -- the task graph ----------------------------------------------------------------------
  function graph(m) {
    const section = h("section", { id: "graph" }, h("h2", {}, "Task graph"));
    const tasks = m.tasks;
    const byName = new Map(tasks.map((t) => [t.name, t]));
    const depth = new Map();
    const depthOf = (t, seen) => {
      if (depth.has(t.name)) return depth.get(t.name);
      if (seen.has(t.name)) return 0;
      seen.add(t.name);
      let d = 0;
      for (const n of t.needs) if (byName.has(n)) d = Math.max(d, depthOf(byName.get(n), seen) + 1);
      depth.set(t.name, d);
      return d;
    };
    tasks.forEach((t) => depthOf(t, new Set()));
    const cols = [];
    tasks.forEach((t) => { const d = depth.get(t.name); (cols[d] = cols[d] || []).push(t); });
    const W = 210, H = 58, GX = 70, GY = 18;
    const pos = new Map();
    cols.forEach((col, d) => col.forEach((t, k) => pos.set(t.name, { x: 10 + d * (W + GX), y: 10 + k * (H + GY) })));
    const width = 20 + cols.length * (W + GX) - GX, height = 20 + Math.max(...cols.map((c) => c.length)) * (H + GY) - GY;
    const NS = "http://www.w3.org/2000/svg";
    const s = (tag, attrs, text) => {
      const el = document.createElementNS(NS, tag);
      for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
      if (text !== undefined) el.textContent = text;
      return el;
    };
    const svg = s("svg", { class: "graph", width, height, viewBox: `0 0 ${width} ${height}` });
    const defs = s("defs", {});
    const marker = s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto" });
    marker.append(s("path", { d: "M0,0 L10,5 L0,10 z", style: "fill:#59636e;stroke:none" }));
    defs.append(marker);
    svg.append(defs);
    for (const t of tasks) {
      for (const n of t.needs) {
        const a = pos.get(n), b = pos.get(t.name);
        if (!a || !b) continue;
        const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
        svg.append(s("path", { d: `M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}`, "marker-end": "url(#arrow)" }));
      }
    }
    for (const t of tasks) {
      const p = pos.get(t.name);
      const bad = t.counts.failed + t.counts.timeout + t.counts.crashed;
      const colour = bad ? COLOURS.failed : t.counts.skipped ? COLOURS.skipped : t.done ? COLOURS.ok : "#9e9e9e";
      const g = s("g", { class: "node", transform: `translate(${p.x},${p.y})`, "data-task": t.name });
      g.append(s("rect", { width: W, height: H, rx: 6, style: `stroke:${colour}` }));
      g.append(s("text", { x: 10, y: 18, "font-weight": "600" }, t.name));
      g.append(s("text", { x: 10, y: 34, fill: "#59636e" }, t.uses));
      const parts = m.statuses.filter((st) => t.counts[st]).map((st) => `${fmtNum(t.counts[st])} ${st}`);
      g.append(s("text", { x: 10, y: 50 }, parts.join(" · ") || "nothing ran"));
      svg.append(g);
    }
    section.append(h("div", { style: "overflow:auto" }, svg));
    return section;
  }

  // -- failures ------------------------------------------------------------------------------
  function failures(m, base, show) {
    const f = m.data.failures;
    const section = h("section", { id: "failures" }, h("h2", {}, `Failures (${fmtNum(f.total)})`));
    if (!f.total) {
      section.append(h("p", { class: "note" }, "No instance failed."));
      return section;
    }
    section.append(h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "error type"), h("th", { class: "num" }, "instances"))),
      h("tbody", {}, f.types.map(([t, c]) => h("tr", {}, h("td", {}, h("code", {}, t)), h("td", { class: "num" }, fmtNum(c)))))));
    for (const item of f.listed) {
      const i = item.row;
      const log = logHref(m, base, i);
      section.append(h("details", { class: "failure" },
        h("summary", {}, h("code", {}, m.ids[i]), " ", badge(m.statuses[m.status[i]]),
          ` after ${m.attempts[i]} attempt${m.attempts[i] === 1 ? "" : "s"}: `, h("strong", {}, item.type),
          item.message ? `: ${item.message.split("\n")[0]}` : ""),
        item.message.includes("\n") ? h("pre", {}, item.message) : null,
        item.traceback ? h("pre", {}, item.traceback) : h("p", { class: "note" }, "No traceback."),
        h("p", {}, log ? h("a", { href: log }, "log") : h("span", { class: "note" }, "no log"), " · ",
          h("a", { class: "link", onclick: () => show(m.ids[i]) }, "in the instance table"))));
    }
    if (f.total > f.listed.length) {
      section.append(h("p", { class: "note" }, `${fmtNum(f.total - f.listed.length)} more: the instance table lists them all (filter by status).`));
    }
    return section;
  }

  // -- the instance table ------------------------------------------------------------------------
  function instances(m, base) {
    const section = h("section", { id: "instances" }, h("h2", {}, "Instances"));
    const statusSel = h("select", { id: "filter-status", "aria-label": "status" },
      h("option", { value: "" }, "every status"),
      m.statuses.map((st, k) => h("option", { value: String(k) }, st)));
    const taskSel = h("select", { id: "filter-task", "aria-label": "task" },
      h("option", { value: "" }, "every task"), m.tasks.map((t, k) => h("option", { value: String(k) }, t.name)));
    const text = h("input", { type: "search", id: "filter-text", placeholder: "param=value … or part of an id", "aria-label": "filter" });
    const count = h("span", { id: "filter-count", class: "note" });
    const prev = h("button", { type: "button", id: "page-prev" }, "‹ previous");
    const next = h("button", { type: "button", id: "page-next" }, "next ›");
    const pageInfo = h("span", { id: "page-info", class: "note" });
    section.append(h("div", { class: "controls" }, statusSel, taskSel, text, count, prev, pageInfo, next));
    const cols = [
      ["instance", (i) => m.ids[i], "str"], ["task", (i) => m.task[i], "num"], ["status", (i) => m.status[i], "num"],
      ["duration", (i) => m.dur[i], "num"], ["attempts", (i) => m.attempts[i], "num"], ["started", (i) => m.start[i], "num"],
      ["worker", (i) => m.lane[i], "num"], ["peak memory", (i) => m.rss[i], "num"],
    ];
    let sortCol = -1, sortDir = 1, page = 0, rows = null;
    const ths = cols.map(([name], k) => h("th", { class: "sortable" + (k >= 3 && k !== 6 ? " num" : ""), "data-col": String(k),
      onclick: () => { if (sortCol === k) sortDir = -sortDir; else { sortCol = k; sortDir = 1; } apply(false); } }, name));
    const tbody = h("tbody", {});
    section.append(h("table", { id: "instance-table" }, h("thead", {}, h("tr", {}, ths, h("th", {}, "params"), h("th", {}, "log"))), tbody));

    function matcher() {
      const terms = text.value.trim().split(/[\s,]+/).filter(Boolean);
      const tests = [];
      for (const term of terms) {
        const eq = term.indexOf("=");
        const k = eq > 0 ? m.params.names.indexOf(term.slice(0, eq)) : -1;
        if (k >= 0) {
          const want = term.slice(eq + 1);
          const code = m.params.values[k].indexOf(want);
          const codes = m.params.codes[k];
          tests.push((i) => code >= 0 && codes[i] === code);
        } else {
          const low = term.toLowerCase();
          tests.push((i) => m.ids[i].toLowerCase().includes(low));
        }
      }
      return tests;
    }
    function apply(refilter) {
      if (refilter || rows === null) {
        const st = statusSel.value === "" ? -1 : Number(statusSel.value);
        const tk = taskSel.value === "" ? -1 : Number(taskSel.value);
        const tests = matcher();
        const out = [];
        for (let i = 0; i < m.n; i++) {
          if (st >= 0 && m.status[i] !== st) continue;
          if (tk >= 0 && m.task[i] !== tk) continue;
          let ok = true;
          for (const t of tests) if (!t(i)) { ok = false; break; }
          if (ok) out.push(i);
        }
        rows = out;
        page = 0;
      }
      if (sortCol >= 0) {
        const [, key, kind] = cols[sortCol];
        if (kind === "str") rows.sort((a, b) => (key(a) < key(b) ? -sortDir : key(a) > key(b) ? sortDir : a - b));
        else rows.sort((a, b) => (key(a) - key(b)) * sortDir || a - b);
      }
      ths.forEach((th, k) => { th.classList.toggle("sorted-asc", k === sortCol && sortDir > 0); th.classList.toggle("sorted-desc", k === sortCol && sortDir < 0); });
      renderPage();
    }
    function renderPage() {
      const pages = Math.max(1, Math.ceil(rows.length / PAGE));
      page = Math.min(page, pages - 1);
      const part = rows.slice(page * PAGE, page * PAGE + PAGE);
      tbody.replaceChildren(...part.map((i) => {
        const log = logHref(m, base, i);
        return h("tr", { "data-row": String(i) },
          h("td", { class: "id", title: m.ids[i] }, m.ids[i]), h("td", {}, m.tasks[m.task[i]].name),
          h("td", {}, badge(m.statuses[m.status[i]]), m.cached[i] ? " cached" : ""),
          h("td", { class: "num" }, fmtDur(m.dur[i])), h("td", { class: "num" }, String(m.attempts[i])),
          h("td", { class: "num" }, m.start[i] >= 0 ? `+${fmtDur(m.start[i])}` : "-"),
          h("td", {}, m.lane[i] >= 0 ? m.lanes[m.lane[i]] : "-"),
          h("td", { class: "num" }, m.rss[i] >= 0 ? `${fmtNum(m.rss[i], 1)} MiB` : "-"),
          h("td", { class: "id" }, paramsOf(m, i).join(", ")),
          h("td", {}, log ? h("a", { href: log }, "log") : ""));
      }));
      count.textContent = `${fmtNum(rows.length)} of ${fmtNum(m.n)} instances`;
      pageInfo.textContent = `page ${page + 1} of ${pages}`;
      prev.disabled = page === 0;
      next.disabled = page >= pages - 1;
    }
    statusSel.addEventListener("change", () => apply(true));
    taskSel.addEventListener("change", () => apply(true));
    let timer = null;
    text.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => apply(true), 150); });
    prev.addEventListener("click", () => { page--; renderPage(); });
    next.addEventListener("click", () => { page++; renderPage(); });
    apply(true);
    return {
      section,
      show(id) {
        statusSel.value = ""; taskSel.value = ""; text.value = id; apply(true);
        section.scrollIntoView();
      },
      rows: () => rows.slice(),
    };
  }

  async function main() {
    const base = JSON.parse(document.getElementById("report-base").textContent);
    const main = document.getElementById("main");
    let data;
    try {
      data = await inflate(document.getElementById("report-data").textContent.trim());
    } catch (err) {
      main.replaceChildren(h("p", { class: "banner bad" }, `This report's data cannot be read in this browser (${err}). `,
        "It needs a browser with DecompressionStream: Chrome 80, Firefox 113, Safari 16.4 or newer."));
      return;
    }
    const m = model(data);
    const tip = tooltip();
    const nav = h("nav", { class: "sections" }, [["summary", "Summary"], ["tasks", "Tasks"], ["timeline", "Timeline"],
      ["durations", "Durations"], ["slowest", "Slowest"], ["graph", "Graph"], ["failures", "Failures"], ["instances", "Instances"]]
      .map(([id, label]) => h("a", { href: `#${id}` }, label)));
    const table = instances(m, base);
    const show = (id) => table.show(id);
    const tl = timeline(m, tip, base);
    const hist = histograms(m);
    main.replaceChildren(nav, summary(m, base), taskTable(m), tl.section, hist.section, slowest(m, show), graph(m),
      failures(m, base, show), table.section);
    tl.draw();
    hist.draw();
    window.toolkitReport = { data, model: m, bars: tl.bars, rows: table.rows, show };
    document.body.dataset.ready = "1";
  }
  main();
})();
