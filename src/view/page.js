"use strict";
// The rlm trace viewer. Reads the events embedded in #rlm-trace (docs/trace.md),
// builds the run tree once, and creates a node's DOM only when it is opened.
(function () {
  const PAGE = 20000; // characters of an output shown per page
  const meta = JSON.parse(document.getElementById("rlm-meta").textContent);
  const app = document.getElementById("app");
  const open = new Set(); // keys of expanded nodes, kept across live updates

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  const num = (x) => (typeof x === "number" && isFinite(x) ? x : 0);
  const money = (x) => (x === null || x === undefined ? "no price known" : "$" + Number(x).toFixed(4));
  const secs = (x) => num(x).toFixed(2) + "s";
  const toks = (n) => (n >= 10000 ? (n / 1000).toFixed(1) + "k" : String(n)) + " tok";
  const oneLine = (s, n) => { s = String(s === null || s === undefined ? "" : s).replace(/\s+/g, " ").trim(); return s.length > n ? s.slice(0, n) + "…" : s; };
  const show = (v) => (typeof v === "string" ? v : JSON.stringify(v, null, 2));

  if (meta.mode === "index") return renderIndex(JSON.parse(document.getElementById("rlm-index").textContent));

  let events = JSON.parse(document.getElementById("rlm-trace").textContent);

  // ---- the model: runs, turns, cells, sub-calls -------------------------------
  function build(events) {
    const runs = new Map();
    const runKey = (e) => (e.top ? e.top + ":" : "") + (e.run || "0");
    const get = (e) => {
      const k = runKey(e);
      if (!runs.has(k)) runs.set(k, { key: k, id: e.run || "0", depth: num(e.depth), turns: [], children: [], loose: [], start: null, end: null, final: null, t0: num(e.t) });
      return runs.get(k);
    };
    const subs = [];
    const starts = []; // child run_start events, in order, with their index
    let final = null, lastT = 0;
    events.forEach((e, i) => {
      lastT = Math.max(lastT, num(e.t));
      const r = get(e);
      switch (e.event) {
        case "run_start": r.start = e; r.t0 = num(e.t); if (e.parent) starts.push({ i, r, e }); break;
        case "root_response": r.turns.push({ key: r.key + "/t" + e.iteration, e, cells: [], i }); break;
        case "cell": {
          let turn = r.turns.filter((t) => t.e.iteration === e.iteration).pop();
          if (!turn) { turn = { key: r.key + "/t" + e.iteration, e: { iteration: e.iteration, text: "" }, cells: [], i }; r.turns.push(turn); }
          turn.cells.push({ key: r.key + "/c" + e.cell, e, subs: [], children: [], i, run: r });
          break;
        }
        case "sub_call": subs.push({ i, r, e }); break;
        case "child_end": r.end = e; break;
        case "final": r.final = e; if (!e.top || e.top === 1) final = e; break;
      }
    });
    const cellsOf = (r) => r.turns.flatMap((t) => t.cells);
    // A sub-call belongs to the cell it names; a child run to the first cell of
    // its parent that ended after the child started (cells are written at their end).
    subs.forEach(({ i, r, e }) => {
      const c = cellsOf(r).find((c) => c.e.cell === e.cell && c.i > i) || cellsOf(r).find((c) => c.i > i);
      const s = { key: r.key + "/s" + i, e };
      if (c) c.subs.push(s); else r.loose.push(s);
    });
    starts.forEach(({ i, r, e }) => {
      const parent = runs.get((e.top ? e.top + ":" : "") + e.parent);
      if (!parent) return;
      const c = cellsOf(parent).find((c) => c.i > i);
      if (c) c.children.push(r); else parent.children.push(r);
    });
    const top = runs.get("0") || runs.values().next().value || null;
    return { runs, top, final, subs, lastT };
  }

  // Totals of a node and everything under it.
  function totalsOfRun(r) {
    const t = { in: 0, out: 0, subs: 0, cells: 0, turns: r.turns.length, cost: 0 };
    r.turns.forEach((turn) => { t.in += num(turn.e.input_tokens); t.out += num(turn.e.output_tokens); t.cost = addCost(t.cost, turn.e.cost_usd); turn.cells.forEach((c) => add(t, totalsOfCell(c))); });
    r.loose.forEach((s) => { t.subs++; t.in += num(s.e.input_tokens); t.out += num(s.e.output_tokens); t.cost = addCost(t.cost, s.e.cost_usd); });
    r.children.forEach((ch) => add(t, totalsOfRun(ch)));
    return t;
  }
  function totalsOfCell(c) {
    const t = { in: 0, out: 0, subs: c.subs.length, cells: 1, turns: 0, cost: 0 };
    c.subs.forEach((s) => { t.in += num(s.e.input_tokens); t.out += num(s.e.output_tokens); t.cost = addCost(t.cost, s.e.cost_usd); });
    c.children.forEach((ch) => add(t, totalsOfRun(ch)));
    return t;
  }
  function add(a, b) { a.in += b.in; a.out += b.out; a.subs += b.subs; a.cells += b.cells; a.turns += b.turns; a.cost = addCost(a.cost, b.cost); }
  // Costs sum while every part is known: null is unknown, undefined (a trace
  // written before events carried cost_usd) is not shown at all.
  function addCost(a, b) { return a === undefined || b === undefined ? undefined : a === null || b === null ? null : a + b; }

  // ---- a small Rhai highlighter ---------------------------------------------
  const KW = new Set("let const fn if else while loop for in return break continue true false switch do until throw try catch import export as private this".split(" "));
  function highlight(code) {
    const pre = el("pre", "code");
    const re = /(\/\/[^\n]*)|("(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`|'(?:[^'\\]|\\.)')|(\b\d[\d_]*(?:\.\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)(?=\s*\()|([A-Za-z_][A-Za-z0-9_]*)/g;
    let last = 0, m;
    while ((m = re.exec(code))) {
      if (m.index > last) pre.appendChild(document.createTextNode(code.slice(last, m.index)));
      const cls = m[1] ? "c" : m[2] ? "s" : m[3] ? "n" : m[4] ? (KW.has(m[4]) ? "k" : "f") : KW.has(m[5]) ? "k" : null;
      if (cls) pre.appendChild(el("span", cls, m[0])); else pre.appendChild(document.createTextNode(m[0]));
      last = re.lastIndex;
    }
    if (last < code.length) pre.appendChild(document.createTextNode(code.slice(last)));
    return pre;
  }

  // Long text a page at a time.
  function paged(text, cls) {
    const box = el("div");
    const pre = el("pre", cls);
    let shown = 0;
    const more = el("button", "more");
    const step = () => {
      pre.appendChild(document.createTextNode(text.slice(shown, shown + PAGE)));
      shown = Math.min(text.length, shown + PAGE);
      if (shown >= text.length) more.remove();
      else more.textContent = "show more (" + (text.length - shown).toLocaleString() + " characters left)";
    };
    more.onclick = step;
    box.appendChild(pre); box.appendChild(more); step();
    return box;
  }
  function labelled(box, label, child) { box.appendChild(el("div", "label", label)); box.appendChild(child); }

  // A collapsible node: its row is built now, its body on first open.
  function node(key, kind, cls, summary, stats, body, extraCls) {
    const n = el("div", "node");
    n.dataset.kind = kind;
    const row = el("div", "row" + (extraCls ? " " + extraCls : ""));
    const tw = el("span", "tw", "▸");
    row.appendChild(tw);
    row.appendChild(el("span", "kind " + cls, kind));
    row.appendChild(el("span", "sum", summary));
    row.appendChild(el("span", "stats", stats));
    n.appendChild(row);
    let built = null;
    const toggle = (to) => {
      const want = to === undefined ? !built || built.hidden : to;
      if (want && !built) { built = el("div", "body"); body(built); n.appendChild(built); }
      if (built) built.hidden = !want;
      tw.textContent = want ? "▾" : "▸";
      if (want) open.add(key); else open.delete(key);
    };
    row.onclick = () => toggle();
    if (open.has(key)) toggle(true);
    return n;
  }

  function runNode(r) {
    const t = totalsOfRun(r);
    const s = r.start || {};
    const status = r.final ? r.final.status : r.end ? r.end.status : "running";
    const stats = [t.turns + " turns", t.cells + " cells", t.subs + " sub-calls", toks(t.in + t.out)];
    const wall = r.final ? r.final.wall_s : r.end ? r.end.wall_s : null;
    if (wall !== null && wall !== undefined) stats.push(secs(wall));
    if (r.final) stats.push(money(r.final.cost_usd));
    else if (t.cost !== undefined) stats.push(money(t.cost));
    const n = node(r.key, "run " + r.id, "run", oneLine(s.query || "", 140), stats.join(" · ") + " · " + status, (b) => {
      if (s.config) labelled(b, "config", el("div", "stats", s.config.model + " (sub-calls: " + s.config.sub_model + "), depth limit " + s.config.max_depth + ", context " + num(s.context && s.context.bytes).toLocaleString() + " bytes"));
      if (s.query) labelled(b, "query", paged(s.query));
      r.turns.forEach((turn) => b.appendChild(turnNode(turn)));
      r.loose.forEach((x) => b.appendChild(subNode(x, "in a cell still running")));
      r.children.forEach((ch) => b.appendChild(runNode(ch)));
      const end = r.final || r.end;
      if (end) labelled(b, "answer · " + end.status, paged(end.answer === null || end.answer === undefined ? "(none)" : show(end.answer)));
      if (end && end.error) labelled(b, "error", paged(end.error, "error"));
    });
    n.classList.add("run-node");
    return n;
  }

  function turnNode(turn) {
    const e = turn.e;
    const tk = num(e.input_tokens) + num(e.output_tokens);
    const stats = [turn.cells.length + (turn.cells.length === 1 ? " cell" : " cells"), toks(tk), secs(e.latency_s)];
    if (e.cost_usd !== undefined) stats.push(money(e.cost_usd) + " for the turn");
    return node(turn.key, "turn " + e.iteration, "turn", oneLine(e.text, 140), stats.join(" · "), (b) => {
      labelled(b, "root reply", paged(e.text || ""));
      turn.cells.forEach((c) => b.appendChild(cellNode(c)));
    });
  }

  function cellNode(c) {
    const e = c.e;
    const t = totalsOfCell(c);
    const stats = [secs(e.duration_s), t.subs + " sub-calls", toks(t.in + t.out)];
    if (t.cost !== undefined) stats.push(money(t.cost));
    if (c.children.length) stats.push(c.children.length + " child runs");
    const n = node(c.key, "cell " + e.cell, "cell", oneLine(e.code, 120), stats.join(" · "), (b) => {
      labelled(b, "code", highlight(e.code || ""));
      const out = paged(e.output || "(nothing printed)", "output");
      labelled(b, "output" + (e.truncated ? " (truncated as the model saw it)" : ""), out);
      if (e.error) labelled(b, "error", paged(e.error, "error"));
      if (e.submitted !== null && e.submitted !== undefined) labelled(b, "submitted", paged(show(e.submitted)));
      c.subs.forEach((s) => b.appendChild(subNode(s)));
      c.children.forEach((ch) => b.appendChild(runNode(ch)));
    }, e.error ? "err" : "");
    return n;
  }

  function subNode(s, note) {
    const e = s.e;
    const stats = [e.model, toks(num(e.input_tokens) + num(e.output_tokens)), secs(e.latency_s)];
    if (e.cost_usd !== undefined) stats.push(money(e.cost_usd));
    if (e.retries) stats.push(e.retries + " retries");
    if (e.cached) stats.push("cached");
    if (note) stats.push(note);
    return node(s.key, "sub-call", "sub", oneLine(e.prompt_preview, 100) + " → " + oneLine(e.error ? "error: " + e.error : e.answer, 60), stats.join(" · "), (b) => {
      labelled(b, "prompt (" + num(e.prompt_bytes).toLocaleString() + " bytes; first 300 characters)", paged(e.prompt_preview || ""));
      if (e.error) labelled(b, "error", paged(e.error, "error"));
      else labelled(b, "answer", paged(e.answer || ""));
    }, e.error ? "err" : "");
  }

  // Sub-calls in flight over the run: each is in flight from t - latency_s to t.
  function timeline(model) {
    const edges = [];
    model.subs.forEach(({ e }) => { const end = num(e.t); edges.push([Math.max(0, end - num(e.latency_s)), 1], [end, -1]); });
    edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const T = Math.max(model.lastT, 1e-3);
    let level = 0, peak = 0;
    const pts = [[0, 0]];
    edges.forEach(([t, d]) => { pts.push([t, level]); level += d; peak = Math.max(peak, level); pts.push([t, level]); });
    pts.push([T, 0]);
    const box = el("div");
    const cv = el("canvas", "timeline");
    box.appendChild(cv);
    box.appendChild(el("div", "stats", model.subs.length + " sub-calls over " + T.toFixed(2) + "s; at most " + peak + " in flight at once"));
    requestAnimationFrame(() => {
      const dpr = window.devicePixelRatio || 1, W = cv.clientWidth || 800, H = 80;
      cv.width = W * dpr; cv.height = H * dpr;
      const g = cv.getContext("2d");
      g.scale(dpr, dpr);
      g.strokeStyle = "#e2e2de"; g.beginPath(); g.moveTo(0, H - 1); g.lineTo(W, H - 1); g.stroke();
      const x = (t) => (t / T) * (W - 2) + 1, y = (v) => H - 2 - (peak ? (v / peak) * (H - 14) : 0);
      g.beginPath(); g.moveTo(x(0), y(0));
      pts.forEach(([t, v]) => g.lineTo(x(t), y(v)));
      g.closePath();
      g.fillStyle = "rgba(49,88,212,.18)"; g.fill();
      g.strokeStyle = "#3158d4"; g.lineWidth = 1.5; g.stroke();
      g.fillStyle = "#6b7078"; g.font = "11px system-ui, sans-serif";
      g.fillText(peak + " in flight", 4, 11);
    });
    return box;
  }

  function card(label, value, id) {
    const c = el("div", "card");
    const b = el("b", null, value);
    if (id) b.id = id;
    c.appendChild(b);
    c.appendChild(el("span", null, label));
    return c;
  }

  function render() {
    const model = build(events);
    app.textContent = "";
    const top = model.top;
    const header = el("header");
    const h1 = el("h1", null, "rlm trace · " + (meta.title || ""));
    if (meta.poll) h1.appendChild(el("span", "live", "● live"));
    header.appendChild(h1);
    if (meta.index) { const a = el("a", null, "← all tasks"); a.href = meta.index; header.appendChild(a); }
    if (top && top.start) header.appendChild(el("div", "q", top.start.query));
    app.appendChild(header);
    const main = el("main");
    app.appendChild(main);
    if (meta.torn_line) main.appendChild(el("div", "note", "Line " + meta.torn_line + " of the trace is torn (the run was still writing, or was stopped) and is not shown."));
    if (!top) { main.appendChild(el("div", "note", "The trace holds no events yet.")); return; }
    const f = model.final;
    const t = totalsOfRun(top);
    const cards = el("div", "cards");
    const st = el("div", "card");
    const badge = el("b");
    const status = f ? f.status : "running";
    const sp = el("span", "status " + status, status);
    sp.id = "status";
    badge.appendChild(sp);
    st.appendChild(badge); st.appendChild(el("span", null, "status"));
    cards.appendChild(st);
    cards.appendChild(card("total cost", f ? money(f.cost_usd) : "running", "total-cost"));
    cards.appendChild(card("root turns", t.turns));
    cards.appendChild(card("cells", t.cells));
    cards.appendChild(card("sub-calls", t.subs, "sub-calls"));
    cards.appendChild(card("child runs", model.runs.size - 1));
    cards.appendChild(card("tokens", (t.in + t.out).toLocaleString()));
    cards.appendChild(card("wall time", f ? secs(f.wall_s) : secs(model.lastT)));
    main.appendChild(cards);
    if (f) {
      const a = el("section");
      a.appendChild(el("h2", null, "final answer" + (f.answer_kind ? " (" + f.answer_kind + ")" : "")));
      const ans = el("div", "answer", f.answer === null || f.answer === undefined ? "(no answer)" : show(f.answer));
      ans.id = "answer";
      a.appendChild(ans);
      if (f.error) a.appendChild(el("div", "err", f.error));
      main.appendChild(a);
    }
    const tl = el("section");
    tl.appendChild(el("h2", null, "sub-calls in flight"));
    tl.appendChild(timeline(model));
    main.appendChild(tl);
    const tree = el("section", "tree");
    tree.id = "tree";
    tree.appendChild(el("h2", null, "run tree"));
    tree.appendChild(runNode(top));
    main.appendChild(tree);
    if (f && f.usage) {
      const u = el("section");
      u.appendChild(el("h2", null, "usage per model"));
      const tab = el("table");
      const hr = el("tr");
      ["model", "calls", "input tokens", "output tokens", "errors", "cost"].forEach((h) => hr.appendChild(el("th", null, h)));
      tab.appendChild(hr);
      Object.keys(f.usage).forEach((m) => {
        const x = f.usage[m], tr = el("tr");
        [m, x.calls, x.input_tokens, x.output_tokens, x.errors, money(x.cost_usd)].forEach((v) => tr.appendChild(el("td", null, v)));
        tab.appendChild(tr);
      });
      u.appendChild(tab);
      main.appendChild(u);
    }
  }

  // Watch mode: ask the server for the events after the bytes already read.
  let offset = 0;
  async function poll() {
    try {
      const r = await fetch(meta.poll + "?from=" + offset, { cache: "no-store" });
      if (r.ok) {
        const body = await r.json();
        if (body.reset) { events = []; }
        offset = body.next;
        if (body.events.length || body.reset) { events = events.concat(body.events); render(); }
      }
    } catch (e) { /* the server went away; try again */ }
    setTimeout(poll, 700);
  }

  function renderIndex(tasks) {
    app.textContent = "";
    const header = el("header");
    header.appendChild(el("h1", null, "rlm batch · " + (meta.title || "")));
    header.appendChild(el("div", "q", tasks.length + " tasks"));
    app.appendChild(header);
    const main = el("main");
    app.appendChild(main);
    const sec = el("section");
    const tab = el("table");
    tab.id = "tasks";
    const cols = [["id", "id"], ["status", "status"], ["turns", "turns"], ["cost", "cost_usd"], ["time", "wall_s"], ["events", "events"]];
    let sortKey = "id", asc = true;
    const draw = () => {
      tab.textContent = "";
      const hr = el("tr");
      cols.forEach(([label, k]) => { const th = el("th", null, label + (k === sortKey ? (asc ? " ▴" : " ▾") : "")); th.onclick = () => { asc = k === sortKey ? !asc : true; sortKey = k; draw(); }; hr.appendChild(th); });
      tab.appendChild(hr);
      const rows = tasks.slice().sort((a, b) => { const x = a[sortKey], y = b[sortKey]; const c = x === y ? 0 : x === null ? -1 : y === null ? 1 : x < y ? -1 : 1; return asc ? c : -c; });
      rows.forEach((t) => {
        const tr = el("tr");
        const td = el("td"); const a = el("a", null, t.id); a.href = t.href; td.appendChild(a); tr.appendChild(td);
        const ts = el("td"); ts.appendChild(el("span", "status " + t.status, t.status)); tr.appendChild(ts);
        tr.appendChild(el("td", null, t.turns));
        tr.appendChild(el("td", null, money(t.cost_usd)));
        tr.appendChild(el("td", null, t.wall_s === null ? "" : secs(t.wall_s)));
        tr.appendChild(el("td", null, t.events));
        tab.appendChild(tr);
      });
    };
    draw();
    sec.appendChild(tab);
    main.appendChild(sec);
  }

  render();
  if (meta.poll) poll();
})();
