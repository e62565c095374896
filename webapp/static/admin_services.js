/* Email Service Settings: "Test" a corporate server in a dialog (a job, polled); nothing is stored. */
document.addEventListener("DOMContentLoaded", () => {
  const dialog = document.getElementById("test-dialog");
  const form = document.getElementById("test-form");
  const output = dialog.querySelector(".test-output");
  let url = null;
  document.querySelectorAll('[data-action="test-service"]').forEach((button) => button.addEventListener("click", () => {
    url = button.dataset.url;
    dialog.querySelector(".service-name").textContent = button.closest("tr").dataset.serviceName;
    output.replaceChildren();
    dialog.showModal();
  }));
  dialog.querySelector(".close-dialog").addEventListener("click", () => dialog.close());
  // Closed by Close or Esc: the password goes, so the next server's test does not send it unasked.
  dialog.addEventListener("close", () => { document.getElementById("test-password").value = ""; });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    mailroomRunning(output, "Testing…");
    try {
      const job = await Mailroom.startJob(url, {
        username: document.getElementById("test-username").value,
        password: document.getElementById("test-password").value,
      });
      const final = await Mailroom.pollJob(job.status_url, (b) => {
        const s = output.querySelector(".job-status"); if (s) s.textContent = mailroomT(b.status);
      });
      if (final.status !== "finished") throw new Error(final.error || mailroomT("The test could not run."));
      output.innerHTML = await (await fetch(job.status_url + "/report")).text();
    } catch (err) {
      output.innerHTML = '<p class="error"></p>';
      output.querySelector(".error").textContent = String(err.message || err);
    }
  });
});
