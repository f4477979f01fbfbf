// Live event stream: prepends events from /api/v1/events/stream as they are
// committed. Customer text is only ever set with textContent (never HTML).
(function () {
  "use strict";
  var table = document.getElementById("events");
  var rows = document.getElementById("event-rows");
  var status = document.getElementById("live-status");
  var count = document.getElementById("event-count");
  if (!table || !rows) return;
  var onlyType = table.dataset.type || "";
  var onlyUser = table.dataset.user || "";
  var seen = new Set();
  var MAX_ROWS = 500;

  function setStatus(state, text) {
    status.dataset.state = state;
    status.querySelector(".label").textContent = text;
  }

  function cell(text, className, withTitle) {
    var td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text == null ? "" : String(text);
    if (withTitle) td.title = td.textContent;
    return td;
  }

  function bumpCount() {
    if (!count) return;
    var n = (parseInt(count.dataset.count, 10) || 0) + 1;
    count.dataset.count = String(n);
    count.textContent = n.toLocaleString("en-US");
  }

  function pad(n) { return n < 10 ? "0" + n : "" + n; }
  function formatTime(iso) {
    var d = new Date(iso);
    if (isNaN(d)) return iso;
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds());
  }

  function render(e) {
    var tr = document.createElement("tr");
    tr.className = "fresh";
    var time = cell("", "time");
    var t = document.createElement("time");
    t.dateTime = e.timestamp;
    t.textContent = formatTime(e.timestamp);
    time.appendChild(t);
    var type = document.createElement("td");
    var badge = document.createElement("span");
    badge.className = "badge " + e.type;
    badge.textContent = e.type;
    type.appendChild(badge);
    var source = e.enrichment && e.enrichment.attribution && e.enrichment.attribution.utm_source;
    tr.append(time, type, cell(e.event || e.name, "name", true), cell(e.userId || e.anonymousId, "user", true),
      cell(source, "source"), cell(e.messageId, "mono id", true));
    return tr;
  }

  function add(e) {
    if (seen.has(e.id)) return; // at-least-once delivery: show each event once
    seen.add(e.id);
    bumpCount();
    if (onlyType && e.type !== onlyType) return;
    if (onlyUser && e.userId !== onlyUser) return;
    var empty = document.getElementById("no-events");
    if (empty) empty.remove();
    table.hidden = false;
    rows.insertBefore(render(e), rows.firstChild);
    while (rows.children.length > MAX_ROWS) rows.removeChild(rows.lastChild);
  }

  var source = new EventSource("/api/v1/events/stream");
  source.addEventListener("open", function () { setStatus("live", "Live"); });
  source.addEventListener("error", function () {
    // The browser retries by itself unless the server refused the stream
    // (for example, the session ended): then only a reload helps.
    if (source.readyState === EventSource.CLOSED) setStatus("offline", "Offline: reload the page");
    else setStatus("reconnecting", "Reconnecting…");
  });
  source.addEventListener("event", function (msg) {
    try { add(JSON.parse(msg.data)); } catch (err) { console.warn("bad event", err); }
  });
})();
