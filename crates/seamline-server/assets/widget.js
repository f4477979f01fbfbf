/* Seamline site widget: a chat launcher. No dependencies, no third-party
 * requests. Embed with:
 *   <script src="https://your-seamline/widget.js" data-key="WRITE_KEY" async></script>
 * Optional: data-user-id and data-user-hash (HMAC-SHA256 of the user id
 * under the workspace's widget secret) for a logged-in customer.
 * Customer and operator text is always inserted as text, never as HTML. */
(function () {
  "use strict";
  var me = document.currentScript;
  if (!me || window.__seamlineWidget) return;
  window.__seamlineWidget = true;
  var base = new URL(me.src, location.href);
  var key = me.getAttribute("data-key") || "";
  var userId = me.getAttribute("data-user-id");
  var userHash = me.getAttribute("data-user-hash");

  // The visitor is the tracking API's anonymous id, kept like analytics.js.
  function anonymousId() {
    var name = "ajs_anonymous_id", found = null;
    try { found = localStorage.getItem(name); } catch (e) { /* private mode */ }
    if (found) return found.replace(/^"|"$/g, "");
    var id = (crypto.randomUUID && crypto.randomUUID()) ||
      String(Date.now()) + Math.random().toString(16).slice(2);
    try { localStorage.setItem(name, JSON.stringify(id)); } catch (e) { /* ignore */ }
    return id;
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (text != null) node.textContent = text;
    return node;
  }

  var css = "#sl-launch{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:28px;" +
    "padding:14px 20px;background:#3b5bdb;color:#fff;font:600 15px system-ui,sans-serif;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.2)}" +
    "#sl-panel{position:fixed;right:20px;bottom:84px;width:340px;max-width:calc(100vw - 40px);height:440px;max-height:calc(100vh - 120px);" +
    "z-index:2147483000;display:none;flex-direction:column;background:#fff;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.25);" +
    "font:14px/1.4 system-ui,sans-serif;color:#1f2328;overflow:hidden}" +
    "#sl-panel.open{display:flex}#sl-head{padding:12px 16px;background:#3b5bdb;color:#fff;font-weight:600}" +
    "#sl-log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:6px;background:#f6f8fa}" +
    ".sl-msg{max-width:80%;padding:8px 12px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word}" +
    ".sl-inbound{align-self:flex-end;background:#3b5bdb;color:#fff}.sl-outbound,.sl-bot{align-self:flex-start;background:#fff;border:1px solid #d0d7de}" +
    ".sl-pending{opacity:.6}#sl-status{font-size:12px;color:#656d76;padding:0 12px}" +
    "#sl-form{display:flex;border-top:1px solid #d0d7de}#sl-input{flex:1;border:0;padding:12px;font:inherit;resize:none}" +
    "#sl-send{border:0;background:none;color:#3b5bdb;font-weight:600;padding:0 16px;cursor:pointer}";
  document.head.appendChild(el("style", {}, css));
  var launch = el("button", { id: "sl-launch", type: "button", "aria-expanded": "false" }, "Chat with us");
  var panel = el("div", { id: "sl-panel", role: "dialog", "aria-label": "Chat" });
  var log = el("div", { id: "sl-log", "aria-live": "polite" });
  var status = el("div", { id: "sl-status" }, "");
  var form = el("form", { id: "sl-form" });
  var input = el("textarea", { id: "sl-input", rows: "2", placeholder: "Type a message…", "aria-label": "Message" });
  form.appendChild(input);
  form.appendChild(el("button", { id: "sl-send", type: "submit" }, "Send"));
  panel.appendChild(el("div", { id: "sl-head" }, "We usually answer in a few minutes"));
  panel.appendChild(log);
  panel.appendChild(status);
  panel.appendChild(form);
  document.body.appendChild(panel);
  document.body.appendChild(launch);
  launch.addEventListener("click", function () {
    var open = panel.classList.toggle("open");
    launch.setAttribute("aria-expanded", String(open));
    if (open) { connect(); input.focus(); }
  });

  var shown = {}, pending = {}, socket = null, retry = 500;

  function show(message, isPending) {
    if (shown[message.id]) {
      shown[message.id].classList.remove("sl-pending");
      return;
    }
    var node = el("div", { "class": "sl-msg sl-" + message.kind + (isPending ? " sl-pending" : "") }, message.body);
    shown[message.id] = node;
    log.appendChild(node);
    log.scrollTop = log.scrollHeight;
  }

  function connect() {
    if (socket && socket.readyState <= 1) return;
    var url = new URL("widget/v1/socket", base);
    url.protocol = base.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("key", key);
    url.searchParams.set("anonymousId", anonymousId());
    if (userId && userHash) { url.searchParams.set("userId", userId); url.searchParams.set("userHash", userHash); }
    socket = new WebSocket(url);
    socket.onopen = function () {
      retry = 500; status.textContent = "";
      for (var id in pending) socket.send(JSON.stringify(pending[id]));
    };
    socket.onmessage = function (event) {
      var frame = JSON.parse(event.data);
      if (frame.type === "history") frame.messages.forEach(function (m) { show(m); });
      else if (frame.type === "message") show(frame.message);
      else if (frame.type === "ack") {
        var sentNode = shown[frame.id];
        delete pending[frame.id];
        if (sentNode && frame.message) { sentNode.classList.remove("sl-pending"); shown[frame.message.id] = sentNode; }
      } else if (frame.type === "error") status.textContent = frame.message;
    };
    socket.onclose = function () {
      status.textContent = "Reconnecting…";
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 15000);
    };
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var body = input.value.trim();
    if (!body) return;
    var id = (crypto.randomUUID && crypto.randomUUID()) || String(Date.now()) + Math.random();
    var frame = { type: "message", id: id, body: body };
    pending[id] = frame;
    show({ id: id, kind: "inbound", body: body }, true);
    input.value = "";
    if (socket && socket.readyState === 1) socket.send(JSON.stringify(frame));
    else connect();
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });
})();
