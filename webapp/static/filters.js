/* Filters page: "Run now" applies the enabled rules to a folder (a job) and shows the result. */
(function () {
  "use strict";
  const button = document.getElementById("run-filters");
  if (!button) return;
  const status = document.getElementById("run-status");
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.className = "running";
    mailroomRunning(status, "Running the filters…");
    try {
      const job = await window.Mailroom.startJob(document.getElementById("run-folder").value);
      const final = await window.Mailroom.pollJob(job.status_url, (body) => {
        const s = status.querySelector(".job-status");
        if (s) s.textContent = mailroomT(body.status);
      });
      const result = final.result || {};
      if (final.status !== "finished" || !result.ok) {
        status.className = "error";
        status.textContent = result.error || final.error || mailroomT("The filters could not be run.");
        return;
      }
      status.className = "running done";
      status.textContent = result.message;
    } catch (err) {
      status.className = "error";
      status.textContent = String(err.message || err);
    } finally {
      button.disabled = false;
    }
  });
})();
