// Small behaviours for every page. Text is only ever set with textContent.
//  - <form data-confirm="..."> asks before submitting (revoke, remove).
//  - <button data-copy="#selector"> copies that element's text.
//  - <tr data-href="..."> opens that page when the row is clicked.
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // A table row with data-href opens it, as its first link would.
  document.addEventListener("click", function (event) {
    var row = event.target.closest && event.target.closest("tr[data-href]");
    if (!row || event.target.closest("a, button, input, select, label")) return;
    if (String(window.getSelection())) return; // selecting text, not opening
    window.location.href = row.getAttribute("data-href");
  });

  function selectText(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function copied(button, ok) {
    var label = button.textContent;
    button.textContent = ok ? "Copied" : "Press Ctrl+C";
    setTimeout(function () { button.textContent = label; }, 1600);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    var text = source.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { copied(button, true); },
        function () { selectText(source); copied(button, false); });
    } else {
      // Plain-HTTP pages have no clipboard API: select the text instead.
      selectText(source);
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
      copied(button, ok);
    }
  });
})();
