// The operator inbox and the supervisor page, live. The server renders
// every list and message (escaped); this script only re-fetches the page it
// shows when the inbox stream says something changed, and swaps the parts
// that follow the inbox (the list, the open thread, the supervisor's figures).
// Customer text is never put into the page by this script except as
// textContent (notifications, the typing line).
(function () {
  "use strict";
  var root = document.querySelector("[data-inbox], [data-live]");
  if (!root) return;
  var every = Number(root.getAttribute("data-refresh")) || 0;
  var me = root.getAttribute("data-me");
  var open = root.getAttribute("data-open");
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var status = document.getElementById("live-status");
  var assigned = {}; // conversation id -> assignee, to notice new assignments
  var refreshTimer = null, typingTimer = null, lastTyping = 0;

  function post(path) {
    return fetch(path, { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf } });
  }

  function markRead() {
    if (open && document.visibilityState === "visible") post("/api/v1/conversations/" + open + "/read");
  }

  // Swaps the parts of the page that follow the inbox, keeping what the
  // operator is typing and where they scrolled.
  function refresh() {
    refreshTimer = null;
    fetch(location.href, { credentials: "same-origin" }).then(function (r) {
      return r.ok ? r.text() : Promise.reject(r.status);
    }).then(function (html) {
      var next = new DOMParser().parseFromString(html, "text/html");
      ["conversations", "no-conversations", "messages", "thread-head", "queue-summary", "supervisor-live"].forEach(function (id) {
        var now = document.getElementById(id), fresh = next.getElementById(id);
        if (now && fresh) now.replaceWith(fresh);
        else if (now && !fresh) now.remove();
        else if (!now && fresh && id === "no-conversations") {
          var list = document.getElementById("conversations");
          if (list) list.before(fresh);
        }
      });
      scrollThread();
      countUnread();
    }).catch(function () { /* the next change or a reload repairs it */ });
  }

  function soon() {
    if (!refreshTimer) refreshTimer = setTimeout(refresh, 120);
  }

  // The tab shows how many customer messages wait unread in the list.
  function countUnread() {
    var total = 0;
    document.querySelectorAll("#conversations .unread").forEach(function (n) { total += Number(n.textContent) || 0; });
    var title = document.title.replace(/^\(\d+\) /, "");
    document.title = total ? "(" + total + ") " + title : title;
  }

  function scrollThread() {
    var thread = document.getElementById("messages");
    if (thread) thread.scrollTop = thread.scrollHeight;
  }

  function notify(title, body) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    if (document.visibilityState === "visible" && document.hasFocus()) return;
    try { new Notification(title, { body: body, tag: "seamline" }); } catch (e) { /* unsupported */ }
  }

  function showTyping() {
    var line = document.getElementById("typing");
    if (!line) return;
    line.textContent = "Customer is typing…";
    clearTimeout(typingTimer);
    typingTimer = setTimeout(function () { line.textContent = ""; }, 4000);
  }

  function onConversation(frame) {
    var c = frame.conversation || {};
    var before = assigned[c.id];
    assigned[c.id] = c.assignee || null;
    if (me && c.assignee === me && before !== undefined && before !== me) {
      notify("New conversation assigned to you", "Open the inbox to answer.");
    }
    soon();
  }

  function onMessage(frame) {
    var m = frame.message || {};
    if (m.kind === "inbound" && m.conversation === open) {
      var line = document.getElementById("typing");
      if (line) line.textContent = "";
      markRead();
    }
    if (m.kind === "note" && me && (m.mentions || []).indexOf(me) >= 0) {
      notify("You were mentioned", m.body || "");
    }
    soon();
  }

  function connect() {
    var source = new EventSource("/api/v1/inbox/stream");
    function state(text, name) {
      if (!status) return;
      status.textContent = text;
      status.className = "live " + (name === "live" ? "on" : "off");
      status.setAttribute("data-state", name);
    }
    // Marked read once the stream is open, so the list hears of it.
    source.onopen = function () { state("Live", "live"); markRead(); };
    source.onerror = function () { state("Reconnecting…", "reconnecting"); };
    source.addEventListener("conversation", function (e) { onConversation(JSON.parse(e.data)); });
    source.addEventListener("message", function (e) { onMessage(JSON.parse(e.data)); });
    source.addEventListener("typing", function (e) {
      var f = JSON.parse(e.data);
      if (f.party === "visitor" && f.conversation_id === open) showTyping();
    });
    source.addEventListener("read", function (e) {
      var f = JSON.parse(e.data);
      if (f.party === "visitor" && f.conversation_id === open) {
        document.querySelectorAll("#messages .msg.outbound").forEach(function (li) { li.classList.add("seen"); });
      }
    });
  }

  // The operator typing: the visitor's widget shows it (at most every 3 s).
  document.addEventListener("input", function (event) {
    if (!open || event.target.id !== "reply-body") return;
    var now = Date.now();
    if (now - lastTyping < 3000) return;
    lastTyping = now;
    post("/api/v1/conversations/" + open + "/typing");
  });

  // Ctrl/Cmd+Enter sends; j/k move through the list; r jumps to the reply.
  document.addEventListener("keydown", function (event) {
    var typing = /^(TEXTAREA|INPUT|SELECT)$/.test(event.target.tagName);
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.id === "reply-body") {
      event.preventDefault();
      var send = document.querySelector('#reply button[value="reply"]');
      if (send) send.click();
      return;
    }
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "j" || event.key === "k") {
      var rows = Array.prototype.slice.call(document.querySelectorAll("#conversations li a"));
      var at = rows.findIndex(function (a) { return a.parentElement.classList.contains("selected"); });
      var next = rows[event.key === "j" ? at + 1 : Math.max(at - 1, 0)];
      if (next) location.href = next.href;
    } else if (event.key === "r") {
      var box = document.getElementById("reply-body");
      if (box) { event.preventDefault(); box.focus(); }
    } else if (event.key === "?") {
      var help = document.getElementById("shortcuts");
      if (help) help.hidden = !help.hidden;
    }
  });

  var ask = document.getElementById("enable-notifications");
  if (ask && "Notification" in window && Notification.permission === "default") {
    ask.hidden = false;
    ask.addEventListener("click", function () {
      Notification.requestPermission().then(function () { ask.hidden = true; });
    });
  }

  // A canned response fills the reply box (already rendered for this customer).
  document.addEventListener("change", function (event) {
    if (event.target.id !== "canned") return;
    var box = document.getElementById("reply-body"), option = event.target.selectedOptions[0];
    if (box && option && option.value) {
      box.value = option.getAttribute("data-body");
      box.focus();
    }
    event.target.value = "";
  });

  // Wait times keep counting, and presence changes are not on the stream.
  if (every) setInterval(soon, every);
  // Files picked for a reply are uploaded at once; the form sends their keys.
  document.addEventListener("change", function (event) {
    if (event.target.id !== "reply-file") return;
    var input = event.target, keys = document.getElementById("reply-attachments");
    var list = document.getElementById("reply-files");
    Array.prototype.forEach.call(input.files, function (file) {
      var item = document.createElement("li");
      item.textContent = "Uploading " + file.name + "…";
      list.appendChild(item);
      var url = input.getAttribute("data-upload") + "?name=" + encodeURIComponent(file.name);
      fetch(url, { method: "POST", credentials: "same-origin", body: file,
                   headers: { "X-CSRF-Token": csrf, "Content-Type": file.type || "application/octet-stream" } })
        .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
        .then(function (answer) {
          if (!answer.ok) throw new Error((answer.body.error || {}).message || "refused");
          keys.value = keys.value ? keys.value + "," + answer.body.key : answer.body.key;
          item.textContent = "Attached: " + answer.body.name;
        })
        .catch(function (error) {
          item.textContent = file.name + ": " + error.message;
          item.className = "failed";
        });
    });
    input.value = "";
  });

  document.addEventListener("visibilitychange", markRead);
  scrollThread();
  countUnread();
  connect();
})();
