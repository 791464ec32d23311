// KlingKit Playground: the server's Market API as the page uses it. Every request carries the saved key as
// `Authorization: Bearer`; answers are unwrapped from the `{code, msg, data}` envelope, and failures become an
// APIError with the HTTP status and the envelope's code. Also reads the task records these endpoints answer with.

import { state } from "./playground-state.js";

class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const authHeader = () => ({ Authorization: `Bearer ${state.apiKey}` });

/** Sends `body` (JSON, or FormData as is) and answers the envelope's `data`. */
async function api(method, path, body) {
  if (!state.apiKey) throw new APIError(401, 401, "Enter your API key first.");
  const headers = authHeader();
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

// ---------------------------------------------------------------- endpoints

export const getCredits = () => api("GET", "/api/v1/chat/credit");
export const quoteTask = (body) => api("POST", "/api/v1/jobs/quote", body);
export const createTask = (body) => api("POST", "/api/v1/jobs/createTask", body);
export const getTask = (taskId) => api("GET", `/api/v1/jobs/recordInfo?taskId=${encodeURIComponent(taskId)}`);
export const cancelTask = (taskId) => api("POST", `/api/v1/jobs/${encodeURIComponent(taskId)}/cancel`);
export const listTasks = (pageNum, pageSize) => api("GET", `/api/v1/jobs/list?pageNum=${pageNum}&pageSize=${pageSize}`);

/** Uploads an image to this server's uploads and answers its download URL. */
export async function uploadFile(file) {
  const form = new FormData();
  form.append("uploadPath", "playground");
  form.append("file", file, file.name);
  const data = await api("POST", "/api/file-stream-upload", form);
  return data.downloadUrl;
}

/** The task's Server-Sent Events stream (`event: status` per change), as the raw fetch response. */
export const openEvents = (taskId, signal) =>
  fetch(`/api/v1/jobs/${encodeURIComponent(taskId)}/events`, { headers: authHeader(), signal });

// ---------------------------------------------------------------- reading answers

// "field: message; field: message" (the server's one-line summary) → [{field, message}].
export function splitIssues(text) {
  const parts = String(text).split(/; (?=[A-Za-z_][\w.\[\]-]*: )/);
  return parts.map((part) => {
    const match = /^([A-Za-z_][\w.\[\]-]*): ([\s\S]*)$/.exec(part);
    return match ? { field: match[1], message: match[2] } : { field: "*", message: part };
  });
}

export const isTerminal = (s) => s === "success" || s === "fail";

/** The video and cover URLs of a task record's `resultJson`. */
export function parseResult(task) {
  if (!task.resultJson) return {};
  try {
    const result = JSON.parse(task.resultJson);
    return { video: (result.resultUrls || [])[0], cover: result.coverUrl };
  } catch (_) {
    return {};
  }
}

// What the task asked for, from its stored create body (any dialect's).
export function parseParams(param) {
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
