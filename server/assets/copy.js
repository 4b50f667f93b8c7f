// The front page's copy buttons (served as /copy.js: the page has no inline script).
"use strict";
document.addEventListener("click", function (e) {
  var b = e.target.closest && e.target.closest("button[data-copy]");
  if (!b) return;
  var text = document.getElementById(b.getAttribute("data-copy")).textContent;
  var done = function (label) {
    b.textContent = label;
    setTimeout(function () { b.textContent = "Copy"; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(function () { done("Copied"); }, function () { done("Select and copy"); });
  } else {
    // Plain http: the clipboard API is off; select the snippet for Ctrl+C instead.
    var range = document.createRange();
    range.selectNodeContents(document.getElementById(b.getAttribute("data-copy")));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    done("Selected: press Ctrl+C");
  }
});
