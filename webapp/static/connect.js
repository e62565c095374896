/* Connect / edit a mailbox: the chosen service decides which fields show (server details for
   "Other", the sign-in method for OAuth2 services) and which hints are listed. */
(function () {
  const form = document.getElementById("connect-form");
  if (!form) return;
  const info = JSON.parse(form.dataset.serviceInfo || "{}");
  const select = document.getElementById("service");
  const manual = document.getElementById("manual-fields");
  const hints = document.getElementById("service-hints");
  /* A plugin's hint is plain text: its https:// addresses become links here, built as elements
     (never as HTML), so a hint cannot inject markup. A sentence's closing "." or ")" stays text. */
  function appendLinked(parent, text) {
    const url = /https:\/\/[^\s<>"]*[^\s<>".,;:)]/g;
    let at = 0;
    for (const m of text.matchAll(url)) {
      parent.append(text.slice(at, m.index));
      const a = document.createElement("a");
      a.href = m[0];
      a.textContent = m[0];
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      parent.append(a);
      at = m.index + m[0].length;
    }
    parent.append(text.slice(at));
  }
  function update() {
    const isOther = select.value === "other";
    manual.hidden = !isOther;
    manual.disabled = !isOther;
    hints.replaceChildren();
    const s = info[select.value];
    const authRow = document.getElementById("auth-method-row");
    const method = document.getElementById("auth_method");
    authRow.hidden = !(s && s.oauth2);
    if (method && !(s && s.oauth2)) method.value = "password";
    if (method && s && s.oauth2 && !s.password) method.value = "oauth2";
    const oauth = !!(method && s && s.oauth2 && method.value === "oauth2");
    document.getElementById("password-fields").hidden = oauth;
    document.getElementById("oauth-explain").hidden = !oauth;
    if (s) {
      const p = document.createElement("p");
      p.className = "help";
      p.textContent = "IMAP " + s.imap.host + ":" + s.imap.port + " (" + s.imap.security.toUpperCase() + "), SMTP "
        + s.smtp.host + ":" + s.smtp.port + " (" + s.smtp.security.toUpperCase() + ")";
      hints.appendChild(p);
      for (const h of s.hints) {
        const q = document.createElement("p");
        q.className = "hint";
        appendLinked(q, h);
        hints.appendChild(q);
      }
    }
  }
  select.addEventListener("change", update);
  const methodSelect = document.getElementById("auth_method");
  if (methodSelect) methodSelect.addEventListener("change", update);
  update();
  const certBox = document.getElementById("disable_certificate_validation");
  certBox.addEventListener("change", () => { document.getElementById("cert-warning").hidden = !certBox.checked; });
})();
