// Suite portal helpers: the project's own script, no external libraries.
"use strict";

window.Suite = {
  csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  },
  async getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    return response.json();
  },
  async postJSON(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": Suite.csrfToken() },
      body: JSON.stringify(body || {}),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const message = (data.error && data.error.message) || data.detail || `${response.status} ${response.statusText}`;
      throw new Error(message);
    }
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
