// Live signature preview: posts the form's fields (JSON) to data-preview-url and shows the answer.
(function () {
  function init(form) {
    const url = form.dataset.previewUrl;
    const fields = (form.dataset.previewFields || "").split(",").filter(Boolean);
    const csrf = document.querySelector('meta[name="csrf-token"]');
    let timer = null;
    let seq = 0;
    async function refresh() {
      const body = {};
      for (const name of fields) {
        const el = form.elements[name];
        if (el) body[name] = el.value;
      }
      const mine = ++seq;
      const response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf ? csrf.content : "" },
        body: JSON.stringify(body),
        credentials: "same-origin",
      });
      if (mine !== seq) return; // a newer request has been sent meanwhile
      const data = await response.json();
      const errors = document.getElementById("preview-errors");
      errors.replaceChildren();
      const problems = Object.assign({}, data.errors || {}, data.fields || {});
      for (const [field, message] of Object.entries(problems)) {
        const li = document.createElement("li");
        li.className = "error";
        li.dataset.field = field;
        li.textContent = message;
        errors.appendChild(li);
      }
      if (response.ok && Object.keys(problems).length === 0) {
        document.getElementById("preview-text").textContent = data.text || "";
        showHtml(data.html || "");
        document.getElementById("preview-address").textContent = data.address || "";
      }
      form.dataset.previewState = "done-" + mine;
    }
    form.addEventListener("input", () => {
      clearTimeout(timer);
      form.dataset.previewState = "pending";
      timer = setTimeout(refresh, 250);
    });
  }
  // The HTML goes to its own document (profile.signature_frame, a policy without script) in the
  // sandboxed frame: a srcdoc frame would inherit this page's policy, which refuses style attributes.
  function showHtml(html) {
    const frameForm = document.getElementById("preview-frame-form");
    if (!frameForm) return;
    frameForm.elements.html.value = html;
    frameForm.submit();
  }
  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("form[data-preview-url]").forEach(init);
    const frameForm = document.getElementById("preview-frame-form");
    if (frameForm) showHtml(frameForm.elements.html.value);
  });
})();
