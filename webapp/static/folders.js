/* Folders page: "Refresh folder list" runs a job, then reloads the folder form in place. */
(function () {
  "use strict";
  const button = document.getElementById("refresh-folders");
  if (!button) return;
  const status = document.getElementById("refresh-status");
  function describe(error) {
    if (!error) return mailroomT("The folder list could not be refreshed.");
    if (typeof error === "string") return error;
    return error.message || error.sentence || mailroomT("The folder list could not be refreshed.");
  }
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.className = "running";
    mailroomRunning(status, "Refreshing the folder list…");
    try {
      const job = await window.Mailroom.startJob(button.dataset.url);
      const final = await window.Mailroom.pollJob(job.status_url, (body) => {
        const s = status.querySelector(".job-status");
        if (s) s.textContent = mailroomT(body.status);
      });
      if (final.status !== "finished" || !final.result || !final.result.ok) {
        status.className = "error";
        status.textContent = describe(final.error || (final.result && final.result.error));
        return;
      }
      const fresh = await fetch(button.dataset.formUrl);
      document.getElementById("folders-form").innerHTML = await fresh.text();
      status.className = "running";
      status.textContent = mailroomT("Folder list refreshed: {folders} folders.", { folders: final.result.folders });
    } catch (err) {
      status.className = "error";
      status.textContent = String(err.message || err);
    } finally {
      button.disabled = false;
    }
  });
})();
