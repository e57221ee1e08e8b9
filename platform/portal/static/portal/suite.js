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

// What is typed into a form on a poor connection is kept on the device until the server has taken it: a
// dropped connection, a refusal or a closed tab loses nothing. Mark the form <form data-draft="NAME">,
// NAME unique per user and purpose (and per state, where the form's meaning changes with it). Its fields
// are saved as they are typed (not files, passwords or the CSRF token) and put back, with a note and a
// Discard button, when the form is shown again. A hidden `submission` key travels with the draft, so a
// draft sent again lands on what its first send filed. The server names taken keys on the next page
// (<body data-sent>, portal/drafts.py): their drafts are dropped. A key named spent (<body data-spent>:
// it filed something else) is dropped from its draft, which then takes the page's fresh key.
// With no connection at all, the form is not sent: the note says it is kept, to send when back online.
Suite.drafts = {
  prefix: "suite-draft:",
  maxAgeMs: 3 * 24 * 3600 * 1000,
  store() {
    try {
      return window.localStorage;
    } catch (blocked) {
      return null;
    }
  },
  fields(form) {
    return [...form.elements].filter((el) => el.name && el.name !== "csrfmiddlewaretoken" && !["file", "password", "submit", "button", "reset"].includes(el.type) && (el.type !== "hidden" || el.name === "submission" || "now" in el.dataset));
  },
  read(key) {
    try {
      return JSON.parse(Suite.drafts.store().getItem(key)) || null;
    } catch (unreadable) {
      return null;
    }
  },
  values(form) {
    const values = {};
    for (const el of Suite.drafts.fields(form)) {
      const list = (values[el.name] = values[el.name] || []);
      if (el.type === "checkbox" || el.type === "radio") {
        if (el.checked) list.push(el.value);
      } else if (el.type === "select-multiple") {
        list.push(...[...el.selectedOptions].map((option) => option.value));
      } else {
        list.push(el.value);
      }
    }
    return values;
  },
  apply(form, values) {
    const taken = {};
    for (const el of Suite.drafts.fields(form)) {
      const list = values[el.name];
      if (!list) continue;
      if (el.type === "checkbox" || el.type === "radio") {
        el.checked = list.includes(el.value);
      } else if (el.type === "select-multiple") {
        [...el.options].forEach((option) => { option.selected = list.includes(option.value); });
      } else {
        const index = (taken[el.name] = (taken[el.name] || 0) + 1) - 1;
        if (index < list.length) el.value = list[index];
      }
    }
  },
  save(form) {
    const store = Suite.drafts.store();
    if (!store) return;
    try {
      store.setItem(Suite.drafts.prefix + form.dataset.draft, JSON.stringify({ savedAt: Date.now(), values: Suite.drafts.values(form) }));
    } catch (full) {
      console.warn("draft not saved", full);
    }
  },
  // The server took the form sent with this submission key (a send the outbox made): drop its draft.
  forget(submission) {
    const store = Suite.drafts.store();
    if (!store) return;
    for (const key of Object.keys(store).filter((k) => k.startsWith(Suite.drafts.prefix))) {
      const draft = Suite.drafts.read(key);
      if (draft && draft.values && (draft.values.submission || [])[0] === submission) store.removeItem(key);
    }
  },
  // Drop expired drafts and those the server has taken; strip spent keys.
  tidy() {
    const store = Suite.drafts.store();
    if (!store) return;
    const words = (name) => (document.body.dataset[name] || "").split(" ").filter(Boolean);
    const sent = words("sent");
    const spent = words("spent");
    for (const key of Object.keys(store).filter((k) => k.startsWith(Suite.drafts.prefix))) {
      const draft = Suite.drafts.read(key);
      const submission = draft && draft.values && (draft.values.submission || [])[0];
      if (!draft || Date.now() - draft.savedAt > Suite.drafts.maxAgeMs || (submission && sent.includes(submission))) {
        store.removeItem(key);
      } else if (submission && spent.includes(submission)) {
        delete draft.values.submission;
        store.setItem(key, JSON.stringify(draft));
      }
    }
  },
  note(form, text, withDiscard) {
    let note = form.querySelector(".draft-note");
    if (!note) {
      note = document.createElement("p");
      note.className = "draft-note";
      note.setAttribute("role", "status");
      note.dataset.testid = "draft-note";
      form.prepend(note);
    }
    note.textContent = text + " ";
    if (withDiscard) {
      const discard = document.createElement("button");
      discard.type = "button";
      discard.className = "link";
      discard.dataset.testid = "draft-discard";
      discard.textContent = "Discard";
      discard.addEventListener("click", () => {
        Suite.drafts.store()?.removeItem(Suite.drafts.prefix + form.dataset.draft);
        const fresh = form.dataset.freshSubmission;
        form.reset();
        if (fresh && form.elements.submission) form.elements.submission.value = fresh;
        note.remove();
      });
      note.append(discard);
    }
  },
  restore(form) {
    const draft = Suite.drafts.read(Suite.drafts.prefix + form.dataset.draft);
    if (form.elements.submission) form.dataset.freshSubmission = form.elements.submission.value;
    if (!draft || !draft.values) return;
    const typed = (values) => JSON.stringify({ ...values, submission: undefined });
    if (typed(draft.values) === typed(Suite.drafts.values(form))) return;
    Suite.drafts.apply(form, draft.values);
    Suite.drafts.note(form, "Restored what you typed on this device: it has not been filed yet, or its answer did not arrive.", true);
  },
};
document.addEventListener("DOMContentLoaded", () => {
  Suite.drafts.tidy();
  document.querySelectorAll("form[data-draft]").forEach((form) => {
    Suite.drafts.restore(form);
    const save = () => Suite.drafts.save(form);
    form.addEventListener("input", save);
    form.addEventListener("change", save);
  });
});
// Pages kept for a phone with no connection: a section that offers it names its service worker in
// <meta name="suite-offline-worker" content="URL"> (scoped to the worker's folder). A page shown from
// that copy while offline says so, with when it was saved; signing out clears the copies
// (Clear-Site-Data on the logout response).
Suite.offline = {
  register() {
    const worker = document.querySelector('meta[name="suite-offline-worker"]');
    if (!worker || !("serviceWorker" in navigator) || !window.isSecureContext) return;
    navigator.serviceWorker.register(worker.content).catch((error) => console.warn("pages will not be kept offline:", error));
  },
  note() {
    const main = document.querySelector("main") || document.body;
    let note = document.querySelector('[data-testid="offline-note"]');
    if (navigator.onLine !== false) {
      if (note) note.textContent = "The connection is back: reload for the current page.";
      return;
    }
    const saved = new Date(document.body.dataset.renderedAt || Date.now());
    if (!note) {
      note = document.createElement("p");
      note.className = "notice";
      note.dataset.testid = "offline-note";
      note.setAttribute("role", "status");
      main.prepend(note);
    }
    const drafts = document.querySelector("form[data-draft]") ? " What you type in its forms is kept on this device until it can be sent." : "";
    note.textContent = `No connection: this page is as it was at ${saved.toLocaleString()}.${drafts}`;
  },
};
document.addEventListener("DOMContentLoaded", () => {
  Suite.offline.register();
  Suite.offline.note();
});
window.addEventListener("offline", () => Suite.offline.note());
window.addEventListener("online", () => Suite.offline.note());
// Forms sent with no connection, kept on the phone by the section's worker and sent by it as soon as
// the connection is back (a form names itself for that in a hidden `outbox` field). A page shows
// what still waits and, once, what the server answered to each send since.
Suite.outbox = {
  waiting: 0,
  ask(what) {
    const worker = "serviceWorker" in navigator && navigator.serviceWorker.controller;
    if (worker) worker.postMessage({ outbox: what });
  },
  box() {
    let box = document.querySelector('[data-testid="outbox"]');
    if (!box) {
      box = document.createElement("section");
      box.className = "outbox";
      box.dataset.testid = "outbox";
      box.setAttribute("role", "status");
      (document.querySelector("main") || document.body).prepend(box);
    }
    return box;
  },
  time: (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
  retryMs: 10000,
  retry: null,
  show(report) {
    Suite.outbox.waiting = report.waiting.length;
    // While forms wait, try again every few seconds: "online" is not told reliably (a phone on a
    // network that lets nothing through says it is online), and a failed try costs nothing.
    clearTimeout(Suite.outbox.retry);
    if (report.waiting.length) Suite.outbox.retry = setTimeout(() => Suite.outbox.ask("flush"), Suite.outbox.retryMs);
    const existing = document.querySelector('[data-testid="outbox"]');
    if (!report.waiting.length && !report.results.length) {
      existing?.querySelector('[data-testid="outbox-waiting"]')?.remove();
      return;
    }
    const box = Suite.outbox.box();
    box.querySelector('[data-testid="outbox-waiting"]')?.remove();
    if (report.results.length) {
      let list = box.querySelector('[data-testid="outbox-results"]');
      if (!list) {
        const title = document.createElement("p");
        title.textContent = "Sent from this phone when the connection came back:";
        list = document.createElement("ul");
        list.dataset.testid = "outbox-results";
        box.append(title, list);
      }
      for (const result of report.results) {
        const item = document.createElement("li");
        item.dataset.testid = "outbox-result";
        if (result.refused) item.className = "error";
        const link = document.createElement("a");
        link.href = result.url;
        link.textContent = result.label;
        item.append(link, `${result.refused ? " — not taken" : ""} (kept at ${Suite.outbox.time(result.savedAt)}): ${result.text || "sent."}`);
        list.append(item);
        if (!result.refused && result.submission) Suite.drafts.forget(result.submission);
      }
    }
    if (report.waiting.length) {
      const waiting = document.createElement("div");
      waiting.dataset.testid = "outbox-waiting";
      const count = report.waiting.length;
      const head = document.createElement("p");
      head.textContent = `${count === 1 ? "One form is" : `${count} forms are`} waiting on this phone; ${count === 1 ? "it goes" : "they go"} by ${count === 1 ? "itself" : "themselves"} when the connection is back:`;
      const list = document.createElement("ul");
      for (const send of report.waiting) {
        const item = document.createElement("li");
        item.textContent = `${send.label} (kept at ${Suite.outbox.time(send.savedAt)})`;
        list.append(item);
      }
      waiting.append(head, list);
      box.prepend(waiting);
    }
  },
};
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.addEventListener("message", (event) => {
    const said = event.data && event.data.outbox;
    if (said === "report") Suite.outbox.show(event.data);
    else if (said === "changed") Suite.outbox.ask("report");
  });
}
document.addEventListener("DOMContentLoaded", () => Suite.outbox.ask(navigator.onLine === false ? "report" : "flush"));
window.addEventListener("online", () => Suite.outbox.ask("flush"));
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && Suite.outbox.waiting) Suite.outbox.ask("flush");
});
// Signing out clears the phone's storage (Clear-Site-Data): forms still waiting would go with it.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const count = Suite.outbox.waiting;
  if (!(form instanceof HTMLFormElement) || !("logout" in form.dataset) || !count) return;
  const them = count === 1 ? "it" : "them";
  if (!window.confirm(`${count === 1 ? "One form has" : `${count} forms have`} not left this phone yet (no connection since). Signing out deletes ${them}. Sign out anyway?`)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
});
// Signing out on a shared phone leaves nothing typed behind for the next person.
document.addEventListener("submit", (event) => {
  if (!(event.target instanceof HTMLFormElement) || !("logout" in event.target.dataset)) return;
  const store = Suite.drafts.store();
  if (store) Object.keys(store).filter((key) => key.startsWith(Suite.drafts.prefix) || key === Suite.submissions.key).forEach((key) => store.removeItem(key));
});
// When it was sent: a hidden <input data-now> takes the time of the first send (kept with the draft, so a
// form filled in with no connection and sent later keeps the time it was filled in; a new record made
// from the draft, below, takes its own).
// A page shown from the copy kept on the phone (<body data-kept-copy>, set by the section's worker)
// carries the submission key it was saved with, the same each time it is opened: a form filled in on it
// with other content than a send this phone made with that key (the next figure typed on the same copy
// an hour later, still with no connection) takes a fresh key, as it is a new record. The same content
// keeps its key, so a repeat still lands once; on a page from the server, keys are left as they are (a
// draft edited after its answer was lost is refused by the server, naming what the key filed).
Suite.submissions = {
  key: "suite-submissions",
  kept: 200,
  fresh() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes); // crypto.randomUUID needs HTTPS; a plant's intranet may be plain HTTP
    return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  },
  digest(text) { // FNV-1a: what was typed is not kept in clear beside the key
    let hash = 0x811c9dc5;
    for (let i = 0; i < text.length; i += 1) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
    return hash.toString(16);
  },
  check(form) {
    const field = form.elements.submission;
    const store = Suite.drafts.store();
    if (!field || !field.value || !store) return false;
    const values = Suite.drafts.values(form);
    for (const name of Object.keys(values)) {
      const el = form.elements[name];
      if (name === "submission" || (el && el.dataset && "now" in el.dataset)) delete values[name];
    }
    const content = Suite.submissions.digest(`${form.getAttribute("action") || location.pathname}|${JSON.stringify(values)}`);
    let sent = [];
    try {
      sent = JSON.parse(store.getItem(Suite.submissions.key)) || [];
    } catch (unreadable) {
      sent = [];
    }
    const before = sent.find(([key]) => key === field.value);
    if (before && before[1] === content) return false;
    const renewed = Boolean(before && "keptCopy" in document.body.dataset);
    if (renewed) field.value = Suite.submissions.fresh();
    try {
      store.setItem(Suite.submissions.key, JSON.stringify([...sent.filter(([key]) => key !== field.value), [field.value, content]].slice(-Suite.submissions.kept)));
    } catch (full) {
      console.warn("submission key not remembered", full);
    }
    return renewed;
  },
};
// A phone's clock may be off: the times it stamps (data-now) are put right by its offset from the server's
// clock, measured on each page that came from the server (<body data-rendered-at>, stamped as it left) and
// remembered for pages shown from the phone's copy, which cannot measure it.
Suite.clock = {
  key: "suite-clock-offset",
  measure() {
    if ("keptCopy" in document.body.dataset) return;
    const rendered = Date.parse(document.body.dataset.renderedAt || "");
    if (!Number.isFinite(rendered)) return;
    // the page has just arrived (to within its transfer and parsing: well under the minutes that matter)
    try {
      window.localStorage.setItem(Suite.clock.key, String(Math.round(rendered - Date.now())));
    } catch (blocked) {
      // no storage: the phone's own clock is used
    }
  },
  now() {
    let offset = 0;
    try {
      offset = Number(window.localStorage.getItem(Suite.clock.key)) || 0;
    } catch (blocked) {
      offset = 0;
    }
    return new Date(Date.now() + offset);
  },
};
document.addEventListener("DOMContentLoaded", () => Suite.clock.measure());
// Registered before the draft handler below, so the draft keeps the time and the key that are sent.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  const stamp = (all) => form.querySelectorAll("input[data-now]").forEach((el) => { if (all || !el.value) el.value = Suite.clock.now().toISOString(); });
  stamp(false);
  if (form.dataset.draft && Suite.submissions.check(form)) stamp(true); // a new record: its own time
});
// Registered before the busy handler below, so an offline send is stopped before it says "busy".
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.draft) return;
  Suite.drafts.save(form);
  // a form the worker can keep goes to it: it is kept on the phone and sent when the connection is back
  const kept = form.elements.outbox && "serviceWorker" in navigator && navigator.serviceWorker.controller;
  if (navigator.onLine === false && !kept) {
    event.preventDefault();
    Suite.drafts.note(form, "No connection: nothing was sent. What you typed is kept on this device; send it again when you are back online.", false);
  }
});

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
