// KlingKit Playground: reads what the form holds into the Market createTask body (also the body quoted live).

import { state } from "./playground-state.js";
import { $ } from "./playground-dom.js";

const MODEL = "kling-3.0/video";

export const isMulti = () => $("kind-multi").checked;

export function shotTotal() {
  return state.shots.reduce((sum, shot) => sum + (parseInt(shot.duration, 10) || 0), 0);
}

// The Market createTask body for what the form holds; values are sent as typed so the server's messages apply.
export function buildBody() {
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
