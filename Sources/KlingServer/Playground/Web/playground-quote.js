// KlingKit Playground: live validation and price. The form's body is sent to POST /api/v1/jobs/quote as the user
// types, so the page shows exactly the rules createTask applies: the price, or the server's messages placed next
// to the fields they name. Also keeps the submit button's state (busy while uploading or submitting).

import { state } from "./playground-state.js";
import { $, el, formatNumber } from "./playground-dom.js";
import { quoteTask, splitIssues } from "./playground-api.js";
import { buildBody } from "./playground-request.js";

const QUOTE_DELAY_MS = 350;

export function scheduleQuote(delay = QUOTE_DELAY_MS) {
  clearTimeout(state.quoteTimer);
  state.quoteTimer = setTimeout(runQuote, delay);
}

async function runQuote() {
  const seq = ++state.quoteSeq;
  const price = $("quote-price");
  const detail = $("quote-detail");
  $("quote").classList.add("is-empty");
  if (!state.apiKey) {
    price.textContent = "Enter your API key to see the price.";
    detail.textContent = "Requests are checked by the server as you type.";
    state.quoteOK = false;
    showIssues([]);
    updateSubmit();
    return;
  }
  let data;
  try {
    data = await quoteTask(buildBody());
  } catch (error) {
    if (seq !== state.quoteSeq) return;
    state.quoteOK = false;
    if (error.code === 422) {
      price.textContent = "Not ready yet";
      detail.textContent = "";
      showIssues(splitIssues(error.message));
    } else if (error.code === 429) {
      scheduleQuote(Math.max(1000, error.retryAfter * 1000));
    } else {
      price.textContent = "No price";
      detail.textContent = error.message;
      showIssues([]);
    }
    updateSubmit();
    return;
  }
  if (seq !== state.quoteSeq) return;
  state.quoteOK = true;
  $("quote").classList.remove("is-empty");
  showIssues([]);
  const b = data.breakdown;
  price.textContent = `${formatNumber(data.credits)} credits`;
  detail.textContent = `${b.seconds} s × ${b.creditsPerSecond} (${b.mode})${b.audio ? ` × ${b.audioFactor} sound` : ""} · balance ${formatNumber(data.balance)}${data.affordable ? "" : " — not enough credits"}`;
  $("quote").classList.toggle("is-short", !data.affordable);
  $("balance").textContent = `Balance: ${formatNumber(data.balance)} credits`;
  updateSubmit();
}

// Puts each server message next to the field it names (or its nearest named parent), and lists them all.
export function showIssues(issues) {
  state.issues = issues;
  for (const node of document.querySelectorAll("#create-form .field-error")) {
    node.textContent = "";
    const control = controlFor(node);
    if (control) control.removeAttribute("aria-invalid");
  }
  const slots = new Map();
  for (const node of document.querySelectorAll("#create-form .field-error[data-field]")) {
    if (!node.closest("[hidden]")) slots.set(node.dataset.field, node);
  }
  const list = $("issues-list");
  list.replaceChildren();
  for (const issue of issues) {
    const slot = findSlot(slots, issue.field);
    const text = issue.field === "*" ? issue.message : `${describeField(issue.field)}: ${issue.message}`;
    slot.textContent = slot.textContent ? `${slot.textContent} ${capitalize(issue.message)}.` : `${capitalize(issue.message)}.`;
    const control = controlFor(slot);
    if (control) control.setAttribute("aria-invalid", "true");
    const target = control && control.id ? `#${control.id}` : null;
    const line = target ? el("a", { href: target, text }) : el("span", { text });
    if (target) line.addEventListener("click", (event) => { event.preventDefault(); control.focus(); });
    list.append(el("li", { "data-field": issue.field }, [line]));
  }
  $("issues").hidden = issues.length === 0;
}

function findSlot(slots, field) {
  let name = field;
  while (name) {
    if (slots.has(name)) return slots.get(name);
    const shorter = name.replace(/(\[\d+\]|\.[^.\[\]]+)$/, "");
    if (shorter === name) break;
    name = shorter;
  }
  return $("general-error");
}

// The control an error slot belongs to: named by data-control (empty: none), else the one in its field.
function controlFor(errorNode) {
  if (errorNode.hasAttribute("data-control")) {
    return errorNode.dataset.control ? $(errorNode.dataset.control) : null;
  }
  const wrap = errorNode.closest(".field, .frame, fieldset");
  if (!wrap) return null;
  return wrap.querySelector("input:not([type=radio]), textarea, select");
}

function describeField(field) {
  const shot = /^input\.multi_prompt\[(\d+)\]\.(prompt|duration)$/.exec(field);
  if (shot) return `Shot ${Number(shot[1]) + 1} ${shot[2] === "prompt" ? "prompt" : "seconds"}`;
  const element = /^input\.kling_elements\[(\d+)\]\.?(.*)$/.exec(field);
  if (element) return `Element ${Number(element[1]) + 1}${element[2] ? ` ${element[2].replace("element_input_urls", "images")}` : ""}`;
  const names = {
    "input.prompt": "Prompt", "input.negative_prompt": "Negative prompt", "input.multi_prompt": "Storyboard",
    "input.duration": "Duration", "input.mode": "Quality", "input.aspect_ratio": "Aspect ratio", "input.sound": "Sound",
    "input.image_urls": "Frames", "input.image_urls[0]": "First frame", "input.image_urls[1]": "Last frame",
    "input.kling_elements": "Elements",
  };
  return names[field] || field;
}

const capitalize = (text) => text.charAt(0).toUpperCase() + text.slice(1).replace(/\.$/, "");

export function updateSubmit() {
  const button = $("submit");
  const busy = state.uploads > 0;
  button.disabled = busy || state.submitting === true;
  button.textContent = state.submitting ? "Submitting…" : busy ? "Waiting for uploads…" : "Generate video";
}
