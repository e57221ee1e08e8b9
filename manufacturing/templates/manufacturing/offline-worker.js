// The maintenance pages on a phone with no coverage (a basement, a cold store): each page opened
// while online is kept, for the signed-in engineer only, and shown again when the connection is gone,
// with a notice that it is the copy saved then (portal/suite.js shows it). The network is asked first,
// always: a page is never older than the connection forces it to be. Forms are not queued here: a
// form's draft stays on the phone until it is sent (portal/suite.js, data-draft).
// Scope: /manufacturing/ (this script's folder). Signing out clears what was kept (Clear-Site-Data).
"use strict";

const USER = new URL(self.location).searchParams.get("user") || "anonymous";
const PREFIX = "suite-maintenance-";
const PAGES = `${PREFIX}pages-${USER}`;
const ASSETS = `${PREFIX}assets`;
const STATIC_URL = "{{ static_url|escapejs }}";
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
  const cache = await caches.open(PAGES);
  try {
    const response = await fetch(request);
    // only the page itself: not a redirect to the login page, not an error page
    const html = (response.headers.get("Content-Type") || "").startsWith("text/html");
    // a worker already replaced (another engineer signed in) keeps nothing more
    const current = self.registration.active && self.registration.active.scriptURL === self.location.href;
    if (current && response.ok && !response.redirected && html) await cache.put(request, response.clone());
    return response;
  } catch (offline) {
    const kept = await cache.match(request);
    return kept || new Response(OFFLINE_PAGE, { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } });
  }
}

async function assetFromNetworkOrKept(request) {
  const cache = await caches.open(ASSETS);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (offline) {
    const kept = await cache.match(request);
    if (kept) return kept;
    throw offline;
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname.startsWith(new URL(self.registration.scope).pathname)) {
    event.respondWith(pageFromNetworkOrKept(request));
  } else if (url.pathname.startsWith(STATIC_URL)) {
    event.respondWith(assetFromNetworkOrKept(request));
  }
});
