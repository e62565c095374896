/* Folders page: "Refresh folder list" runs a job, then reloads the folder form in place. */
(function () {
  "use strict";
  const button = document.getElementById("refresh-folders");
  if (!button) return;
  const status = document.getElementById("refresh-status");
  function describe(error) {
    if (!error) return "The folder list could not be refreshed.";
    if (typeof error === "string") return error;
    return error.message || error.sentence || "The folder list could not be refreshed.";
  }
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.className = "running";
    status.innerHTML = 'Refreshing the folder list… <span class="job-status">queued</span>';
    try {
      const job = await window.Mailroom.startJob(button.dataset.url);
      const final = await window.Mailroom.pollJob(job.status_url, (body) => {
        const s = status.querySelector(".job-status");
        if (s) s.textContent = body.status;
      });
      if (final.status !== "finished" || !final.result || !final.result.ok) {
        status.className = "error";
        status.textContent = describe(final.error || (final.result && final.result.error));
        return;
      }
      const fresh = await fetch(button.dataset.formUrl);
      document.getElementById("folders-form").innerHTML = await fresh.text();
      status.className = "running";
      status.textContent = "Folder list refreshed: " + final.result.folders + " folders.";
    } catch (err) {
      status.className = "error";
      status.textContent = String(err.message || err);
    } finally {
      button.disabled = false;
    }
  });
})();
