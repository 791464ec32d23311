#!/usr/bin/env python3
"""Drives the KlingKit playground (GET /) in headless Chromium against a real kling-server.

Starts the given kling-server binary on a temporary data directory with one worker, creates an account and an API
key with the admin commands, then through the page: saves the key, renders a text-to-video and checks the video
element plays, shows the validation messages of a storyboard whose shots do not add up, renders a multi-shot video
with an uploaded first frame, and checks the task list. Screenshots at 1280 and 390 px go to the artifacts folder.
Exits 1 on the first failed check.

    python3 Tests/Playground/playground_ui_test.py --server .build/debug/kling-server --artifacts test-artifacts/playground
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

RENDER_TIMEOUT = 600  # seconds; the machine may be loaded, renders are short.
UI_TIMEOUT = 60


class Check:
    """Counts named checks and reports them."""

    def __init__(self):
        self.passed = 0

    def ok(self, name):
        self.passed += 1
        print(f"  ok  {name}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def admin(server, data_dir, *args):
    out = subprocess.run([server, *args, "--data-dir", data_dir], check=True, capture_output=True, text=True, timeout=120)
    return out.stdout.strip().splitlines()


def wait_for(driver, what, condition, timeout=UI_TIMEOUT):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: condition(d))
    except TimeoutException:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None


def text(driver, element_id):
    return driver.find_element(By.ID, element_id).text


def js(driver, script, *args):
    return driver.execute_script(script, *args)


def click(driver, element):
    """Scrolls the element to the middle of the window (clear of the sticky header) and clicks it like a user."""
    js(driver, "arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def set_field(driver, element, value):
    js(driver, "arguments[0].scrollIntoView({block: 'center'})", element)
    element.clear()
    element.send_keys(value)


def screenshot(driver, path, width, full_page=True):
    """Sets the window to `width` CSS px and saves the page (the whole height when full_page)."""
    driver.set_window_size(width, 900)
    js(driver, "window.scrollTo(0, 0)")
    time.sleep(0.3)
    if full_page:
        height = js(driver, "return Math.ceil(document.documentElement.scrollHeight)")
        driver.set_window_size(width, min(max(height, 600), 6000))
        time.sleep(0.3)
    driver.save_screenshot(path)
    driver.set_window_size(width, 900)


def make_image(path, size, color):
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"color=c={color}:s={size}",
         "-vf", "drawbox=x=iw/4:y=ih/4:w=iw/2:h=ih/2:color=white@0.8:t=fill", "-frames:v", "1", path],
        check=True, timeout=60)


def expect_video_plays(driver, check, label):
    wait_for(driver, f"{label}: video element to load its data",
             lambda d: js(d, "const v = document.getElementById('player'); return v.readyState >= 2 && v.duration > 0"), 120)
    js(driver, "document.getElementById('player').muted = true; return document.getElementById('player').play()")
    wait_for(driver, f"{label}: video to play past 0.5 s",
             lambda d: js(d, "const v = document.getElementById('player'); return !v.paused && v.currentTime > 0.5"), 60)
    state = js(driver, "const v = document.getElementById('player');"
                       "return {t: v.currentTime, paused: v.paused, ready: v.readyState, error: v.error && v.error.code, w: v.videoWidth}")
    assert state["error"] is None and state["ready"] >= 2 and state["w"] > 0, state
    check.ok(f"{label}: the video element plays (currentTime {state['t']:.2f} s, readyState {state['ready']}, {state['w']} px wide)")


def expect_finished(driver, check, label):
    wait_for(driver, f"{label}: task to finish", lambda d: text(d, "result-state") in ("DONE", "FAILED", "Done", "Failed"), RENDER_TIMEOUT)
    state = text(driver, "result-state").lower()
    if state != "done":
        raise AssertionError(f"{label}: the task failed: {text(driver, 'result-error')}")
    seen = driver.find_element(By.ID, "result").get_attribute("data-states").split()
    assert seen[-1] == "success" and "generating" in seen, f"{label}: states shown {seen}"
    assert js(driver, "return document.getElementById('progress').getAttribute('aria-valuenow')") == "100"
    note = text(driver, "engine-note")
    assert "Preview render" in note and "not Kling output" in note, f"{label}: engine note {note!r}"
    check.ok(f"{label}: progress shown live ({' → '.join(seen)}), finished, engine named: {note[:60]}…")


def run(driver, base, key, artifacts, scratch, check):
    driver.set_window_size(1280, 900)
    driver.get(base + "/")
    assert driver.title == "KlingKit Playground", driver.title
    screenshot(driver, os.path.join(artifacts, "desktop-0-empty.png"), 1280, full_page=False)

    # Keyboard: the first Tab reaches the skip link, which leads to the form.
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert js(driver, "return document.activeElement.className") == "skip-link"
    assert js(driver, "return getComputedStyle(document.activeElement).outlineStyle") != "none"
    check.ok("keyboard: Tab reaches the skip link, with a visible focus outline")

    # The API key is saved in localStorage and the balance appears.
    set_field(driver, driver.find_element(By.ID, "api-key"), key)
    click(driver, driver.find_element(By.ID, "save-key"))
    wait_for(driver, "the balance", lambda d: "100,000 credits" in text(d, "balance"))
    assert js(driver, "return localStorage.getItem('klingkit.playground.apiKey')") == key
    check.ok("API key saved in localStorage; balance shown")

    # 1. Text to video.
    set_field(driver, driver.find_element(By.ID, "prompt"), 'A red fox runs through fresh snow at dawn, camera pans right. Narrator: "Morning in the north."')
    set_field(driver, driver.find_element(By.ID, "duration"), "3")
    wait_for(driver, "the quote for 3 s std with sound", lambda d: text(d, "quote-price") == "45 credits")
    assert "3 s × 10 (std) × 1.5 sound" in text(driver, "quote-detail"), text(driver, "quote-detail")
    check.ok("live quote: 45 credits for 3 s std with sound")
    click(driver, driver.find_element(By.ID, "submit"))
    wait_for(driver, "the task id", lambda d: text(d, "result-task").startswith("task_"))
    first_task = text(driver, "result-task")
    expect_finished(driver, check, "text-to-video")
    expect_video_plays(driver, check, "text-to-video")
    wait_for(driver, "the balance after the charge", lambda d: "99,955 credits" in text(d, "balance"))
    screenshot(driver, os.path.join(artifacts, "desktop-1-text-to-video.png"), 1280)

    # 2. A storyboard whose shots do not add up: the server's messages appear next to the fields.
    click(driver, driver.find_element(By.CSS_SELECTOR, "label[for=kind-multi]"))
    assert driver.find_element(By.ID, "sound").get_attribute("disabled") is not None
    set_field(driver, driver.find_element(By.ID, "duration"), "5")
    shots = driver.find_elements(By.CSS_SELECTOR, "#shots .shot")
    assert len(shots) == 2, len(shots)
    prompts = ["Wide shot: a lighthouse on a cliff at dusk, camera pushes in", 'Close-up: the keeper says "Light the lamp."']
    for shot, prompt, seconds in zip(shots, prompts, ["3", "3"]):
        set_field(driver, shot.find_element(By.TAG_NAME, "textarea"), prompt)
        set_field(driver, shot.find_element(By.CSS_SELECTOR, "input[type=number]"), seconds)
    wait_for(driver, "the shot-sum message", lambda d: "add up to 6 s" in text(d, "shots-error"))
    issues = text(driver, "issues-list")
    assert "Storyboard: shot durations must add up to input.duration (5 s), but they add up to 6 s" in issues, issues
    assert "First frame" in issues or "Frames" in issues, issues
    assert "exactly 1 image" in text(driver, "first-frame-error"), text(driver, "first-frame-error")
    assert text(driver, "shot-sum").startswith("Shots add up to 6 s of 5 s")
    assert driver.find_element(By.ID, "first-frame-input").get_attribute("aria-invalid") == "true"
    assert text(driver, "quote-price") == "Not ready yet"
    check.ok("validation: shots adding up to 6 s of 5 s and the missing first frame are named next to their fields")
    screenshot(driver, os.path.join(artifacts, "desktop-2-validation.png"), 1280)
    screenshot(driver, os.path.join(artifacts, "phone-2-validation.png"), 390)

    # Add a shot, remove it again (keyboard focus moves sensibly), then fix the durations and add a first frame.
    click(driver, driver.find_element(By.ID, "add-shot"))
    assert len(driver.find_elements(By.CSS_SELECTOR, "#shots .shot")) == 3
    assert js(driver, "return document.activeElement.id").endswith("-prompt")
    click(driver, driver.find_elements(By.CSS_SELECTOR, "#shots .remove-shot")[2])
    assert len(driver.find_elements(By.CSS_SELECTOR, "#shots .shot")) == 2
    set_field(driver, driver.find_elements(By.CSS_SELECTOR, "#shots input[type=number]")[1], "2")
    frame = os.path.join(scratch, "first-frame.png")
    make_image(frame, "960x540", "0x2b6cb0")
    driver.find_element(By.ID, "first-frame-input").send_keys(frame)
    wait_for(driver, "the first frame upload", lambda d: "uploaded" in text(d, "first-frame-status"))
    # An element with two uploaded reference images, referenced from shot 2 as @lamp.
    click(driver, driver.find_element(By.ID, "add-element"))
    element = driver.find_element(By.CSS_SELECTOR, "#elements .element")
    assert js(driver, "return document.activeElement.classList.contains('element-name')")
    set_field(driver, element.find_element(By.CSS_SELECTOR, ".element-name"), "lamp")
    set_field(driver, element.find_element(By.CSS_SELECTOR, ".element-description"), "A brass oil lamp with a glass chimney")
    references = []
    for index, color in enumerate(["0xd69e2e", "0xb7791f"]):
        references.append(os.path.join(scratch, f"lamp-{index}.png"))
        make_image(references[-1], "600x600", color)
    element.find_element(By.CSS_SELECTOR, ".element-images").send_keys("\n".join(references))
    wait_for(driver, "both element images uploaded", lambda d: "2 image(s) uploaded" in d.find_element(By.CSS_SELECTOR, ".element-images-status").text)
    assert len(element.find_elements(By.CSS_SELECTOR, ".thumbs .thumb")) == 2
    shot_two = driver.find_elements(By.CSS_SELECTOR, "#shots textarea")[1]
    set_field(driver, shot_two, 'Close-up: the keeper lights @lamp and says "Light the lamp."')
    wait_for(driver, "the quote for 5 s multi-shot", lambda d: text(d, "quote-price") == "75 credits")
    assert not driver.find_element(By.ID, "issues").is_displayed()
    assert text(driver, "shots-error") == ""
    check.ok("storyboard fixed: add/remove shot, first frame and two element images uploaded, issues cleared, quote 75 credits")
    click(driver, driver.find_element(By.ID, "submit"))
    wait_for(driver, "a new task id", lambda d: text(d, "result-task").startswith("task_") and text(d, "result-task") != first_task)
    second_task = text(driver, "result-task")
    expect_finished(driver, check, "multi-shot")
    expect_video_plays(driver, check, "multi-shot")
    facts = text(driver, "result-facts")
    assert "2 shots" in facts and "@lamp" in facts, facts

    # 3. The task list shows both, newest first, with state, cost, engine and links.
    wait_for(driver, "both tasks in the list, finished",
             lambda d: js(d, "return [...document.querySelectorAll('#task-list .task')].filter(t => t.dataset.state === 'success').length") == 2)
    rows = driver.find_elements(By.CSS_SELECTOR, "#task-list .task")
    assert [r.get_attribute("data-task-id") for r in rows] == [second_task, first_task]
    for row, credits in zip(rows, ["75 credits", "45 credits"]):
        row_text = row.text
        assert "DONE" in row_text.upper() and credits in row_text and "preview engine · not Kling output" in row_text, row_text
        assert row.get_attribute("data-engine") == "preview"
        link = row.find_element(By.LINK_TEXT, "Video file").get_attribute("href")
        assert "/files/results/" in link and "signature=" in link, link
    assert "Wide shot: a lighthouse" in rows[0].text and "red fox" in rows[1].text
    check.ok("task list: both tasks newest first with state, cost, engine (preview, not Kling output) and video links")

    # Play an older task from the list.
    click(driver, rows[1].find_element(By.CSS_SELECTOR, ".task-actions button"))
    wait_for(driver, "the first task in the player", lambda d: text(d, "result-task") == first_task)
    expect_video_plays(driver, check, "play from the list")

    screenshot(driver, os.path.join(artifacts, "desktop-3-tasks.png"), 1280)
    screenshot(driver, os.path.join(artifacts, "phone-3-tasks.png"), 390)
    driver.set_window_size(390, 844)
    time.sleep(0.3)
    overflow = js(driver, "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px at 390 px"
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(os.path.join(artifacts, "phone-0-top.png"))
    check.ok("phone width (390 px): no horizontal scrolling")

    # No script errors or Content-Security-Policy violations in the console (HTTP error statuses are expected).
    severe = [e["message"] for e in driver.get_log("browser")
              if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]]
    assert not severe, severe
    check.ok("browser console: no script errors or CSP violations")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=".build/debug/kling-server")
    parser.add_argument("--artifacts", default="test-artifacts/playground")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--chromedriver", default=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    args = parser.parse_args()

    server = os.path.abspath(args.server)
    artifacts = os.path.abspath(args.artifacts)
    os.makedirs(artifacts, exist_ok=True)
    for name in os.listdir(artifacts):
        if name.endswith((".png", ".log")):
            os.remove(os.path.join(artifacts, name))
    scratch = tempfile.mkdtemp(prefix="kling-playground-")
    data_dir = os.path.join(scratch, "data")
    check = Check()
    process = driver = None
    log_path = os.path.join(artifacts, "server.log")
    failed = False
    try:
        print("playground UI test", flush=True)
        admin(server, data_dir, "accounts", "create", "playground", "--credits", "100000")
        key = admin(server, data_dir, "keys", "create", "--account", "playground")[-1].strip()
        port = free_port()
        base = f"http://localhost:{port}"
        env = dict(os.environ, KLING_LOG_LEVEL="info")
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                [server, "serve", "--data-dir", data_dir, "--port", str(port), "--workers", "1"],
                stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.time() > deadline:
                raise AssertionError(f"kling-server did not start (see {log_path})")
            time.sleep(0.2)

        options = webdriver.ChromeOptions()
        options.binary_location = args.chromium
        for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--autoplay-policy=no-user-gesture-required", "--hide-scrollbars", "--window-size=1280,900",
                     "--force-device-scale-factor=1", "--lang=en-US"]:
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(args.chromedriver), options=options)
        driver.set_page_load_timeout(120)
        run(driver, base, key, artifacts, scratch, check)
    except Exception:
        failed = True
        traceback.print_exc()
        if driver is not None:
            try:
                driver.save_screenshot(os.path.join(artifacts, "failure.png"))
                for entry in driver.get_log("browser"):
                    print("  browser:", entry["level"], entry["message"])
            except Exception:
                pass
        try:
            with open(log_path) as log:
                print("  server log (last lines):\n" + "".join(log.readlines()[-30:]))
        except OSError:
            pass
    finally:
        if driver is not None:
            driver.quit()
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"screenshots: {artifacts}")
    print(f"playground: {check.passed} passed, {1 if failed else 0} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
