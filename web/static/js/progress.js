// dgov console: live progress of a dataset load. The page works without it (reload to see).
(function () {
  var box = document.querySelector("[data-progress-url]");
  if (!box) return;
  var url = box.getAttribute("data-progress-url");
  var bar = box.querySelector("progress");
  var text = box.querySelector(".progress-text");
  function tick() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (v) {
        if (v.total_bytes > 0) { bar.max = v.total_bytes; bar.value = v.bytes_read; }
        text.textContent = v.rows_ok + " ✓ · " + v.rows_rejected + " ✗ · " + v.status;
        if (v.status === "loading") setTimeout(tick, 1000);
        else if (box.getAttribute("data-status") === "loading") location.reload();
      })
      .catch(function () { setTimeout(tick, 3000); });
  }
  tick();
})();
