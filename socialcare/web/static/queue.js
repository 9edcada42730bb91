// The live queue (and the floor): rows are swapped in when the server says cases changed.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const holder = document.getElementById("queue-rows");
  if (!holder) return;
  let timer = null;
  let selected = -1;

  async function refresh() {
    timer = null;
    try {
      const wholePage = holder.dataset.reload === "page";
      const url = wholePage ? window.location.href : `/queue/rows${window.location.search}`;
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) return;
      const html = await response.text();
      if (wholePage) {
        const doc = new DOMParser().parseFromString(html, "text/html");
        const fresh = doc.getElementById("queue-rows");
        if (fresh) holder.innerHTML = fresh.innerHTML;
      } else {
        holder.innerHTML = html;  // rendered and escaped by the server's templates
      }
      sc.tickCountdowns();
      highlight();
    } catch (e) { /* the next change or the periodic refresh tries again */ }
  }

  function soon() { if (timer === null) timer = window.setTimeout(refresh, 100); }

  sc.onChanges(soon);
  window.setInterval(soon, 30000);

  function rows() { return Array.from(holder.querySelectorAll("tr[data-case]")); }
  function highlight() {
    rows().forEach((row, i) => row.classList.toggle("selected", i === selected));
  }

  const next = document.getElementById("next-case");
  if (next) next.addEventListener("click", () => sc.nextCase(next.dataset.team));

  document.addEventListener("keydown", (event) => {
    if (sc.typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
    const all = rows();
    if (event.key === "n" && next) { event.preventDefault(); sc.nextCase(next.dataset.team); }
    else if (event.key === "j") { selected = Math.min(all.length - 1, selected + 1); highlight(); }
    else if (event.key === "k") { selected = Math.max(0, selected - 1); highlight(); }
    else if (event.key === "Enter" && all[selected]) {
      window.location.href = `/cases/${all[selected].dataset.case}`;
    }
  });
});
