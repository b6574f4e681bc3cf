// Live status: listens to /api/vm/events (server-sent events with
// heartbeats) and falls back to polling /api/vm when the stream breaks.
(function () {
  "use strict";
  const root = document.getElementById("vm-status");
  if (!root) return;
  const $ = function (id) { return document.getElementById(id); };

  function render(vm) {
    root.dataset.state = vm.state;
    $("headline").textContent = vm.headline;
    const bar = $("bar");
    bar.value = vm.percent;
    bar.textContent = vm.percent + "%";
    bar.classList.toggle("failed", !!vm.error);
    let reached = false;
    document.querySelectorAll("#steps li").forEach(function (li) {
      const here = li.dataset.step === vm.step;
      li.classList.toggle("current", here);
      li.classList.toggle("done", !here && !reached);
      if (here) reached = true;
    });
    const error = $("error");
    error.hidden = !vm.error;
    error.textContent = vm.error || "";
    const warnings = $("warnings");
    warnings.replaceChildren.apply(warnings, vm.warnings.map(function (w) {
      const li = document.createElement("li");
      li.textContent = w;
      return li;
    }));
    $("jupyter").hidden = !vm.jupyter_url;
    if (vm.jupyter_url) $("jupyter-link").href = vm.jupyter_url;
    $("address").textContent = vm.address ? "(" + vm.address + ")" : "";
    $("state").textContent = vm.state + (vm.progress ? " / " + vm.progress : "");
    $("launch-path").textContent = vm.path;
    $("launch-path").dataset.path = vm.launch_path;
    $("environment").textContent =
      vm.environment || (vm.prebuilt ? "prebuilt" : "built at launch");
    $("eta-label").hidden = !vm.eta;
    $("eta").hidden = !vm.eta;
    $("eta").textContent = vm.eta ? vm.eta.text : "";
    const log = $("log");
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent = vm.log.join("\n");
    if (atBottom) log.scrollTop = log.scrollHeight;
    const del = $("delete-link");
    if (del) del.hidden = !vm.can_delete;
    $("queue").hidden = vm.queue_ahead === null;
    const ahead = $("queue-ahead");
    if (ahead && vm.queue_ahead !== null) ahead.textContent = vm.queue_ahead;
    $("ide-missing").hidden = !vm.ide_missing;
    $("ide-missing").textContent = vm.ide_missing || "";
    $("idle-warning").hidden = !vm.idle_warning;
    $("idle-warning").textContent = vm.idle_warning || "";
    $("expiry").dataset.expires = vm.expires_at || "";
    $("extend").hidden = !vm.can_extend;
    $("extensions-left").textContent = vm.extensions_left + " extension(s) left";
    countdown();
  }

  // "in 2 h 05 min" next to the expiry time, refreshed every half minute.
  function countdown() {
    const at = Date.parse($("expiry").dataset.expires || "");
    const out = $("countdown");
    if (isNaN(at)) { out.textContent = ""; return; }
    const minutes = Math.max(0, Math.round((at - Date.now()) / 60000));
    const h = Math.floor(minutes / 60), m = minutes % 60;
    out.textContent = "(in " + (h ? h + " h " : "") + (m < 10 && h ? "0" : "") + m + " min)";
  }
  countdown();
  setInterval(countdown, 30000);

  let polling = null;
  function poll() {
    fetch("/api/vm", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (vm) { if (vm) render(vm); })
      .catch(function () { /* try again at the next tick */ });
  }
  function startPolling() {
    if (polling) return;
    poll();
    polling = setInterval(poll, 3000);
  }

  if (!window.EventSource) { startPolling(); return; }
  let failures = 0;
  const source = new EventSource("/api/vm/events");
  source.addEventListener("status", function (e) {
    failures = 0;
    render(JSON.parse(e.data));
  });
  source.onerror = function () {
    failures += 1;
    // EventSource reconnects by itself; after repeated failures (a proxy
    // that buffers or drops streams) plain polling is more reliable.
    if (failures >= 3) { source.close(); startPolling(); }
  };
})();
