// socialcare: what every page's script shares. No inline scripts anywhere (the content
// security policy forbids them); every change goes through the JSON API with the CSRF token.
"use strict";

const sc = (() => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";

  async function api(method, url, body) {
    const init = { method, headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
                   credentials: "same-origin" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    if (response.status === 204) return null;
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      let detail = data && data.detail;
      if (Array.isArray(detail)) detail = detail.map((d) => d.msg).join("; ");
      throw new Error(detail || `${response.status} ${response.statusText}`);
    }
    return data;
  }

  // A message may quote a handle or a team name: its control and format characters are shown
  // as marks, as the server's pages show them, never acting unseen.
  const INVISIBLE = /[\p{Cc}\p{Cf}]/u;
  function showInert(box, text) {
    box.textContent = "";
    let plain = "";
    for (const ch of String(text)) {
      if (ch === "\n" || ch === "\t" || !INVISIBLE.test(ch)) { plain += ch; continue; }
      box.append(plain);
      plain = "";
      const code = `U+${ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
      const mark = document.createElement("span");
      mark.className = "ctl";
      mark.title = code;
      mark.textContent = `[${code}]`;
      box.append(mark);
    }
    box.append(plain);
  }

  function showError(message) {
    const box = document.querySelector("[role=alert].error");
    if (!box) { window.alert(String(message).replace(/[\p{Cc}\p{Cf}]/gu, (ch) => `[U+${ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}]`)); return; }
    showInert(box, message || "");
    box.hidden = !message;
  }

  function duration(seconds) {
    // As the server's short_duration (socialcare/metrics/digest_format.py) writes it.
    const whole = Math.floor(Math.abs(seconds));
    if (whole < 60) return `${whole}s`;
    const minutes = Math.floor(whole / 60);
    if (minutes < 60) return `${minutes}m`;
    const hours = Math.floor(minutes / 60);
    if (hours < 24) return `${hours}h ${String(minutes % 60).padStart(2, "0")}m`;
    return `${Math.floor(hours / 24)}d ${hours % 24}h`;
  }

  function tickCountdowns() {
    const now = Date.now();
    for (const el of document.querySelectorAll("[data-due]")) {
      const left = (Date.parse(el.dataset.due) - now) / 1000;
      const state = left >= 0 ? `due in ${duration(left)}` : `overdue by ${duration(-left)}`;
      el.textContent = (el.dataset.prefix || "") + state;
      el.classList.toggle("late", left < 0);
    }
  }

  function formBody(form) {
    const body = {};
    for (const [name, value] of new FormData(form).entries()) {
      if (name === "teams" || name === "handles") {
        body[name] = String(value).split(",").map((s) => s.trim()).filter(Boolean);
      }
      else body[name] = value === "" ? null : value;
    }
    return body;
  }

  function wireGenericForms() {
    for (const form of document.querySelectorAll("form[data-api]:not([data-custom])")) {
      if (form.closest("#case")) continue;  // the case page wires its own
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        try {
          const body = formBody(form);
          // {field} in the address is filled from the form (and leaves the body).
          const url = form.dataset.api.replace(/\{(\w+)\}/g, (_, key) => {
            const value = encodeURIComponent(body[key] || "");
            delete body[key];
            return value;
          });
          const data = await api(form.dataset.method || "POST", url, body);
          const field = form.dataset.show;
          const shown = document.getElementById("shown");
          if (field && shown && data && data[field]) {
            shown.textContent = `Copy it now, it is shown only once: ${data[field]}`;
            shown.hidden = false;
          } else {
            window.location.reload();
          }
        } catch (e) { showError(e.message); }
      });
    }
    for (const button of document.querySelectorAll("button[data-delete], button[data-post]")) {
      button.addEventListener("click", async () => {
        try {
          if (button.dataset.delete) await api("DELETE", button.dataset.delete);
          else await api("POST", button.dataset.post);
          window.location.reload();
        } catch (e) { showError(e.message); }
      });
    }
  }

  function typing(event) {
    const t = event.target;
    return t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName));
  }

  function onChanges(callback) {
    const state = document.getElementById("live-state");
    const source = new EventSource("/api/stream");
    source.addEventListener("ready", () => {
      if (state) state.classList.add("on");
      // Changes made before the stream (re)connected were never sent to it: catch up now.
      callback({ cases: [], kinds: [], missed: true });
    });
    source.addEventListener("change", (event) => callback(JSON.parse(event.data)));
    source.addEventListener("error", () => state && state.classList.remove("on"));
    window.addEventListener("pagehide", () => source.close());
    return source;
  }

  async function nextCase(team) {
    try {
      const c = await api("POST", "/api/cases/next", { team: team || null });
      if (c) window.location.href = `/cases/${c.id}`;
      else showError("Nothing waiting in the queue.");
    } catch (e) { showError(e.message); }
  }

  document.addEventListener("DOMContentLoaded", () => {
    wireGenericForms();
    tickCountdowns();
    window.setInterval(tickCountdowns, 1000);
  });

  return { api, showError, typing, onChanges, nextCase, tickCountdowns, formBody, duration };
})();
