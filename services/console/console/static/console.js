// The console's only script beside htmx: copy buttons and the live feed. No build step.
"use strict";

document.addEventListener("click", function (event) {
  const button = event.target.closest("button.copy");
  if (!button) return;
  const text = document.getElementById(button.dataset.copy).textContent.trim();
  const done = function () { button.textContent = "Copied"; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, function () { selectText(button.dataset.copy); });
  } else {
    selectText(button.dataset.copy);
    document.execCommand("copy") && done();
  }
});

function selectText(id) {
  const range = document.createRange();
  range.selectNodeContents(document.getElementById(id));
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

// Live feed: events arrive over server-sent events; while paused they wait in a queue
// (the newest 1,000) and are shown on resume.
(function () {
  const table = document.getElementById("feed");
  if (!table) return;
  const body = table.querySelector("tbody");
  const status = document.getElementById("feed-status");
  const toggle = document.getElementById("feed-toggle");
  const KEEP = 500, QUEUE = 1000;
  let paused = false, queued = [], shown = 0;

  function cell(row, text, cls) {
    const td = row.insertCell();
    td.textContent = text;
    if (cls) td.className = cls;
  }
  function show(change) {
    const row = body.insertRow(0);
    row.className = "change " + change.change;
    cell(row, change.occurred_at.replace("T", " ").slice(0, 19) + " UTC");
    cell(row, change.partner + " / " + change.cohort_id);
    cell(row, change.user_id);
    cell(row, change.external_id === null ? "—" : change.external_id);
    cell(row, change.change, "change-kind");
    cell(row, change.cause);
    shown += 1;
    while (body.rows.length > KEEP) body.deleteRow(body.rows.length - 1);
  }
  function say() {
    status.textContent = paused ? "paused, " + queued.length + " waiting" : "live, " + shown + " shown";
  }
  toggle.addEventListener("click", function () {
    paused = !paused;
    toggle.textContent = paused ? "Resume" : "Pause";
    toggle.setAttribute("aria-pressed", String(paused));
    if (!paused) { queued.forEach(show); queued = []; }
    say();
  });
  const source = new EventSource(table.dataset.source);
  source.addEventListener("ready", function () { table.dataset.ready = "true"; say(); });
  source.addEventListener("change", function (message) {
    const change = JSON.parse(message.data);
    if (paused) { queued.push(change); if (queued.length > QUEUE) queued.shift(); } else { show(change); }
    say();
  });
  source.addEventListener("error", function () { status.textContent = "reconnecting…"; });
})();
