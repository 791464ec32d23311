// KlingKit Playground: the page's entry module, loaded by index.html as <script type="module"> (deferred; no build
// step, no dependencies, no other origin). It wires the modules together and starts the page; each holds one part:
//
//   playground-state.js     the shared state (API key, shots, elements, frames, the task shown)
//   playground-dom.js       DOM and text helpers
//   playground-api.js       the Market API: fetch wrapper with the Bearer key, endpoints, reading task records
//   playground-key.js       the API key card and the balance
//   playground-request.js   the form's contents as a createTask body
//   playground-quote.js     live validation and price (POST /api/v1/jobs/quote), messages next to the fields
//   playground-form.js      the form's controls: storyboard shots, frames, elements and their uploads
//   playground-progress.js  submit, follow a task on its /events stream, the result panel and its progress bar
//   playground-tasks.js     the task list (GET /api/v1/jobs/list)
//
// Validation and prices come from the server itself, so the page shows exactly the rules createTask applies.

import { initKey, refreshBalance } from "./playground-key.js";
import { scheduleQuote } from "./playground-quote.js";
import { initForm } from "./playground-form.js";
import { followTask, initResult, playTask } from "./playground-progress.js";
import { initTasks, loadTasks } from "./playground-tasks.js";

// After the key is saved or forgotten: the balance, the price and the task list are the new key's.
function onKeyChanged() {
  refreshBalance();
  scheduleQuote(0);
  loadTasks(true);
}

initKey(onKeyChanged);
initForm();
initResult();
initTasks({ play: playTask, follow: followTask });
onKeyChanged();
