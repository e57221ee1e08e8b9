// The maintenance pages on a phone with no coverage (a basement, a cold store): each page opened
// while online is kept, for the signed-in engineer only, and shown again when the connection is gone,
// with a notice that it is the copy saved then (portal/suite.js shows it). The network is asked first,
// always: a page is never older than the connection forces it to be.
// A form that is safe to send twice (it names itself in an `outbox` field: its submission key, or a move
// that is made once, lands once) is kept on the phone when it cannot be sent, and sent, in order, as
// soon as the connection is back; what the server answered is shown on the next page (portal/suite.js,
// Suite.outbox). Any other form's draft stays on the phone until it is sent by hand (data-draft).
// Scope: /manufacturing/ (this script's folder). Signing out clears what was kept (Clear-Site-Data).
"use strict";

const USER = new URL(self.location).searchParams.get("user") || "anonymous";
const PREFIX = "suite-maintenance-";
const PAGES = `${PREFIX}pages-${USER}`;
const ASSETS = `${PREFIX}assets`;
const STATIC_URL = "{{ static_url|escapejs }}";
const LOGIN_PATH = "{{ login_path|escapejs }}";
const OUTBOX = "suite-outbox"; // IndexedDB: "sends" waiting (per engineer), "results" not yet shown
const OFFLINE_PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>No connection · Suite</title></head>
<body style="font-family: system-ui, sans-serif; margin: 1.5rem; line-height: 1.5">
<h1>No connection</h1>
<p data-testid="offline-page">This page was not opened on this phone while it had a connection, so there is no copy of it
here. Pages you opened before are still available: go back, or open one from its QR label.</p>
<p>What you typed in a form is kept on this phone until it is sent.</p>
</body></html>`;

// what every kept page needs to look and work as it did
const SHELL = [{% for url in shell %}"{{ url|escapejs }}"{% if not forloop.last %}, {% endif %}{% endfor %}];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(ASSETS)
      .then((cache) => cache.addAll(SHELL))
      .catch(() => {}) // kept as they are fetched instead
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  // another engineer's pages are never shown on this phone
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name.startsWith(`${PREFIX}pages-`) && name !== PAGES).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

async function pageFromNetworkOrKept(request) {
  let response;
  try {
    response = await fetch(request);
  } catch (offline) {
    // opening a cache creates it: only one that exists is read
    const kept = (await caches.has(PAGES)) ? await (await caches.open(PAGES)).match(request) : undefined;
    if (!kept) return new Response(OFFLINE_PAGE, { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } });
    // marked as the copy (portal/suite.js: its forms' submission keys were made when it was saved)
    const headers = new Headers(kept.headers);
    headers.delete("Content-Length");
    return new Response((await kept.text()).replace(/<body\b/, "<body data-kept-copy"), { status: kept.status, headers });
  }
  // only the page itself: not a redirect to the login page, not an error page
  const html = (response.headers.get("Content-Type") || "").startsWith("text/html");
  if (current() && response.ok && !response.redirected && html) {
    try {
      await (await caches.open(PAGES)).put(request, response.clone());
      // replaced meanwhile (the next engineer's worker deleted this cache): keep nothing after all
      if (!current()) await caches.delete(PAGES);
    } catch (full) {
      // the phone's storage is full: the page is shown, only not kept for later
    }
  }
  flush(); // the connection works: what waited on the phone goes now
  return response;
}

async function assetFromNetworkOrKept(request) {
  const cache = await caches.open(ASSETS);
  let response;
  try {
    response = await fetch(request);
  } catch (offline) {
    const kept = await cache.match(request);
    if (kept) return kept;
    throw offline;
  }
  if (response.ok) await cache.put(request, response.clone()).catch(() => {}); // storage full: not kept
  return response;
}

// --- the outbox: forms sent with no connection --------------------------------------------------
function outbox() {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(OUTBOX, 1);
    open.onupgradeneeded = () => {
      open.result.createObjectStore("sends", { keyPath: "id", autoIncrement: true });
      open.result.createObjectStore("results", { keyPath: "id", autoIncrement: true });
    };
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
}

async function inStore(name, mode, work) {
  const db = await outbox();
  try {
    return await new Promise((resolve, reject) => {
      const transaction = db.transaction(name, mode);
      const request = work(transaction.objectStore(name));
      transaction.oncomplete = () => resolve(request && request.result);
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error);
    });
  } finally {
    db.close();
  }
}

const everything = (name) => inStore(name, "readonly", (store) => store.getAll());
const mine = (rows) => rows.filter((row) => row.user === USER);

function page(title, body, status) {
  return new Response(
    `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>${title} · Suite</title></head>
