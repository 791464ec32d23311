// KlingKit Playground: the API key card (save, show, forget; kept in localStorage) and the balance in the header.

import { KEY_STORAGE, state } from "./playground-state.js";
import { $, formatNumber } from "./playground-dom.js";
import { getCredits } from "./playground-api.js";

export function setKeyStatus(text, isError = false) {
  const status = $("key-status");
  status.textContent = text;
  status.classList.toggle("is-error", isError);
}

export async function refreshBalance() {
  const balance = $("balance");
  if (!state.apiKey) {
    balance.textContent = "No API key yet";
    return;
  }
  try {
    const credits = await getCredits();
    balance.textContent = `Balance: ${formatNumber(credits)} credits`;
    setKeyStatus("Key accepted.");
  } catch (error) {
    balance.textContent = "Balance unavailable";
    if (error.status === 401) setKeyStatus(`This key is not accepted: ${error.message}`, true);
  }
}

/** Wires the key form; `onKeyChanged` runs after the key is saved or forgotten. */
export function initKey(onKeyChanged) {
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
