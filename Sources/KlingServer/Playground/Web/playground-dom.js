// KlingKit Playground: small DOM and text helpers shared by the modules (no state, no requests).

export const $ = (id) => document.getElementById(id);

/** A new element: `text`, `className`, `data-*`, `aria-*` and `role` set as such, other props as properties. */
export const el = (tag, props = {}, children = []) => {
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

/** What a task's state is called on the page. */
export const STATE_LABELS = { waiting: "Queued", generating: "Generating", success: "Done", fail: "Failed" };

export const formatNumber = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : String(n ?? "–"));
export const formatDate = (ms) => new Date(ms).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
