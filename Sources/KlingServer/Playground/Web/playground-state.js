// KlingKit Playground: the page's shared state (imported by every module that reads or changes it).
// One mutable object rather than many module variables, so each module sees the others' changes.

/** Where the API key is kept in this browser. */
export const KEY_STORAGE = "klingkit.playground.apiKey";

let nextId = 1;

/** A fresh id for a shot, an element or an image (unique on the page, used in element ids). */
export const newId = () => nextId++;

export function newShot(prompt, duration) {
  return { id: newId(), prompt, duration: String(duration) };
}

export const state = {
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
