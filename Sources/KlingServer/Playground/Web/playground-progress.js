// KlingKit Playground: a task in progress. Submits the form (POST /api/v1/jobs/createTask), follows the task on
// its Server-Sent Events stream (/api/v1/jobs/{id}/events; polling recordInfo when the stream ends early) and
// shows it in the result panel: state, progress bar, engine, player, facts; and cancels it.

import { state } from "./playground-state.js";
import { $, el, STATE_LABELS, formatNumber } from "./playground-dom.js";
import { cancelTask, createTask, getTask, isTerminal, openEvents, parseParams, parseResult, splitIssues } from "./playground-api.js";
import { setKeyStatus, refreshBalance } from "./playground-key.js";
import { buildBody } from "./playground-request.js";
import { scheduleQuote, showIssues, updateSubmit } from "./playground-quote.js";
import { loadTasks } from "./playground-tasks.js";

export async function submit() {
  if (!state.apiKey) {
    setKeyStatus("Enter and save your API key first.", true);
    $("api-key").focus();
    return;
  }
  state.submitting = true;
  updateSubmit();
  let data;
  try {
    data = await createTask(buildBody());
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
    const response = await openEvents(taskId, controller.signal);
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
      last = await getTask(taskId);
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

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

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

export function initResult() {
  $("cancel-task").addEventListener("click", async () => {
    const task = state.currentTask;
    if (!task) return;
    try {
      showResultFor(await cancelTask(task.taskId));
    } catch (error) {
      showResultError(error.message);
    }
    refreshBalance();
    loadTasks(true);
  });
}

// The task list's "Play here": shows a finished task and plays it, no longer following another.
export function playTask(task) {
  if (state.watching) state.watching.abort();
  showResultFor(task);
  $("result-title").focus();
  $("player").play().catch(() => {});
}

// The task list's "Follow": shows a task still running and follows it.
export function followTask(task) {
  showResultFor(task);
  $("result-title").focus();
  watch(task.taskId);
}
