// KlingKit Playground: a plain script over the server's Market API (no build step, no dependencies).
// Validation and prices come from the server itself (POST /api/v1/jobs/quote), so the page shows exactly the
// rules createTask applies.
"use strict";

(() => {
  const KEY_STORAGE = "klingkit.playground.apiKey";
  const MODEL = "kling-3.0/video";
  const MAX_SHOTS = 6;
  const MAX_ELEMENTS = 3;
  const PAGE_SIZE = 10;
  const QUOTE_DELAY_MS = 350;

  const $ = (id) => document.getElementById(id);
  const el = (tag, props = {}, children = []) => {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props)) {
      if (name === "text") node.textContent = value;
      else if (name === "className") node.className = value;
      else if (name.startsWith("data-") || name.startsWith("aria-") || name === "role") node.setAttribute(name, value);
      else node[name] = value;
    }
    for (const child of [].concat(children)) if (child) node.append(child);
    return node;
  };

  // ---------------------------------------------------------------- state

  let nextId = 1;
  const state = {
    apiKey: localStorage.getItem(KEY_STORAGE) || "",
    shots: [newShot("", 3), newShot("", 2)],
    elements: [],
    frames: { first: null, last: null },
    uploads: 0,
    quoteSeq: 0,
    quoteTimer: 0,
    issues: [],
    quoteOK: false,
    watching: null,
    currentTask: null,
    tasksPage: 1,
  };

  function newShot(prompt, duration) {
    return { id: nextId++, prompt, duration: String(duration) };
  }

  // ---------------------------------------------------------------- API

  class APIError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body) {
    if (!state.apiKey) throw new APIError(401, 401, "Enter your API key first.");
    const headers = { Authorization: `Bearer ${state.apiKey}` };
    let payload;
    if (body instanceof FormData) {
      payload = body;
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, { method, headers, body: payload });
    } catch (error) {
      throw new APIError(0, 0, "The server cannot be reached. Is kling-server running?");
    }
    let json = null;
    try { json = await response.json(); } catch (_) { /* not JSON */ }
    const code = json && typeof json.code === "number" ? json.code : response.status;
    if (!response.ok || code !== 200) {
      const message = (json && (json.msg || json.message)) || `HTTP ${response.status}`;
      const error = new APIError(response.status, code, message);
      error.retryAfter = Number(response.headers.get("Retry-After")) || 0;
      throw error;
    }
    return json.data;
  }

  // "field: message; field: message" (the server's one-line summary) → [{field, message}].
  function splitIssues(text) {
    const parts = String(text).split(/; (?=[A-Za-z_][\w.\[\]-]*: )/);
    return parts.map((part) => {
      const match = /^([A-Za-z_][\w.\[\]-]*): ([\s\S]*)$/.exec(part);
      return match ? { field: match[1], message: match[2] } : { field: "*", message: part };
    });
  }

  // ---------------------------------------------------------------- API key

  function setKeyStatus(text, isError = false) {
    const status = $("key-status");
    status.textContent = text;
    status.classList.toggle("is-error", isError);
  }

  async function refreshBalance() {
    const balance = $("balance");
    if (!state.apiKey) {
      balance.textContent = "No API key yet";
      return;
    }
    try {
      const credits = await api("GET", "/api/v1/chat/credit");
      balance.textContent = `Balance: ${formatNumber(credits)} credits`;
      setKeyStatus("Key accepted.");
    } catch (error) {
      balance.textContent = "Balance unavailable";
      if (error.status === 401) setKeyStatus(`This key is not accepted: ${error.message}`, true);
    }
  }

  function initKey() {
    const input = $("api-key");
    input.value = state.apiKey;
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      state.apiKey = input.value.trim();
      if (state.apiKey) localStorage.setItem(KEY_STORAGE, state.apiKey);
      else localStorage.removeItem(KEY_STORAGE);
      setKeyStatus(state.apiKey ? "Checking the key…" : "Key removed.");
      onKeyChanged();
    });
    $("forget-key").addEventListener("click", () => {
      input.value = "";
      state.apiKey = "";
      localStorage.removeItem(KEY_STORAGE);
      setKeyStatus("Key forgotten: removed from this browser.");
      onKeyChanged();
    });
    $("toggle-key").addEventListener("click", (event) => {
      const show = input.type === "password";
      input.type = show ? "text" : "password";
      event.currentTarget.textContent = show ? "Hide" : "Show";
      event.currentTarget.setAttribute("aria-pressed", String(show));
    });
  }

  function onKeyChanged() {
    refreshBalance();
    scheduleQuote(0);
    loadTasks(true);
  }

  // ---------------------------------------------------------------- form

  const isMulti = () => $("kind-multi").checked;

  function initForm() {
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
      state.elements.push({ id: nextId++, name: "", description: "", images: [] });
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

  function shotTotal() {
    return state.shots.reduce((sum, shot) => sum + (parseInt(shot.duration, 10) || 0), 0);
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
          const image = { id: nextId++, name: file.name, preview: URL.createObjectURL(file), url: null };
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
    const form = new FormData();
    form.append("uploadPath", "playground");
    form.append("file", file, file.name);
    state.uploads += 1;
    updateSubmit();
    try {
      const data = await api("POST", "/api/file-stream-upload", form);
      return data.downloadUrl;
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

  // The Market createTask body for what the form holds; values are sent as typed so the server's messages apply.
  function buildBody() {
    const input = {};
    const multi = isMulti();
    const asNumber = (text) => (/^\s*\d+\s*$/.test(text) ? parseInt(text, 10) : text);
    if (multi) {
      input.multi_shots = true;
      input.multi_prompt = state.shots.map((shot) => ({ prompt: shot.prompt, duration: asNumber(shot.duration) }));
    } else {
      input.prompt = $("prompt").value;
    }
    const negative = $("negative-prompt").value;
    if (negative.trim()) input.negative_prompt = negative;
    input.duration = String(asNumber($("duration").value));
    input.mode = $("mode").value;
    if ($("aspect").value) input.aspect_ratio = $("aspect").value;
    input.sound = multi ? true : $("sound").checked;
    const images = [];
    if (state.frames.first && state.frames.first.url) images.push(state.frames.first.url);
    // A last frame goes with a first frame only (the last frame's input is off until there is one).
    if (!multi && images.length && state.frames.last && state.frames.last.url) images.push(state.frames.last.url);
    if (images.length) input.image_urls = images;
    if (state.elements.length) {
      input.kling_elements = state.elements.map((element) => ({
        name: element.name,
        description: element.description,
        element_input_urls: element.images.filter((i) => i.url).map((i) => i.url),
      }));
    }
    return { model: MODEL, input };
  }

  // ---------------------------------------------------------------- live validation and price

  function scheduleQuote(delay = QUOTE_DELAY_MS) {
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
      data = await api("POST", "/api/v1/jobs/quote", buildBody());
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
  function showIssues(issues) {
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

  function updateSubmit() {
    const button = $("submit");
    const busy = state.uploads > 0;
    button.disabled = busy || state.submitting === true;
    button.textContent = state.submitting ? "Submitting…" : busy ? "Waiting for uploads…" : "Generate video";
  }

  // ---------------------------------------------------------------- submit and progress

  async function submit() {
    if (!state.apiKey) {
      setKeyStatus("Enter and save your API key first.", true);
      $("api-key").focus();
      return;
    }
    state.submitting = true;
    updateSubmit();
    let data;
    try {
      data = await api("POST", "/api/v1/jobs/createTask", buildBody());
    } catch (error) {
      state.submitting = false;
      updateSubmit();
      if (error.code === 422) {
        showIssues(splitIssues(error.message));
        const first = document.querySelector("#issues-list a");
        (first || $("issues")).focus();
      } else {
        showIssues([{ field: "*", message: `${error.message} (code ${error.code})` }]);
      }
      return;
    }
    state.submitting = false;
    updateSubmit();
    showResultFor({ taskId: data.taskId, state: "waiting", progress: 0 });
    $("result-title").focus();
    watch(data.taskId);
    refreshBalance();
    scheduleQuote(0);
    loadTasks(true);
  }

  async function watch(taskId) {
    if (state.watching) state.watching.abort();
    const controller = new AbortController();
    state.watching = controller;
    let last = null;
    try {
      const response = await fetch(`/api/v1/jobs/${encodeURIComponent(taskId)}/events`, {
        headers: { Authorization: `Bearer ${state.apiKey}` },
        signal: controller.signal,
      });
      if (!response.ok || !response.body) throw new Error(`events: HTTP ${response.status}`);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = parseEvent(block);
          if (event && event.event === "status") {
            last = JSON.parse(event.data);
            showResultFor(last);
          }
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    // The stream ended (or was never there): poll until the task is finished.
    while (!controller.signal.aborted && !(last && isTerminal(last.state))) {
      try {
        last = await api("GET", `/api/v1/jobs/recordInfo?taskId=${encodeURIComponent(taskId)}`);
        showResultFor(last);
      } catch (error) {
        if (error.code !== 429) {
          showResultError(error.message);
          return;
        }
      }
      if (!isTerminal(last && last.state)) await sleep(1500);
    }
    if (!controller.signal.aborted) {
      refreshBalance();
      scheduleQuote(0);
      loadTasks(true);
    }
  }

  function parseEvent(block) {
    const event = { event: "message", data: "" };
    let any = false;
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event.event = value;
      if (field === "data") event.data += (event.data ? "\n" : "") + value;
      any = true;
    }
    return any ? event : null;
  }

  const isTerminal = (s) => s === "success" || s === "fail";
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  const STATE_LABELS = { waiting: "Queued", generating: "Generating", success: "Done", fail: "Failed" };

  // Shows one task (recordInfo data) in the result panel.
  function showResultFor(task) {
    const previous = state.currentTask;
    const sameTask = previous && previous.taskId === task.taskId;
    state.currentTask = task;
    // The states this task went through while shown (also read by the UI test).
    if (!sameTask) state.seenStates = [];
    if (!state.seenStates.includes(task.state)) state.seenStates.push(task.state);
    $("result").dataset.states = state.seenStates.join(" ");
    $("result-empty").hidden = true;
    $("result").hidden = false;
    const badge = $("result-state");
    badge.textContent = STATE_LABELS[task.state] || task.state;
    badge.className = `badge state-${task.state}`;
    $("result-task").textContent = task.taskId;
    const progress = task.state === "success" ? 100 : Math.max(0, Math.min(100, task.progress || 0));
    $("progress").setAttribute("aria-valuenow", String(progress));
    $("progress-bar").style.width = `${progress}%`;
    $("progress").hidden = task.state === "fail";
    const label = {
      waiting: "Waiting in the queue",
      generating: `Rendering: ${progress}%`,
      success: "Finished",
      fail: "Failed",
    }[task.state] || task.state;
    // Announce state changes, and progress in steps of 25, without flooding screen readers.
    const lastAnnounced = sameTask ? state.announced : null;
    const step = task.state === "generating" ? Math.floor(progress / 25) : -1;
    const announce = `${task.state}:${step}`;
    if (announce !== lastAnnounced) {
      $("progress-label").textContent = label;
      state.announced = announce;
    }
    $("progress-label").dataset.progress = String(progress);
    showEngine($("engine-note"), task.engine);
    $("cancel-task").hidden = isTerminal(task.state);
    const error = $("result-error");
    if (task.state === "fail") {
      error.hidden = false;
      error.textContent = `${task.failMsg || "The task failed."}${task.failCode ? ` (code ${task.failCode})` : ""}${task.consumeCredits === 0 ? " The credits were refunded." : ""}`;
    } else {
      error.hidden = true;
    }
    const result = parseResult(task);
    const link = $("result-link");
    const wrap = $("player-wrap");
    const player = $("player");
    if (task.state === "success" && result.video) {
      link.href = result.video;
      link.hidden = false;
      wrap.hidden = false;
      if (player.dataset.src !== result.video) {
        player.dataset.src = result.video;
        if (result.cover) player.poster = result.cover; else player.removeAttribute("poster");
        player.src = result.video;
        player.load();
      }
    } else {
      link.hidden = true;
      wrap.hidden = true;
      if (player.dataset.src) {
        player.removeAttribute("src");
        delete player.dataset.src;
        player.load();
      }
    }
    const params = parseParams(task.param);
    const facts = $("result-facts");
    facts.replaceChildren();
    const addFact = (name, value) => { if (value !== undefined && value !== null && value !== "") facts.append(el("dt", { text: name }), el("dd", { text: String(value) })); };
    addFact("Cost", `${formatNumber(task.consumeCredits)} credits`);
    addFact("Engine", task.engine || "not reported");
    addFact("Settings", params.summary);
    if (task.costTime) addFact("Render time", `${(task.costTime / 1000).toFixed(1)} s`);
    addFact("Prompt", params.prompt);
  }

  function showResultError(message) {
    const error = $("result-error");
    error.hidden = false;
    error.textContent = message;
  }

  // Names the engine; a preview render says plainly that it is not Kling output.
  function showEngine(node, engine) {
    node.hidden = !engine;
    node.classList.toggle("is-preview", engine === "preview");
    if (!engine) return;
    node.replaceChildren();
    if (engine === "preview") {
      node.append(
        el("strong", { text: "Preview render" }),
        " by KlingKit's built-in preview engine: a deterministic test video that follows the request, not Kling output.",
      );
    } else {
      node.append("Made by the ", el("strong", { text: engine }), " engine.");
    }
  }

  function parseResult(task) {
    if (!task.resultJson) return {};
    try {
      const result = JSON.parse(task.resultJson);
      return { video: (result.resultUrls || [])[0], cover: result.coverUrl };
    } catch (_) {
      return {};
    }
  }

  // What the task asked for, from its stored create body (any dialect's).
  function parseParams(param) {
    let body = {};
    try { body = JSON.parse(param || "{}") || {}; } catch (_) { /* keep empty */ }
    const input = body.input && typeof body.input === "object" ? body.input : body;
    const shots = input.multi_prompt || input.shots;
    let prompt = input.prompt || "";
    if (!prompt && Array.isArray(shots)) prompt = shots.map((s, i) => `${i + 1}. ${s.prompt} (${s.duration} s)`).join("  ");
    const duration = input.duration || input.seconds;
    const parts = [];
    if (input.mode) parts.push(String(input.mode));
    else if (input.size) parts.push(String(input.size));
    if (duration) parts.push(`${duration} s`);
    if (input.aspect_ratio) parts.push(String(input.aspect_ratio));
    if (Array.isArray(shots) && shots.length) parts.push(`${shots.length} shots`);
    const sound = input.sound ?? input.audio;
    if (sound !== undefined) parts.push(sound === true || sound === "true" ? "sound" : "silent");
    return { prompt, summary: parts.join(" · ") };
  }

  function initResult() {
    $("cancel-task").addEventListener("click", async () => {
      const task = state.currentTask;
      if (!task) return;
      try {
        showResultFor(await api("POST", `/api/v1/jobs/${encodeURIComponent(task.taskId)}/cancel`));
      } catch (error) {
        showResultError(error.message);
      }
      refreshBalance();
      loadTasks(true);
    });
  }

  // ---------------------------------------------------------------- task history

  async function loadTasks(reset) {
    const list = $("task-list");
    const status = $("tasks-status");
    const more = $("more-tasks");
    if (!state.apiKey) {
      list.replaceChildren();
      more.hidden = true;
      status.textContent = "Save your API key to see your tasks.";
      return;
    }
    if (reset) state.tasksPage = 1;
    let page;
    try {
      page = await api("GET", `/api/v1/jobs/list?pageNum=${state.tasksPage}&pageSize=${PAGE_SIZE}`);
    } catch (error) {
      status.textContent = `Could not load your tasks: ${error.message}`;
      return;
    }
    if (reset) list.replaceChildren();
    for (const task of page.tasks) list.append(renderTask(task));
    more.hidden = !page.hasMore;
    status.textContent = list.children.length ? `${list.children.length} task(s) shown, newest first.` : "No tasks yet: your videos will be listed here.";
  }

  function renderTask(task) {
    const params = parseParams(task.param);
    const result = parseResult(task);
    const visual = result.cover
      ? el("img", { className: "task-thumb", src: result.cover, alt: "", loading: "lazy" })
      : el("div", { className: `task-thumb placeholder state-${task.state}`, "aria-hidden": "true", text: task.state === "fail" ? "!" : "▶" });
    const badge = el("span", { className: `badge state-${task.state}`, text: STATE_LABELS[task.state] || task.state });
    const engine = task.engine
      ? el("span", { className: task.engine === "preview" ? "engine-tag is-preview" : "engine-tag", text: task.engine === "preview" ? "preview engine · not Kling output" : `${task.engine} engine` })
      : el("span", { className: "engine-tag", text: "engine not reported" });
    const meta = el("p", { className: "task-meta" }, [
      badge,
      el("span", { text: `${formatNumber(task.consumeCredits)} credits` }),
      engine,
      params.summary ? el("span", { text: params.summary }) : null,
      el("time", { dateTime: new Date(task.createTime).toISOString(), text: formatDate(task.createTime) }),
    ]);
    const actions = el("div", { className: "task-actions" });
    if (task.state === "success" && result.video) {
      const play = el("button", { type: "button", className: "button small", text: "Play here" });
      play.setAttribute("aria-label", `Play task ${task.taskId} here`);
      play.addEventListener("click", () => {
        if (state.watching) state.watching.abort();
        showResultFor(task);
        $("result-title").focus();
        $("player").play().catch(() => {});
      });
      actions.append(play, el("a", { className: "button ghost small", href: result.video, target: "_blank", rel: "noopener", text: "Video file" }));
    } else if (!isTerminal(task.state)) {
      const follow = el("button", { type: "button", className: "button small", text: "Follow" });
      follow.addEventListener("click", () => { showResultFor(task); $("result-title").focus(); watch(task.taskId); });
      actions.append(follow);
    }
    const body = el("div", { className: "task-body" }, [
      el("p", { className: "task-prompt", text: params.prompt || "(no prompt)" }),
      meta,
      task.state === "fail" ? el("p", { className: "task-failure", text: `${task.failMsg}${task.failCode ? ` (code ${task.failCode})` : ""}` }) : null,
      el("p", { className: "task-id-line" }, [el("code", { text: task.taskId })]),
    ]);
    return el("li", { className: "task", "data-task-id": task.taskId, "data-state": task.state, "data-engine": task.engine || "" }, [visual, body, actions]);
  }

  function initTasks() {
    $("refresh-tasks").addEventListener("click", () => loadTasks(true));
    $("more-tasks").addEventListener("click", () => {
      state.tasksPage += 1;
      loadTasks(false);
    });
  }

  // ---------------------------------------------------------------- formatting

  const formatNumber = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : String(n ?? "–"));
  const formatDate = (ms) => new Date(ms).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });

  // ---------------------------------------------------------------- start

  initKey();
  initForm();
  initResult();
  initTasks();
  onKeyChanged();
})();
