/* Messages pages: wait for a message body being fetched by a job; act on messages (read, flag,
   move) with the change shown at once and the write-back job followed; keyboard shortcuts. */
(function () {
  "use strict";
  const M = window.Mailroom;
  const csrf = document.querySelector('meta[name="csrf-token"]');

  // -- a body being fetched -------------------------------------------------------------------
  const pending = document.getElementById("body-pending");
  if (pending && M) {
    const status = pending.querySelector(".job-status");
    const fail = (text) => {
      pending.innerHTML = '<p class="error" role="alert"></p>';
      pending.querySelector(".error").textContent = text;
    };
    M.pollJob(pending.dataset.statusUrl, (body) => {
      if (status && body.status) status.textContent = mailroomT(body.status);
    })
      .then((final) => {
        const result = final.result || {};
        if (final.status === "finished" && result.ok) {
          window.location.reload();
        } else if (result.gone) {
          pending.id = "gone";
          fail(mailroomT("This message is no longer on the server: it was moved or deleted there since the last sync."));
        } else {
          const error = result.error || final.error || mailroomT("unknown error");
          fail(mailroomT("The message could not be fetched: {error} Reload the page to try again.", { error }));
        }
      })
      .catch((err) => fail(mailroomT("The message could not be fetched: {error}", { error: String(err.message || err) })));
  }

  // -- acting on messages ---------------------------------------------------------------------
  const bar = document.getElementById("mail-actions");
  const list = document.getElementById("messages");
  const article = document.getElementById("message");
  const statusLine = document.getElementById("change-status");
  const rows = () => (list ? Array.from(list.querySelectorAll("tbody tr.message")) : []);
  const boxes = () => (list ? Array.from(list.querySelectorAll("input.select-message")) : []);
  const selectAll = document.getElementById("select-all");
  const count = document.getElementById("selection-count");
  let current = null;
  // The page's texts in the reader's language (the template's _()), English as a fallback.
  const T = Object.assign(
    {
      selected: "{n} selected",
      select_first: "Select messages first (x, or the boxes).",
      moving: "Moving to the server…",
      put_back: "The message was put back.",
      failed: "The change could not be saved on the server.",
      flagged: "Flagged",
      unread: "Unread",
    },
    bar && bar.dataset.texts ? JSON.parse(bar.dataset.texts) : {}
  );

  function say(text, kind) {
    if (!statusLine) return;
    statusLine.textContent = text;
    statusLine.className = "change-status " + (kind || "");
  }

  function selectedIds() {
    if (bar && bar.dataset.ids) return [Number(bar.dataset.ids)];
    const ids = boxes().filter((b) => b.checked).map((b) => Number(b.value));
    if (!ids.length && current) ids.push(Number(current.dataset.id));
    return ids;
  }

  function updateCount() {
    const n = boxes().filter((b) => b.checked).length;
    if (count) count.textContent = n ? T.selected.replace("{n}", n) : "";
    if (selectAll) {
      selectAll.checked = n > 0 && n === boxes().length;
      selectAll.indeterminate = n > 0 && n < boxes().length;
    }
    rows().forEach((r) => r.classList.toggle("selected", r.querySelector("input.select-message").checked));
  }

  function rowOf(id) {
    return list ? list.querySelector('tr.message[data-id="' + id + '"]') : null;
  }

  function showState(state) {
    const row = rowOf(state.id);
    const where = row || (article && Number(article.dataset.id) === state.id ? article : null);
    if (!where) return;
    where.classList.toggle("unread", !state.seen);
    where.classList.toggle("is-flagged", !!state.flagged);
    where.classList.toggle("pending", !!state.pending);
    const flags = where.querySelector(".flags") || where.querySelector("h1");
    if (flags) {
      let star = flags.querySelector(".flag.flagged");
      if (state.flagged && !star) {
        star = document.createElement("span");
        star.className = "flag flagged";
        star.title = T.flagged;
        star.replaceChildren(window.mailroomIcon("star", "Flagged"));
        flags.prepend(star);
      } else if (!state.flagged && star) star.remove();
      let dot = flags.querySelector(".flag.unread");
      if (!state.seen && !dot) {
        dot = document.createElement("span");
        dot.className = "flag unread";
        dot.title = T.unread;
        dot.replaceChildren(window.mailroomIcon("circle", "Unread"));
        (star ? star.after(dot) : flags.prepend(dot));
      } else if (state.seen && dot) dot.remove();
    }
    if (where === article && bar) {
      bar.querySelector('[data-act="read"]').hidden = !!state.seen;
      bar.querySelector('[data-act="unread"]').hidden = !state.seen;
      bar.querySelector('[data-act="flag"]').hidden = !!state.flagged;
      bar.querySelector('[data-act="unflag"]').hidden = !state.flagged;
    }
  }

  async function act(action, ids) {
    if (!bar || !M) return;
    if (!ids.length) {
      say(T.select_first, "error");
      return;
    }
    const payload = { ids: ids, action: action };
    if (action === "move") payload.folder = Number(document.getElementById("move-target").value);
    let answer;
    try {
      const response = await fetch(bar.dataset.url, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf ? csrf.content : "" },
        body: JSON.stringify(payload),
      });
      answer = await response.json();
      if (!response.ok) {
        const fields = answer.fields ? Object.values(answer.fields).join(" ") : "";
        throw new Error(fields || answer.error || response.statusText);
      }
    } catch (err) {
      say(String(err.message || err), "error");
      return;
    }
    const moving = action === "move" || action === "trash";
    answer.messages.forEach((state) => {
      const row = rowOf(state.id);
      if (moving && row && Number(row.dataset.folder) !== state.folder_id) {
        if (current === row) move(1) || move(-1);
        row.remove();
      } else showState(state);
    });
    if (moving && article && answer.jobs.length) say(T.moving, "running");
    updateCount();
    answer.jobs.forEach((job) => follow(job, moving));
  }

  async function follow(job, moving) {
    let final;
    try {
      final = await M.pollJob(job.status_url, () => {});
    } catch (err) {
      say(String(err.message || err), "error");
      return;
    }
    const result = final.result || {};
    if (final.status === "finished" && result.ok) {
      (result.states || []).forEach((s) => showState({ ...s, pending: false }));
      if (moving && article) window.location.href = article.dataset.listUrl;
      return;
    }
    say((result.error || final.error || T.failed) + " " + T.put_back, "error");
    (result.states || []).forEach((s) => showState({ ...s, pending: false }));
    if (moving) setTimeout(() => window.location.reload(), 1500);
  }

  if (bar) {
    bar.addEventListener("click", (event) => {
      const button = event.target.closest("[data-act]");
      if (button) act(button.dataset.act, selectedIds());
    });
  }
  if (selectAll) {
    selectAll.addEventListener("change", () => {
      boxes().forEach((b) => (b.checked = selectAll.checked));
      updateCount();
    });
  }
  if (list) list.addEventListener("change", (event) => event.target.matches("input.select-message") && updateCount());

  // -- keyboard shortcuts ---------------------------------------------------------------------
  const help = document.getElementById("shortcuts-help");
  const helpButton = document.getElementById("shortcuts-button");
  if (helpButton && help) helpButton.addEventListener("click", () => help.showModal());

  function highlight(row) {
    if (current) current.classList.remove("current");
    current = row;
    if (!row) return;
    row.classList.add("current");
    const link = row.querySelector("a.open");
    if (link) link.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    const all = rows();
    if (!all.length) return false;
    const at = all.indexOf(current);
    const next = at < 0 ? all[step > 0 ? 0 : all.length - 1] : all[at + step];
    if (!next) return false;
    highlight(next);
    return true;
  }

  const DATA = { reply: "replyUrl", "reply-all": "replyAllUrl", forward: "forwardUrl" };
  function go(kind) {
    const link = article ? document.getElementById("action-" + kind) : null;
    const url = link ? link.href : current && current.dataset[DATA[kind]];
    if (url) window.location.href = url;
  }

  function isFlagged(ids) {
    if (article) return article.querySelector(".flag.flagged") !== null;
    return ids.every((id) => rowOf(id) && rowOf(id).querySelector(".flag.flagged"));
  }

  const keys = {
    j: () => move(1),
    k: () => move(-1),
    Enter: () => current && current.querySelector("a.open") && (window.location.href = current.querySelector("a.open").href),
    x: () => {
      if (!current) return;
      const box = current.querySelector("input.select-message");
      box.checked = !box.checked;
      updateCount();
    },
    r: () => go("reply"),
    a: () => go("reply-all"),
    f: () => go("forward"),
    e: () => act("trash", selectedIds()),
    "#": () => act("trash", selectedIds()),
    u: () => act("unread", selectedIds()),
    s: () => {
      const ids = selectedIds();
      act(isFlagged(ids) ? "unflag" : "flag", ids);
    },
    "?": () => help && !help.open && help.showModal(),
  };

  document.addEventListener("keydown", (event) => {
    if (!bar || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    if (help && help.open) return; // the dialog handles Esc itself
    const target = event.target;
    if (target.closest("input, textarea, select, [contenteditable]") && !target.matches("input.select-message, #select-all")) return;
    const handler = keys[event.key];
    if (!handler) return;
    // Enter opens the highlighted message; on a button or another link it keeps its own meaning.
    if (event.key === "Enter" && (!list || !current || (target.closest("a, button") && !current.contains(target)))) return;
    event.preventDefault();
    handler();
  });
  if (help) help.addEventListener("close", () => helpButton && helpButton.focus());
})();
