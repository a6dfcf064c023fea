// pagewatch serve: small progressive enhancements. The pages work without this file.
// It only ever sets textContent and reads the app's own JSON: no markup is built here.
"use strict";

(function () {
  // Each UTC moment also in the viewer's own time zone.
  const local = new Intl.DateTimeFormat(undefined, {
    dateStyle: "medium", timeStyle: "long",
  });
  for (const el of document.querySelectorAll("time.moment[datetime]")) {
    const at = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(at.getTime())) continue;
    const span = document.createElement("span");
    span.className = "local";
    span.textContent = "(your time: " + local.format(at) + ")";
    el.after(span);
  }

  // The inbox: "select all", and a reload when alerts change while `pagewatch run` writes.
  const all = document.querySelector("input[data-select-all]");
  if (all) {
    all.addEventListener("change", () => {
      for (const box of document.querySelectorAll("input[name=id]")) box.checked = all.checked;
    });
  }
  const inbox = document.getElementById("inbox");
  if (!inbox) return;
  const stampUrl = inbox.dataset.stampUrl;
  const every = Math.max(250, Number(inbox.dataset.pollMs) || 5000);
  let stamp = inbox.dataset.stamp;

  function busy() {
    // Never throw away what the user is doing: a selection, a note being typed.
    if (document.querySelector("input[name=id]:checked")) return true;
    const note = document.querySelector("input[name=note]");
    if (note && note.value) return true;
    const active = document.activeElement;
    return !!active && ["INPUT", "SELECT", "TEXTAREA"].includes(active.tagName);
  }

  async function poll() {
    try {
      const answer = await fetch(stampUrl, { cache: "no-store", credentials: "same-origin" });
      if (answer.ok) {
        const now = (await answer.json()).stamp;
        if (now !== stamp) {
          if (busy()) {
            document.getElementById("refresh-banner").hidden = false;
          } else {
            window.location.reload();
            return;
          }
        }
      }
    } catch (err) {
      // the server is away (restarting?): try again later
    }
    window.setTimeout(poll, every);
  }
  window.setTimeout(poll, every);
})();
