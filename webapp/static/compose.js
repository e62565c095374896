// Compose: "Send later" sends the chosen local time with its offset; the status page polls the state.
(function () {
  function pad(n) { return String(n).padStart(2, "0"); }

  const local = document.getElementById("send_at_local");
  const hidden = document.getElementById("send_at");
  if (local && hidden) {
    if (local.dataset.utc) {  // editing: show the stored UTC time in the browser's time zone
      const d = new Date(local.dataset.utc);
      if (!isNaN(d)) {
        local.value = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
      }
    }
    local.form.addEventListener("submit", function () {
      hidden.value = local.value ? new Date(local.value).toISOString() : "";
    });
  }

  const box = document.getElementById("outgoing-status");
  if (!box) return;
  const final = box.dataset.final.split(",");
  const labels = JSON.parse(box.dataset.labels || "{}");
  const stateEl = document.getElementById("outgoing-state");
  const errorEl = document.getElementById("outgoing-error");
  async function poll() {
    try {
      const response = await fetch(box.dataset.url, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const body = await response.json();
        stateEl.textContent = labels[body.state] || body.state;
        stateEl.className = "badge state-" + body.state;
        box.dataset.state = body.state;
        // Edit and Cancel belong to a message that still waits; a failed one must not offer them.
        const actions = document.getElementById("outgoing-actions");
        if (actions) actions.hidden = body.state !== "scheduled";
        if (body.error) {
          document.getElementById("outgoing-sentence").textContent = body.error_sentence || "";
          document.getElementById("outgoing-detail").textContent = body.error;
          errorEl.hidden = false;
        }
        if (final.includes(body.state)) return;
      }
    } catch (e) { /* the next poll tries again */ }
    setTimeout(poll, box.dataset.state === "scheduled" ? 5000 : 700);
  }
  if (!final.includes(box.dataset.state)) setTimeout(poll, 300);
})();
