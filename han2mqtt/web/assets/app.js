// han2mqtt status page: keeps the server-rendered page current from /api/events.
// No third-party code. The elements are found by data-v (meter value), data-b (bridge value),
// data-need (values that unhide a block); see han2mqtt/web/render.py, which renders the same.
"use strict";
(() => {
  const CHART_W = 600, CHART_H = 150, BARS_W = 240, BARS_H = 100, WINDOW = 600;
  const series = new Map();  // meter id -> [[t, import, export], ...], oldest first
  let decodeErrors = null;
  let reloading = false;

  const all = (root, selector) => Array.from(root.querySelectorAll(selector));
  const isNum = (v) => typeof v === "number" && isFinite(v);
  const fmt = (v, dp) => v == null ? "–" : isNum(v) && dp != null ? v.toFixed(dp) : String(v);
  const path = (obj, dotted) => dotted.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);

  function value(m, key) {
    if (key === "net") {
      if (isNum(m.derived.power_net)) return m.derived.power_net;
      const imp = m.fields.active_power_import, exp = m.fields.active_power_export;
      return isNum(imp) ? imp - (isNum(exp) ? exp : 0) : null;
    }
    const v = key in m.derived ? m.derived[key] : m.fields[key];
    return v === undefined ? null : v;
  }

  function nice(v) {
    for (let magnitude = 100; ; magnitude *= 10) {
      for (const step of [1, 2, 5]) if (magnitude * step >= v) return magnitude * step;
    }
  }

  function updateMeter(m) {
    const section = all(document, "section[data-meter]").find((s) => s.dataset.meter === m.id);
    if (!section) {  // a meter the page has not rendered yet: one reload, not a loop
      const last = Number(sessionStorage.getItem("h2m-reload") || 0);
      if (!reloading && Date.now() - last > 10000) {
        reloading = true;
        sessionStorage.setItem("h2m-reload", String(Date.now()));
        location.reload();
      }
      return;
    }
    for (const el of all(section, "[data-v]")) {
      const dp = el.dataset.dp === undefined ? null : Number(el.dataset.dp);
      el.textContent = fmt(value(m, el.dataset.v), dp);
    }
    for (const el of all(section, "[data-need]")) {
      el.hidden = !el.dataset.need.split(" ").some((k) => value(m, k) != null);
    }
    for (const el of all(section, "meter[data-bar]")) {
      const v = value(m, el.dataset.bar);
      el.value = isNum(v) ? Math.round(v) : 0;
    }
    const pill = section.querySelector("[data-m=online]");
    if (pill) {
      pill.textContent = m.online ? "online" : "offline";
      pill.className = "pill " + pill.textContent;
    }
    if (m.sample) addSample(m.id, m.sample);
    drawChart(section, m.id);
    drawHours(section, m);
    drawPeaks(section, value(m, "tariff_peaks"));
  }

  function addSample(id, sample) {
    const points = series.get(id) || [];
    const last = points[points.length - 1];
    if (last && sample[0] - last[0] < 1 && sample[0] >= last[0]) points[points.length - 1] = sample;
    else if (!last || sample[0] > last[0]) points.push(sample);
    const end = points[points.length - 1][0];
    while (points.length && end - points[0][0] > WINDOW) points.shift();
    series.set(id, points);
  }

  function drawChart(section, id) {
    const points = series.get(id) || [];
    if (!points.length) return;
    const end = points[points.length - 1][0];
    const values = points.flatMap((p) => [p[1], p[2]]).filter((v) => isNum(v) && v > 0);
    const top = nice(Math.max(0, ...values));
    for (const [index, name] of [[1, "import"], [2, "export"]]) {
      const line = section.querySelector(`polyline[data-line=${name}]`);
      if (!line) continue;
      line.setAttribute("points", points.filter((p) => isNum(p[index])).map((p) =>
        `${(CHART_W - (end - p[0]) * CHART_W / WINDOW).toFixed(1)},` +
        `${(CHART_H - p[index] * CHART_H / top).toFixed(1)}`).join(" "));
    }
    const scale = section.querySelector("[data-scale]");
    if (scale) scale.textContent = `${top.toFixed(0)} W`;
  }

  function drawHours(section, m) {
    const svg = section.querySelector("svg[data-bars]");
    if (!svg) return;
    const entries = m.hours.kwh.map(([hour, kwh]) => [hour, kwh, "done"]);
    const current = value(m, "energy_import_hour"), time = value(m, "meter_time");
    if (isNum(current) && typeof time === "string" && time.length > 13) {
      entries.push([Number(time.slice(11, 13)), current, "now"]);
    }
    const top = Math.max(0.5, ...entries.map((e) => e[1]));
    const ns = "http://www.w3.org/2000/svg";
    svg.replaceChildren(...entries.map(([hour, kwh, css]) => {
      const rect = document.createElementNS(ns, "rect"), title = document.createElementNS(ns, "title");
      const height = kwh / top * (BARS_H - 2);
      for (const [k, v] of [["class", css], ["x", hour * 10 + 1], ["y", (BARS_H - height).toFixed(1)],
        ["width", 8], ["height", height.toFixed(1)]]) rect.setAttribute(k, String(v));
      title.textContent = `${String(hour).padStart(2, "0")}:00 ${kwh.toFixed(3)} kWh`;
      rect.append(title);
      return rect;
    }));
    const date = section.querySelector("[data-hours-date]");
    if (date) date.textContent = m.hours.date || "";
  }

  function drawPeaks(section, raw) {
    const list = section.querySelector("[data-peaks]");
    if (!list || raw == null) return;
    let peaks = raw;
    if (typeof raw === "string") { try { peaks = JSON.parse(raw); } catch { return; } }
    if (!Array.isArray(peaks)) return;
    list.replaceChildren(...peaks.map((p) => {
      const start = Array.isArray(p) ? p[0] : p && p.start;
      const kwh = Array.isArray(p) ? p[1] : p && (p.kwh ?? p.energy);
      const item = document.createElement("li");
      item.textContent = `${start}: ${isNum(kwh) ? kwh.toFixed(2) : "?"} kWh`;
      return item;
    }));
  }

  function updateBridge(b) {
    for (const el of all(document, "[data-b]")) {
      let v = path(b, el.dataset.b);
      if (el.dataset.map && typeof v === "boolean") v = el.dataset.map.split(",")[v ? 0 : 1];
      el.textContent = fmt(v, null);
    }
    if (b.decode_errors !== decodeErrors) {
      decodeErrors = b.decode_errors;
      fetch("/api/state").then((r) => r.json()).then((s) => showRejects(s.rejects)).catch(() => {});
    }
  }

  function showRejects(rejects) {
    const pre = document.getElementById("rejects");
    if (!pre) return;
    pre.textContent = rejects.map((r) =>
      `${r.time} ${r.kind} (${r.length} octets): ${r.reason}\n${r.hex}\n`).join("\n") || "none";
  }

  function copyRejects() {
    const pre = document.getElementById("rejects"), button = this;
    const done = (word) => {
      button.textContent = word;
      setTimeout(() => { button.textContent = "Copy"; }, 3000);
    };
    // Plain http on the LAN has no clipboard API: select the text, and copy it the old way.
    const select = () => {
      window.getSelection().selectAllChildren(pre);
      done(document.execCommand && document.execCommand("copy") ? "Copied" : "Selected: Ctrl+C");
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(pre.textContent).then(() => done("Copied"), select);
    } else {
      select();
    }
  }

  function live(state) {
    const badge = document.getElementById("live");
    badge.textContent = state ? "live" : "reconnecting…";
    badge.className = "live " + (state ? "on" : "off");
  }

  async function start() {
    const copy = document.getElementById("copy");
    copy.hidden = false;
    copy.addEventListener("click", copyRejects);
    try {
      const history = await (await fetch("/api/history?minutes=10")).json();
      for (const [id, h] of Object.entries(history.meters)) {
        series.set(id, h.t.map((t, i) => [t, h.import[i], h.export[i]]));
      }
    } catch { /* the events will fill the chart */ }
    const events = new EventSource("/api/events");
    events.addEventListener("open", () => live(true));
    events.addEventListener("error", () => live(false));
    events.addEventListener("status", (e) => updateBridge(JSON.parse(e.data).bridge));
    events.addEventListener("reading", (e) => {
      const data = JSON.parse(e.data);
      live(true);
      updateBridge(data.bridge);
      updateMeter(data.meter);
    });
  }

  document.addEventListener("DOMContentLoaded", start);
})();
