// The live log view: reads the NDJSON stream named by #log's data-stream and appends each
// line as text (never as HTML); "Pause" holds new lines back until it is pressed again.
"use strict";

(function () {
  const log = document.getElementById("log");
  if (!log) return;
  const status = document.getElementById("log-status");
  const pause = document.getElementById("pause");
  const MAX_LINES = 2000;
  let paused = false;
  let held = [];

  function show(line) {
    const item = document.createElement("li");
    item.className = line.source;
    const time = document.createElement("time");
    time.dateTime = line.timestamp;
    time.textContent = line.timestamp.replace("T", " ").replace(/\.\d+/, "").replace(/\+00:00$|Z$/, "");
    const dyno = document.createElement("span");
    dyno.className = "dyno";
    dyno.textContent = " " + line.source + "[" + line.dyno + "]: ";
    item.append(time, dyno, document.createTextNode(line.line));
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    log.append(item);
    while (log.childElementCount > MAX_LINES) log.firstElementChild.remove();
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  function receive(line) {
    if (paused) held.push(line);
    else show(line);
  }

  pause.addEventListener("click", function () {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume" : "Pause";
    status.textContent = paused ? "Paused" : "Live";
    if (!paused) {
      held.forEach(show);
      held = [];
    }
  });

  async function follow() {
    try {
      const response = await fetch(log.dataset.stream, { credentials: "same-origin" });
      if (!response.ok || !response.body) throw new Error("HTTP " + response.status);
      status.textContent = paused ? "Paused" : "Live";
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let pending = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        pending += value;
        const lines = pending.split("\n");
        pending = lines.pop();
        for (const text of lines) {
          if (text.trim()) receive(JSON.parse(text));
        }
      }
      status.textContent = "The stream ended; reload to follow again.";
    } catch (err) {
      status.textContent = "The log stream broke (" + err.message + "); reload to retry.";
    }
  }

  follow();
})();

// The graphs: every few seconds the section named #graphs is fetched again from its
// data-refresh address and swapped in whole. That answer is gitd's own server-rendered markup
// (every value in it escaped by the templates), from this origin; a failed fetch keeps the
// graphs shown and says so.
(function () {
  const graphs = document.getElementById("graphs");
  if (!graphs) return;
  const status = document.getElementById("graphs-status");
  const every = Number(graphs.dataset.everyMs) || 5000;

  async function refresh() {
    try {
      const response = await fetch(graphs.dataset.refresh, { credentials: "same-origin" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      graphs.innerHTML = await response.text();
      status.textContent = "Live";
    } catch (err) {
      status.textContent = "Could not refresh the graphs (" + err.message + "); retrying.";
    }
    setTimeout(refresh, every);
  }

  setTimeout(refresh, every);
})();
