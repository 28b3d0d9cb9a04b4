// Riel console: the little JavaScript the pages need (throughput graph, live tail, verify button).
// Our own code, no libraries; everything is built with textContent, never innerHTML.
"use strict";

function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children || []) node.append(child);
  return node;
}

function humanRate(value, unit) {
  if (unit === "messages") return (Number.isInteger(value) ? value.toFixed(0) : value.toFixed(1)) + " msg/s";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (value >= 1024 && i < units.length - 1) { value /= 1024; i++; }
  return (i === 0 ? value.toFixed(0) : value.toFixed(1)) + " " + units[i] + "/s";
}

// ---------------------------------------------------------------------------- throughput graph

// The smallest 1, 2 or 5 times a power of ten (at least 4, so the four grid steps are whole numbers).
function niceCeiling(value) {
  if (value <= 4) return 4;
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 4, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function startThroughput(canvas) {
  const unitSelect = document.getElementById("throughput-unit");
  let rates = [];

  function draw() {
    const unit = unitSelect ? unitSelect.value : "bytes";
    const inKey = unit === "messages" ? "messages_in" : "bytes_in";
    const outKey = unit === "messages" ? "messages_out" : "bytes_out";
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 900, height = canvas.clientHeight || 200;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    ctx.clearRect(0, 0, width, height);
    const left = 70, bottom = height - 20, top = 10, right = width - 10;
    const peak = Math.max(0, ...rates.map((r) => Math.max(r[inKey], r[outKey])));
    canvas.dataset.peak = String(peak);
    const max = niceCeiling(peak);
    ctx.strokeStyle = "#dde1e6";
    ctx.fillStyle = "#6b7480";
    ctx.font = "11px sans-serif";
    for (let i = 0; i <= 4; i++) {
      const y = bottom - ((bottom - top) * i) / 4;
      ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(right, y); ctx.stroke();
      ctx.fillText(humanRate((max * i) / 4, unit), 2, y + 4);
    }
    const span = 300; // seconds shown
    const now = rates.length ? rates[rates.length - 1].time : Date.now() / 1000;
    ctx.fillText("-5 min", left, height - 4);
    ctx.fillText("now", right - 22, height - 4);
    const x = (t) => right - ((now - t) / span) * (right - left);
    const y = (v) => bottom - (v / max) * (bottom - top);
    for (const [key, colour] of [[inKey, "#2f6fdb"], [outKey, "#d9822b"]]) {
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2;
      ctx.beginPath();
      rates.forEach((r, i) => (i ? ctx.lineTo(x(r.time), y(r[key])) : ctx.moveTo(x(r.time), y(r[key]))));
      ctx.stroke();
    }
    const last = rates[rates.length - 1];
    document.getElementById("rate-in").textContent = last ? humanRate(last[inKey], unit) : "–";
    document.getElementById("rate-out").textContent = last ? humanRate(last[outKey], unit) : "–";
  }

  async function poll() {
    try {
      const response = await fetch(canvas.dataset.api, { cache: "no-store" });
      if (response.ok) rates = (await response.json()).rates;
      canvas.dataset.samples = String(rates.length);
    } catch (e) { /* the broker is restarting: keep the last picture */ }
    draw();
  }
  if (unitSelect) unitSelect.addEventListener("change", draw);
  poll();
  setInterval(poll, 1000);
}

// --------------------------------------------------------------------------------- live tail

function renderField(field) {
  const cell = el("td");
  if (field.text === null) {
    cell.append(el("span", { class: "muted" }, ["null"]));
    return cell;
  }
  cell.append(el("pre", { class: "fmt-" + field.format, title: field.format + ", " + field.size + " bytes" }, [field.text]));
  if (field.truncated) cell.append(el("span", { class: "muted" }, ["… of " + field.size + " bytes"]));
  return cell;
}

function messageRow(m) {
  const headers = el("td", { class: "headers" });
  for (const h of m.headers) {
    const value = renderField(h.value);
    headers.append(el("div", {}, [el("b", {}, [h.name]), ": ", ...value.childNodes]));
  }
  const key = renderField(m.key), value = renderField(m.value);
  key.className = "key";
  value.className = "value";
  return el("tr", { "data-offset": String(m.offset), class: "new" }, [
    el("td", { class: "n" }, [String(m.offset)]),
    el("td", { class: "time", title: m.timestamp_type + " " + m.timestamp }, [m.time]),
    key, value, headers,
  ]);
}

function startLiveTail(checkbox, table) {
  let timer = null;
  const body = table.tBodies[0];
  async function poll() {
    const url = table.dataset.api + "?offset=" + table.dataset.nextOffset + "&format=" + encodeURIComponent(table.dataset.format) + "&limit=200";
    try {
      const response = await fetch(url, { cache: "no-store" });
      if (!response.ok) return;
      const page = await response.json();
      for (const m of page.messages) body.append(messageRow(m));
      if (page.messages.length) {
        const empty = document.getElementById("no-messages");
        if (empty) empty.remove();
        while (body.rows.length > 1000) body.deleteRow(0);
        body.rows[body.rows.length - 1].scrollIntoView({ block: "nearest" });
      }
      table.dataset.nextOffset = String(page.next_offset);
    } catch (e) { /* try again on the next tick */ }
  }
  checkbox.addEventListener("change", () => {
    if (checkbox.checked && timer === null) { poll(); timer = setInterval(poll, 1000); }
    if (!checkbox.checked && timer !== null) { clearInterval(timer); timer = null; }
  });
}

// ------------------------------------------------------------------------------ verify button

function integrityTable(result) {
  const rows = result.partitions.map((p) => {
    const reason = el("td", {}, p.reason ? [p.reason] : []);
    for (const note of p.notes) reason.append(el("div", { class: "muted" }, ["note: " + note]));
    return el("tr", {}, [
      el("td", { class: "n" }, [String(p.partition)]),
      el("td", {}, [el("span", { class: p.ok ? "ok" : "bad" }, [p.status])]),
      el("td", { class: "n" }, [String(p.batches)]),
      el("td", { class: "n" }, [String(p.size_bytes) + " B"]),
      el("td", {}, p.head_offset >= 0 ? [el("code", {}, [p.head_offset + ":" + p.head_hash.slice(0, 16)])] : [el("span", { class: "muted" }, ["empty"])]),
      reason,
    ]);
  });
  const head = el("thead", {}, [el("tr", {}, ["Partition", "Status", "Batches", "Size", "Head", "Reason / notes"].map((h) => el("th", {}, [h])))]);
  const summary = el("p", {}, [
    "Checked at " + new Date(result.checked_at * 1000).toISOString() + " in " + result.seconds.toFixed(2) + " s: ",
    el("span", { class: result.ok ? "ok" : "bad" }, [result.ok ? "all partitions OK" : "FAILED"]),
  ]);
  return [summary, el("table", {}, [head, el("tbody", {}, rows)])];
}

function startVerify(form) {
  const status = document.getElementById("verify-status");
  const target = document.getElementById("integrity-result");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    status.textContent = "verifying…";
    try {
      const response = await fetch(form.dataset.api, { method: "POST" });
      const result = await response.json();
      if (!response.ok) { status.textContent = result.error; return; }
      target.replaceChildren(...integrityTable(result));
      status.textContent = "";
    } catch (e) {
      status.textContent = "verification failed: " + e;
    } finally {
      button.disabled = false;
    }
  });
}