<body style="font-family: system-ui, sans-serif; margin: 1.5rem; line-height: 1.5">${body}</body></html>`,
    { status, headers: { "Content-Type": "text/html; charset=utf-8" } },
  );
}

const escaped = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function unescaped(html) {
  const named = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: " " };
  return html
    .replace(/<[^>]*>/g, "")
    .replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, code) =>
      code[0] !== "#" ? named[code.toLowerCase()] ?? whole : String.fromCodePoint(code[1].toLowerCase() === "x" ? parseInt(code.slice(2), 16) : parseInt(code.slice(1), 10)),
    )
    .trim();
}

// What the server said about a send: the messages of the page it answered with (portal/base.html).
function said(html) {
  const list = /<ul class="messages">([\s\S]*?)<\/ul>/.exec(html);
  if (!list) return [];
  return [...list[1].matchAll(/<li class="([^"]*)">([\s\S]*?)<\/li>/g)].map((m) => ({ level: m[1], text: unescaped(m[2]) }));
}

async function keep(request, form) {
  const send = {
    user: USER,
    url: request.url,
    from: request.referrer,
    label: String(form.get("outbox")).slice(0, 200),
    submission: String(form.get("submission") || ""), // its draft on the phone goes once it is taken
    contentType: request.headers.get("Content-Type") || "",
    body: await request.blob(),
    savedAt: Date.now(),
  };
  await inStore("sends", "readwrite", (store) => store.add(send));
  try {
    await self.registration.sync.register(OUTBOX); // sent by the browser when the connection is back
  } catch (unsupported) {
    // sent at the next page opened with a connection, or when the page sees it is online again
  }
  const waiting = mine(await everything("sends")).length;
  const back = send.from ? `<p><a href="${escaped(send.from)}" data-testid="outbox-back">Back to the page</a></p>` : "";
  return page(
    "Kept on this phone",
    `<h1>Kept on this phone</h1>
<p data-testid="outbox-kept">No connection: <strong>${escaped(send.label)}</strong> is kept on this phone and will be sent
by itself as soon as the connection is back. You can go on working; ${waiting === 1 ? "it is the only send" : `${waiting} sends are`} waiting.</p>${back}`,
    202,
  );
}

let flushing = null;

// Send what waits, oldest first; stop at the first send the connection or the sign-in stops.
function flush() {
  flushing = flushing || sendWaiting().finally(() => { flushing = null; });
  return flushing;
}

async function sendWaiting() {
  if (!current()) return; // a worker already replaced sends nothing
  let sent = 0;
  for (const send of mine(await everything("sends")).sort((a, b) => a.id - b.id)) {
    let response;
    try {
      response = await fetch(send.url, {
        method: "POST",
        body: send.body,
        headers: send.contentType ? { "Content-Type": send.contentType } : {},
        credentials: "same-origin",
        redirect: "follow",
      });
    } catch (offline) {
      break;
    }
    if (response.status >= 500) break; // the server is not well: tried again later, kept meanwhile
    const landed = new URL(response.url || send.url);
    // The sign-in it was made under has ended (the login page), or another began since (Django renews
    // the form token at each sign-in: 403): it is not sent under any other sign-in than its own.
    const signedOut = response.status === 403 || (response.redirected && landed.pathname === LOGIN_PATH);
    const messages = response.ok && !signedOut ? said(await response.text()) : [];
    const refused = signedOut || !response.ok || messages.some((m) => m.level.includes("error"));
    let text = messages.map((m) => m.text).join(" ");
    if (signedOut) text = "Not sent: the sign-in it was made under had ended. Open the page and send it again.";
    else if (!response.ok) text = `Not taken (${response.status}): open the page and send it again.`;
    await inStore("sends", "readwrite", (store) => store.delete(send.id));
    await inStore("results", "readwrite", (store) =>
      store.add({
        user: USER,
        label: send.label,
        submission: send.submission,
        url: refused ? send.from || send.url : landed.href,
        refused,
        text,
        savedAt: send.savedAt,
        sentAt: Date.now(),
      }),
    );
    sent += 1;
  }
  if (sent) (await self.clients.matchAll({ type: "window" })).forEach((client) => client.postMessage({ outbox: "changed" }));
}

async function sendOrKeep(request) {
  const kept = request.clone();
  try {
    const response = await fetch(request);
    flush(); // the connection works: what waited goes too
    return response;
  } catch (offline) {
    let form = null;
    try {
      form = await kept.clone().formData();
    } catch (unreadable) {
      form = null;
    }
    if (form && form.get("outbox") && current()) {
      try {
        return await keep(kept, form);
      } catch (full) {
        // the phone's storage is full (a large photo): say so, and that nothing was sent or kept
        const room = full && full.name === "QuotaExceededError" ? "has no room left to keep it" : "could not keep it";
        return page(
          "Not sent",
          `<h1>Not sent</h1><p data-testid="outbox-not-kept">No connection, and this phone ${room}: nothing was sent,
