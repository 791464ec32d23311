// KlingKit Playground: the "Create a video" form's controls: single prompt or multi-shot storyboard, shots,
// first and last frames and elements (their images uploaded as they are chosen). Every change asks for a new
// quote; reading the form into a request body is in playground-request.js.

import { newId, newShot, state } from "./playground-state.js";
import { $, el } from "./playground-dom.js";
import { uploadFile } from "./playground-api.js";
import { isMulti, shotTotal } from "./playground-request.js";
import { scheduleQuote, showIssues, updateSubmit } from "./playground-quote.js";
import { submit } from "./playground-progress.js";

const MAX_SHOTS = 6;
const MAX_ELEMENTS = 3;

export function initForm() {
  for (const radio of document.querySelectorAll('input[name="kind"]')) radio.addEventListener("change", onKindChanged);
  $("prompt").addEventListener("input", () => {
    $("prompt-count").textContent = String([...$("prompt").value].length);
    scheduleQuote();
  });
  for (const id of ["negative-prompt", "duration"]) $(id).addEventListener("input", () => { updateShotSum(); scheduleQuote(); });
  for (const id of ["mode", "aspect", "sound"]) $(id).addEventListener("change", () => scheduleQuote());
  $("add-shot").addEventListener("click", () => {
    if (state.shots.length >= MAX_SHOTS) return;
    state.shots.push(newShot("", 1));
    renderShots();
    focusLast("#shots textarea");
    scheduleQuote();
  });
  $("use-shot-total").addEventListener("click", () => {
    $("duration").value = String(shotTotal());
    updateShotSum();
    scheduleQuote(0);
    $("duration").focus();
  });
  $("add-element").addEventListener("click", () => {
    if (state.elements.length >= MAX_ELEMENTS) return;
    state.elements.push({ id: newId(), name: "", description: "", images: [] });
    renderElements();
    focusLast("#elements .element-name");
    scheduleQuote();
  });
  initFrame("first");
  initFrame("last");
  updateLastFrameAvailability();
  $("create-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  renderShots();
  renderElements();
  onKindChanged();
}

function focusLast(selector) {
  const all = document.querySelectorAll(selector);
  if (all.length) all[all.length - 1].focus();
}

function onKindChanged() {
  const multi = isMulti();
  $("single-fields").hidden = multi;
  $("multi-fields").hidden = !multi;
  $("last-frame").hidden = multi;
  const sound = $("sound");
  sound.disabled = multi;
  if (multi) sound.checked = true;
  $("sound-hint").textContent = multi
    ? "Multi-shot videos always have sound."
    : "Dialogue, ambience and cuts; costs 1.5×.";
  document.querySelector(".frames .optional").textContent = multi ? "a first frame is required" : "optional in single-prompt mode";
  updateShotSum();
  scheduleQuote(0);
}

function updateShotSum() {
  const total = shotTotal();
  const wanted = parseInt($("duration").value, 10);
  const sum = $("shot-sum");
  const matches = total === wanted;
  sum.textContent = Number.isFinite(wanted)
    ? `Shots add up to ${total} s of ${wanted} s${matches ? " ✓" : ""}`
    : `Shots add up to ${total} s`;
  sum.classList.toggle("is-off", !matches);
  const fix = $("use-shot-total");
  fix.hidden = matches || total < 3 || total > 15;
  fix.textContent = `Set the total duration to ${total} s`;
}

function renderShots() {
  const list = $("shots");
  list.replaceChildren();
  const template = $("shot-template");
  state.shots.forEach((shot, index) => {
    const item = template.content.firstElementChild.cloneNode(true);
    const n = index + 1;
    item.querySelector(".shot-number").textContent = `Shot ${n}`;
    const remove = item.querySelector(".remove-shot");
    remove.querySelector(".visually-hidden").textContent = ` shot ${n}`;
    remove.disabled = state.shots.length <= 1;
    remove.addEventListener("click", () => {
      state.shots = state.shots.filter((s) => s.id !== shot.id);
      renderShots();
      const next = list.querySelectorAll("textarea")[Math.min(index, state.shots.length - 1)];
      if (next) next.focus();
      scheduleQuote();
    });
    wireField(item, ".shot-prompt", `shot-${shot.id}-prompt`, [`Shot ${n} `, "Prompt"], `input.multi_prompt[${index}].prompt`, shot.prompt, (value) => { shot.prompt = value; });
    wireField(item, ".shot-duration", `shot-${shot.id}-duration`, [`Shot ${n} `, "Seconds"], `input.multi_prompt[${index}].duration`, shot.duration, (value) => { shot.duration = value; updateShotSum(); });
    item.querySelector("textarea").placeholder = n === 1 ? "Wide shot: a lighthouse on a cliff at dusk" : "Close-up: the keeper lights the lamp";
    list.append(item);
  });
  $("add-shot").disabled = state.shots.length >= MAX_SHOTS;
  updateShotSum();
  showIssues(state.issues);
}

// Gives a cloned field an id, a label, an error slot bound to a server field, and keeps `save` updated.
function wireField(root, selector, id, labelText, field, value, save) {
  const wrap = root.querySelector(selector);
  const control = wrap.querySelector("input, textarea");
  const label = wrap.querySelector("label");
  const error = wrap.querySelector(".field-error");
  control.id = id;
  label.htmlFor = id;
  // [context for screen readers, visible text] keeps narrow labels short on screen.
  if (Array.isArray(labelText)) label.replaceChildren(el("span", { className: "visually-hidden", text: labelText[0] }), labelText[1]);
  else label.textContent = labelText;
  error.id = `${id}-error`;
  error.dataset.field = field;
  control.setAttribute("aria-describedby", error.id);
  if (control.type !== "file") {
    control.value = value;
    control.addEventListener("input", () => { save(control.value); scheduleQuote(); });
  }
  return control;
}

function renderElements() {
  const list = $("elements");
  list.replaceChildren();
  const template = $("element-template");
  state.elements.forEach((element, index) => {
    const item = template.content.firstElementChild.cloneNode(true);
    const n = index + 1;
    const base = `input.kling_elements[${index}]`;
    item.querySelector(".element-title").textContent = element.name ? `Element @${element.name}` : `Element ${n}`;
    const remove = item.querySelector(".remove-element");
    remove.querySelector(".visually-hidden").textContent = ` element ${n}`;
    remove.addEventListener("click", () => {
      state.elements = state.elements.filter((e) => e.id !== element.id);
      renderElements();
      $("add-element").focus();
      scheduleQuote();
    });
    const nameWrap = item.querySelector(".element-name").closest(".field");
    nameWrap.classList.add("element-name-field");
    wireField(item, ".element-name-field", `element-${element.id}-name`, [`Element ${n} `, "Name (used as @name)"], `${base}.name`, element.name, (value) => {
      element.name = value.trim();
      item.querySelector(".element-title").textContent = element.name ? `Element @${element.name}` : `Element ${n}`;
    });
    const descriptionWrap = item.querySelector(".element-description").closest(".field");
    descriptionWrap.classList.add("element-description-field");
    wireField(item, ".element-description-field", `element-${element.id}-description`, [`Element ${n} `, "Description"], `${base}.description`, element.description, (value) => { element.description = value; });
    const files = wireField(item, ".element-images-field", `element-${element.id}-images`, [`Element ${n} `, "Reference images (2 to 4)"], `${base}.element_input_urls`, "", () => {});
    const status = item.querySelector(".element-images-status");
    status.id = `element-${element.id}-images-status`;
    files.setAttribute("aria-describedby", `${status.id} ${files.getAttribute("aria-describedby")}`);
    files.addEventListener("change", async () => {
      const chosen = [...files.files];
      files.value = "";
      for (const file of chosen) {
        if (element.images.length >= 4) {
          status.textContent = "An element takes at most 4 images.";
          break;
        }
        const image = { id: newId(), name: file.name, preview: URL.createObjectURL(file), url: null };
        element.images.push(image);
        renderThumbs(item, element, status);
        status.textContent = `Uploading ${file.name}…`;
        try {
          image.url = await upload(file);
          status.textContent = `${element.images.filter((i) => i.url).length} image(s) uploaded.`;
        } catch (error) {
          element.images = element.images.filter((i) => i !== image);
          status.textContent = `Upload of ${file.name} failed: ${error.message}`;
        }
        renderThumbs(item, element, status);
        scheduleQuote(0);
      }
    });
    renderThumbs(item, element, status);
    list.append(item);
  });
  $("add-element").disabled = state.elements.length >= MAX_ELEMENTS;
  showIssues(state.issues);
}

function renderThumbs(item, element, status) {
  const thumbs = item.querySelector(".thumbs");
  thumbs.replaceChildren();
  for (const image of element.images) {
    const remove = el("button", { type: "button", className: "thumb-remove", "aria-label": `Remove image ${image.name}`, text: "×" });
    remove.addEventListener("click", () => {
      element.images = element.images.filter((i) => i !== image);
      renderThumbs(item, element, status);
      status.textContent = `Removed ${image.name}.`;
      item.querySelector(".element-images").focus();
      scheduleQuote(0);
    });
    thumbs.append(el("li", { className: image.url ? "thumb" : "thumb is-uploading" }, [
      el("img", { src: image.preview, alt: image.name }),
      remove,
    ]));
  }
}

async function upload(file) {
  state.uploads += 1;
  updateSubmit();
  try {
    return await uploadFile(file);
  } finally {
    state.uploads -= 1;
    updateSubmit();
  }
}

// The last frame needs a first frame: its input is off until one is chosen.
function updateLastFrameAvailability() {
  const input = $("last-frame-input");
  const available = Boolean(state.frames.first);
  input.disabled = !available;
  if (!available && state.frames.last) $("last-frame").querySelector(".remove-frame").click();
  $("last-frame-status").textContent = available ? $("last-frame-status").textContent : "Choose a first frame first.";
}

function initFrame(which) {
  const box = $(`${which}-frame`);
  const input = $(`${which}-frame-input`);
  const status = $(`${which}-frame-status`);
  const preview = box.querySelector(".frame-preview");
  const clear = () => {
    state.frames[which] = null;
    preview.hidden = true;
    input.value = "";
    updateLastFrameAvailability();
  };
  box.querySelector(".remove-frame").addEventListener("click", () => {
    clear();
    status.textContent = "Removed.";
    input.focus();
    scheduleQuote(0);
  });
  input.addEventListener("change", async () => {
    const file = input.files[0];
    if (!file) return;
    const frame = { name: file.name, url: null, preview: URL.createObjectURL(file) };
    state.frames[which] = frame;
    preview.querySelector("img").src = frame.preview;
    preview.hidden = false;
    updateLastFrameAvailability();
    status.textContent = `Uploading ${file.name}…`;
    try {
      frame.url = await upload(file);
      if (state.frames[which] === frame) status.textContent = `${file.name} uploaded.`;
    } catch (error) {
      if (state.frames[which] === frame) clear();
      status.textContent = `Upload of ${file.name} failed: ${error.message}`;
    }
    scheduleQuote(0);
  });
}
