// Suite portal helpers: the project's own script, no external libraries.
"use strict";

window.Suite = {
  csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  },
  // What a person reads when a request fails: the server's own message when it gave one (a string,
  // a list, or per-field lists without the field names), else a sentence for the status, never a
  // bare "500 Internal Server Error".
  failureMessage(status, data) {
    const texts = (value) => (Array.isArray(value) ? value.flatMap(texts) : value && typeof value === "object" ? Object.values(value).flatMap(texts) : value ? [String(value)] : []);
    const given = texts((data && data.error && data.error.message) || (data && data.detail) || (status === 400 ? data : null));
    if (given.length) return given.join(" ");
    const byStatus = {
      401: "Your session has ended: log in again.",
      403: "You are not allowed to do this.",
      404: "This item no longer exists or is not visible to you.",
      413: "That is too large to send.",
      429: "Too many requests: wait a minute and try again.",
    };
    return byStatus[status] || (status >= 500 ? "Suite could not finish this request. Try again; if it keeps failing, tell your administrator." : `The request failed (${status}).`);
  },
  async fetchOrExplain(url, options) {
    try {
      return await fetch(url, options);
    } catch (failure) {
      throw new Error("Suite cannot be reached: check the connection and try again.");
    }
  },
  async getJSON(url) {
    const response = await Suite.fetchOrExplain(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(Suite.failureMessage(response.status, await response.json().catch(() => ({}))));
    return response.json();
  },
  async postJSON(url, body) {
    const response = await Suite.fetchOrExplain(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": Suite.csrfToken() },
      body: JSON.stringify(body || {}),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(Suite.failureMessage(response.status, data));
    return data;
  },
  // Poll url every intervalMs and call render(data) until render returns false.
  poll(url, intervalMs, render) {
    let stopped = false;
    const tick = async () => {
      if (stopped) return;
      try {
        if ((await render(await Suite.getJSON(url))) === false) return;
      } catch (error) {
        console.warn("poll failed", error);
      }
      setTimeout(tick, intervalMs);
    };
    tick();
    return () => { stopped = true; };
  },
};

// A form whose work takes a while (a SAR drafted by the model, a batch screened, an upload
// de-identified) says so once it is sent, and cannot be sent twice by an impatient second click
// (a second SAR draft, a second upload). Mark it <form data-busy="What is happening…">.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.busy || event.defaultPrevented) return;
  if (form.dataset.sent) {
    event.preventDefault();
    return;
  }
  form.dataset.sent = "true";
  let note = form.querySelector(".busy-note");
  if (!note) {
    note = document.createElement("p");
    note.className = "busy-note";
    note.setAttribute("role", "status");
    note.dataset.testid = "busy-note";
    form.append(note);
  }
  note.textContent = form.dataset.busy;
  // After the browser has read the form (a disabled button would drop out of what is sent).
  setTimeout(() => form.querySelectorAll("button").forEach((button) => { button.disabled = true; }), 0);
});
// Back to a page from the browser's cache: its forms can be sent again.
window.addEventListener("pageshow", (event) => {
  if (!event.persisted) return;
  document.querySelectorAll("form[data-sent]").forEach((form) => {
    delete form.dataset.sent;
    form.querySelectorAll("button").forEach((button) => { button.disabled = false; });
    form.querySelectorAll(".busy-note").forEach((note) => note.remove());
  });
});
