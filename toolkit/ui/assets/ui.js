// toolkit ui: each page is drawn from JSON the server answers (it only reads), and
// refreshed in place: the run list every 2 s, a running run's progress every second.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("ui-config").textContent);
  const main = document.getElementById("main");
  const STATUSES = ["ok", "failed", "timeout", "crashed", "skipped"];
  const COLOURS = { ok: "#2e7d32", failed: "#c62828", timeout: "#ef6c00", crashed: "#6a1b9a", skipped: "#9e9e9e" };

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
  const badge = (s) => h("span", { class: `badge st-${s}` }, s);
  function fmtDur(s) {
    if (s === null || s === undefined || Number.isNaN(s)) return "-";
    if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + " s";
    const m = Math.floor(s / 60), sec = Math.round(s % 60);
    if (m < 60) return `${m}m${String(sec).padStart(2, "0")}s`;
    return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
  }
  const fmtTime = (t) => (t ? String(t).replace("T", " ").replace(/\.\d+Z$/, "Z") : "-");
  const num = (n) => (n === null || n === undefined ? "-" : Number(n).toLocaleString("en-US"));
  const runHref = (r) => `/runs/${encodeURIComponent(r.recipe)}/${encodeURIComponent(r.run_id)}/`;

  function progressBar(counts, total) {
    const bar = h("span", { class: "bar" });
    const all = total || STATUSES.reduce((a, s) => a + (counts[s] || 0), 0) || 1;
    for (const s of STATUSES) {
      if (counts[s]) bar.append(h("span", { style: `width:${(100 * counts[s]) / all}%;background:${COLOURS[s]}` }));
    }
    return bar;
  }

  async function getJSON(url) {
    const answer = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    if (!answer.ok) throw new Error(`${answer.status} ${answer.statusText}`);
    return answer.json();
  }
  function every(ms, fn) {
    let stopped = false;
    const tick = async () => {
      if (stopped) return;
      try { await fn(); } catch (err) { console.warn(err); }
      if (!stopped) setTimeout(tick, ms);
    };
    tick();
    return () => { stopped = true; };
  }

  // -- all runs ----------------------------------------------------------------------------
  function runsPage() {
    const filters = new URLSearchParams(location.search);
    const recipeSel = h("select", { id: "filter-recipe", "aria-label": "recipe" }, h("option", { value: "" }, "every recipe"));
    const statusSel = h("select", { id: "filter-status", "aria-label": "status" }, h("option", { value: "" }, "every status"));
    const count = h("span", { class: "note", id: "run-count" });
    const tbody = h("tbody", {});
    const where = h("p", { class: "note" });
    main.replaceChildren(h("h1", {}, "Runs"), where,
      h("div", { class: "controls" }, recipeSel, statusSel, count),
      h("table", { id: "runs" }, h("thead", {}, h("tr", {}, ["run", "recipe", "status", "progress", "total", "ok", "failed", "skipped", "not run", "duration", "started", "note"].map((x) => h("th", {}, x)))), tbody));
    function fill(sel, values, current) {
      const have = new Set([...sel.options].map((o) => o.value));
      for (const v of values) if (!have.has(v)) sel.append(h("option", { value: v }, v));
      if (current && !have.has(current) && !values.includes(current)) sel.append(h("option", { value: current }, current));
      sel.value = current || "";
    }
    const onChange = () => {
      const q = new URLSearchParams();
      if (recipeSel.value) q.set("recipe", recipeSel.value);
      if (statusSel.value) q.set("status", statusSel.value);
      history.replaceState(null, "", q.toString() ? `/?${q}` : "/");
      refresh();
    };
    recipeSel.addEventListener("change", onChange);
    statusSel.addEventListener("change", onChange);
    async function refresh() {
      const q = new URLSearchParams();
      const recipe = recipeSel.value || filters.get("recipe") || "";
      const status = statusSel.value || filters.get("status") || "";
      filters.delete("recipe"); filters.delete("status");
      if (recipe) q.set("recipe", recipe);
      if (status) q.set("status", status);
      const data = await getJSON(`/api/runs?${q}`);
      where.textContent = `Run directories in ${data.output}, newest first.`;
      fill(recipeSel, data.recipes, recipe);
      fill(statusSel, data.statuses, status);
      tbody.replaceChildren(...data.runs.map((r) => {
        const c = r.counts || {};
        const failed = (c.failed || 0) + (c.timeout || 0) + (c.crashed || 0);
        const done = STATUSES.reduce((a, s) => a + (c[s] || 0), 0);
        return h("tr", { "data-run": r.run_id, "data-status": r.status },
          h("td", {}, h("a", { href: runHref(r) }, r.run_id)), h("td", {}, r.recipe), h("td", {}, badge(r.status)),
          h("td", {}, progressBar(c, c.total), ` ${num(done)}`),
          h("td", { class: "num" }, num(c.total)), h("td", { class: "num" }, num(c.ok || 0)),
          h("td", { class: "num" }, num(failed)), h("td", { class: "num" }, num(c.skipped || 0)),
          h("td", { class: "num" }, num(r.status === "running" ? Math.max(0, (c.total || 0) - done) : c.not_run || 0)),
          h("td", { class: "num" }, r.status === "running" ? "…" : fmtDur(r.duration_s)),
          h("td", {}, fmtTime(r.started)), h("td", { class: "note" }, r.scheduled_for ? `scheduled for ${fmtTime(r.scheduled_for)}` : ""));
      }));
      count.textContent = `${data.runs.length} run${data.runs.length === 1 ? "" : "s"}`;
      if (!data.runs.length) tbody.append(h("tr", {}, h("td", { colspan: "12", class: "note" }, "No runs here yet.")));
      document.body.dataset.ready = "1";
    }
    every(2000, refresh);
  }

  // -- one run -----------------------------------------------------------------------------
  function runPage() {
    const title = h("h1", {}, `${config.recipe} · ${config.run_id}`);
    const status = h("span", { id: "run-status" });
    const bar = h("div", { class: "big" });
    const facts = h("dl", { class: "facts", id: "progress" });
    const frame = h("iframe", { id: "report", src: "report.html", title: "report" });
    const reload = h("button", { type: "button", onclick: () => { frame.src = `report.html?t=${Date.now()}`; } }, "refresh the report");
    main.replaceChildren(title, h("p", {}, status, " ", h("a", { href: "report.html", target: "_blank" }, "report in its own tab"),
      " · ", h("a", { href: "manifest.toml" }, "manifest.toml"), " · ", h("a", { href: "results.jsonl" }, "results.jsonl"), " · ", reload),
      bar, facts, frame);
    let last = null;
    const stop = every(1000, async () => {
      const p = await getJSON(`/api/runs/${encodeURIComponent(config.recipe)}/${encodeURIComponent(config.run_id)}`);
      status.replaceChildren(badge(p.status), p.reason ? ` ${p.reason}` : "");
      const c = p.counts || {};
      bar.replaceChildren(progressBar(c, p.total));
      const rows = [["done", `${num(p.done)} of ${num(p.total)}`],
        ["counts", STATUSES.filter((s) => c[s]).map((s) => `${num(c[s])} ${s}`).join(", ") || "-"]];
      if (p.status === "running") {
        rows.push(["rate", p.rate ? `${p.rate.toFixed(p.rate < 10 ? 2 : 0)} instances/s` : "-"]);
        rows.push(["ETA", p.eta_s !== null ? fmtDur(p.eta_s) : "-"]);
        rows.push(["elapsed", fmtDur(p.elapsed_s)]);
      } else {
        rows.push(["duration", fmtDur(p.duration_s)], ["finished", fmtTime(p.finished)]);
      }
      rows.push(["started", fmtTime(p.started)], ["executor", p.executor || "-"], ["host", p.host || "-"]);
      facts.replaceChildren(...rows.map(([k, v]) => [h("dt", {}, k), h("dd", { "data-fact": k }, v)]).flat());
      if (last === "running" && p.status !== "running") frame.src = `report.html?t=${Date.now()}`;
      last = p.status;
      document.body.dataset.ready = "1";
      if (p.status !== "running") stop();
    });
  }

  // -- an instance's log -------------------------------------------------------------------
  function logPage() {
    const rec = config.record;
    const back = h("a", { href: "./" }, `${config.recipe} · ${config.run_id}`);
    const parts = [h("p", {}, back), h("h1", {}, config.instance)];
    if (rec) {
      const err = rec.error || {};
      parts.push(h("p", {}, badge(rec.status), ` after ${rec.attempts} attempt${rec.attempts === 1 ? "" : "s"}, ${fmtDur(rec.duration_s)} on ${rec.worker || "-"}`));
      if (err.type) parts.push(h("p", {}, h("strong", {}, err.type), err.message ? `: ${err.message}` : ""));
      if (err.traceback) parts.push(h("h2", {}, "Traceback"), h("pre", {}, err.traceback));
    } else {
      parts.push(h("p", { class: "note" }, "No record of this instance (yet)."));
    }
    parts.push(h("h2", {}, "Log"), config.log === null ? h("p", { class: "note" }, "No log: the instance printed nothing.")
      : h("pre", { id: "log" }, config.log));
    main.replaceChildren(...parts);
    document.body.dataset.ready = "1";
  }

  // -- schedules -----------------------------------------------------------------------------
  function schedulesPage() {
    if (!config.state) {
      main.replaceChildren(h("h1", {}, "Schedules"), h("p", { class: "note" },
        "No schedule state directory: start the ui with ", h("code", {}, "toolkit ui --state DIR"),
        " (the --state of toolkit schedule, default .toolkit-schedule)."));
      document.body.dataset.ready = "1";
      return;
    }
    const head = h("p", { class: "note" });
    const box = h("div", { id: "schedules" });
    main.replaceChildren(h("h1", {}, "Schedules"), head, box);
    const events = (list, total, what) => list.length ? h("div", {}, h("span", {}, `${total} ${what}`), h("ul", { class: "events" },
      list.map((e) => h("li", {}, `${fmtTime(e.scheduled || e.first || e.time)}${e.count ? ` (${e.count} slots to ${fmtTime(e.last)})` : ""}${e.reason ? `: ${e.reason}` : e.message ? `: ${e.message}` : ""}`)))) : "none";
    every(5000, async () => {
      const data = await getJSON("/api/schedules");
      const d = data.daemon || {};
      head.textContent = `State in ${data.state}; the scheduler is ${d.running ? `running (pid ${d.pid})` : "not running"}.`;
      box.replaceChildren(...data.recipes.map((r) => {
        const o = r.last_outcome;
        const outcome = o ? h("span", {}, o.status ? badge(o.status) : "", ` run `, h("a", { href: `/runs/${encodeURIComponent(r.recipe)}/${encodeURIComponent(o.run_id)}/` }, o.run_id),
          ` exit ${o.exit_code ?? "unknown"}${o.duration_s !== null && o.duration_s !== undefined ? ` after ${fmtDur(o.duration_s)}` : ""}`) : "none yet";
        const sched = r.schedule ? Object.entries(r.schedule).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(", ") : "-";
        return h("section", { "data-recipe": r.recipe }, h("h2", {}, r.recipe),
          h("dl", { class: "facts" },
            h("dt", {}, "schedule"), h("dd", {}, sched),
            h("dt", {}, "next firing"), h("dd", { "data-fact": "next" }, fmtTime(r.next_firing)),
            h("dt", {}, "last firing"), h("dd", {}, fmtTime(r.last_firing)),
            h("dt", {}, "last outcome"), h("dd", { "data-fact": "outcome" }, outcome),
            h("dt", {}, "running now"), h("dd", {}, r.running ? `run ${r.running.run_id} (pid ${r.running.pid}) since ${fmtTime(r.running.started)}` : "no"),
            h("dt", {}, "queued"), h("dd", {}, r.queued.length ? r.queued.map(fmtTime).join(", ") : "none"),
            h("dt", {}, "missed"), h("dd", { "data-fact": "missed" }, events(r.missed, `${r.missed_firings ?? r.missed_total}${r.missed_more ? "+" : ""}`, "firings missed while the scheduler was down")),
            h("dt", {}, "skipped"), h("dd", { "data-fact": "skipped" }, events(r.skipped, r.skipped_total, "firings skipped (the previous run was still going)")),
            h("dt", {}, "errors"), h("dd", {}, events(r.errors, r.errors_total, "errors"))));
      }));
      if (!data.recipes.length) box.append(h("p", { class: "note" }, "No recipe has been scheduled with this state directory."));
      document.body.dataset.ready = "1";
    });
  }

  ({ runs: runsPage, run: runPage, log: logPage, schedules: schedulesPage })[config.page]();
})();
