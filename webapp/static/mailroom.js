/* Mailroom pages: start a job, poll its status, show the outcome without reloading. */
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]');

  async function pollJob(statusUrl, onUpdate) {
    for (let delay = 300; ; delay = Math.min(delay * 1.5, 2000)) {
      const response = await fetch(statusUrl, { headers: { Accept: "application/json" } });
      const body = await response.json();
      onUpdate(body);
      if (!response.ok || body.status === "finished" || body.status === "failed") return body;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  async function startJob(url, payload) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf ? csrf.content : "" },
      body: JSON.stringify(payload || {}),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    return body;
  }

  window.Mailroom = { pollJob, startJob };

  document.addEventListener("click", async (event) => {
    const button = event.target.closest('[data-action="test"]');
    if (!button) return;
    const tbody = button.closest("tbody");
    const result = tbody.querySelector(".check-result");
    button.disabled = true;
    result.innerHTML = '<span class="running">Testing… <span class="job-status">queued</span></span>';
    try {
      const job = await startJob(button.dataset.url);
      const final = await pollJob(job.status_url, (body) => {
        const s = result.querySelector(".job-status");
        if (s) s.textContent = body.status;
      });
      if (final.status === "failed") {
        result.innerHTML = '<p class="error"></p>';
        result.querySelector(".error").textContent = final.error || "The test could not run.";
        return;
      }
      const fresh = await fetch(button.dataset.rowUrl);
      const html = await fresh.text();
      const template = document.createElement("template");
      template.innerHTML = html.trim();
      tbody.replaceWith(template.content.firstElementChild);
    } catch (err) {
      result.innerHTML = '<p class="error"></p>';
      result.querySelector(".error").textContent = String(err.message || err);
      button.disabled = false;
    }
  });
})();