and <strong>${escaped(String(form.get("outbox")).slice(0, 200))}</strong> is not kept to send later. Send it again when
you are back online, or free some space on the phone (a large photo needs room until it is sent).</p>`,
          503,
        );
      }
    }
    return page(
      "Not sent",
      `<h1>Not sent</h1><p data-testid="outbox-not-sent">No connection: nothing was sent. What you typed is kept on this phone;
send it again when you are back online.</p>`,
      503,
    );
  }
}

// this engineer's results, read and deleted in one transaction: each is told to one page only
async function takeResults() {
  const taken = [];
  await inStore("results", "readwrite", (store) => {
    const cursor = store.openCursor();
    cursor.onsuccess = () => {
      const row = cursor.result;
      if (!row) return;
      if (row.value.user === USER) {
        taken.push(row.value);
        row.delete();
      }
      row.continue();
    };
    return null;
  });
  return taken;
}

// what a page of this engineer's is told: what waits, and what was sent since it last asked (told once)
async function report() {
  const waiting = mine(await everything("sends")).map(({ label, savedAt }) => ({ label, savedAt }));
  const results = await takeResults();
  return { outbox: "report", waiting, results: results.map(({ id, user, ...shown }) => shown) };
}

self.addEventListener("sync", (event) => {
  if (event.tag === OUTBOX) event.waitUntil(flush());
});

self.addEventListener("message", (event) => {
  const ask = event.data && event.data.outbox;
  if (ask !== "report" && ask !== "flush") return;
  // Not held with waitUntil: a worker with an event in flight cannot be replaced (Chromium then left the
  // next engineer's worker waiting, seen in tests/e2e/test_offline_pages.py); the page asks again.
  const source = event.source;
  (ask === "flush" ? flush() : Promise.resolve())
    .then(report)
    .then((answer) => source && source.postMessage(answer))
    .catch((error) => console.warn("outbox:", error));
});

// a worker already replaced (another engineer signed in) keeps nothing more
const current = () => self.registration.active && self.registration.active.scriptURL === self.location.href;

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  const inScope = url.pathname.startsWith(new URL(self.registration.scope).pathname);
  if (request.method === "POST" && request.mode === "navigate" && inScope) {
    event.respondWith(sendOrKeep(request));
    return;
  }
  if (request.method !== "GET") return;
  if (request.mode === "navigate" && inScope) {
    event.respondWith(pageFromNetworkOrKept(request));
  } else if (url.pathname.startsWith(STATIC_URL)) {
    event.respondWith(assetFromNetworkOrKept(request));
  }
});
