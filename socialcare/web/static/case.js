// Working a case: claim, reply (with the platform's limit), canned replies, notes, escalate,
// close, retry a failed reply; presence and the claim's lease kept alive while the agent works.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("case");
  if (!root) return;
  const id = root.dataset.case;
  const limit = Number(root.dataset.limit);
  const base = `/api/cases/${id}`;
  let lastActivity = Date.now();

  for (const kind of ["keydown", "mousemove", "mousedown", "scroll", "touchstart"]) {
    document.addEventListener(kind, () => { lastActivity = Date.now(); }, { passive: true });
  }

  async function act(method, url, body, then) {
    try {
      const data = await sc.api(method, url, body);
      sc.showError("");
      if (then) then(data); else window.location.reload();
    } catch (e) { sc.showError(e.message); }
  }

  async function beat() {
    const active = Date.now() - lastActivity < 60000 && document.visibilityState === "visible";
    try { await sc.api("POST", `${base}/heartbeat`, { active }); } catch (e) { /* next beat */ }
  }
  beat();
  window.setInterval(beat, 15000);

  async function refreshParts() {
    const response = await fetch(window.location.href, { credentials: "same-origin" });
    if (!response.ok) return;
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = doc.getElementById("case");
    if (fresh && fresh.dataset.holds !== root.dataset.holds) { window.location.reload(); return; }
    for (const part of ["case-head", "thread", "replies", "notes", "earlier", "history"]) {
      const now = document.getElementById(part);
      const next = doc.getElementById(part);
      if (now && next) now.innerHTML = next.innerHTML;  // escaped by the server's templates
    }
    wireButtons();
    sc.tickCountdowns();
  }

  sc.onChanges((change) => {
    if (change.missed || change.cases.map(String).includes(id)) refreshParts();
  });

  function wireButtons() {
    for (const button of root.querySelectorAll("[data-act]")) {
      button.onclick = () => {
        const what = button.dataset.act;
        if (what === "next") sc.nextCase("");
        else act("POST", `${base}/${what}`);
      };
    }
    for (const button of root.querySelectorAll("[data-retry]")) {
      button.onclick = () => {
        button.disabled = true;  // one click, one retry (a second one would only be refused)
        act("POST", `/api/replies/${button.dataset.retry}/retry`, undefined, refreshParts);
      };
    }
  }
  wireButtons();

  const text = document.getElementById("reply-text");
  const count = document.getElementById("reply-count");
  const send = document.getElementById("reply-send");
  function recount() {
    const n = scLengths.length(root.dataset.platform, text.value);
    count.textContent = String(n);
    count.classList.toggle("late", n > limit);
    send.disabled = n === 0 || n > limit;
  }
  if (text) {
    text.addEventListener("input", recount);
    recount();
    document.getElementById("reply-form").addEventListener("submit", (event) => {
      event.preventDefault();
      send.disabled = true;  // one click, one reply: the server queues it once
      act("POST", `${base}/replies`, { text: text.value }, () => {
        text.value = "";
        recount();
        refreshParts();
      });
    });
    const canned = document.getElementById("canned");
    if (canned) {
      canned.addEventListener("change", async () => {
        if (!canned.value) return;
        try {
          const items = await sc.api("GET", `/api/canned?case_id=${id}`);
          const item = items.find((c) => String(c.id) === canned.value);
          if (item) { text.value = item.filled || item.text; recount(); text.focus(); }
        } catch (e) { sc.showError(e.message); }
      });
    }
  }

  const note = document.getElementById("note-form");
  if (note) {
    note.addEventListener("submit", (event) => {
      event.preventDefault();
      const input = note.querySelector("input[name=text]");
      act("POST", `${base}/notes`, { text: input.value }, () => { input.value = ""; refreshParts(); });
    });
  }
  const escalate = document.getElementById("escalate-form");
  if (escalate) {
    escalate.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = sc.formBody(escalate);
      const target = String(body.target || "lead");
      const payload = target === "lead"
        ? { to_lead: true, reason: body.reason }
        : { team: target.slice(5), reason: body.reason };
      act("POST", `${base}/escalate`, payload);
    });
  }
  const close = document.getElementById("close-form");
  if (close) {
    close.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = sc.formBody(close);
      act("POST", `${base}/${body.status}`, { reason: body.reason }, () => {
        window.location.href = "/";
      });
    });
  }

  document.addEventListener("keydown", (event) => {
    if (sc.typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
    const focus = (sel) => { const el = document.querySelector(sel); if (el) { event.preventDefault(); el.focus(); } };
    if (event.key === "c") { const b = root.querySelector("[data-act=claim]"); if (b) b.click(); }
    else if (event.key === "r") focus("#reply-text");
    else if (event.key === "e") focus("#escalate-form input[name=reason]");
    else if (event.key === "x") focus("#close-form input[name=reason]");
    else if (event.key === "n") sc.nextCase("");
    else if (event.key === "q") window.location.href = "/";
  });
});
