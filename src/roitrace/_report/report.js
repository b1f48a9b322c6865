"use strict";
// roitrace's quality report: draws itself from the data inlined in this file.
// No library, no network: canvases, the DOM and the browser's DecompressionStream.
(function () {
  const root = document.documentElement;
  const $ = (id) => document.getElementById(id);
  // codes: 0..max over each ROI's [lo, hi], max + 1 for NaN; 16 bits per frame, 8 bits for min/max pairs
  const CODES = { 16: { max: 65534, nan: 65535 }, 8: { max: 254, nan: 255 } };
  const DPR = Math.max(1, window.devicePixelRatio || 1);
  const COLORS = { F: "#2b8a3e", Fneu: "#c2255c", F_corrected: "#1c7ed6", F0: "#495057",
    dff: "#1d2330", calcium: "#f08c00", spikes: "#e03131" };
  const LABELS = { F: "F", Fneu: "Fneu", F_corrected: "F_corrected", F0: "F0", dff: "dF/F",
    calcium: "calcium (denoised)", spikes: "spikes" };
  const METRIC_LABELS = { peak_snr: "peak SNR", snr: "SNR (suite2p)", skewness: "skewness", dff_peak: "peak dF/F", noise: "noise SD",
    npix: "pixels", npix_neuropil: "ring pixels", neuropil_factor: "neuropil r", f0_min: "min F0",
    negative_fraction: "frac. negative", deconvolution_noise: "dF/F noise", centroid_y: "y", centroid_x: "x",
    nan_frames: "NaN frames", saturated_pixels: "saturated px", ring_area_asked: "ring px asked",
    spike_sum: "spike sum" };
  const THRESHOLD_OF = { peak_snr: "min_snr", negative_fraction: "max_negative" };

  let M, IMAGES, n, T, names, vars, codes, scales, cells, rings, labelMap;
  const state = { sel: -1, sortKey: null, sortDir: 1, flag: "all", text: "", ranges: {},
    view: { z: 1, cx: 0, cy: 0 }, tx: null, image: null, visible: null, order: null };
  const imgs = {};
  let rows = [];

  // ---------- data ----------
  function bytesOf(id) {
    const s = $(id).textContent.trim();
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  async function gunzip(u8) {
    if (!u8.length) return new Uint8Array(0);
    const stream = new Blob([u8]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }
  function u16(u8) { return new Uint16Array(u8.buffer, u8.byteOffset, u8.byteLength >> 1); }

  function parseGeometry(a) {
    // 2n groups (cells, then rings): a run count (2 x uint16), then runs (y, x0, length)
    const groups = [];
    let p = 0;
    for (let g = 0; g < 2 * n; g++) {
      const count = a[p] + a[p + 1] * 65536;
      p += 2;
      groups.push(a.subarray(p, p + 3 * count));
      p += 3 * count;
    }
    return [groups.slice(0, n), groups.slice(n)];
  }

  function traceCodes(v, i) {
    const tv = vars[v], per = tv.points * (tv.pairs ? 2 : 1);
    return codes[v].subarray(i * per, (i + 1) * per);
  }
  function decode(v, i, c) {
    const k = CODES[vars[v].bits];
    if (c === k.nan) return NaN;
    const s = scales[v], lo = s[2 * i], hi = s[2 * i + 1];
    return lo + (c / k.max) * (hi - lo);
  }
  function resolutionText() {
    const by = {};
    names.forEach((name, v) => { const st = vars[v].step; (by[st] = by[st] || []).push(LABELS[name]); });
    return Object.keys(by).map(Number).sort((a, b) => a - b)
      .map((st) => `${by[st].join(", ")}: ${st === 1 ? "every frame" : `min and max of each ${st} frames`}`).join("; ");
  }

  // ---------- formatting ----------
  function fmt(x) {
    if (x === null || x === undefined || (typeof x === "number" && !isFinite(x))) return "–";
    if (typeof x !== "number") return String(x);
    if (Number.isInteger(x)) return String(x);
    const a = Math.abs(x);
    if (a >= 1000) return x.toFixed(0);
    if (a >= 10) return x.toFixed(1);
    if (a >= 0.01 || a === 0) return x.toFixed(3);
    return x.toExponential(2);
  }
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      if (k === "class") e.className = attrs[k];
      else if (k === "text") e.textContent = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    for (const kid of kids) e.append(kid);
    return e;
  }
  function flagsOf(i) { return M.flags[i].map((k) => M.flag_names[k]); }
  function frameToTime(f) { return M.frame_rate ? f / M.frame_rate : f; }

  // ---------- header ----------
  function header() {
    const rec = M.recording;
    $("title").textContent = M.report.title;
    const dur = M.frame_rate ? `, ${fmt(M.n_frames / M.frame_rate)} s at ${fmt(M.frame_rate)} frames/s` : ", frame rate unknown";
    $("summary").textContent = `${n} ROIs · ${M.n_frames} frames${dur} · ${M.frame_shape ? `frame ${M.frame_shape[0]} × ${M.frame_shape[1]} px` : "frame size unknown"} · `
      + `${rec.roitrace_version ? `extracted with roitrace ${rec.roitrace_version}` : "extracted by another tool"}${rec.created ? " on " + rec.created : ""}`;
    const box = $("flag-summary");
    const counts = M.flag_names.map(() => 0);
    for (const f of M.flags) for (const k of f) counts[k]++;
    const clean = M.flags.filter((f) => f.length === 0).length;
    box.append(el("span", { class: "flag-chip" + (state.flag === "none" ? " active" : ""), "data-flag": "none",
      title: "ROIs with no flag", text: `no flag: ${clean}` }));
    M.flag_names.forEach((name, k) => {
      const rule = M.flag_rules[name];
      const chip = el("span", { "data-flag": name, title: (rule.evaluated ? "" : "not evaluated: ") + rule.rule,
        class: "flag-chip" + (counts[k] ? " some" : "") + (rule.evaluated ? "" : " off"),
        text: `${name}: ${rule.evaluated ? counts[k] : "n/a"}` });
      box.append(chip);
    });
    box.addEventListener("click", (e) => {
      const chip = e.target.closest(".flag-chip");
      if (!chip || chip.classList.contains("off")) return;
      const f = chip.dataset.flag;
      setFlagFilter(state.flag === f ? "all" : f);
    });
    $("provenance-text").textContent = JSON.stringify({ recording: rec, report: M.report,
      thresholds: M.thresholds, rules: Object.fromEntries(M.flag_names.map((k) => [k, M.flag_rules[k].rule])) }, null, 1);
    $("footer").textContent = `Written by roitrace ${M.report.roitrace_version} on ${M.report.created}. `
      + `Traces: ${resolutionText()}. `
      + `The same metrics and flags are in ${M.report.quality} beside this file.`;
  }

  // ---------- table ----------
  function columns() {
    const cols = [
      { key: "id", label: "id", get: (i) => M.ids[i], num: typeof M.ids[0] === "number" },
      { key: "name", label: "name", get: (i) => M.names[i], text: true },
      { key: "flags", label: "flags", get: (i) => M.flags[i].length, text: true },
      { key: "trace", label: "trace", nosort: true, text: true },
    ];
    for (const m in M.metrics) cols.push({ key: m, label: METRIC_LABELS[m] || m, get: (i) => M.metrics[m][i], num: true, metric: true });
    return cols;
  }
  let COLS;
  function buildTable() {
    COLS = columns();
    const head = $("roi-table").tHead;
    const r1 = el("tr"), r2 = el("tr");
    for (const c of COLS) {
      const th = el("th", { class: c.text ? "text" : "", title: c.metric ? c.key : "" }, c.label);
      if (!c.nosort) th.dataset.key = c.key;
      r1.append(th);
      const th2 = el("th", { class: c.text ? "text" : "" });
      if (c.metric) {
        for (const side of ["min", "max"]) {
          const inp = el("input", { type: "number", step: "any", placeholder: side, "data-metric": c.key, "data-side": side,
            "aria-label": `${c.label} ${side}` });
          th2.append(inp);
        }
      }
      r2.append(th2);
    }
    head.append(r1, r2);
    // fixed column widths: the browser lays out thousands of rows without measuring them
    const widths = COLS.map((c) => (c.key === "flags" ? 190 : c.key === "trace" ? 132 : c.key === "name" ? 120 : c.key === "id" ? 64 : 128));
    const group = el("colgroup");
    for (const w of widths) group.append(el("col", { style: `width:${w}px` }));
    $("roi-table").prepend(group);
    $("roi-table").style.width = `${widths.reduce((a, b) => a + b, 0)}px`;
    r1.addEventListener("click", (e) => {
      const th = e.target.closest("th[data-key]");
      if (th) sortBy(th.dataset.key);
    });
    r2.addEventListener("input", (e) => {
      const inp = e.target;
      if (!inp.dataset.metric) return;
      const r = state.ranges[inp.dataset.metric] || (state.ranges[inp.dataset.metric] = {});
      const v = inp.value === "" ? null : Number(inp.value);
      r[inp.dataset.side] = v;
      applyFilters();
    });
    const body = $("roi-table").tBodies[0];
    const frag = document.createDocumentFragment();
    rows = new Array(n);
    for (let i = 0; i < n; i++) {
      const tr = el("tr", { "data-roi": String(M.ids[i]), "data-index": String(i) });
      for (const c of COLS) {
        if (c.key === "flags") {
          const td = el("td", { class: "text flags", title: flagsOf(i).join(", ") });
          for (const f of flagsOf(i)) td.append(el("span", { class: "badge", text: f, title: M.flag_rules[f].rule }));
          tr.append(td);
        } else if (c.key === "trace") {
          tr.append(el("td", { class: "text" }, el("canvas", { class: "spark", width: 120 * DPR, height: 22 * DPR })));
        } else {
          tr.append(el("td", { class: c.text ? "text" : "", text: fmt(c.get(i)) }));
        }
      }
      rows[i] = tr;
      frag.append(tr);
    }
    body.append(frag);
    body.addEventListener("click", (e) => {
      const tr = e.target.closest("tr[data-index]");
      if (tr) select(Number(tr.dataset.index), false);
    });
    const io = new IntersectionObserver((entries) => {
      for (const en of entries) if (en.isIntersecting) { drawSpark(en.target); io.unobserve(en.target); }
    }, { root: document.querySelector(".table-wrap"), rootMargin: "200px" });
    for (const tr of rows) io.observe(tr.querySelector("canvas"));
    const sel = $("filter-flag");
    sel.append(el("option", { value: "all", text: "all ROIs" }), el("option", { value: "none", text: "no flag" }),
      el("option", { value: "any", text: "any flag" }));
    for (const f of M.flag_names) if (M.flag_rules[f].evaluated) sel.append(el("option", { value: f, text: `flag: ${f}` }));
    sel.addEventListener("change", () => setFlagFilter(sel.value));
    $("export-ids").addEventListener("click", () => {
      const box = $("export-box");
      box.hidden = false;
      box.value = shownOrder().map((i) => M.ids[i]).join(", ");
      box.select();
    });
    $("export-csv").addEventListener("click", () => {
      const cols = Object.keys(M.metrics);
      const quote = (v) => (/[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
      const lines = [["id", "name", "flags", ...cols].join(",")];
      for (const i of shownOrder())
        lines.push([M.ids[i], quote(M.names[i]), quote(flagsOf(i).join(" ")), ...cols.map((m) => M.metrics[m][i] ?? "")].join(","));
      const a = el("a", { href: URL.createObjectURL(new Blob([lines.join("\n") + "\n"], { type: "text/csv" })),
        download: `${(M.report.title || "rois").replace(/[^\w.-]+/g, "_")}_rois.csv` });
      document.body.append(a); a.click(); a.remove();
    });
    $("filter-text").addEventListener("input", (e) => { state.text = e.target.value.trim().toLowerCase(); applyFilters(); });
    $("filter-clear").addEventListener("click", () => {
      state.text = ""; $("filter-text").value = ""; state.ranges = {};
      for (const inp of head.querySelectorAll("input")) inp.value = "";
      setFlagFilter("all");
    });
    state.order = [...Array(n).keys()];
  }
  function sparkVar() {
    for (const v of ["dff", "F_corrected", "F"]) { const k = names.indexOf(v); if (k >= 0) return k; }
    return names.length ? 0 : -1;
  }
  function allNaN(v, i) { const c = traceCodes(v, i), nan = CODES[vars[v].bits].nan; return c.every((q) => q === nan); }
  function drawSpark(canvas) {
    const i = Number(canvas.closest("tr").dataset.index);
    let v = sparkVar();
    if (v < 0) return;
    // dF/F is NaN throughout where F0 <= 0: draw the trace it was made from instead
    for (const alt of ["F_corrected", "F"]) if (allNaN(v, i) && names.includes(alt)) v = names.indexOf(alt);
    const c = traceCodes(v, i), ctx = canvas.getContext("2d"), k = CODES[vars[v].bits];
    const W = canvas.width, H = canvas.height;
    ctx.strokeStyle = M.flags[i].length ? "#b35000" : "#1d2330";
    ctx.lineWidth = DPR;
    ctx.beginPath();
    const len = c.length;
    for (let x = 0; x < W; x++) {
      const a = Math.floor((x * len) / W), b = Math.max(a + 1, Math.floor(((x + 1) * len) / W));
      let lo = k.nan, hi = -1;
      for (let j = a; j < b; j++) { const q = c[j]; if (q === k.nan) continue; if (q < lo) lo = q; if (q > hi) hi = q; }
      if (hi < 0) continue;
      const y0 = H - 1 - (lo / k.max) * (H - 2), y1 = H - 1 - (hi / k.max) * (H - 2);
      ctx.moveTo(x + 0.5, y0 + 0.5); ctx.lineTo(x + 0.5, Math.min(y1, y0 - 1) + 0.5);
    }
    ctx.stroke();
  }
  function sortBy(key) {
    if (state.sortKey === key) state.sortDir = -state.sortDir;
    else { state.sortKey = key; state.sortDir = 1; }
    const col = COLS.find((c) => c.key === key);
    const val = (i) => col.get(i);
    const d = state.sortDir;
    state.order.sort((a, b) => {
      const x = val(a), y = val(b);
      const xn = x === null || x === undefined || (typeof x === "number" && !isFinite(x));
      const yn = y === null || y === undefined || (typeof y === "number" && !isFinite(y));
      if (xn || yn) return xn === yn ? a - b : xn ? 1 : -1; // missing values last, both ways
      if (typeof x === "string" || typeof y === "string") {
        const c = String(x).localeCompare(String(y), undefined, { numeric: true });
        return c ? c * d : a - b;
      }
      if (x < y) return -d;
      if (x > y) return d;
      return a - b;
    });
    const frag = document.createDocumentFragment();
    for (const i of state.order) frag.append(rows[i]);
    $("roi-table").tBodies[0].append(frag);
    for (const th of $("roi-table").tHead.querySelectorAll("th[data-key]")) {
      th.classList.toggle("sorted-asc", th.dataset.key === key && d === 1);
      th.classList.toggle("sorted-desc", th.dataset.key === key && d === -1);
    }
  }
  function setFlagFilter(f) {
    state.flag = f;
    $("filter-flag").value = ["all", "none", "any"].includes(f) || M.flag_names.includes(f) ? f : "all";
    for (const chip of $("flag-summary").querySelectorAll(".flag-chip")) chip.classList.toggle("active", chip.dataset.flag === f);
    applyFilters();
  }
  function passes(i) {
    const fl = M.flags[i];
    if (state.flag === "none" && fl.length) return false;
    if (state.flag === "any" && !fl.length) return false;
    if (!["all", "none", "any"].includes(state.flag) && !fl.includes(M.flag_names.indexOf(state.flag))) return false;
    if (state.text) {
      const t = state.text;
      if (!String(M.ids[i]).toLowerCase().includes(t) && !String(M.names[i]).toLowerCase().includes(t)) return false;
    }
    for (const m in state.ranges) {
      const r = state.ranges[m], v = M.metrics[m][i];
      if (r.min !== null && r.min !== undefined && !(v >= r.min)) return false;
      if (r.max !== null && r.max !== undefined && !(v <= r.max)) return false;
    }
    return true;
  }
  function applyFilters() {
    state.visible = new Uint8Array(n);
    let shown = 0;
    for (let i = 0; i < n; i++) {
      const ok = passes(i);
      state.visible[i] = ok ? 1 : 0;
      rows[i].hidden = !ok;
      shown += ok;
    }
    $("table-count").textContent = `(${shown} of ${n} shown)`;
    $("roi-table").dataset.shown = String(shown);
    drawOverview();
  }
  function setRange(metric, lo, hi) {
    state.ranges[metric] = { min: lo, max: hi };
    for (const inp of $("roi-table").tHead.querySelectorAll(`input[data-metric="${CSS.escape(metric)}"]`))
      inp.value = inp.dataset.side === "min" ? lo : hi;
    applyFilters();
  }

  // ---------- geometry ----------
  function outlinePath(runs) {
    // the outline along pixel edges: a side of a pixel is drawn when the pixel across is not in the group
    const path = new Path2D();
    if (!runs.length) return path;
    const set = new Set();
    for (let r = 0; r < runs.length; r += 3) {
      const y = runs[r], x0 = runs[r + 1], len = runs[r + 2];
      for (let x = x0; x < x0 + len; x++) set.add(y * 65536 + x);
    }
    const has = (y, x) => y >= 0 && x >= 0 && set.has(y * 65536 + x);
    for (let r = 0; r < runs.length; r += 3) {
      const y = runs[r], x0 = runs[r + 1], len = runs[r + 2];
      path.moveTo(x0, y); path.lineTo(x0, y + 1);
      path.moveTo(x0 + len, y); path.lineTo(x0 + len, y + 1);
      let start = -1;
      for (const dy of [-1, 1]) {
        start = -1;
        for (let x = x0; x <= x0 + len; x++) {
          const edge = x < x0 + len && !has(y + dy, x);
          if (edge && start < 0) start = x;
          if (!edge && start >= 0) { const yy = dy < 0 ? y : y + 1; path.moveTo(start, yy); path.lineTo(x, yy); start = -1; }
        }
      }
    }
    return path;
  }
  function fillRuns(ctx, runs) {
    for (let r = 0; r < runs.length; r += 3) ctx.fillRect(runs[r + 1], runs[r], runs[r + 2], 1);
  }
  function bbox(runs) {
    let y0 = Infinity, y1 = -Infinity, x0 = Infinity, x1 = -Infinity;
    for (let r = 0; r < runs.length; r += 3) {
      y0 = Math.min(y0, runs[r]); y1 = Math.max(y1, runs[r] + 1);
      x0 = Math.min(x0, runs[r + 1]); x1 = Math.max(x1, runs[r + 1] + runs[r + 2]);
    }
    return [y0, y1, x0, x1];
  }
  let cellPaths = [], ringPaths = null;

  // ---------- overview ----------
  function setupOverview() {
    if (!M.geometry && !Object.keys(IMAGES).length) {
      $("overview-card").replaceChildren(el("h2", { text: "No ROI image" }),
        el("p", { class: "hint", text: "This result holds no ROI pixels (a CSV table, or a suite2p folder read without "
          + "trusting its stat.npy), so the ROIs cannot be drawn; the traces, metrics and flags are all here." }));
      $("crop").hidden = true;
      return;
    }
    if (!M.geometry) {
      $("overview-card").append(el("p", { class: "hint", text: "This result holds no ROI pixels (a CSV table, or a suite2p "
        + "folder read without trusting its stat.npy): the image is shown without the ROIs." }));
      for (const id of ["show-contours", "show-numbers", "show-rings"]) $(id).disabled = true;
      $("crop").hidden = true;
    }
    const chooser = $("image-select");
    for (const k in IMAGES) chooser.append(el("option", { value: k, text: k }));
    state.image = Object.keys(IMAGES)[0];
    chooser.addEventListener("change", () => { state.image = chooser.value; drawOverview(); drawCrop(); });
    const [Y, X] = M.frame_shape;
    labelMap = new Int32Array(Y * X).fill(-1);
    // larger ROIs first, so that a small ROI inside or over a larger one stays clickable
    const bySize = [...Array(n).keys()].sort((a, b) => npix(b) - npix(a));
    for (const i of bySize) {
      const runs = cells[i];
      for (let r = 0; r < runs.length; r += 3) labelMap.fill(i, runs[r] * X + runs[r + 1], runs[r] * X + runs[r + 1] + runs[r + 2]);
    }
    cellPaths = cells.map(outlinePath);
    $("show-numbers").checked = n <= 300;
    if (!M.rings) { $("show-rings").disabled = true; $("show-rings").parentElement.title = "the result records no neuropil ring"; }
    for (const id of ["show-contours", "show-numbers", "show-rings", "dim-filtered"]) $(id).addEventListener("change", drawOverview);
    const cv = $("overview");
    let drag = null;
    cv.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY, moved: false, view: { ...state.view } }; cv.setPointerCapture(e.pointerId); });
    cv.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      if (!drag.moved) return;
      const s = cssScale();
      state.view.cx = drag.view.cx - dx / s; state.view.cy = drag.view.cy - dy / s;
      drawOverview();
    });
    cv.addEventListener("pointerup", (e) => {
      const was = drag; drag = null;
      if (was && !was.moved) {
        const [fy, fx] = toFrame(e);
        const [Yy, Xx] = M.frame_shape;
        if (fy >= 0 && fx >= 0 && fy < Yy && fx < Xx) { const i = labelMap[fy * Xx + fx]; if (i >= 0) select(i, true); }
      }
    });
    cv.addEventListener("wheel", (e) => {
      e.preventDefault();
      const [fy, fx] = toFrame(e, true);
      const f = e.deltaY < 0 ? 1.25 : 0.8;
      const z = Math.min(40, Math.max(1, state.view.z * f));
      const k = state.view.z / z;
      state.view.cx = fx - (fx - state.view.cx) * k; state.view.cy = fy - (fy - state.view.cy) * k;
      state.view.z = z;
      drawOverview();
    }, { passive: false });
    cv.addEventListener("dblclick", resetView);
    $("overview-reset").addEventListener("click", resetView);
    resetView();
  }
  function npix(i) { const r = cells[i]; let s = 0; for (let j = 2; j < r.length; j += 3) s += r[j]; return s; }
  function resetView() { const [Y, X] = M.frame_shape; state.view = { z: 1, cx: X / 2, cy: Y / 2 }; drawOverview(); }
  function cssScale() { const cv = $("overview"); const [Y, X] = M.frame_shape; return (cv.clientWidth / Math.max(X, Y)) * state.view.z; }
  function toFrame(e, exact) {
    const cv = $("overview"), rect = cv.getBoundingClientRect(), s = cssScale();
    const fx = state.view.cx + (e.clientX - rect.left - rect.width / 2) / s;
    const fy = state.view.cy + (e.clientY - rect.top - rect.height / 2) / s;
    return exact ? [fy, fx] : [Math.floor(fy), Math.floor(fx)];
  }
  function drawOverview() {
    const cv = $("overview");
    if (!cv || !cells || !M.frame_shape) return;
    const W = Math.round(cv.clientWidth * DPR) || 640;
    if (cv.width !== W || cv.height !== W) { cv.width = W; cv.height = W; }
    const ctx = cv.getContext("2d");
    const [Y, X] = M.frame_shape;
    const s = (W / Math.max(X, Y)) * state.view.z;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000"; ctx.fillRect(0, 0, W, W);
    ctx.setTransform(s, 0, 0, s, W / 2 - state.view.cx * s, W / 2 - state.view.cy * s);
    ctx.imageSmoothingEnabled = false;
    const img = imgs[state.image];
    if (img && img.complete) ctx.drawImage(img, 0, 0, X, Y);
    const dim = $("dim-filtered").checked && state.visible;
    if ($("show-rings").checked && M.rings) {
      if (!ringPaths) ringPaths = rings.map(outlinePath);
      ctx.lineWidth = 1 / s; ctx.strokeStyle = "rgba(214, 93, 250, 0.55)";
      for (let i = 0; i < n; i++) if (!dim || state.visible[i]) ctx.stroke(ringPaths[i]);
    }
    if ($("show-contours").checked) {
      ctx.lineWidth = 1.3 * DPR / s;
      for (let i = 0; i < n; i++) {
        const off = dim && !state.visible[i];
        ctx.strokeStyle = M.flags[i].length ? (off ? "rgba(255,109,0,0.25)" : "#ff6d00") : (off ? "rgba(25,169,116,0.25)" : "#19e28f");
        ctx.stroke(cellPaths[i]);
      }
    }
    if (state.sel >= 0) {
      const i = state.sel;
      ctx.fillStyle = "rgba(255, 212, 0, 0.35)"; fillRuns(ctx, cells[i]);
      ctx.lineWidth = 2 * DPR / s; ctx.strokeStyle = "#ffd400"; ctx.stroke(cellPaths[i]);
      if (M.rings) { ctx.fillStyle = "rgba(214, 93, 250, 0.35)"; fillRuns(ctx, rings[i]); }
    }
    if ($("show-numbers").checked && M.centroids[0].length) {
      ctx.font = `${(11 * DPR) / s}px system-ui, sans-serif`;
      ctx.textAlign = "center"; ctx.textBaseline = "middle";
      for (let i = 0; i < n; i++) {
        if (dim && !state.visible[i]) continue;
        const x = M.centroids[1][i] + 0.5, y = M.centroids[0][i] + 0.5;
        ctx.lineWidth = 3 * DPR / s; ctx.strokeStyle = "rgba(0,0,0,0.8)"; ctx.strokeText(String(M.ids[i]), x, y);
        ctx.fillStyle = "#fff"; ctx.fillText(String(M.ids[i]), x, y);
      }
    }
  }

  // ---------- the ROI panel ----------
  function select(i, fromImage) {
    if (i < 0 || i >= n) return;
    if (state.sel >= 0) rows[state.sel].classList.remove("selected");
    state.sel = i;
    rows[i].classList.add("selected");
    if (fromImage) revealRow(rows[i]);
    const panel = $("roi-panel");
    panel.dataset.roi = String(M.ids[i]);
    panel.dataset.index = String(i);
    $("panel-title").textContent = `ROI ${M.ids[i]}` + (M.names[i] && M.names[i] !== `roi ${M.ids[i]}` ? ` — ${M.names[i]}` : "");
    const fl = $("panel-flags");
    fl.replaceChildren();
    const f = flagsOf(i);
    if (!f.length) fl.append(el("p", { text: "No quality flag." }));
    for (const name of f) fl.append(el("p", {}, el("span", { class: "badge", text: name }), " " + M.flag_rules[name].rule));
    const table = $("panel-metrics");
    table.replaceChildren();
    for (const m in M.metrics) table.append(el("tr", {}, el("td", { text: METRIC_LABELS[m] || m, title: m }), el("td", { text: fmt(M.metrics[m][i]) })));
    drawCrop(); drawPlots(); drawOverview(); drawHistMarks();
  }
  function revealRow(tr) {
    // scroll the table's own box, never the page: the image and the panel stay in view
    const wrap = document.querySelector(".table-wrap");
    const head = $("roi-table").tHead.offsetHeight;
    const top = tr.offsetTop - head, bottom = tr.offsetTop + tr.offsetHeight;
    if (top < wrap.scrollTop) wrap.scrollTop = top;
    else if (bottom > wrap.scrollTop + wrap.clientHeight) wrap.scrollTop = bottom - wrap.clientHeight;
  }
  function shownOrder() { return state.order.filter((i) => state.visible[i]); }
  function moveSelection(delta) {
    const visibleOrder = shownOrder();
    if (!visibleOrder.length) return;
    const at = visibleOrder.indexOf(state.sel);
    const next = at < 0 ? visibleOrder[0] : visibleOrder[Math.min(visibleOrder.length - 1, Math.max(0, at + delta))];
    select(next, true);
  }
  function drawCrop() {
    const i = state.sel, cv = $("crop");
    if (!M.geometry) return;
    const ctx = cv.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000"; ctx.fillRect(0, 0, cv.width, cv.height);
    if (i < 0) return;
    let [y0, y1, x0, x1] = bbox(cells[i]);
    if (M.rings && rings[i].length) { const b = bbox(rings[i]); y0 = Math.min(y0, b[0]); y1 = Math.max(y1, b[1]); x0 = Math.min(x0, b[2]); x1 = Math.max(x1, b[3]); }
    const side = Math.max(y1 - y0, x1 - x0) + 6, cy = (y0 + y1) / 2, cx = (x0 + x1) / 2;
    const s = cv.width / side;
    ctx.setTransform(s, 0, 0, s, cv.width / 2 - cx * s, cv.height / 2 - cy * s);
    ctx.imageSmoothingEnabled = false;
    const img = imgs[state.image];
    const [Y, X] = M.frame_shape;
    if (img && img.complete) ctx.drawImage(img, 0, 0, X, Y);
    if (M.rings) { ctx.fillStyle = "rgba(214, 93, 250, 0.30)"; fillRuns(ctx, rings[i]); ctx.lineWidth = 1 / s; ctx.strokeStyle = "#d65dfa"; ctx.stroke(outlinePath(rings[i])); }
    ctx.fillStyle = "rgba(255, 212, 0, 0.25)"; fillRuns(ctx, cells[i]);
    ctx.lineWidth = 1.5 / s; ctx.strokeStyle = "#ffd400"; ctx.stroke(cellPaths[i]);
  }

  const PLOTS = [
    { title: "raw", vars: ["F", "Fneu"] },
    { title: "corrected", vars: ["F_corrected", "F0"] },
    { title: "dF/F", vars: ["dff", "calcium"], spikes: "spikes" },
  ];
  function setupPlots() {
    const box = $("plots");
    if (!names.includes("F_corrected")) { PLOTS[0].vars.push("F0"); PLOTS[1].vars = []; }
    for (const p of PLOTS) {
      const present = p.vars.filter((v) => names.includes(v));
      if (!present.length) continue;
      const legend = el("div", { class: "legend" });
      for (const v of [...present, ...(p.spikes && names.includes(p.spikes) ? [p.spikes] : [])])
        legend.append(el("i", { style: `background:${COLORS[v]}` }), LABELS[v]);
      const canvas = el("canvas", { "data-plot": p.title });
      const div = el("div", { class: "plot", "data-plot": p.title }, canvas, legend);
      p.canvas = canvas; p.present = present;
      box.append(div);
      attachPlotEvents(canvas);
    }
    $("zoom-in").addEventListener("click", () => zoomTraces(0.5));
    $("zoom-out").addEventListener("click", () => zoomTraces(2));
    $("zoom-reset").addEventListener("click", () => { state.tx = null; drawPlots(); });
    $("prev-roi").addEventListener("click", () => moveSelection(-1));
    $("next-roi").addEventListener("click", () => moveSelection(1));
    document.addEventListener("keydown", (e) => {
      if (e.target.closest && e.target.closest("input, select, textarea")) return;
      if (e.key === "j") { e.preventDefault(); moveSelection(1); }
      if (e.key === "k") { e.preventDefault(); moveSelection(-1); }
    });
    window.addEventListener("resize", () => { drawPlots(); drawOverview(); });
  }
  // the frames shown, [first, end)
  function range() { return state.tx || [0, T]; }
  function zoomTraces(f, centre) {
    const [a, b] = range();
    const c = centre === undefined ? (a + b) / 2 : centre;
    const finest = Math.min(...vars.map((tv) => tv.step));
    let w = Math.min(T, Math.max(8, 24 * finest, (b - a) * f));
    let lo = c - (c - a) * (w / (b - a));
    lo = Math.max(0, Math.min(T - w, lo));
    state.tx = w >= T ? null : [lo, lo + w];
    drawPlots();
  }
  function attachPlotEvents(canvas) {
    let drag = null;
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      const [a, b] = range(), rect = canvas.getBoundingClientRect();
      const frac = Math.min(1, Math.max(0, (e.clientX - rect.left - 50) / (rect.width - 58)));
      zoomTraces(e.deltaY < 0 ? 0.7 : 1 / 0.7, a + frac * (b - a));
    }, { passive: false });
    canvas.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, r: range() }; canvas.setPointerCapture(e.pointerId); });
    canvas.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const [a, b] = drag.r, rect = canvas.getBoundingClientRect();
      const shift = ((drag.x - e.clientX) / (rect.width - 58)) * (b - a);
      const lo = Math.max(0, Math.min(T - (b - a), a + shift));
      if (b - a < T) { state.tx = [lo, lo + (b - a)]; drawPlots(); }
    });
    canvas.addEventListener("pointerup", () => { drag = null; });
    canvas.addEventListener("dblclick", () => { state.tx = null; drawPlots(); });
  }
  function drawPlots() {
    const i = state.sel;
    const [a, b] = range();
    const all = vars.every((tv) => tv.step === 1);
    $("resolution").textContent = `frames ${Math.round(a)}–${Math.round(b)} of ${T}. ${resolutionText()}`
      + (all ? "" : " (the result file holds every frame)");
    for (const p of PLOTS) if (p.canvas) drawPlot(p, i, a, b);
  }
  function drawPlot(p, i, a, b) {
    const cv = p.canvas;
    const W = Math.round(cv.clientWidth * DPR) || 600, H = Math.round(cv.clientHeight * DPR) || 130;
    if (cv.width !== W || cv.height !== H) { cv.width = W; cv.height = H; }
    const ctx = cv.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, W, H);
    if (i < 0) return;
    const L = 50 * DPR, R = 8 * DPR, T = 16 * DPR, B = 18 * DPR;
    const pw = W - L - R, ph = H - T - B;
    // each trace as pixel columns (several stored points per column), or, zoomed in past
    // its stored points, as those points: a line (every frame) or a band (min and max)
    const series = (v) => {
      const k = names.indexOf(v), perPoint = pw / ((b - a) / vars[k].step);
      return perPoint > 2 ? pointsOf(k, i, pw, a, b, L) : columnsAsPoints(columnsOf(k, i, pw, a, b), L);
    };
    const data = p.present.map(series);
    let lo = Infinity, hi = -Infinity;
    for (const d of data) for (let j = 0; j < d.x.length; j++) { if (d.lo[j] < lo) lo = d.lo[j]; if (d.hi[j] > hi) hi = d.hi[j]; }
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    if (hi === lo) { hi += 1; lo -= 1; }
    const pad = (hi - lo) * 0.06; lo -= pad; hi += pad;
    const yOf = (v) => T + ph - ((v - lo) / (hi - lo)) * ph;
    axes(ctx, L, T, pw, ph, a, b, lo, hi);
    ctx.save();
    ctx.beginPath(); ctx.rect(L, T, pw, ph); ctx.clip();
    if (p.spikes && names.includes(p.spikes)) {
      const d = series(p.spikes);
      let top = 0;
      for (let j = 0; j < d.x.length; j++) if (d.hi[j] > top) top = d.hi[j];
      if (top > 0) {
        ctx.strokeStyle = COLORS.spikes; ctx.lineWidth = DPR; ctx.beginPath();
        for (let j = 0; j < d.x.length; j++) if (d.hi[j] > 0) { const h = (d.hi[j] / top) * ph * 0.3; ctx.moveTo(d.x[j], T + ph); ctx.lineTo(d.x[j], T + ph - h); }
        ctx.stroke();
      }
    }
    // the denoised calcium under dF/F, F0 over F_corrected
    const order = p.present.map((v, k) => k).sort((x, y) => (p.present[x] === "calcium" ? -1 : p.present[y] === "calcium" ? 1 : x - y));
    for (const k of order) drawSeries(ctx, data[k], p.present[k], yOf);
    ctx.restore();
  }
  function drawSeries(ctx, d, v, yOf) {
    ctx.strokeStyle = COLORS[v]; ctx.lineWidth = (v === "F0" ? 1.5 : 1) * DPR;
    ctx.setLineDash(v === "F0" ? [4 * DPR, 3 * DPR] : []);
    const band = d.band;
    if (band) {  // min and max of each stored point, joined: a translucent band
      ctx.globalAlpha = 0.35; ctx.fillStyle = COLORS[v];
      let j = 0;
      while (j < d.x.length) {
        while (j < d.x.length && !isFinite(d.lo[j])) j++;
        const s0 = j;
        while (j < d.x.length && isFinite(d.lo[j])) j++;
        if (j - s0 < 1) continue;
        ctx.beginPath();
        for (let q = s0; q < j; q++) ctx.lineTo(d.x[q], yOf(d.hi[q]));
        for (let q = j - 1; q >= s0; q--) ctx.lineTo(d.x[q], yOf(d.lo[q]));
        ctx.closePath(); ctx.fill();
      }
      ctx.globalAlpha = 1;
    }
    ctx.beginPath();
    let pen = false;
    for (let j = 0; j < d.x.length; j++) {
      if (!isFinite(d.lo[j])) { pen = false; continue; }
      const y0 = yOf(d.lo[j]), y1 = yOf(d.hi[j]);
      if (band || d.line) { const y = band ? (y0 + y1) / 2 : y0; if (!pen) ctx.moveTo(d.x[j], y); else ctx.lineTo(d.x[j], y); pen = true; continue; }
      if (!pen) { ctx.moveTo(d.x[j], (y0 + y1) / 2); pen = true; }
      ctx.lineTo(d.x[j], y0); ctx.lineTo(d.x[j], Math.min(y1, y0 - 0.5));
    }
    ctx.globalAlpha = band ? 0.8 : 1;
    ctx.stroke();
    ctx.globalAlpha = 1;
    ctx.setLineDash([]);
  }
  function columnsAsPoints(c, L) {
    const x = new Float64Array(c.lo.length);
    for (let j = 0; j < x.length; j++) x[j] = L + j + 0.5;
    return { x, lo: c.lo, hi: c.hi };
  }
  function pointsOf(v, i, pw, a, b, L) {
    // the stored points between frames a and b, at the centre of the frames each stands for
    const c = traceCodes(v, i), tv = vars[v], st = tv.step, nan = CODES[tv.bits].nan;
    const q0 = Math.max(0, Math.floor(a / st) - 1), q1 = Math.min(tv.points - 1, Math.ceil(b / st));
    const n = Math.max(0, q1 - q0 + 1);
    const x = new Float64Array(n), lo = new Float64Array(n), hi = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      const q = q0 + j;
      x[j] = L + (((q + 0.5) * st - a) / (b - a)) * pw;
      const u = tv.pairs ? c[2 * q] : c[q], w = tv.pairs ? c[2 * q + 1] : c[q];
      lo[j] = u === nan ? NaN : decode(v, i, u);
      hi[j] = w === nan ? NaN : decode(v, i, w);
    }
    return { x, lo, hi, band: tv.pairs, line: !tv.pairs };
  }
  function columnsOf(v, i, pw, a, b) {
    // per pixel column, the min and max of the stored points under it (each a value, or a
    // min/max pair of `step` frames); frames a..b span the plot
    const c = traceCodes(v, i), tv = vars[v], pairs = tv.pairs, st = tv.step, nan = CODES[tv.bits].nan;
    const W = Math.max(1, Math.floor(pw));
    const lo = new Float64Array(W).fill(NaN), hi = new Float64Array(W).fill(NaN);
    const span = b - a, last = tv.points - 1;
    for (let x = 0; x < W; x++) {
      const f0 = a + (x / W) * span, f1 = a + ((x + 1) / W) * span;
      const q0 = Math.max(0, Math.floor(f0 / st));
      const q1 = Math.min(last, Math.max(q0, Math.ceil(f1 / st) - 1));
      if (q0 > last) continue;
      let mn = nan, mx = -1;
      for (let q = q0; q <= q1; q++) {
        if (pairs) {
          const u = c[2 * q], w = c[2 * q + 1];
          if (u !== nan && u < mn) mn = u;
          if (w !== nan && w > mx) mx = w;
        } else {
          const u = c[q];
          if (u === nan) continue;
          if (u < mn) mn = u; if (u > mx) mx = u;
        }
      }
      if (mx < 0) continue;
      lo[x] = decode(v, i, mn); hi[x] = decode(v, i, mx);
    }
    return { lo, hi };
  }
  function nice(span, count) {
    const raw = span / count, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= raw) return m * mag;
    return 10 * mag;
  }
  function axes(ctx, L, T, pw, ph, a, b, lo, hi) {
    ctx.strokeStyle = "#d0d4dc"; ctx.fillStyle = "#667085"; ctx.lineWidth = DPR;
    ctx.font = `${10 * DPR}px system-ui, sans-serif`;
    ctx.strokeRect(L, T, pw, ph);
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    const dy = nice(hi - lo, 4);
    ctx.beginPath();
    const ydec = Math.max(0, -Math.floor(Math.log10(dy) + 1e-9));
    for (let k = Math.ceil(lo / dy); k * dy <= hi; k++) {
      const v = k * dy, y = T + ph - ((v - lo) / (hi - lo)) * ph;
      ctx.moveTo(L - 3 * DPR, y); ctx.lineTo(L, y);
      ctx.fillText(v.toFixed(ydec), L - 5 * DPR, y);
    }
    const t0 = frameToTime(a), t1 = frameToTime(b), dt = nice(t1 - t0, 8);
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    const decimals = Math.max(0, -Math.floor(Math.log10(dt) + 1e-9));
    for (let k = Math.ceil(t0 / dt); k * dt <= t1; k++) {
      const t = k * dt, x = L + ((t - t0) / (t1 - t0)) * pw;
      ctx.moveTo(x, T + ph); ctx.lineTo(x, T + ph + 3 * DPR);
      ctx.fillText(t.toFixed(decimals), x, T + ph + 4 * DPR);
    }
    ctx.stroke();
    ctx.textAlign = "right"; ctx.textBaseline = "bottom";
    ctx.fillText(M.frame_rate ? "time (s)" : "frame", L + pw, T - 2 * DPR);
  }

  // ---------- distributions ----------
  const hists = [];
  function setupHistograms() {
    const box = $("distributions");
    const wanted = ["peak_snr", "snr", "skewness", "dff_peak", "noise", "npix", "npix_neuropil", "neuropil_factor", "f0_min", "negative_fraction", "deconvolution_noise"];
    for (const m of wanted) {
      if (!(m in M.metrics)) continue;
      const vals = M.metrics[m].filter((v) => v !== null && isFinite(v));
      if (!vals.length) continue;
      let lo = Math.min(...vals), hi = Math.max(...vals);
      const constant = hi === lo;
      if (constant) { lo -= 0.5; hi += 0.5; }
      const bins = 30, counts = new Array(bins).fill(0);
      for (const v of vals) counts[Math.min(bins - 1, Math.floor(((v - lo) / (hi - lo)) * bins))]++;
      const canvas = el("canvas", { "data-metric": m });
      const div = el("div", { class: "hist", "data-metric": m }, el("div", { class: "hist-title", text: constant ? `${METRIC_LABELS[m] || m}: all ${fmt(vals[0])}` : `${METRIC_LABELS[m] || m}` }),
        canvas, el("div", { class: "hist-axis" }, el("span", { text: constant ? "" : fmt(lo) }), el("span", { text: constant ? "" : fmt(hi) })));
      box.append(div);
      const h = { m, lo, hi, bins, counts, canvas };
      hists.push(h);
      canvas.addEventListener("click", (e) => {
        const rect = canvas.getBoundingClientRect();
        const k = Math.min(bins - 1, Math.max(0, Math.floor(((e.clientX - rect.left) / rect.width) * bins)));
        const w = (hi - lo) / bins;
        // rounded outward to 4 significant digits: the box shows a number a person can read
        const down = (v) => { const p = 10 ** (Math.floor(Math.log10(Math.abs(v) || 1)) - 3); return Math.floor(v / p) * p; };
        const up = (v) => { const p = 10 ** (Math.floor(Math.log10(Math.abs(v) || 1)) - 3); return Math.ceil(v / p) * p; };
        const a = lo + k * w, b = k === bins - 1 ? hi : lo + (k + 1) * w;
        setRange(m, Number(down(a).toPrecision(4)), Number(up(b).toPrecision(4)));
      });
    }
    drawHistMarks();
  }
  function drawHistMarks() {
    for (const h of hists) {
      const cv = h.canvas, W = Math.round(cv.clientWidth * DPR) || 210, H = Math.round(cv.clientHeight * DPR) || 90;
      if (cv.width !== W || cv.height !== H) { cv.width = W; cv.height = H; }
      const ctx = cv.getContext("2d");
      ctx.clearRect(0, 0, W, H);
      const top = Math.max(...h.counts), bw = W / h.bins;
      ctx.fillStyle = "#8da2c0";
      h.counts.forEach((c, k) => { const bh = (c / top) * (H - 4); ctx.fillRect(k * bw + 0.5, H - bh, bw - 1, bh); });
      const xOf = (v) => ((v - h.lo) / (h.hi - h.lo)) * W;
      const th = THRESHOLD_OF[h.m] && M.thresholds[THRESHOLD_OF[h.m]];
      if (th !== undefined && th >= h.lo && th <= h.hi) {
        ctx.strokeStyle = "#1d2330"; ctx.setLineDash([3, 3]); ctx.beginPath(); ctx.moveTo(xOf(th), 0); ctx.lineTo(xOf(th), H); ctx.stroke(); ctx.setLineDash([]);
      }
      if (state.sel >= 0) {
        const v = M.metrics[h.m][state.sel];
        if (v !== null && isFinite(v)) { ctx.strokeStyle = "#e03131"; ctx.lineWidth = 2 * DPR; ctx.beginPath(); ctx.moveTo(xOf(v), 0); ctx.lineTo(xOf(v), H); ctx.stroke(); ctx.lineWidth = 1; }
      }
    }
  }

  // ---------- start ----------
  async function loadImages() {
    await Promise.all(Object.entries(IMAGES).map(([k, url]) => new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve();
      img.onerror = () => reject(new Error(`image ${k} could not be decoded`));
      img.src = url;
      imgs[k] = img;
    })));
  }
  async function main() {
    const t0 = performance.now();
    M = JSON.parse($("rt-meta").textContent);
    IMAGES = JSON.parse($("rt-images").textContent);
    n = M.ids.length; names = M.traces.names; vars = M.traces.vars; T = M.n_frames;
    scales = M.traces.scales;
    const blobs = await Promise.all([...names.map((name) => gunzip(bytesOf(`rt-trace-${name}`))), gunzip(bytesOf("rt-geometry"))]);
    codes = names.map((name, v) => (vars[v].bits === 16 ? u16(blobs[v]) : blobs[v]));
    const geomBytes = blobs[names.length];
    [cells, rings] = parseGeometry(u16(geomBytes));
    await loadImages();
    header();
    buildTable();
    setupOverview();
    setupPlots();
    setupHistograms();
    applyFilters();
    if (n) select(0, false);
    root.dataset.openMs = String(Math.round(performance.now() - t0));
  }
  main().then(() => { root.dataset.ready = "true"; }, (e) => {
    const msg = (e && e.message) || String(e);
    root.dataset.error = msg;
    const p = $("load-error");
    p.hidden = false;
    p.textContent = "This report could not be drawn: " + msg + " (it needs a current browser: Chrome/Edge 80+, Firefox 113+, Safari 16.4+).";
    console.error(e);
  });
})();
