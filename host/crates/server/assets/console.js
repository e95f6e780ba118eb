// Junction console: small enhancements over pages that work without it.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Catalog search filters the cards as you type (the form still works
  // without this, on the server).
  for (const input of document.querySelectorAll("input[data-filter]")) {
    const cards = document.querySelectorAll(input.dataset.filter);
    input.addEventListener("input", () => {
      const needle = input.value.trim().toLowerCase();
      for (const card of cards) {
        card.hidden = needle !== "" && !card.dataset.search.includes(needle);
      }
      for (const group of document.querySelectorAll("[data-group]")) {
        group.hidden = group.querySelectorAll(input.dataset.filter + ":not([hidden])").length === 0;
      }
    });
  }

  // Filters and pickers apply as soon as they change.
  for (const select of document.querySelectorAll("select[data-submit-on-change]")) {
    select.addEventListener("change", () => select.form.submit());
  }

  // The custom-service form shows the settings of the chosen auth type.
  for (const select of document.querySelectorAll("select[data-toggles=auth]")) {
    const show = () => {
      for (const set of document.querySelectorAll("fieldset[data-auth]")) {
        const kinds = set.dataset.auth.split(" ");
        set.hidden = !kinds.includes(select.value);
        for (const field of set.querySelectorAll("input, select, textarea")) {
          field.disabled = set.hidden;
        }
      }
    };
    select.addEventListener("change", show);
    show();
  }
});

// A live row arriving replaces the "nothing yet" note.
document.addEventListener("htmx:afterSwap", (event) => {
  if (event.target.id === "execution-rows") {
    const empty = document.getElementById("no-executions");
    if (empty) empty.remove();
  }
});

// The "live" mark says whether new executions are streaming in.
function liveMark(text, on) {
  const mark = document.getElementById("live");
  if (mark) {
    mark.textContent = text;
    mark.classList.toggle("on", on);
  }
}
document.addEventListener("htmx:sseOpen", (event) => {
  event.target.dataset.live = "open";
  liveMark("live", true);
});
document.addEventListener("htmx:sseError", (event) => {
  delete event.target.dataset.live;
  liveMark("reconnecting…", false);
});
