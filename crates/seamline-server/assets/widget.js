/* Seamline site widget: a launcher with the workspace's buttons (chat, call
 * me back, messengers). No dependencies, no third-party requests. Embed with:
 *   <script src="https://your-seamline/widget.js" data-key="WRITE_KEY" async></script>
 * Optional: data-user-id and data-user-hash (HMAC-SHA256 of the user id
 * under the workspace's widget secret) for a logged-in customer.
 * Call tracking: the visitor's tracking number replaces the site's phone
 * (POST widget/v1/number on each page view, then a heartbeat).
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
  var TYPING_EVERY = 3000, TYPING_SHOWN = 4000;

  function store(name, value) {
    try {
      if (value === undefined) return localStorage.getItem(name);
      localStorage.setItem(name, value);
    } catch (e) { /* private mode: nothing kept */ }
    return null;
  }
  function uuid() {
    return (crypto.randomUUID && crypto.randomUUID()) || String(Date.now()) + Math.random().toString(16).slice(2);
  }
  // The visitor is the tracking API's anonymous id, kept like analytics.js.
  function anonymousId() {
    var found = store("ajs_anonymous_id");
    if (found) return found.replace(/^"|"$/g, "");
    var id = uuid();
    store("ajs_anonymous_id", JSON.stringify(id));
    return id;
  }
  var visitor = anonymousId();

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (text != null) node.textContent = text;
    return node;
  }
  function add(parent) {
    for (var i = 1; i < arguments.length; i++) parent.appendChild(arguments[i]);
    return parent;
  }
  function api(path) { return new URL("widget/v1/" + path, base); }
  function post(path, body) {
    body.key = key;
    body.anonymousId = visitor;
    return fetch(api(path), { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); });
  }

  var css = "#sl-root{--sl-accent:#3b5bdb;font:14px/1.4 system-ui,-apple-system,Segoe UI,sans-serif;color:#1f2328}" +
    "#sl-root *{box-sizing:border-box}" +
    "#sl-launch{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:28px;padding:14px 20px;" +
    "background:var(--sl-accent);color:#fff;font:600 15px system-ui,sans-serif;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.2)}" +
    "#sl-launch:focus-visible,#sl-root button:focus-visible,#sl-root a:focus-visible{outline:3px solid #ffd43b;outline-offset:2px}" +
    "#sl-menu{position:fixed;right:20px;bottom:84px;z-index:2147483000;display:flex;flex-direction:column;gap:8px;min-width:220px;" +
    "background:#fff;border-radius:14px;padding:10px;box-shadow:0 8px 30px rgba(0,0,0,.22)}#sl-menu[hidden],.sl-view[hidden]{display:none}" +
    ".sl-item{display:flex;align-items:center;gap:10px;width:100%;border:1px solid #d0d7de;border-radius:10px;background:#fff;" +
    "padding:10px 12px;font:inherit;font-weight:600;color:#1f2328;text-decoration:none;cursor:pointer;text-align:left}" +
    ".sl-item:hover{border-color:var(--sl-accent);background:#f6f8fa}.sl-dot{width:10px;height:10px;border-radius:50%;flex:none}" +
    "#sl-panel{position:fixed;right:20px;bottom:84px;width:360px;max-width:calc(100vw - 40px);height:480px;max-height:calc(100vh - 120px);" +
    "z-index:2147483000;display:flex;flex-direction:column;background:#fff;border-radius:14px;box-shadow:0 8px 30px rgba(0,0,0,.25);overflow:hidden}" +
    "#sl-panel[hidden]{display:none}#sl-head{display:flex;align-items:flex-start;gap:8px;padding:14px 16px;background:var(--sl-accent);color:#fff}" +
    "#sl-head>div{flex:1}#sl-title{font-weight:700;font-size:16px}#sl-greet{opacity:.9;font-size:13px}" +
    "#sl-close{border:0;background:none;color:#fff;font-size:22px;line-height:1;cursor:pointer;padding:0 4px}" +
    ".sl-view{flex:1;display:flex;flex-direction:column;min-height:0}" +
    "#sl-log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:6px;background:#f6f8fa}" +
    ".sl-msg{max-width:80%;padding:8px 12px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word}" +
    ".sl-inbound{align-self:flex-end;background:var(--sl-accent);color:#fff}" +
    ".sl-outbound,.sl-bot{align-self:flex-start;background:#fff;border:1px solid #d0d7de}.sl-pending{opacity:.6}" +
    ".sl-read-mark{align-self:flex-end;font-size:11px;color:#656d76;margin-top:-4px}" +
    "#sl-typing,#sl-status{font-size:12px;color:#656d76;padding:0 12px;min-height:0}#sl-typing:not(:empty){padding:4px 12px}" +
    "#sl-send-form{display:flex;border-top:1px solid #d0d7de}#sl-input{flex:1;border:0;padding:12px;font:inherit;resize:none}" +
    "#sl-send{border:0;background:none;color:var(--sl-accent);font-weight:700;padding:0 16px;cursor:pointer}" +
    ".sl-form{padding:16px;gap:10px;overflow-y:auto}.sl-form p{margin:0 0 4px}.sl-form label{display:flex;flex-direction:column;gap:4px;font-weight:600;font-size:13px}" +
    ".sl-form input,.sl-form textarea,.sl-form select{font:inherit;font-weight:400;padding:8px 10px;border:1px solid #d0d7de;border-radius:8px}" +
    ".sl-form textarea{min-height:72px;resize:vertical}.sl-form button[type=submit]{border:0;border-radius:8px;padding:10px;" +
    "background:var(--sl-accent);color:#fff;font:inherit;font-weight:700;cursor:pointer;margin-top:4px}" +
    ".sl-note{font-size:13px;color:#656d76}.sl-error{color:#cf222e;font-size:13px}.sl-done{color:#1a7f37;font-weight:600;background:#dafbe1;border-radius:10px;padding:12px 14px;margin:0}";
  document.head.appendChild(el("style", {}, css));

  var root = el("div", { id: "sl-root" });
  var launch = el("button", { id: "sl-launch", type: "button", "aria-expanded": "false", "aria-haspopup": "true" }, "Chat with us");
  var menu = el("div", { id: "sl-menu", role: "menu", "aria-label": "Contact us", hidden: "" });
  var panel = el("div", { id: "sl-panel", role: "dialog", "aria-labelledby": "sl-title", hidden: "" });
  var title = el("div", { id: "sl-title" }, "Chat with us");
  var greet = el("div", { id: "sl-greet" }, "We usually answer in a few minutes");
  var close = el("button", { id: "sl-close", type: "button", "aria-label": "Close" }, "×");
  add(panel, add(el("div", { id: "sl-head" }), add(el("div"), title, greet), close));

  // The chat.
  var chat = el("div", { id: "sl-chat", "class": "sl-view", hidden: "" });
  var log = el("div", { id: "sl-log", "aria-live": "polite" });
  var typing = el("div", { id: "sl-typing", "aria-live": "polite" });
  var status = el("div", { id: "sl-status" });
  var sendForm = el("form", { id: "sl-send-form" });
  var input = el("textarea", { id: "sl-input", rows: "2", placeholder: "Type a message…", "aria-label": "Message" });
  add(sendForm, input, el("button", { id: "sl-send", type: "submit" }, "Send"));
  add(panel, add(chat, log, typing, status, sendForm));

  // A form view: its fields, a submit button, and where errors show.
  function field(label, name, type, required) {
    var control = type === "textarea" ? el("textarea", { name: name }) : el("input", { name: name, type: type });
    if (required) control.required = true;
    control.setAttribute("autocomplete", { name: "name", email: "email", phone: "tel" }[name] || "off");
    return add(el("label", {}, label + (required ? "" : " (optional)")), control);
  }
  function view(id, intro) {
    var form = el("form", { id: id, "class": "sl-view sl-form", hidden: "", novalidate: "" });
    form.appendChild(el("p", { "class": "sl-note" }, intro));
    return form;
  }
  function finish(form, label) {
    add(form, el("div", { "class": "sl-error", role: "alert" }), el("button", { type: "submit" }, label));
    panel.appendChild(form);
    return form;
  }
  function fail(form, message) { form.querySelector(".sl-error").textContent = message; }
  function values(form) {
    var out = {};
    Array.prototype.forEach.call(form.elements, function (c) { if (c.name && c.value.trim()) out[c.name] = c.value.trim(); });
    return out;
  }

  var callback = view("sl-callback", "Leave your number and we will call you.");
  add(callback, field("Phone", "phone", "tel", true), field("Name", "name", "text", false));
  var when = el("select", { name: "when" });
  add(when, el("option", { value: "asap" }, "As soon as possible"), el("option", { value: "at" }, "At a time I choose"));
  var at = el("input", { name: "at", type: "datetime-local", hidden: "", "aria-label": "Preferred time" });
  add(callback, add(el("label", {}, "When"), when, at));
  finish(callback, "Call me back");
  when.addEventListener("change", function () { at.hidden = when.value !== "at"; });

  var contact = view("sl-contact", "");
  finish(contact, "Send");

  var views = [chat, callback, contact];
  function show(viewNode) {
    menu.hidden = true;
    panel.hidden = false;
    launch.setAttribute("aria-expanded", "true");
    views.forEach(function (v) { v.hidden = v !== viewNode; });
    var first = viewNode === chat ? input : viewNode.querySelector("input,textarea");
    if (first) first.focus();
    if (viewNode === chat) { connect(); markRead(); }
  }
  function hideAll() {
    menu.hidden = true;
    panel.hidden = true;
    launch.setAttribute("aria-expanded", "false");
  }

  // What the workspace configured; a minimal chat until it arrives.
  var config = { chat: true, callback: false, links: [], prechat: {}, online: true };
  var configUrl = api("config");
  configUrl.searchParams.set("key", key);
  configUrl.searchParams.set("anonymousId", visitor);
  fetch(configUrl).then(function (r) { return r.ok ? r.json() : null; }).then(function (c) {
    if (!c) return;
    config = c;
    root.style.setProperty("--sl-accent", c.accentColor);
    launch.textContent = title.textContent = c.title;
    greet.textContent = c.greeting;
    buildMenu();
    root.setAttribute("data-ready", "");
  }).catch(function () { /* keep the minimal chat */ });

  var colours = { whatsapp: "#25d366", telegram: "#229ed9", viber: "#7360f2", vk: "#0077ff" };
  function item(label, colour) {
    var node = el("button", { type: "button", "class": "sl-item", role: "menuitem" });
    return add(node, el("span", { "class": "sl-dot", style: "background:" + colour, "aria-hidden": "true" }), el("span", {}, label));
  }
  function buildMenu() {
    menu.textContent = "";
    if (config.chat) {
      var chatItem = item(config.online ? "Chat" : "Leave a message", config.online ? "#1a7f37" : "#8c959f");
      chatItem.addEventListener("click", openChat);
      menu.appendChild(chatItem);
    }
    if (config.callback) {
      var callItem = item("Call me back", "#fd7e14");
      callItem.addEventListener("click", function () { show(callback); });
      menu.appendChild(callItem);
    }
    config.links.forEach(function (link) {
      var a = el("a", { "class": "sl-item", role: "menuitem", href: link.url, target: "_blank", rel: "noopener" });
      add(a, el("span", { "class": "sl-dot", style: "background:" + (colours[link.channel] || "#656d76"), "aria-hidden": "true" }), el("span", {}, link.label));
      a.addEventListener("click", hideAll);
      menu.appendChild(a);
    });
  }
  function items() { return menu.querySelectorAll(".sl-item"); }

  launch.addEventListener("click", function () {
    if (!panel.hidden || !menu.hidden) return hideAll();
    if (items().length <= 1 && config.chat) return openChat();
    menu.hidden = false;
    launch.setAttribute("aria-expanded", "true");
    items()[0].focus();
  });
  close.addEventListener("click", function () { hideAll(); launch.focus(); });
  // A menu moves with the arrow keys (WAI-ARIA menu pattern).
  menu.addEventListener("keydown", function (event) {
    var list = Array.prototype.slice.call(items()), at = list.indexOf(document.activeElement);
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    event.preventDefault();
    list[(at + (event.key === "ArrowDown" ? 1 : list.length - 1)) % list.length].focus();
  });
  root.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { hideAll(); launch.focus(); }
  });

  // Before the first message: the pre-chat form if configured; with nobody
  // online: the offline form.
  var asked = function () {
    return ["name", "email", "phone"].filter(function (f) { return config.prechat[f] && config.prechat[f] !== "off"; });
  };
  function openChat() {
    if (!config.online) return openContact("offline");
    if (asked().length && !store("sl_prechat_done") && !log.childElementCount) return openContact("prechat");
    show(chat);
  }
  var contactForm = null;
  function openContact(kind) {
    contactForm = kind;
    while (contact.childElementCount > 1) contact.removeChild(contact.lastChild);
    var offline = kind === "offline";
    contact.firstChild.textContent = offline
      ? "Nobody is online right now. Leave a message and we will answer by e-mail or text message."
      : "Before we start, please tell us about yourself.";
    var fields = offline ? ["name", "email", "phone"] : asked();
    var labels = { name: "Name", email: "E-mail", phone: "Phone" };
    var types = { name: "text", email: "email", phone: "tel" };
    fields.forEach(function (f) {
      contact.appendChild(field(labels[f], f, types[f], offline ? f === "name" : config.prechat[f] === "required"));
    });
    contact.appendChild(field("Message", "body", "textarea", true));
    finish(contact, offline ? "Leave a message" : "Start chat");
    show(contact);
  }

  // Each form keeps its request id until it succeeds: a retry is the same request.
  function submitter(form, path, body, done) {
    var requestId = null;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      requestId = requestId || uuid();
      var sent = body(values(form));
      sent.requestId = requestId;
      fail(form, "");
      post(path, sent).then(function (answer) {
        if (!answer.ok) return fail(form, (answer.body.error || {}).message || "Please check the form.");
        requestId = null;
        done(answer.body);
      }).catch(function () { fail(form, "No connection. Please try again."); });
    });
  }
  submitter(callback, "callback", function (v) {
    var time = v.when === "at" && v.at ? new Date(v.at).toISOString() : "asap";
    return { phone: v.phone, name: v.name, preferredTime: time };
  }, function () {
    while (callback.childElementCount > 1) callback.removeChild(callback.lastChild);
    callback.firstChild.textContent = "";
    callback.appendChild(el("p", { "class": "sl-done", role: "status" }, "Thank you! We will call you back."));
  });
  submitter(contact, "message", function (v) {
    v.form = contactForm;
    return v;
  }, function (answer) {
    if (contactForm === "prechat") {
      store("sl_prechat_done", "1");
      show(chat);
      return;
    }
    while (contact.childElementCount > 1) contact.removeChild(contact.lastChild);
    contact.firstChild.textContent = "";
    contact.appendChild(el("p", { "class": "sl-done", role: "status" }, answer.answer));
  });

  // The chat over its socket.
  var shown = {}, pending = {}, socket = null, retry = 500;
  var lastOperator = null, readSent = null, typingSent = 0, typingTimer = null;
  var readMark = el("div", { "class": "sl-read-mark" }, "Read");

  function showMessage(message, isPending) {
    if (shown[message.id]) {
      shown[message.id].classList.remove("sl-pending");
      return;
    }
    var node = el("div", { "class": "sl-msg sl-" + message.kind + (isPending ? " sl-pending" : "") }, message.body);
    shown[message.id] = node;
    log.appendChild(node);
    log.scrollTop = log.scrollHeight;
    if (message.kind !== "inbound") { lastOperator = message.id; typing.textContent = ""; markRead(); }
  }
  // The visitor's own message pushed back before its ack: the bubble shown.
  function adopt(message) {
    if (message.kind !== "inbound" || shown[message.id]) return false;
    for (var id in pending) {
      if (pending[id].body !== message.body) continue;
      shown[message.id] = shown[id];
      shown[id].classList.remove("sl-pending");
      delete pending[id];
      return true;
    }
    return false;
  }
  function frameOut(frame) {
    if (socket && socket.readyState === 1) { socket.send(JSON.stringify(frame)); return true; }
    return false;
  }
  // The visitor has seen the operator's latest message.
  function markRead() {
    if (panel.hidden || chat.hidden || !lastOperator || readSent === lastOperator) return;
    if (frameOut({ type: "read" })) readSent = lastOperator;
  }
  function showRead() {
    var mine = log.querySelectorAll(".sl-inbound:not(.sl-pending)");
    var last = mine[mine.length - 1];
    if (last) log.insertBefore(readMark, last.nextSibling);
  }
  function showTyping() {
    typing.textContent = "Operator is typing…";
    clearTimeout(typingTimer);
    typingTimer = setTimeout(function () { typing.textContent = ""; }, TYPING_SHOWN);
  }

  function connect() {
    if (socket && socket.readyState <= 1) return;
    var url = api("socket");
    url.protocol = base.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("key", key);
    url.searchParams.set("anonymousId", visitor);
    if (userId && userHash) { url.searchParams.set("userId", userId); url.searchParams.set("userHash", userHash); }
    socket = new WebSocket(url);
    socket.onopen = function () {
      retry = 500; status.textContent = "";
      for (var id in pending) socket.send(JSON.stringify(pending[id]));
      markRead();
    };
    socket.onmessage = function (event) {
      var frame = JSON.parse(event.data);
      if (frame.type === "history") frame.messages.forEach(function (m) { showMessage(m); });
      else if (frame.type === "message") { if (!adopt(frame.message)) showMessage(frame.message); }
      else if (frame.type === "typing") showTyping();
      else if (frame.type === "read") showRead();
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

  sendForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var body = input.value.trim();
    if (!body) return;
    var id = uuid();
    var frame = { type: "message", id: id, body: body };
    pending[id] = frame;
    showMessage({ id: id, kind: "inbound", body: body }, true);
    input.value = "";
    typingSent = 0;
    if (!frameOut(frame)) connect();
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); sendForm.requestSubmit(); }
  });
  input.addEventListener("input", function () {
    var now = Date.now();
    if (input.value.trim() && now - typingSent >= TYPING_EVERY && frameOut({ type: "typing" })) typingSent = now;
  });

  add(root, menu, panel, launch);
  document.body.appendChild(root);
  buildMenu();

  // Call tracking: the visitor's tracking number in place of the site's
  // phone (in elements matching the workspace's selector, in the page's
  // text in any formatting, and in tel: links), asked on each page view
  // and kept by a heartbeat while the page is in view. Text only: the
  // number is set as textContent and href, never as HTML.
  var SOURCE_KEYS = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "gclid", "yclid", "fbclid"];
  var PHONE_TEXT = /\+?\d[\d\s().\-]{8,}\d/g;
  function session(name, value) {
    try {
      if (value === undefined) return sessionStorage.getItem(name);
      sessionStorage.setItem(name, value);
    } catch (e) { /* private mode: nothing kept */ }
    return null;
  }
  // Where this visit came from: the landing page's tags, kept for the visit.
  function visitSource() {
    var params = new URLSearchParams(location.search), tagged = {}, any = false;
    SOURCE_KEYS.forEach(function (k) { var v = params.get(k); if (v) { tagged[k] = v; any = true; } });
    var kept = session("sl_source");
    if (!any && kept) { try { return JSON.parse(kept); } catch (e) { /* made anew below */ } }
    tagged.page_url = location.href;
    var from = document.referrer;
    if (from && from.indexOf(location.origin + "/") !== 0) tagged.referrer = from;
    session("sl_source", JSON.stringify(tagged));
    return tagged;
  }
  function visitId() {
    var id = session("sl_session");
    if (!id) { id = uuid(); session("sl_session", id); }
    return id;
  }
  function digits(text) { return String(text || "").replace(/\D/g, ""); }
  // The same phone whatever the formatting or trunk prefix: the last 10 digits.
  function samePhone(text, phone) {
    var a = digits(text), b = digits(phone);
    return a.length >= 10 && b.length >= 10 && a.slice(-10) === b.slice(-10);
  }
  var onPage = [];
  function swapNumber(answer) {
    var olds = onPage.concat(answer.sitePhone ? [answer.sitePhone] : []).filter(function (p) { return !samePhone(p, answer.number); });
    var isOld = function (text) { return olds.some(function (p) { return samePhone(text, p); }); };
    var tel = "tel:" + answer.number;
    if (answer.selector) {
      var marked = [];
      try { marked = document.querySelectorAll(answer.selector); } catch (e) { /* a bad selector changes nothing */ }
      Array.prototype.forEach.call(marked, function (node) {
        if (root.contains(node)) return;
        node.textContent = answer.display;
        if (node.tagName === "A") node.setAttribute("href", tel);
      });
    }
    Array.prototype.forEach.call(document.querySelectorAll("a[href^='tel:']"), function (a) {
      if (!root.contains(a) && isOld(a.getAttribute("href"))) a.setAttribute("href", tel);
    });
    var walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
      acceptNode: function (node) {
        var parent = node.parentNode;
        if (!parent || root.contains(node) || /^(SCRIPT|STYLE|NOSCRIPT|TEXTAREA)$/.test(parent.nodeName)) return NodeFilter.FILTER_REJECT;
        return NodeFilter.FILTER_ACCEPT;
      }
    });
    for (var node = walker.nextNode(); node; node = walker.nextNode()) {
      var text = node.nodeValue, swapped = text.replace(PHONE_TEXT, function (found) { return isOld(found) ? answer.display : found; });
      if (swapped !== text) node.nodeValue = swapped;
    }
    onPage = [answer.number];
    document.documentElement.setAttribute("data-seamline-number", answer.number);
  }
  var heartbeat = null;
  function askNumber() {
    clearTimeout(heartbeat);
    post("number", { sessionId: visitId(), source: visitSource() }).then(function (answer) {
      if (!answer.ok) return;
      var a = answer.body;
      if (a.number) swapNumber(a);
      if (a.kind === "pool") heartbeat = setTimeout(function () { if (!document.hidden) askNumber(); }, a.heartbeatS * 1000);
    }).catch(function () { /* the site's own number stays */ });
  }
  document.addEventListener("visibilitychange", function () { if (!document.hidden && onPage.length) askNumber(); });
  askNumber();
})();
