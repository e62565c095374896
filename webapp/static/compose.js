// Compose: "Send later" sends the chosen local time with its offset; the status page polls the state.
// Reply/Forward: the HTML switch swaps an untouched draft for its HTML form (and back), a new From
// swaps the signature in the message; a reply to a message not fetched yet waits for the fetch job.
(function () {
  // The signature block of `from` in `value` becomes that of `to` (put before the quote if there was none).
  function swapSignature(value, from, to, quoteStart, separator) {
    if (from === to) return value;
    if (from && value.includes(from)) {
      if (to) return value.replace(from, to);
      return value.replace(from + separator, "").replace(from, "");
    }
    const at = quoteStart ? value.indexOf(quoteStart) : -1;
    if (!from && to && at >= 0) return value.slice(0, at) + to + separator + value.slice(at);
    return value;
  }

  function replyForm() {
    const form = document.getElementById("compose-form");
    if (!form || !form.dataset.signatures) return;
    const body = document.getElementById("body");
    const asHtml = form.querySelector('input[name="as_html"]');
    const select = document.getElementById("from");
    const drafts = { text: document.getElementById("draft-text"), html: document.getElementById("draft-html") };
    if (!body || !drafts.text || !drafts.html) return;
    const signatures = JSON.parse(form.dataset.signatures);
    const quoteStart = JSON.parse(form.dataset.quoteStart || "{}");
    const separators = { text: "\n\n", html: "\n" };
    const kind = () => (asHtml && asHtml.checked ? "html" : "text");
    // A reply is written above the quote: the cursor starts there (a forward starts at To).
    const to = document.getElementById("to");
    if (form.dataset.mode === "forward" && to) to.focus();
    else { body.focus(); body.setSelectionRange(0, 0); body.scrollTop = 0; }
    if (asHtml) {
      asHtml.addEventListener("change", function () {
        const before = asHtml.checked ? "text" : "html";
        if (body.value === drafts[before].value) body.value = drafts[kind()].value;  // untouched: swap
      });
    }
    if (select) {
      let previous = select.value;
      select.addEventListener("change", function () {
        const old = signatures[previous] || { text: "", html: "" };
        const now = signatures[select.value] || { text: "", html: "" };
        for (const k of ["text", "html"]) {
          const untouched = body.value === drafts[k].value;
          drafts[k].value = swapSignature(drafts[k].value, old[k], now[k], quoteStart[k], separators[k]);
          if (untouched) body.value = drafts[k].value;
        }
        if (body.value !== drafts.text.value && body.value !== drafts.html.value) {
          const k = kind();
          body.value = swapSignature(body.value, old[k], now[k], quoteStart[k], separators[k]);
        }
        const note = document.getElementById("signature-note");
        if (note) note.hidden = !now.text;  // "Your signature is in the message" only when it is
        previous = select.value;
      });
    }
  }

  function waitForOriginal() {
    const pending = document.getElementById("original-pending");
    if (!pending || !window.Mailroom) return;
    const status = pending.querySelector(".job-status");
    const fail = (text) => {
      const p = document.createElement("p");
      p.className = "error";
      p.setAttribute("role", "alert");
      p.textContent = text;
      pending.replaceChildren(p);
    };
    window.Mailroom.pollJob(pending.dataset.statusUrl, (body) => {
      if (status && body.status) status.textContent = mailroomT(body.status);
    })
      .then((final) => {
        const result = final.result || {};
        if (final.status === "finished" && result.ok) window.location.reload();
        else fail(pending.dataset.failed + " " + (result.error || final.error || ""));
      })
      .catch((err) => fail(pending.dataset.failed + " " + String(err.message || err)));
  }

  replyForm();
  waitForOriginal();

  const box = document.getElementById("outgoing-status");
  if (!box) return;
  const final = box.dataset.final.split(",");
  const labels = JSON.parse(box.dataset.labels || "{}");
  const stateEl = document.getElementById("outgoing-state");
  const errorEl = document.getElementById("outgoing-error");
  const icons = JSON.parse(box.dataset.icons || "{}");
  // The badge templates/_badges.html state_badge draws: its colour class, icon and word.
  function showState(state) {
    if (stateEl.dataset.state === state) return;
    const word = stateEl.querySelector(".word");
    word.textContent = labels[state] || state;
    stateEl.className = "badge state state-" + state;
    stateEl.dataset.state = state;
    stateEl.replaceChildren(window.mailroomIcon(icons[state] || "circle"), word);
  }
  async function poll() {
    try {
      const response = await fetch(box.dataset.url, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const body = await response.json();
        showState(body.state);
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
