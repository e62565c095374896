/* Messages pages: wait for a message body being fetched by a job, then show it. */
(function () {
  "use strict";
  const pending = document.getElementById("body-pending");
  if (!pending || !window.Mailroom) return;
  const status = pending.querySelector(".job-status");

  function fail(text) {
    pending.innerHTML = '<p class="error" role="alert"></p>';
    pending.querySelector(".error").textContent = text;
  }

  window.Mailroom.pollJob(pending.dataset.statusUrl, (body) => {
    if (status && body.status) status.textContent = body.status;
  })
    .then((final) => {
      const result = final.result || {};
      if (final.status === "finished" && result.ok) {
        window.location.reload();
      } else if (result.gone) {
        pending.id = "gone";
        fail("This message is no longer on the server: it was moved or deleted there since the last sync.");
      } else {
        fail("The message could not be fetched: " + (result.error || final.error || "unknown error") + " Reload the page to try again.");
      }
    })
    .catch((err) => fail("The message could not be fetched: " + String(err.message || err)));
})();
