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

  // "Sync now": enqueue (or join the sync already running), show "Folder n of m · done of total" live.
  const number = (n) => Number(n || 0).toLocaleString("en-US");
  function syncText(body) {
    const p = body.progress;
    if (!p) return body.status === "queued" ? "Sync queued…" : "Syncing…";
    return `Folder ${p.folder} of ${p.folders} · ${number(p.done)} of ${number(p.total)}`;
  }
  document.addEventListener("click", async (event) => {
    const button = event.target.closest('[data-action="sync"]');
    if (!button) return;
    const tbody = button.closest("tbody");
    const result = tbody.querySelector(".check-result");
    button.disabled = true;
    result.innerHTML = '<span class="running sync-progress">Sync queued…</span>';
    const show = (text, cls) => {
      result.innerHTML = `<span class="${cls}"></span>`;
      result.firstElementChild.textContent = text;
    };
    try {
      const response = await fetch(button.dataset.url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf ? csrf.content : "" },
        body: "{}",
      });
      const job = await response.json();
      if (!response.ok && !(response.status === 409 && job.status_url)) throw new Error(job.error || response.statusText);
      const final = await pollJob(job.status_url, (body) => show(syncText(body), "running sync-progress"));
      const r = final.result || {};
      if (final.status === "failed" || r.ok === false) {
        show(r.error || r.message || final.error || "The sync failed.", "error sync-result");
      } else {
        show(r.message || "Sync finished.", "ok sync-result");
      }
      const fresh = await fetch(button.dataset.rowUrl);
      const template = document.createElement("template");
      template.innerHTML = (await fresh.text()).trim();
      const row = template.content.firstElementChild;
      row.querySelector(".check-result").replaceChildren(...result.childNodes);
      tbody.replaceWith(row);
    } catch (err) {
      show(String(err.message || err), "error");
      button.disabled = false;
    }
  });

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
