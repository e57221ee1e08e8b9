// Study page: ask about the image selected in the viewer (viewer.js), pick thumbnails, and pick up
// thumbnail previews as the worker renders them.
"use strict";

(function () {
  const root = document.getElementById("study");
  if (!root) return;
  const image = document.getElementById("viewer-image");
  const caption = document.getElementById("viewer-caption");
  const log = document.getElementById("chat-log");
  const form = document.getElementById("chat-form");
  const input = document.getElementById("chat-input");
  const error = document.getElementById("chat-error");
  const breakGlassInstance = document.getElementById("break-glass-instance");
  const firstThumb = document.querySelector(".thumb.selected");
  let selected = firstThumb ? firstThumb.dataset.instance : null;

  function element(tag, attributes, text) {
    const node = document.createElement(tag);
    Object.entries(attributes || {}).forEach(([name, value]) => node.setAttribute(name, value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const masked = () => root.dataset.masked === "true";
  const viewer = window.SuiteViewer;

  function highlight(instanceId) {
    selected = String(instanceId);
    if (breakGlassInstance) breakGlassInstance.value = selected;
    document.querySelectorAll(".thumb").forEach((thumb) => {
      const on = thumb.dataset.instance === selected;
      thumb.classList.toggle("selected", on);
      thumb.setAttribute("aria-current", on ? "true" : "false");
    });
  }

  if (viewer) viewer.onSelect(highlight);

  document.querySelectorAll(".thumb").forEach((thumb) => thumb.addEventListener("click", () => {
    highlight(thumb.dataset.instance);
    if (masked()) return;
    if (!viewer || !viewer.showInstance(thumb.dataset.instance)) {
      image.hidden = true;
      caption.textContent = "No image for this item (no pixel data, or no decoder for its syntax); you can still ask about its header.";
    }
  }));

  const reveal = document.getElementById("reveal-images");
  if (reveal) {
    reveal.addEventListener("click", () => {
      root.dataset.masked = "false";
      reveal.closest(".burned-in-warning").classList.add("revealed");
      reveal.replaceWith(element("p", { class: "muted", "data-testid": "revealed-note" }, "Shown at your request."));
      document.querySelectorAll(".thumb").forEach((thumb) => {
        if (thumb.dataset.previewStatus === "ready") {
          thumb.replaceChildren(element("img", { src: thumb.dataset.previewUrl, alt: "" }));
        }
      });
      if (viewer) viewer.start();
    });
  }
  if (viewer && !masked()) viewer.start();

  function phrasingLabel(phrasing) {
    return { model: "Phrased by the model (verified)", extractive: "Built from the attribute",
      withheld: "Withheld (removed data)" }[phrasing] || phrasing;
  }

  function renderAnswer(answer) {
    const item = element("li", { class: "qa", "data-testid": "qa-item" });
    const question = element("p", { class: "q" });
    question.append(element("strong", {}, `${answer.asked_by || "you"}:`), ` ${answer.question}`);
    item.append(question, element("p", { class: "a", "data-testid": "chat-answer" }, answer.answer));
    // A clinician-readable citation (attribute name and value); tags and the model on demand.
    const cite = element("p", { class: "meta cite", "data-testid": "citation" });
    const first = answer.attributes[0];
    if (first) {
      cite.append("From the header: ", element("span", { "data-testid": "citation-text" },
        `${first.name}${first.value ? ` = ${first.value}` : " (not recorded)"}`));
    } else {
      cite.append(answer.grounding === "removed" ? "Removed by de-identification: nothing to cite" : "Nothing in the header to cite");
    }
    if (answer.grounding_score !== null && answer.grounding_score !== undefined) {
      cite.append(" ", element("span", { class: "muted", "data-testid": "grounding-score",
        title: "How clearly the header answers the question, from 0 (not at all) to 1 (exactly)" }, `· header match ${answer.grounding_score.toFixed(2)}`));
    }
    item.append(cite);
    if (answer.attributes.length || answer.model) {
      const details = element("details", { class: "cited-details" });
      details.append(element("summary", {}, "DICOM tags and how this was answered"));
      if (answer.attributes.length) {
        const table = element("table", { class: "cited" });
        const body = element("tbody");
        answer.attributes.forEach((attribute) => {
          const row = element("tr", { "data-testid": "cited-attribute" });
          const tag = element("td");
          tag.append(element("code", {}, attribute.tag));
          row.append(tag, element("td", {}, attribute.keyword), element("td", {}, attribute.value || "(not recorded)"));
          body.append(row);
        });
        table.append(body);
        details.append(table);
      }
      let provenance = phrasingLabel(answer.phrasing);
      if (answer.model) {
        const adapter = answer.model.adapter ? `:${answer.model.adapter}` : "";
        provenance += ` · model ${answer.model.name}${adapter} v${answer.model.version}`;
      }
      details.append(element("p", { class: "muted" }, provenance));
      item.append(details);
    }
    log.append(item);
    log.scrollTop = log.scrollHeight;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question) return;
    const button = form.querySelector("button");
    button.disabled = true;
    error.textContent = "";
    try {
      const body = { question };
      if (selected) body.instance_id = Number(selected);
      renderAnswer(await Suite.postJSON(root.dataset.askUrl, body));
      input.value = "";
    } catch (failure) {
      error.textContent = failure.message;
    } finally {
      button.disabled = false;
      input.focus();
    }
  });

  if (root.dataset.previewsPending === "true") {
    Suite.poll(root.dataset.studyUrl, 1500, (study) => {
      let pending = false;
      study.series.forEach((series) => series.instances.forEach((instance) => {
        const thumb = document.querySelector(`.thumb[data-instance="${instance.id}"]`);
        if (!thumb) return;
        pending = pending || instance.preview_status === "pending";
        if (thumb.dataset.previewStatus === instance.preview_status) return;
        thumb.dataset.previewStatus = instance.preview_status;
        if (instance.preview_url && !masked()) {
          thumb.replaceChildren(element("img", { src: instance.preview_url, alt: "" }));
        }
      }));
      return pending;
    });
  }
})();
