// Live job page: polls the job API, updates progress and metrics, draws the loss curve as inline SVG.
"use strict";

(function () {
  const root = document.getElementById("job");
  if (!root) return;
  const chart = document.getElementById("loss-chart");
  const SVG = "http://www.w3.org/2000/svg";
  const W = 640, H = 240, LEFT = 52, RIGHT = 12, TOP = 14, BOTTOM = 30;
  const FINISHED = ["cancelled", "failed", "succeeded"];

  function el(name, attributes, text) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function drawCurve(points) {
    while (chart.firstChild) chart.removeChild(chart.firstChild);
    const train = points.filter((p) => p.train_loss !== null);
    const evals = points.filter((p) => p.eval_loss !== null);
    if (!train.length && !evals.length) {
      chart.appendChild(el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", fill: "#6b7785" }, "No progress reported yet"));
      return;
    }
    const steps = points.map((p) => p.step);
    const losses = train.map((p) => p.train_loss).concat(evals.map((p) => p.eval_loss));
    const x0 = Math.min(...steps), x1 = Math.max(...steps, x0 + 1);
    let y0 = Math.min(...losses), y1 = Math.max(...losses);
    if (y1 - y0 < 1e-6) { y0 -= 0.5; y1 += 0.5; }
    const x = (step) => LEFT + ((step - x0) / (x1 - x0)) * (W - LEFT - RIGHT);
    const y = (loss) => TOP + ((y1 - loss) / (y1 - y0)) * (H - TOP - BOTTOM);
    const axis = { stroke: "#c5ccd6", "stroke-width": 1 };
    chart.appendChild(el("line", { x1: LEFT, y1: H - BOTTOM, x2: W - RIGHT, y2: H - BOTTOM, ...axis }));
    chart.appendChild(el("line", { x1: LEFT, y1: TOP, x2: LEFT, y2: H - BOTTOM, ...axis }));
    const label = { fill: "#6b7785", "font-size": 11 };
    chart.appendChild(el("text", { x: LEFT - 6, y: TOP + 4, "text-anchor": "end", ...label }, y1.toFixed(3)));
    chart.appendChild(el("text", { x: LEFT - 6, y: H - BOTTOM, "text-anchor": "end", ...label }, y0.toFixed(3)));
    chart.appendChild(el("text", { x: LEFT, y: H - 10, ...label }, `step ${x0}`));
    chart.appendChild(el("text", { x: W - RIGHT, y: H - 10, "text-anchor": "end", ...label }, `step ${x1}`));
    const line = (series, key, colour, dashed) => {
      if (!series.length) return;
      const path = series.map((p) => `${x(p.step).toFixed(1)},${y(p[key]).toFixed(1)}`).join(" ");
      chart.appendChild(el("polyline", { points: path, fill: "none", stroke: colour, "stroke-width": 2, ...(dashed ? { "stroke-dasharray": "5 4" } : {}) }));
      for (const p of series.length < 60 ? series : []) chart.appendChild(el("circle", { cx: x(p.step), cy: y(p[key]), r: 2.5, fill: colour }));
    };
    line(train, "train_loss", "#2563a8", false);
    line(evals, "eval_loss", "#c2410c", true);
    chart.appendChild(el("text", { x: W - RIGHT - 150, y: TOP + 8, fill: "#2563a8", "font-size": 12 }, "— train loss"));
    chart.appendChild(el("text", { x: W - RIGHT - 70, y: TOP + 8, fill: "#c2410c", "font-size": 12 }, "- - eval loss"));
  }

  function show(field, text) {
    const node = root.querySelector(`[data-field="${field}"]`);
    if (node) node.textContent = text;
  }

  const number = (value, digits) => (value === null || value === undefined ? "—" : Number(value).toFixed(digits));

  function render(job) {
    const bar = root.querySelector('[data-field="progress-bar"]');
    if (bar) bar.style.width = `${Math.round(job.progress * 100)}%`;
    show("steps", `${job.step} / ${job.total_steps || "?"}`);
    show("train_loss", number(job.train_loss, 4));
    show("eval_loss", number(job.eval_loss, 4));
    show("tokens_per_s", number(job.tokens_per_s, 0));
    show("eta_s", job.eta_s === null ? "—" : `${Math.round(job.eta_s)} s`);
    show("spent_epsilon", number(job.spent_epsilon, 3));
    show("status", job.status.charAt(0).toUpperCase() + job.status.slice(1));
    show("log", job.log);
    drawCurve(job.loss_curve);
    if (FINISHED.includes(job.status)) {
      window.location.reload(); // the finished page shows the evaluation and the adapter
      return false;
    }
    return true;
  }

  drawCurve(JSON.parse(document.getElementById("loss-curve-data").textContent));
  if (root.dataset.active === "true") Suite.poll(root.dataset.api, 2000, render);
})();
