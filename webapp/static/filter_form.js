/* Filter form: add and remove condition/action rows; show the header field and folder only when used. */
(function () {
  "use strict";
  function wire(row) {
    const remove = row.querySelector(".remove-row");
    if (remove) remove.addEventListener("click", () => row.remove());
    const field = row.querySelector("select[name=cond_field]");
    const header = row.querySelector("input[name=cond_header]");
    if (field && header) {
      const sync = () => { header.hidden = field.value !== "header"; };
      field.addEventListener("change", sync); sync();
    }
    const type = row.querySelector("select[name=act_type]");
    const folder = row.querySelector("select[name=act_folder]");
    if (type && folder) {
      const sync = () => { folder.hidden = type.value !== "move"; };
      type.addEventListener("change", sync); sync();
    }
  }
  document.querySelectorAll(".cond-row, .act-row").forEach(wire);
  function adder(buttonId, templateId, listId) {
    document.getElementById(buttonId).addEventListener("click", () => {
      const node = document.getElementById(templateId).content.firstElementChild.cloneNode(true);
      document.getElementById(listId).appendChild(node);
      wire(node);
    });
  }
  adder("add-condition", "cond-template", "conditions");
  adder("add-action", "act-template", "actions");
})();