// ------------------------------------------------------------------------- group lag refresh

function startLagRefresh(table) {
  const total = document.getElementById("total-lag");
  async function poll() {
    try {
      const response = await fetch(table.dataset.api, { cache: "no-store" });
      if (!response.ok) return;
      const group = await response.json();
      for (const p of group.partitions) {
        const row = table.querySelector(`tr[data-topic="${CSS.escape(p.topic)}"][data-partition="${p.partition}"]`);
        if (!row) continue;
        row.querySelector("td.committed").textContent = p.committed === null ? "–" : String(p.committed);
        row.querySelector("td.end").textContent = p.end_offset === null ? "–" : String(p.end_offset);
        row.querySelector("td.lag").textContent = p.lag === null ? "–" : String(p.lag);
      }
      if (total) total.textContent = String(group.total_lag);
    } catch (e) { /* keep the last numbers */ }
  }
  setInterval(poll, 2000);
}

document.addEventListener("DOMContentLoaded", () => {
  const canvas = document.getElementById("throughput");
  if (canvas) startThroughput(canvas);
  const tail = document.getElementById("live-tail"), table = document.getElementById("messages");
  if (tail && table) startLiveTail(tail, table); else if (tail) tail.disabled = true;
  const verify = document.getElementById("verify-form");
  if (verify) startVerify(verify);
  const lag = document.getElementById("lag");
  if (lag && lag.dataset.api) startLagRefresh(lag);
});
