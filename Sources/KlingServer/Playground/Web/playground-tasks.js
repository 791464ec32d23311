// KlingKit Playground: "Your tasks", the caller's tasks from GET /api/v1/jobs/list, newest first, a page at a time,
// each with its state, cost, engine and links. Playing or following a task is the result panel's
// (playground-progress.js); the entry module hands those actions in through initTasks.

import { state } from "./playground-state.js";
import { $, el, STATE_LABELS, formatDate, formatNumber } from "./playground-dom.js";
import { isTerminal, listTasks, parseParams, parseResult } from "./playground-api.js";

const PAGE_SIZE = 10;

// What the rows' "Play here" and "Follow" buttons do, each given the task; set by initTasks.
const handlers = { play: () => {}, follow: () => {} };

export async function loadTasks(reset) {
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
    page = await listTasks(state.tasksPage, PAGE_SIZE);
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
    play.addEventListener("click", () => handlers.play(task));
    actions.append(play, el("a", { className: "button ghost small", href: result.video, target: "_blank", rel: "noopener", text: "Video file" }));
  } else if (!isTerminal(task.state)) {
    const follow = el("button", { type: "button", className: "button small", text: "Follow" });
    follow.addEventListener("click", () => handlers.follow(task));
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

export function initTasks({ play, follow }) {
  handlers.play = play;
  handlers.follow = follow;
  $("refresh-tasks").addEventListener("click", () => loadTasks(true));
  $("more-tasks").addEventListener("click", () => {
    state.tasksPage += 1;
    loadTasks(false);
  });
}
