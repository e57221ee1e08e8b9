"use strict";
// Streams chat completions from /v1/chat/completions (server-sent events) and keeps the
// conversation (and its server-side KV cache, through session_id) until "New conversation".
(function () {
  const form = document.getElementById("playground-form");
  if (!form) return;
  const transcript = document.getElementById("pg-transcript");
  const status = document.getElementById("pg-status");
  const send = document.getElementById("pg-send");
  let history = [];
  let sessionId = crypto.randomUUID ? crypto.randomUUID() : String(Date.now());

  function bubble(role, text) {
    const box = document.createElement("div");
    box.className = "card";
    box.dataset.role = role;
    box.innerHTML = "<strong></strong><div class='text' style='white-space:pre-wrap'></div>";
    box.querySelector("strong").textContent = role === "user" ? "You" : "Model";
    box.querySelector(".text").textContent = text;
    transcript.appendChild(box);
    return box.querySelector(".text");
  }

  document.getElementById("pg-reset").addEventListener("click", () => {
    history = [];
    transcript.textContent = "";
    sessionId = crypto.randomUUID ? crypto.randomUUID() : String(Date.now());
    status.textContent = "";
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = document.getElementById("pg-message").value.trim();
    if (!message) return;
    const system = document.getElementById("pg-system").value.trim();
    history.push({ role: "user", content: message });
    bubble("user", message);
    document.getElementById("pg-message").value = "";
    const output = bubble("assistant", "");
    const seed = document.getElementById("pg-seed").value;
    const stop = document.getElementById("pg-stop").value.split(",").map((s) => s.trim()).filter(Boolean);
    const body = {
      model: document.getElementById("pg-model").value,
      messages: (system ? [{ role: "system", content: system }] : []).concat(history),
      temperature: parseFloat(document.getElementById("pg-temperature").value),
      top_p: parseFloat(document.getElementById("pg-top-p").value),
      max_tokens: parseInt(document.getElementById("pg-max-tokens").value, 10),
      speculative: document.getElementById("pg-speculative").value,
      session_id: sessionId,
      stream: true,
    };
    if (seed !== "") body.seed = parseInt(seed, 10);
    if (stop.length) body.stop = stop;
    send.disabled = true;
    status.textContent = "Generating…";
    const started = performance.now();
    let firstTokenAt = null;
    let text = "";
    try {
      const response = await fetch("/v1/chat/completions", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": Suite.csrfToken() },
        body: JSON.stringify(body),
      });
      if (!response.ok) {
        const data = await response.json().catch(() => ({}));
        throw new Error((data.error && data.error.message) || response.statusText);
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      let usage = null;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const line = buffer.slice(0, cut).trim();
          buffer = buffer.slice(cut + 2);
          if (!line.startsWith("data: ")) continue;
          const data = line.slice(6);
          if (data === "[DONE]") continue;
          const chunk = JSON.parse(data);
          const delta = chunk.choices[0].delta.content || "";
          if (delta && firstTokenAt === null) firstTokenAt = performance.now();
          text += delta;
          output.textContent = text;
          if (chunk.usage) usage = chunk.usage;
        }
      }
      history.push({ role: "assistant", content: text });
      const seconds = (performance.now() - started) / 1000;
      const ttft = firstTokenAt ? Math.round(firstTokenAt - started) : "–";
      const cached = usage ? usage.prompt_tokens_details.cached_tokens : 0;
      status.textContent = usage
        ? `${usage.completion_tokens} tokens in ${seconds.toFixed(2)} s · first token ${ttft} ms · ${cached} prompt tokens from cache`
        : "Done.";
    } catch (error) {
      history.pop();
      output.textContent = "Error: " + error.message;
      status.textContent = "";
    } finally {
      send.disabled = false;
    }
  });
})();
