/* Mailroom pages: start a job, poll its status, show the outcome without reloading. */

/* A text this script writes itself, in the page's language: base.html's
   <meta name="mailroom-texts"> maps each English text to its translation (webapp/i18n.py JS_TEXTS,
   docs/translations.md); {name} is replaced by values[name]. The other page scripts use it too. */
function mailroomT(text, values) {
  if (!mailroomT.texts) {
    const meta = document.querySelector('meta[name="mailroom-texts"]');
    try {
      mailroomT.texts = JSON.parse((meta && meta.content) || "{}");
    } catch (err) {
      mailroomT.texts = {};
    }
  }
  const out = mailroomT.texts[text] || text;
  return out.replace(/\{(\w+)\}/g, (m, key) => (values && key in values ? String(values[key]) : m));
}

/* "<label> <job status>" while a job runs, written as text (a translation is never markup here). */
function mailroomRunning(target, label) {
  target.innerHTML = '<span class="running"><span class="running-label"></span> <span class="job-status"></span></span>';
  target.querySelector(".running-label").textContent = mailroomT(label);
  target.querySelector(".job-status").textContent = mailroomT("queued");
}

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
    if (!p) return body.status === "queued" ? mailroomT("Sync queued…") : mailroomT("Syncing…");
    return mailroomT("Folder {folder} of {folders} · {done} of {total}", {
      folder: p.folder, folders: p.folders, done: number(p.done), total: number(p.total),
    });
  }
  document.addEventListener("click", async (event) => {
    const button = event.target.closest('[data-action="sync"]');
    if (!button) return;
    const tbody = button.closest("tbody");
    const result = tbody.querySelector(".check-result");
    button.disabled = true;
    result.innerHTML = '<span class="running sync-progress"></span>';
    result.firstElementChild.textContent = mailroomT("Sync queued…");
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
      if (r.status === "waiting") {
        // No free connection to the server, or it asked us to slow down: the sync runs again by itself.
        show(mailroomT("{message} The sync runs again in about {seconds} s.", {
          message: r.message, seconds: Math.ceil(r.retry_in),
        }), "running sync-result");
      } else if (final.status === "failed" || r.ok === false) {
        show(r.error || r.message || final.error || mailroomT("The sync failed."), "error sync-result");
      } else {
        show(r.message || mailroomT("Sync finished."), "ok sync-result");
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

  // A connection test: "Testing… queued/started" live on the row, then the row with its report.
  async function followTest(tbody, start) {
    const button = tbody.querySelector('[data-action="test"]');
    const result = tbody.querySelector(".check-result");
    if (button) button.disabled = true;
    mailroomRunning(result, "Testing…");
    try {
      const job = await start();
      const final = await pollJob(job.status_url, (body) => {
        const s = result.querySelector(".job-status");
        if (s) s.textContent = mailroomT(body.status);
      });
      if (final.status === "failed") {
        result.innerHTML = '<p class="error"></p>';
        result.querySelector(".error").textContent = final.error || mailroomT("The test could not run.");
        return;
      }
      const fresh = await fetch(tbody.dataset.rowUrl);
      const html = await fresh.text();
      const template = document.createElement("template");
      template.innerHTML = html.trim();
      tbody.replaceWith(template.content.firstElementChild);
    } catch (err) {
      result.innerHTML = '<p class="error"></p>';
      result.querySelector(".error").textContent = String(err.message || err);
      if (button) button.disabled = false;
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest('[data-action="test"]');
    if (!button) return;
    followTest(button.closest("tbody"), () => startJob(button.dataset.url));
  });

  // The test that connecting a mailbox started: follow it on the page the person lands on. When it
  // fails, the green "saved; testing its connection now" above says so instead of staying green.
  document.querySelectorAll("tbody[data-test-status-url]").forEach((tbody) => {
    followTest(tbody, async () => ({ status_url: tbody.dataset.testStatusUrl })).then(() => {
      const row = document.querySelector(`tbody[data-account-id="${tbody.dataset.accountId}"]`);
      const saved = document.querySelector(".flash-success");
      if (!row || row === tbody || !saved || row.classList.contains("state-connected")) return;
      saved.classList.replace("flash-success", "flash-error");
      saved.textContent = tbody.dataset.failedNote;
    });
  });
})();

/* Connect form, "Other": look up the server settings for the typed address (a discovery job) and fill
   the server fields; what the person typed is only replaced when they ask. */
(function () {
  "use strict";
  const box = document.getElementById("discovery");
  if (!box) return;
  const status = document.getElementById("discovery-status");
  const select = document.getElementById("service");
  const email = document.getElementById("email");
  const username = document.getElementById("username");
  const groups = {
    imap: { server: "imap_server", security: "imap_security" },
    smtp: { server: "smtp_server", security: "smtp_use_tls" },
    pop3: { server: "pop3_server", security: "pop3_security" },
  };
  const filled = {}; // field id -> the value this script put there
  let lastAddress = null;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function address() {
    const typed = (email && email.value.trim()) || "";
    if (typed) return typed;
    const login = (username && username.value.trim()) || "";
    return login.includes("@") ? login : "";
  }

  function typedByPerson(id) {
    const field = document.getElementById(id);
    return field && field.value.trim() !== "" && field.value !== filled[id];
  }

  function proposal(result) {
    const out = {};
    for (const [protocol, ids] of Object.entries(groups)) {
      const ep = result[protocol];
      if (!ep || !document.getElementById(ids.server)) continue;
      out[protocol] = { server: ep.host + ":" + ep.port, security: ep.security };
    }
    return out;
  }

  function apply(values, force) {
    const skipped = [];
    for (const [protocol, value] of Object.entries(values)) {
      const ids = groups[protocol];
      const server = document.getElementById(ids.server);
      if (!force && typedByPerson(ids.server) && server.value.trim() !== value.server) {
        skipped.push(protocol);
        continue;
      }
      server.value = value.server;
      filled[ids.server] = value.server;
      const security = document.getElementById(ids.security);
      if (security && security.type === "checkbox") security.checked = value.security !== "none";
      else if (security) security.value = value.security;
    }
    return skipped;
  }

  function show(result) {
    status.replaceChildren();
    if (result.error) {
      status.appendChild(el("p", "error", result.error));
      return;
    }
    const source = el("p", "discovery-source", result.description);
    source.dataset.source = result.source || "none";
    status.appendChild(source);
    if (!result.source) {
      const list = el("ul", "help discovery-notes");
      for (const note of result.notes || []) list.appendChild(el("li", null, note));
      status.appendChild(list);
      return;
    }
    if (result.service) {
      const choose = el("button", "link", mailroomT("Choose {service}", { service: result.service.name }));
      choose.type = "button";
      choose.dataset.action = "choose-service";
      choose.addEventListener("click", () => {
        select.value = String(result.service.id);
        select.dispatchEvent(new Event("change"));
      });
      status.appendChild(choose);
      return;
    }
    const values = proposal(result);
    const skipped = apply(values, false);
    if (username && !username.value.trim() && result.username) username.value = result.username;
    if (skipped.length) {
      const names = skipped.map((p) => p.toUpperCase()).join(" and ");
      const ask = el("p", "hint discovery-conflict",
        mailroomT("You already typed the {names} server; the suggestion differs: {suggestion}.", {
          names,
          suggestion: skipped.map((p) => values[p].server + " (" + values[p].security.toUpperCase() + ")").join(", "),
        }));
      const replace = el("button", "link", mailroomT("Use the suggestion"));
      replace.type = "button";
      replace.dataset.action = "use-suggestion";
      replace.addEventListener("click", () => {
        apply(values, true);
        ask.remove();
      });
      ask.appendChild(document.createTextNode(" "));
      ask.appendChild(replace);
      status.appendChild(ask);
    }
  }

  async function start(typed) {
    const csrf = document.querySelector('meta[name="csrf-token"]');
    const response = await fetch(box.dataset.url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf ? csrf.content : "" },
      body: JSON.stringify({ email: typed }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error((body.fields && body.fields.email) || body.error || response.statusText);
    return body;
  }

  async function lookUp(force) {
    if (select.value !== "other") return;
    const typed = address();
    if (!typed || (!force && typed === lastAddress)) return;
    lastAddress = typed;
    status.replaceChildren(el("p", "running", mailroomT("Looking up settings…")));
    try {
      const job = await start(typed);
      const final = await window.Mailroom.pollJob(job.status_url, () => {});
      if (typed !== lastAddress) return; // another address was typed meanwhile
      if (final.status !== "finished") {
        status.replaceChildren(el("p", "error", final.error || mailroomT("The lookup could not run.")));
        return;
      }
      show(final.result);
    } catch (err) {
      lastAddress = null;
      status.replaceChildren(el("p", "error", String(err.message || err)));
    }
  }

  document.getElementById("discover-button").addEventListener("click", () => lookUp(true));
  if (email) email.addEventListener("change", () => lookUp(false));
  if (username) username.addEventListener("change", () => lookUp(false));
})();

/* Small behaviours the templates ask for with data- attributes (the CSP refuses on…= attributes):
   data-confirm on a form asks before submitting, data-autosubmit submits its form on change,
   data-select-on-focus selects a read-only field's text, data-copy-from="id" copies that field. */
(function () {
  "use strict";
  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });
  document.addEventListener("change", (event) => {
    const field = event.target.closest("[data-autosubmit]");
    if (field && field.form) field.form.submit();
  });
  document.addEventListener("focusin", (event) => {
    const field = event.target.closest("[data-select-on-focus]");
    if (field) field.select();
  });
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-copy-from]");
    if (!button || !navigator.clipboard) return;
    try {
      await navigator.clipboard.writeText(document.getElementById(button.dataset.copyFrom).value);
      button.textContent = mailroomT("Copied");
    } catch (err) {
      button.textContent = mailroomT("Select and copy the field");  // no clipboard permission in this browser
    }
  });
})();
