// Study viewer: scroll the frames of a series (every frame of every image, in order), change the
// window with presets or by dragging, zoom with nearest-neighbour enlargement of small images.
// Frames are PNGs the Suite worker renders and caches (/medical/instances/<id>/frames/<n>.png?wc=&ww=);
// every request is checked and trailed by the server. Nothing is requested while the study is
// masked for burned-in text, until the user chooses to show the images.
"use strict";

window.SuiteViewer = (function () {
  const root = document.getElementById("study");
  const data = document.getElementById("viewer-stacks");
  if (!root || !data) return null;
  const stacks = JSON.parse(data.textContent);
  const image = document.getElementById("viewer-image");
  const stage = document.getElementById("viewer-stage");
  const caption = document.getElementById("viewer-caption");
  const stackSelect = document.getElementById("viewer-stack");
  const presetSelect = document.getElementById("viewer-preset");
  const slider = document.getElementById("viewer-frame");
  const position = document.getElementById("frame-position");
  const readout = document.getElementById("window-readout");
  const zoomLevel = document.getElementById("zoom-level");
  const filterFunctions = document.querySelectorAll("#wl-filter feFuncR, #wl-filter feFuncG, #wl-filter feFuncB");
  const listeners = [];
  const frames = new Map(); // url -> Promise<{src, window}>
  const MAX_CACHED = 240;
  const ZOOMS = [1, 1.5, 2, 3, 4, 6, 8];

  let stackIndex = 0;
  let current = 0; // position in the stack, from 0
  let chosen = null; // the window asked for ({center, width}); null: each image's own default
  let shown = null; // the window of the frame on screen, as the server reported it
  let zoom = 0; // index in ZOOMS; 0 fits the stage
  let ticket = 0;
  let started = false;

  const stack = () => stacks[stackIndex];
  const total = () => stack().images.reduce((sum, item) => sum + item.frames, 0);

  function locate(at) {
    let rest = at;
    for (const item of stack().images) {
      if (rest < item.frames) return { item, frame: rest };
      rest -= item.frames;
    }
    const last = stack().images[stack().images.length - 1];
    return { item: last, frame: last.frames - 1 };
  }

  function frameUrl(item, frame, windowing) {
    const url = `${item.url}${frame}.png`;
    return windowing ? `${url}?wc=${windowing.center}&ww=${windowing.width}` : url;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const GIVE_UP_MS = 120000; // then the viewer stops asking and offers Retry
  const statusBox = document.getElementById("viewer-status");
  const statusText = document.getElementById("viewer-status-text");
  const retryButton = document.getElementById("viewer-retry");
  const attempts = new Map(); // url -> AbortController of the requests for it
  let currentUrl = null;

  function failure(message, retry) {
    const error = new Error(message);
    error.retry = retry;
    return error;
  }

  // What the frame on screen waits for, as the server said it (queued for a worker that does not
  // take it, or being rendered); a retry button when waiting longer will not help by itself.
  function showStatus(url, message, retry) {
    if (url !== currentUrl) return;
    statusText.textContent = message;
    retryButton.hidden = !retry;
    statusBox.hidden = !message;
    statusBox.dataset.state = message ? (retry ? "stalled" : "waiting") : "";
  }

  async function fetchFrame(url, signal) {
    const began = Date.now();
    for (;;) {
      let response;
      try {
        response = await fetch(url, { credentials: "same-origin", signal });
      } catch (error) {
        if (signal.aborted) throw error;
        throw failure("Suite cannot be reached: check the connection, then retry.", true);
      }
      if (response.ok) {
        const center = response.headers.get("X-Window-Center");
        const width = response.headers.get("X-Window-Width");
        const blob = await response.blob();
        return {
          src: URL.createObjectURL(blob),
          window: center !== null && width !== null ? { center: Number(center), width: Number(width) } : null,
        };
      }
      let info = {};
      try { info = await response.json(); } catch (ignored) { /* not JSON */ }
      if (response.status === 503) {  // queued or being rendered by the worker
        const wait = 1000 * Number(response.headers.get("Retry-After") || 1);
        const waited = Math.round((Date.now() - began) / 1000);
        if (Date.now() - began + wait > GIVE_UP_MS) {
          throw failure(`${info.detail || "The frame is not rendered yet."} Stopped asking after ${waited} s.`, true);
        }
        if (url === currentUrl) {  // a prefetch leaves the caption of the frame on screen alone
          caption.textContent = info.stalled ? "Waiting for the image worker."
            : info.state === "queued" ? "Queued for the image worker…" : "Rendering the frame…";
        }
        if (info.stalled) showStatus(url, `${info.detail} Asking again every ${wait / 1000} s.`, true);
        await sleep(wait);
        if (signal.aborted) throw failure("Cancelled.", false);
        continue;
      }
      throw failure(info.detail || `The frame could not be loaded (HTTP ${response.status}).`, response.status >= 500);
    }
  }

  function load(url) {
    if (!frames.has(url)) {
      const controller = new AbortController();
      attempts.set(url, controller);
      const promise = fetchFrame(url, controller.signal)
        .catch((error) => {
          if (frames.get(url) === promise) frames.delete(url);
          throw error;
        })
        .finally(() => { if (attempts.get(url) === controller) attempts.delete(url); });
      frames.set(url, promise);
      while (frames.size > MAX_CACHED) {
        const [oldest, pending] = frames.entries().next().value;
        frames.delete(oldest);
        pending.then((frame) => URL.revokeObjectURL(frame.src), () => {});
      }
    }
    return frames.get(url);
  }

  function round(value) { return Number(Number(value).toPrecision(4)); }

  function describeWindow(windowing) {
    if (stack().colour) return "Colour image: shown as recorded (no window).";
    if (!windowing) return "Window from the image's own lookup table.";
    return `Window ${round(windowing.width)} · level ${round(windowing.center)}`;
  }

  async function render() {
    const { item, frame } = locate(current);
    const my = ++ticket;
    slider.max = String(total());
    slider.value = String(current + 1);
    position.textContent = `${current + 1} / ${total()}`;
    slider.setAttribute("aria-valuetext", `Frame ${current + 1} of ${total()}`);
    image.dataset.instance = item.id;
    image.dataset.frame = String(frame);
    listeners.forEach((listener) => listener(item.id));
    const url = frameUrl(item, frame, chosen);
    currentUrl = url;
    showStatus(url, "", false);
    const slow = setTimeout(() => { if (my === ticket) caption.textContent = "Loading the frame…"; }, 300);
    try {
      const loaded = await load(url);
      if (my !== ticket) return;
      showStatus(url, "", false);
      image.src = loaded.src;
      image.hidden = false;
      image.style.filter = "";
      shown = loaded.window || chosen;
      stage.dataset.window = shown ? `${shown.center},${shown.width}` : "";
      readout.textContent = describeWindow(shown);
      const frameText = item.frames > 1 ? ` · frame ${frame + 1} of ${item.frames}` : "";
      caption.textContent = `${stack().modality} · ${item.label}${frameText}`;
      prefetch();
    } catch (error) {
      if (my !== ticket) return;
      image.hidden = true;
      caption.textContent = error.retry ? "The frame is not shown yet." : error.message;
      if (error.retry) showStatus(url, error.message, true);
    } finally {
      clearTimeout(slow);
    }
  }

  // Retry: ask for the frame on screen again now (the earlier requests for it are dropped).
  retryButton.addEventListener("click", () => {
    const controller = attempts.get(currentUrl);
    if (controller) controller.abort();
    frames.delete(currentUrl);
    showStatus(currentUrl, "", false);
    caption.textContent = "Loading the frame…";
    render();
  });

  function prefetch() {
    for (const step of [1, 2, -1]) {
      const at = current + step;
      if (at < 0 || at >= total()) continue;
      const { item, frame } = locate(at);
      load(frameUrl(item, frame, chosen)).catch(() => {});
    }
  }

  function go(at) {
    const next = Math.min(Math.max(at, 0), total() - 1);
    if (next === current && !image.hidden) return;
    current = next;
    render();
  }

  // --- window: presets, then dragging -----------------------------------------------------------
  function fillPresets() {
    presetSelect.replaceChildren();
    const presets = stack().presets;
    if (stack().colour || !presets.length) {
      presetSelect.append(new Option("Colour: no window", "none"));
      presetSelect.disabled = true;
      return;
    }
    presetSelect.disabled = false;
    presets.forEach((preset) => presetSelect.append(new Option(preset.label, preset.name)));
  }

  function markCustom() {
    let custom = presetSelect.querySelector('option[value="custom"]');
    if (!custom) {
      custom = new Option("Custom (dragged)", "custom");
      presetSelect.append(custom);
    }
    presetSelect.value = "custom";
  }

  presetSelect.addEventListener("change", () => {
    const preset = stack().presets.find((candidate) => candidate.name === presetSelect.value);
    if (!preset) return;
    chosen = preset.center !== undefined ? { center: preset.center, width: preset.width } : null;
    const custom = presetSelect.querySelector('option[value="custom"]');
    if (custom) custom.remove();
    render();
  });

  // While dragging, an SVG filter maps the frame on screen linearly (instant feedback); on release
  // the worker renders the exact window from the full-depth pixels.
  function previewWindow(target) {
    if (!shown || !filterFunctions.length) return;
    const low0 = shown.center - shown.width / 2;
    const low1 = target.center - target.width / 2;
    let slope = shown.width / target.width;
    let intercept = (low0 - low1) / target.width;
    if (locate(current).item.inverted) intercept = 1 - slope - intercept;
    filterFunctions.forEach((node) => {
      node.setAttribute("slope", String(slope));
      node.setAttribute("intercept", String(intercept));
    });
    image.style.filter = "url(#wl-filter)";
    readout.textContent = describeWindow(target);
  }

  let drag = null;
  stage.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || event.pointerType === "touch" || stack().colour || !shown || image.hidden) return;
    drag = { x: event.clientX, y: event.clientY, start: { ...shown }, target: { ...shown } };
    stage.setPointerCapture(event.pointerId);
    event.preventDefault();
  });
  stage.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const step = Math.max(drag.start.width, 1) / 200;  // a 200-pixel drag changes by one window width
    drag.target = {
      center: round(drag.start.center - (event.clientY - drag.y) * step),
      width: round(Math.max(1, drag.start.width + (event.clientX - drag.x) * step)),
    };
    previewWindow(drag.target);
  });
  function endDrag() {
    if (!drag) return;
    const { target, start } = drag;
    drag = null;
    if (target.center === start.center && target.width === start.width) return;
    chosen = target;
    markCustom();
    render();
  }
  stage.addEventListener("pointerup", endDrag);
  stage.addEventListener("pointercancel", endDrag);

  // --- zoom: the stage scrolls when the image is larger than it ---------------------------------
  function applyZoom() {
    const factor = ZOOMS[zoom];
    image.style.width = factor === 1 ? "" : `${factor * stage.clientWidth}px`;
    image.style.maxWidth = factor === 1 ? "" : "none";
    image.style.maxHeight = factor === 1 ? "" : "none";
    stage.classList.toggle("zoomed", factor > 1);
    zoomLevel.textContent = factor === 1 ? "Fit" : `${Math.round(factor * 100)}%`;
    markSmall();
  }

  // Enlarged images are shown with nearest-neighbour (crisp pixels), not blurred.
  function markSmall() {
    const enlarged = image.naturalWidth > 0 && image.getBoundingClientRect().width > image.naturalWidth;
    image.classList.toggle("small", enlarged || (image.naturalWidth > 0 && image.naturalWidth < 256));
  }
  image.addEventListener("load", markSmall);
  window.addEventListener("resize", () => { applyZoom(); });

  document.getElementById("zoom-in").addEventListener("click", () => { zoom = Math.min(zoom + 1, ZOOMS.length - 1); applyZoom(); });
  document.getElementById("zoom-out").addEventListener("click", () => { zoom = Math.max(zoom - 1, 0); applyZoom(); });
  document.getElementById("zoom-fit").addEventListener("click", () => { zoom = 0; applyZoom(); });

  // --- frame navigation -------------------------------------------------------------------------
  slider.addEventListener("input", () => go(Number(slider.value) - 1));
  document.getElementById("frame-prev").addEventListener("click", () => go(current - 1));
  document.getElementById("frame-next").addEventListener("click", () => go(current + 1));
  stage.addEventListener("wheel", (event) => {
    if (!started || event.ctrlKey) return;
    event.preventDefault();
    go(current + (event.deltaY > 0 ? 1 : -1));
  }, { passive: false });
  stage.addEventListener("keydown", (event) => {
    const moves = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1, PageDown: 10, PageUp: -10 };
    if (event.key in moves) go(current + moves[event.key]);
    else if (event.key === "Home") go(0);
    else if (event.key === "End") go(total() - 1);
    else if (event.key === "+" || event.key === "=") document.getElementById("zoom-in").click();
    else if (event.key === "-") document.getElementById("zoom-out").click();
    else return;
    event.preventDefault();
  });

  function selectStack(index, at = 0) {
    stackIndex = index;
    stackSelect.value = String(index);
    chosen = null;
    fillPresets();
    current = Math.min(at, total() - 1);
    render();
  }

  stacks.forEach((item, index) => stackSelect.append(new Option(item.label, String(index))));
  stackSelect.disabled = stacks.length < 2;
  stackSelect.addEventListener("change", () => selectStack(Number(stackSelect.value)));

  return {
    // Show the first frame of an image (a thumbnail click); false if it has no frames to show.
    showInstance(instanceId) {
      for (let index = 0; index < stacks.length; index += 1) {
        let at = 0;
        for (const item of stacks[index].images) {
          if (String(item.id) === String(instanceId)) {
            if (!started) return true;
            if (index !== stackIndex) selectStack(index, at);
            else go(at);
            return true;
          }
          at += item.frames;
        }
      }
      return false;
    },
    onSelect(listener) { listeners.push(listener); },
    start() {
      if (started || !stacks.length) return;
      started = true;
      selectStack(0);
    },
  };
})();
