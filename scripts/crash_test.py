#!/usr/bin/env python3
"""Crash-safety test of multi-node KlingKit (issue #6, "Crash safety (prove it)").

Runs against a PostgreSQL database (KLING_DATABASE_URL, started by scripts/crash-test.sh): 2 API processes and
3 worker processes of the real kling-server binary share one database and one artifact directory. Tasks are
submitted through the Market and CRUN dialects with callbacks to a loopback receiver that checks every signature,
while a random process is SIGKILLed every few seconds and restarted (creates aimed at an API process just before
it dies, so that lost answers are retried on the other one with the same Idempotency-Key), and now and then a worker
is SIGSTOPped past its lease and resumed (the fence must refuse its stale work). At the end every accepted task must be
terminal, none may have completed twice, every account's balance must equal its starting credits minus the price
of its succeeded tasks (and the ledger check must pass), every terminal task must have had a correctly signed
callback reporting its terminal state, and no request may have answered 5xx unless its process was being killed.

Python 3 standard library only. Usage (see scripts/crash-test.sh):

    crash_test.py --server .build/debug/kling-server --artifacts test-artifacts/crash-test \
        --worker-command "work --workers 1"
"""

import argparse
import base64
import collections
import glob
import hashlib
import hmac
import http.client
import http.server
import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

# Prices (README "Credits, limits and switches"): credits per output second, times 1.5 with audio.
PRICE_STD_PER_SECOND = 10
AUDIO_FACTOR = 1.5
DURATION = 3  # the shortest duration validation allows
STARTING_CREDITS = 1_000_000
TERMINAL = ("succeeded", "failed")


def now():
    return time.time()


class StallClock:
    """Time this runner was actually scheduled: wall time minus the stalls the watchdog saw (the whole machine has
    been seen frozen for minutes; deadlines count only time in which things could happen)."""

    stalled = 0.0  # seconds in stalls of over a second, summed
    lock = threading.Lock()

    @classmethod
    def active(cls):
        with cls.lock:
            return time.monotonic() - cls.stalled

    @classmethod
    def add(cls, seconds):
        with cls.lock:
            cls.stalled += seconds


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Journal:
    """Thread-safe record of everything that happened, kept in memory (no file I/O on the hot path, which a busy
    disk could stall) and written as JSON lines into the artifacts at the end."""

    def __init__(self, directory):
        self.directory = directory
        self.lock = threading.Lock()
        self.entries = {"requests": [], "kills": [], "callbacks": [], "freezes": []}
        self.requests = self.entries["requests"]  # dicts: t0, t1, proc, method, path, status, error (+ create notes)
        self.kills = self.entries["kills"]  # dicts: proc, role, killed_at, restarted_at
        self.freezes = self.entries["freezes"]  # dicts: proc, stopped_at, continued_at

    def write(self, name, entry):
        with self.lock:
            self.entries[name].append(entry)

    def request(self, entry):
        self.write("requests", entry)

    def kill(self, entry):
        self.write("kills", entry)

    def close(self):
        with self.lock:
            for name, entries in self.entries.items():
                with open(os.path.join(self.directory, name + ".jsonl"), "w") as f:
                    for entry in entries:
                        f.write(json.dumps(entry) + "\n")


class Proc:
    """One kling-server process (API or worker), restartable on the same port with its log appended."""

    def __init__(self, name, role, port, argv, env, log_path, pid_registry):
        self.name, self.role, self.port, self.argv, self.env, self.log_path = name, role, port, argv, env, log_path
        self.popen = None
        self.lock = threading.Lock()
        self.pid_registry = pid_registry

    def start(self):
        with self.lock:
            log = open(self.log_path, "ab")
            log.write(f'{{"crash_test":"start","proc":"{self.name}","at":{now():.3f}}}\n'.encode())
            log.flush()
            # A session (and process group) of its own, so whatever it leaves behind can be stopped at the end.
            self.popen = subprocess.Popen(
                self.argv, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
            log.close()
            self.pid_registry.add(self.popen.pid)

    def kill(self):
        """SIGKILL of the process alone, as a crash would do: its render tools (ffmpeg) are orphaned and end on
        their own (their pipes to it break); shut_down kills whatever of its process group is left at the end."""
        with self.lock:
            if self.popen is None:
                return
            try:
                self.popen.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait()
            self.popen = None

    def freeze(self, seconds):
        """SIGSTOP of the process for `seconds`, then SIGCONT: a process that stalls past its lease (its render tools
        run on and finish meanwhile) and comes back, still believing it owns its task."""
        with self.lock:
            if self.popen is None:
                return None
            pid = self.popen.pid
            os.kill(pid, signal.SIGSTOP)
        stopped_at = now()
        try:
            time.sleep(seconds)
        finally:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        return stopped_at

    def stop(self):
        """Graceful stop (SIGTERM, then SIGKILL after 10 s)."""
        with self.lock:
            if self.popen is None:
                return
            try:
                os.killpg(self.popen.pid, signal.SIGCONT)
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
            except ProcessLookupError:
                pass
            self.popen = None

    def running(self):
        with self.lock:
            return self.popen is not None and self.popen.poll() is None


class PidRegistry:
    """The process groups this test started (one per process start), kept in ARTIFACTS/pids for the shell's
    last-resort clean-up, and stopped at the end."""

    def __init__(self, path):
        self.path, self.pgids, self.lock = path, [], threading.Lock()

    def add(self, pgid):
        with self.lock:
            self.pgids.append(pgid)
            with open(self.path, "a") as f:
                f.write(f"{pgid}\n")

    def kill_all(self):
        with self.lock:
            for pgid in self.pgids:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass


def http_call(journal, proc, method, path, body=None, headers=None, timeout=30, note=None):
    """One HTTP request to one process; returns (status, parsed JSON or None, error text or None); journaled."""
    t0 = now()
    status, parsed, error = None, None, None
    try:
        conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=timeout)
        data = json.dumps(body).encode() if body is not None else None
        h = {"Connection": "close"}
        if data is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        conn.request(method, path, body=data, headers=h)
        response = conn.getresponse()
        raw = response.read()
        status = response.status
        conn.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
    except (OSError, http.client.HTTPException) as e:
        error = f"{type(e).__name__}: {e}"
    entry = {"t0": round(t0, 3), "t1": round(now(), 3), "proc": proc.name, "method": method, "path": path.split("?")[0],
             "status": status, "error": error}
    entry.update(note or {})
    journal.request(entry)
    return status, parsed, error


class CallbackReceiver:
    """A loopback HTTP server verifying every callback's signatures and recording deliveries per task."""

    def __init__(self, journal, secrets):
        self.journal, self.secrets = journal, secrets  # secrets: dialect -> whsec_ secret
        self.lock = threading.Lock()
        self.by_task = collections.defaultdict(lambda: {"deliveries": 0, "valid": 0, "webhook_ids": set(),
                                                        "states": [], "valid_terminal": set(), "dialect": None})
        self.invalid = []
        self.refused = 0  # 500s answered on purpose to exercise retries
        self.seen_ids = set()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                code = receiver.handle(self.path, self.headers, body)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def url(self, dialect):
        return f"http://127.0.0.1:{self.port}/callbacks/{dialect}"

    @staticmethod
    def standard_signature_ok(secret, headers, body):
        msg_id, timestamp, signature = headers.get("webhook-id"), headers.get("webhook-timestamp"), headers.get("webhook-signature")
        if not (msg_id and timestamp and signature and secret.startswith("whsec_")):
            return False, "missing webhook-id, webhook-timestamp or webhook-signature"
        try:
            # Receivers allow 5 minutes; plus any time the machine stood still between signing and receiving.
            if abs(int(timestamp) - int(now())) > 300 + StallClock.stalled:
                return False, f"webhook-timestamp {timestamp} is more than 5 minutes away"
        except ValueError:
            return False, f"webhook-timestamp {timestamp!r} is not a number"
        key = base64.b64decode(secret[len("whsec_"):])
        expected = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()).decode()
        for part in signature.split(" "):
            if part.startswith("v1,") and hmac.compare_digest(part[3:], expected):
                return True, None
        return False, "no v1 signature matches"

    @staticmethod
    def market_signature_ok(secret, headers, task_id):
        timestamp, signature = headers.get("X-Webhook-Timestamp"), headers.get("X-Webhook-Signature")
        if not (timestamp and signature):
            return False, "missing X-Webhook-Timestamp or X-Webhook-Signature"
        key = base64.b64decode(secret[len("whsec_"):])
        expected = base64.b64encode(hmac.new(key, f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()).decode()
        return hmac.compare_digest(signature, expected), "X-Webhook-Signature does not match"

    def handle(self, path, headers, body):
        dialect = path.rstrip("/").rsplit("/", 1)[-1]
        secret = self.secrets.get(dialect, "")
        try:
            payload = json.loads(body)
            data = payload.get("data") if dialect == "market" else payload
            task_id = data["taskId"] if dialect == "market" else data["task_id"]
            state = data["state"] if dialect == "market" else data["status"]
        except (ValueError, KeyError, TypeError, AttributeError):
            with self.lock:
                self.invalid.append({"path": path, "error": "unreadable payload", "body": body[:300].decode(errors="replace")})
            return 400
        ok, why = self.standard_signature_ok(secret, headers, body)
        if ok and dialect == "market":
            ok, why = self.market_signature_ok(secret, headers, task_id)
        msg_id = headers.get("webhook-id") or ""
        terminal = {"market": ("success", "fail"), "crun": ("success", "failed")}[dialect]
        # About one message in 12 is refused once with a 500, so retries are exercised too.
        refuse = False
        with self.lock:
            record = self.by_task[task_id]
            record["dialect"] = dialect
            record["deliveries"] += 1
            record["webhook_ids"].add(msg_id)
            record["states"].append(state)
            if ok:
                record["valid"] += 1
                if state in terminal and msg_id not in self.seen_ids and int(hashlib.sha256(msg_id.encode()).hexdigest(), 16) % 12 == 0:
                    refuse = True
                    self.refused += 1
                elif state in terminal:
                    record["valid_terminal"].add(state)
                self.seen_ids.add(msg_id)
            else:
                self.invalid.append({"task_id": task_id, "webhook_id": msg_id, "error": why})
        self.journal.write("callbacks", {"at": round(now(), 3), "task_id": task_id, "dialect": dialect, "webhook_id": msg_id,
                                         "state": state, "signature_ok": ok, "answered": 500 if refuse else 200})
        return 500 if refuse else 200


class CrashTest:
    def __init__(self, args):
        self.args = args
        self.server = os.path.abspath(args.server)
        self.artifacts = os.path.abspath(args.artifacts)
        self.database_url = os.environ["KLING_DATABASE_URL"]
        self.journal = Journal(self.artifacts)
        self.rng = random.Random(args.seed)
        self.procs = []
        self.pids = PidRegistry(os.path.join(self.artifacts, "pids"))
        self.accepted = {}  # task id -> {"dialect", "price", "index"}
        self.accepted_lock = threading.Lock()
        self.create_problems = []
        self.query_problems = []
        self.submissions_done = threading.Event()
        self.pending = list(range(args.tasks))
        self.pending_lock = threading.Lock()
        self.in_flight = 0
        self.started = now()
        self.stop_killing = threading.Event()
        self.stop_polling = threading.Event()
        self.failures = []
        self.figures = collections.OrderedDict()
        bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: [int(x) for x in p.split("/")[4].split(".") if x.isdigit()])
        self.psql = os.path.join(bindirs[-1], "psql") if bindirs else shutil.which("psql")

    # --- helpers -----------------------------------------------------------------------------------------------

    def log(self, text):
        print(f"[crash-test {time.strftime('%H:%M:%S')}] {text}", flush=True)

    def admin(self, *argv, check=True):
        result = subprocess.run([self.server, *argv], env=self.env, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"kling-server {' '.join(argv)} exited {result.returncode}: {result.stderr.strip()[-2000:]}")
        return result

    def sql(self, query):
        result = subprocess.run([self.psql, self.database_url, "-X", "-At", "-F", "\t", "-c", query],
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return [line.split("\t") for line in result.stdout.splitlines() if line]

    def check(self, ok, message):
        status = "ok  " if ok else "FAIL"
        print(f"  [{status}] {message}", flush=True)
        if not ok:
            self.failures.append(message)

    # --- set-up ------------------------------------------------------------------------------------------------

    def set_up(self):
        shared = os.path.join(self.artifacts, "shared")
        os.makedirs(shared, exist_ok=True)
        os.makedirs(os.path.join(self.artifacts, "logs"), exist_ok=True)
        self.env = dict(os.environ)
        self.env.update({
            "KLING_DATABASE_URL": self.database_url,
            "KLING_DATA_DIR": os.path.join(self.artifacts, "data", "admin"),
            # The one directory every process shares (results and uploads); each has a data directory of its own.
            "KLING_ARTIFACT_DIR": shared,
            "KLING_LEASE_SECONDS": str(self.args.lease_seconds),
            "KLING_FETCH_ALLOW_PRIVATE": "true",
            "KLING_LOG_FORMAT": "json",
            "KLING_CALLBACK_RETRY_DELAYS": "1,2,3,5,5,5,5,5",
            "KLING_CALLBACK_TIMEOUT_SECONDS": "5",
            "KLING_RATE_CREATES": "0",
            "KLING_RATE_QUERIES": "0",
            "KLING_MAX_ACTIVE_TASKS": "0",
        })
        self.accounts = {}
        for dialect in ("market", "crun"):
            name = f"crash-{dialect}"
            self.admin("accounts", "create", name, "--credits", str(STARTING_CREDITS))
            key = self.admin("keys", "create", "--account", name).stdout.strip().splitlines()[-1]
            self.admin("limits", "set", name, "--creates", "0", "--queries", "0", "--max-active", "0")
            secret = self.admin("webhooks", "secret", "--account", name).stdout.strip().splitlines()[-1]
            self.accounts[dialect] = {"name": name, "key": key, "secret": secret}
        self.receiver = CallbackReceiver(self.journal, {d: a["secret"] for d, a in self.accounts.items()})
        self.receiver.start()

        worker_args = shlex.split(self.args.worker_command)

        def own_env(name):
            return dict(self.env, KLING_DATA_DIR=os.path.join(self.artifacts, "data", name))

        for i in range(2):
            port = free_port()
            self.procs.append(Proc(f"api{i}", "api", port, [self.server, "serve", "--workers", "0", "--port", str(port)],
                                   own_env(f"api{i}"), os.path.join(self.artifacts, "logs", f"api{i}.log"), self.pids))
        for i in range(3):
            port = free_port()
            self.procs.append(Proc(f"worker{i}", "worker", port, [self.server, *worker_args, "--port", str(port)],
                                   own_env(f"worker{i}"), os.path.join(self.artifacts, "logs", f"worker{i}.log"), self.pids))
        self.apis = [p for p in self.procs if p.role == "api"]
        for p in self.procs:
            p.start()
        deadline = StallClock.active() + 120
        for p in self.procs:
            while True:
                status, _, _ = http_call(self.journal, p, "GET", "/healthz", timeout=5)
                if status == 200:
                    break
                if not p.running():
                    raise RuntimeError(f"{p.name} exited at start; see {p.log_path}")
                if StallClock.active() > deadline:
                    raise RuntimeError(f"{p.name} did not answer /healthz within 120 s; see {p.log_path}")
                time.sleep(0.2)
        self.log("2 API and 3 worker processes are up: " + ", ".join(f"{p.name}:{p.port}" for p in self.procs)
                 + f" (worker command: {self.args.worker_command})")

    # --- traffic -----------------------------------------------------------------------------------------------

    def request_body(self, index, dialect, sound):
        prompt = f"Crash test {index}: a paper boat drifts down a rain-soaked street"
        if dialect == "market":
            return {"model": "kling-3.0/video", "callBackUrl": self.receiver.url("market"),
                    "input": {"prompt": prompt, "duration": str(DURATION), "mode": "std", "sound": sound, "aspect_ratio": "1:1"}}
        return {"model": "kling/v3", "callback_url": self.receiver.url("crun"),
                "input": {"prompt": prompt, "multi_shots": False, "duration": DURATION, "mode": "std", "audio": sound,
                          "aspect_ratio": "1:1"}}

    def auth(self, dialect):
        key = self.accounts[dialect]["key"]
        return {"Authorization": f"Bearer {key}"} if dialect == "market" else {"x-api-key": key}

    def create(self, index, first_api=None):
        dialect = "market" if index % 2 == 0 else "crun"
        sound = index % 10 == 3 or index % 10 == 8  # one task in five with sound (espeak-ng and the noise bed)
        body = self.request_body(index, dialect, sound)
        path = "/api/v1/jobs/createTask" if dialect == "market" else "/api/v1/client/job/CreateTask"
        headers = dict(self.auth(dialect), **{"Idempotency-Key": f"crash-{uuid.uuid4()}"})
        api = index % 2 if (index // 2) % 2 == 0 else 1 - index % 2  # both dialects through both API processes
        if first_api is not None:
            api = first_api
        deadline = StallClock.active() + 180
        tries = 0
        while StallClock.active() < deadline:
            tries += 1
            sent_at = now()
            status, answer, error = http_call(self.journal, self.apis[api], "POST", path, body, headers,
                                              note={"index": index, "idempotency_key": headers["Idempotency-Key"]})
            if status == 200 and answer and answer.get("code") == 200:
                task_id = answer["data"]["taskId"] if dialect == "market" else answer["data"]["task_id"]
                price = int(PRICE_STD_PER_SECOND * DURATION * (AUDIO_FACTOR if sound else 1))
                with self.accepted_lock:
                    if task_id in self.accepted:
                        self.create_problems.append(f"create {index} answered task {task_id}, already the answer of create "
                                                    f"{self.accepted[task_id]['index']}")
                    self.accepted[task_id] = {"dialect": dialect, "price": price, "index": index, "tries": tries,
                                            "answered_try_sent_at": sent_at}
                return
            if error is not None or (status is not None and status >= 500):
                # The answer was lost (the process died) or the process was going down: same key, other process.
                api = 1 - api
                time.sleep(0.2 + random.random() * 0.3)
                continue
            self.create_problems.append(f"create {index} ({dialect}) answered HTTP {status}: {json.dumps(answer)[:300]}")
            return
        self.create_problems.append(f"create {index} ({dialect}) got no answer within 180 s")

    def take_indices(self, count):
        """The next `count` task numbers not yet submitted (fewer at the end)."""
        with self.pending_lock:
            taken = self.pending[:count]
            del self.pending[:count]
            self.in_flight += len(taken)
            return taken

    def created(self, count):
        with self.pending_lock:
            self.in_flight -= count
            if not self.pending and self.in_flight == 0:
                self.submissions_done.set()
                self.log(f"submissions done: {len(self.accepted)} tasks accepted in {now() - self.started:.0f} s")

    def submit_all(self):
        """Submits the tasks at a steady pace (over about --submit-seconds) from a few threads."""
        interval = self.args.submit_seconds / self.args.tasks

        def run():
            while True:
                taken = self.take_indices(1)
                if not taken:
                    return
                delay = self.started + taken[0] * interval - now()
                if delay > 0:
                    time.sleep(delay)
                self.create(taken[0])
                self.created(1)

        threads = [threading.Thread(target=run, daemon=True) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def burst(self, api_index):
        """A burst of creates at one API process, so that the kill that follows catches some in flight (and, now and
        then, one whose task is stored but whose answer never left: the Idempotency-Key must return it on retry)."""
        def run(index):
            self.create(index, first_api=api_index)
            self.created(1)

        for index in self.take_indices(8):
            threading.Thread(target=run, args=(index,), daemon=True).start()

    def poll(self):
        """Queries random accepted tasks through both API processes while the run goes on."""
        turn, rng = 0, random.Random(self.args.seed + 1)
        while not self.stop_polling.is_set():
            time.sleep(0.15)
            with self.accepted_lock:
                if not self.accepted:
                    continue
                task_id = rng.choice(list(self.accepted))
                dialect = self.accepted[task_id]["dialect"]
            turn += 1
            api = self.apis[turn % 2]
            if dialect == "market":
                path = "/api/v1/jobs/recordInfo?taskId=" + urllib.parse.quote(task_id)
            else:
                path = "/api/v1/client/job/TaskInfo?task_id=" + urllib.parse.quote(task_id)
            status, answer, error = http_call(self.journal, api, "GET", path, headers=self.auth(dialect), timeout=15)
            if status is not None and status < 500 and not (status == 200 and answer and answer.get("code") == 200):
                self.query_problems.append(f"query of {task_id} on {api.name} answered HTTP {status}: {json.dumps(answer)[:300]}")

    def busy_worker(self):
        """A worker process that holds a running task now (lease owners are HOST:PID:RANDOM), if any."""
        try:
            owners = self.sql("SELECT lease_owner FROM tasks WHERE state = 'running' AND lease_owner IS NOT NULL")
        except (RuntimeError, subprocess.SubprocessError):
            return None
        pids = {int(row[0].split(":")[-2]) for row in owners if row[0].count(":") >= 2 and row[0].split(":")[-2].isdigit()}
        busy = [p for p in self.procs if p.role == "worker" and p.popen is not None and p.popen.pid in pids]
        return self.rng.choice(busy) if busy else None

    def watch_stalls(self):
        """Notes the longest time this runner was not scheduled (a stalled machine explains slow phases)."""
        last = time.monotonic()
        while not self.stop_polling.is_set():
            time.sleep(0.25)
            current = time.monotonic()
            self.longest_stall = max(self.longest_stall, current - last - 0.25)
            if current - last > 1.25:
                StallClock.add(current - last - 0.25)
            if current - last > 5:
                self.log(f"this runner was stalled for {current - last:.0f} s")
            last = current

    def kill_loop(self):
        # The first kills follow a shuffled plan of roles (about 3 in 10 API processes) so every run kills both
        # roles several times; any further kills pick a process at random, workers weighted twice.
        api_kills = max(1, round(self.args.kills * 0.3))
        plan = ["api"] * api_kills + ["worker"] * (self.args.kills - api_kills)
        self.rng.shuffle(plan)
        weights = [1 if p.role == "api" else 2 for p in self.procs]
        # Between some kills a worker is frozen past its lease instead: its task goes to another worker, and when it
        # wakes up the fence (the attempt number) must refuse whatever it tries to finish.
        freeze_after = {round((i + 1) * self.args.kills / (self.args.freezes + 1)) for i in range(self.args.freezes)}
        while not self.stop_killing.is_set():
            time.sleep(self.rng.uniform(2.0, 4.0))
            done = len(self.journal.kills)
            if done in freeze_after and len(self.journal.freezes) < self.args.freezes:
                frozen = self.busy_worker() or self.rng.choice([p for p in self.procs if p.role == "worker"])
                stopped_at = frozen.freeze(self.args.lease_seconds + 2.0)
                if stopped_at is not None:
                    self.journal.write("freezes", {"proc": frozen.name, "stopped_at": round(stopped_at, 3),
                                                   "continued_at": round(now(), 3)})
                freeze_after.discard(done)
                continue
            if done >= self.args.kills and self.submissions_done.is_set():
                break
            if done < len(plan):
                victim = self.rng.choice([p for p in self.procs if p.role == plan[done]])
            else:
                victim = self.rng.choices(self.procs, weights)[0]
            if victim.role == "api" and not self.submissions_done.is_set():
                self.burst(self.apis.index(victim))
                time.sleep(self.rng.uniform(0.0, 0.15))
            killed_at = now()
            victim.kill()
            time.sleep(self.rng.uniform(0.5, 1.0))
            victim.start()
            self.journal.kill({"proc": victim.name, "role": victim.role, "killed_at": round(killed_at, 3),
                               "restarted_at": round(now(), 3)})
        self.log(f"kills done: {len(self.journal.kills)}")

    # --- waiting -----------------------------------------------------------------------------------------------

    def task_states(self):
        rows = self.sql("SELECT t.id, t.state, t.attempts, a.name, t.created_at FROM tasks t JOIN accounts a ON a.id = t.account_id")
        return {row[0]: {"state": row[1], "attempts": int(row[2]), "account": row[3], "created_at": int(row[4]) / 1000}
                for row in rows}

    def wait_until_terminal(self):
        deadline = StallClock.active() + self.args.wait_seconds
        while True:
            states = self.task_states()
            open_tasks = [t for t in self.accepted if states.get(t, {}).get("state") not in TERMINAL]
            if not open_tasks or StallClock.active() > deadline:
                return states
            self.log(f"waiting: {len(open_tasks)} of {len(self.accepted)} tasks not terminal yet")
            time.sleep(5)

    def wait_for_callbacks(self, states):
        deadline = StallClock.active() + 90
        while True:
            with self.receiver.lock:
                missing = [t for t in self.accepted if states.get(t, {}).get("state") in TERMINAL
                           and not self.receiver.by_task[t]["valid_terminal"]]
            if not missing or StallClock.active() > deadline:
                return missing
            self.log(f"waiting for callbacks of {len(missing)} tasks")
            time.sleep(3)

    # --- checks ------------------------------------------------------------------------------------------------

    def verify(self, states):
        print("\nChecks:", flush=True)
        accepted = self.accepted
        kills = self.journal.kills
        self.check(not self.create_problems, f"every create was accepted ({len(self.create_problems)} problems)")
        for problem in self.create_problems[:10]:
            print("      " + problem)
        self.check(len(accepted) >= self.args.tasks, f"{len(accepted)} tasks accepted (at least {self.args.tasks})")
        self.check(len(kills) >= self.args.kills, f"{len(kills)} kills (at least {self.args.kills})")

        lost = [t for t in accepted if states.get(t, {}).get("state") not in TERMINAL]
        self.check(not lost, f"every accepted task reached a terminal state (lost: {len(lost)})")
        for t in lost[:10]:
            print(f"      {t}: {states.get(t)}")
        # Tasks the database holds that no create answered: a create retried on another process made a second task.
        strays = [t for t in states if t not in accepted]
        self.check(not strays, f"no task exists that no create answered with (duplicate creates: {len(strays)})")

        # Completed twice? The worker's "task succeeded" line is written only when the store accepted the completion.
        succeeded_lines = collections.Counter()
        self.fenced = 0  # "claim was lost; result discarded": a worker whose lease had passed on was refused
        self.lost_claims = 0  # "claim lost during render": a resumed worker noticed and stopped rendering
        for path in glob.glob(os.path.join(self.artifacts, "logs", "*.log")):
            with open(path, errors="replace") as f:
                for line in f:
                    if "claim was lost" in line:
                        self.fenced += 1
                    if "claim lost during render" in line:
                        self.lost_claims += 1
                    if '"task succeeded"' not in line:
                        continue
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    if entry.get("message") == "task succeeded":
                        succeeded_lines[entry.get("metadata", {}).get("task_id")] += 1
        twice = {t: n for t, n in succeeded_lines.items() if n > 1}
        self.check(not twice, f"no task completed twice in the worker logs ({len(twice)} did)")
        for t, n in list(twice.items())[:10]:
            print(f"      {t}: {n} 'task succeeded' lines")

        ledger = collections.defaultdict(lambda: collections.Counter())
        amounts = collections.defaultdict(int)
        for task_id, kind, amount in self.sql("SELECT task_id, kind, amount FROM ledger WHERE task_id IS NOT NULL"):
            ledger[task_id][kind] += 1
            amounts[task_id] += int(amount)
        double_entries = {t: dict(c) for t, c in ledger.items() if c["charge"] > 1 or c["refund"] > 1}
        self.check(not double_entries, f"at most one charge and one refund per task in the ledger ({len(double_entries)} more)")
        wrong = []
        for t, info in accepted.items():
            state = states.get(t, {}).get("state")
            c = ledger.get(t, collections.Counter())
            if c["charge"] != 1:
                wrong.append(f"{t}: {c['charge']} charges")
            elif state == "succeeded" and (c["refund"] != 0 or amounts[t] != -info["price"]):
                wrong.append(f"{t}: succeeded but ledger sum {amounts[t]} (price {info['price']}, refunds {c['refund']})")
            elif state == "failed" and (c["refund"] != 1 or amounts[t] != 0):
                wrong.append(f"{t}: failed but ledger sum {amounts[t]} (refunds {c['refund']})")
        self.check(not wrong, f"every succeeded task charged its price once, every failed task refunded once ({len(wrong)} not)")
        for w in wrong[:10]:
            print("      " + w)

        ledger_check = self.admin("ledger", "check", check=False)
        self.check(ledger_check.returncode == 0, f"kling-server ledger check exits 0 ({ledger_check.stdout.strip() or ledger_check.stderr.strip()[-300:]})")
        balances = {name: int(balance) for name, balance in self.sql("SELECT name, balance FROM accounts")}
        differences = {}
        for dialect, account in self.accounts.items():
            spent = sum(i["price"] for t, i in accepted.items() if i["dialect"] == dialect and states.get(t, {}).get("state") == "succeeded")
            expected = STARTING_CREDITS - spent
            differences[account["name"]] = balances.get(account["name"], 0) - expected
            self.check(differences[account["name"]] == 0,
                       f"{account['name']}: balance {balances.get(account['name'])} == {STARTING_CREDITS} - {spent} "
                       f"(succeeded tasks' prices) = {expected}")

        with self.receiver.lock:
            by_task = {t: dict(r) for t, r in self.receiver.by_task.items()}
            invalid = list(self.receiver.invalid)
        expected_state = {("market", "succeeded"): "success", ("market", "failed"): "fail",
                          ("crun", "succeeded"): "success", ("crun", "failed"): "failed"}
        no_callback, wrong_state = [], []
        for t, info in accepted.items():
            state = states.get(t, {}).get("state")
            if state not in TERMINAL:
                continue
            record = by_task.get(t)
            if not record or not record["valid_terminal"]:
                no_callback.append(t)
            elif record["valid_terminal"] != {expected_state[(info["dialect"], state)]}:
                wrong_state.append(f"{t}: {state} but callbacks said {sorted(record['valid_terminal'])}")
        self.check(not no_callback, f"every terminal task had a correctly signed callback with its terminal state "
                                    f"({len(no_callback)} did not)")
        for t in no_callback[:10]:
            print(f"      {t}: {by_task.get(t)}")
        self.check(not wrong_state, f"callbacks report the task's stored terminal state ({len(wrong_state)} did not)")
        for w in wrong_state[:10]:
            print("      " + w)
        # Market and CRUN tasks get one callback message (at their terminal state), retried under one webhook-id.
        several = {t: sorted(r["webhook_ids"]) for t, r in by_task.items() if len(r["webhook_ids"]) > 1}
        self.check(not several, f"one callback message per task (one webhook-id; {len(several)} tasks had more)")
        for t, ids in list(several.items())[:10]:
            print(f"      {t}: {ids} states {by_task[t]['states']}")
        self.check(not invalid, f"no callback had a bad signature or payload ({len(invalid)} had)")
        for w in invalid[:10]:
            print(f"      {w}")

        # 5xx answers: excused only when the answering process was killed within a second of the request.
        kill_times = collections.defaultdict(list)
        for k in kills:
            kill_times[k["proc"]].append(k["killed_at"])
        fives = [r for r in self.journal.requests if r["status"] is not None and r["status"] >= 500]
        unexcused = [r for r in fives if not any(r["t0"] - 1 <= k <= r["t1"] + 1 for k in kill_times[r["proc"]])]
        self.check(not unexcused, f"no 5xx answer except while its process was being killed ({len(fives)} 5xx, "
                                  f"{len(fives) - len(unexcused)} excused)")
        for r in unexcused[:10]:
            print(f"      {r}")
        self.check(not self.query_problems, f"every status query answered 200 ({len(self.query_problems)} did not)")
        for q in self.query_problems[:10]:
            print("      " + q)

        # A task may fail only because kills stranded it on every one of its attempts (abandoned, refunded); any
        # other failure of these plain preview renders is a bug.
        failures = self.sql("SELECT id, attempts, COALESCE(failure_code, 0), COALESCE(failure_message, '') FROM tasks "
                            "WHERE state = 'failed'")
        reasons = collections.Counter(message[:60] for _, _, _, message in failures)
        unexpected = [f for f in failures if not f[3].startswith("the task was abandoned")]
        self.check(not unexpected, f"every failed task was abandoned after its workers were killed ({len(failures)} failed, "
                                   f"{len(unexpected)} for another reason)")
        for task_id, attempts, code, message in unexpected[:10]:
            print(f"      {task_id} (attempts {attempts}): {code} {message[:200]}")

        self.check_results_served(states)

        requests = self.journal.requests
        with self.receiver.lock:
            deliveries = sum(r["deliveries"] for r in self.receiver.by_task.values())
            refused = self.receiver.refused
            repeats = sum(max(0, r["valid"] - len(r["webhook_ids"])) for r in self.receiver.by_task.values()) - refused
        by_role = collections.Counter(k["role"] for k in kills)
        # Retried creates whose task was stored before the answered try was sent: the Idempotency-Key returned it.
        rescued = sum(1 for t, i in accepted.items()
                      if i["tries"] > 1 and states.get(t, {}).get("created_at", now()) < i["answered_try_sent_at"] - 0.05)
        succeeded = sum(1 for t in accepted if states.get(t, {}).get("state") == "succeeded")
        failed = sum(1 for t in accepted if states.get(t, {}).get("state") == "failed")
        reclaimed = sum(1 for t in accepted if states.get(t, {}).get("attempts", 0) > 1)
        self.figures.update([
            ("tasks accepted", f"{len(accepted)} (market {sum(1 for i in accepted.values() if i['dialect'] == 'market')}, "
                               f"crun {sum(1 for i in accepted.values() if i['dialect'] == 'crun')})"),
            ("creates retried after a lost answer (task already stored)",
             f"{sum(1 for i in accepted.values() if i['tries'] > 1)} ({rescued})"),
            ("kills", f"{len(kills)} (api {by_role['api']}, worker {by_role['worker']})"),
            ("tasks succeeded", str(succeeded)),
            ("tasks failed (refunded)", f"{failed}" + "".join(f"; {n}x {r}" for r, n in reasons.most_common(3))),
            ("tasks claimed more than once", str(reclaimed)),
            ("workers frozen past their lease (results refused by the fence; renders stopped on a lost claim)",
             f"{len(self.journal.freezes)} ({self.fenced}; {self.lost_claims})"),
            ("duplicates (completed twice / extra charges / stray tasks)", f"{len(twice)} / {len(double_entries)} / {len(strays)}"),
            ("lost", str(len(lost))),
            ("ledger difference", ", ".join(f"{n} {d:+d}" for n, d in differences.items())),
            ("callbacks delivered (500s answered on purpose; repeats of a delivered message)",
             f"{deliveries} ({refused}; {repeats})"),
            ("tasks without a signed terminal callback", str(len(no_callback))),
            ("HTTP requests (connection errors)", f"{len(requests)} ({sum(1 for r in requests if r['error'])})"),
            ("5xx answers (excused)", f"{len(fives)} ({len(fives) - len(unexcused)})"),
            ("longest stall of this runner (s; all stalls over 1 s)", f"{self.longest_stall:.1f}; {StallClock.stalled:.1f}"),
        ])

    def check_results_served(self, states):
        """A few succeeded tasks' videos are downloadable through both API processes (one shared artifact directory)."""
        done = [t for t, i in self.accepted.items() if i["dialect"] == "market" and states.get(t, {}).get("state") == "succeeded"]
        problems = []
        for task_id in done[:3]:
            for api in self.apis:
                status, answer, error = http_call(self.journal, api, "GET", "/api/v1/jobs/recordInfo?taskId=" + task_id,
                                                  headers=self.auth("market"), timeout=15)
                try:
                    url = json.loads(answer["data"]["resultJson"])["resultUrls"][0]
                    parts = urllib.parse.urlsplit(url)
                    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=30)
                    conn.request("GET", parts.path + ("?" + parts.query if parts.query else ""))
                    response = conn.getresponse()
                    content = response.read()
                    conn.close()
                    if response.status != 200 or len(content) < 1000:
                        problems.append(f"{task_id} via {api.name}: HTTP {response.status}, {len(content)} bytes")
                except (TypeError, KeyError, ValueError, IndexError, OSError, http.client.HTTPException) as e:
                    problems.append(f"{task_id} via {api.name}: {status} {error or ''} {type(e).__name__}: {e}")
        self.check(not problems and done, f"results of {min(3, len(done))} tasks download through both API processes")
        for p in problems[:6]:
            print("      " + p)

    def save_tasks(self, states):
        with open(os.path.join(self.artifacts, "tasks.json"), "w") as f:
            json.dump({t: dict(i, **states.get(t, {})) for t, i in self.accepted.items()}, f, indent=1)

    def print_figures(self):
        print("\nFigures:")
        width = max(len(k) for k in self.figures)
        for k, v in self.figures.items():
            print(f"  {k.ljust(width)}  {v}")
        with open(os.path.join(self.artifacts, "figures.json"), "w") as f:
            json.dump(self.figures, f, indent=2)

    # --- the run -----------------------------------------------------------------------------------------------

    def run(self):
        started = now()
        self.longest_stall = 0.0
        threading.Thread(target=self.watch_stalls, daemon=True).start()
        self.set_up()
        self.started = now()
        threads = [threading.Thread(target=f, daemon=True) for f in (self.submit_all, self.kill_loop, self.poll)]
        for t in threads:
            t.start()
        if not self.submissions_done.wait(timeout=self.args.submit_seconds + 600):
            raise RuntimeError("the creates did not finish in time")
        threads[1].join()
        self.stop_killing.set()
        for p in self.procs:
            if not p.running():
                self.check(False, f"{p.name} is running after the kills (it exited; see {p.log_path})")
                p.start()
        states = self.wait_until_terminal()
        missing = self.wait_for_callbacks(states)
        self.stop_polling.set()
        threads[2].join()
        self.log(f"run finished in {now() - started:.0f} s ({len(missing)} callbacks missing)")
        self.save_tasks(states)
        self.verify(states)
        self.print_figures()

    def shut_down(self):
        for p in self.procs:
            try:
                p.stop()
            except Exception as e:  # keep stopping the others
                print(f"stopping {p.name}: {e}", file=sys.stderr)
        self.pids.kill_all()  # orphaned render tools of killed processes, if any are left
        try:
            self.receiver.stop()
        except AttributeError:
            pass
        self.journal.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=".build/debug/kling-server")
    parser.add_argument("--artifacts", default="test-artifacts/crash-test")
    parser.add_argument("--worker-command", default="serve --workers 1",
                        help="arguments of a worker process before --port (e.g. 'work --workers 1')")
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--submit-seconds", type=float, default=75.0, help="spread the creates over this long")
    parser.add_argument("--wait-seconds", type=float, default=360.0, help="how long to wait for tasks to finish")
    parser.add_argument("--lease-seconds", type=int, default=4)
    parser.add_argument("--freezes", type=int, default=4, help="workers SIGSTOPped past their lease, then resumed")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    print(f"crash test: seed {args.seed} (--seed {args.seed} repeats the choices of kills)", flush=True)
    os.makedirs(args.artifacts, exist_ok=True)
    test = CrashTest(args)

    def terminate(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    try:
        test.run()
    except BaseException as e:
        test.failures.append(f"the run stopped: {type(e).__name__}: {e}")
        import traceback
        traceback.print_exc()
    finally:
        test.shut_down()
    if test.failures:
        print(f"\nCRASH TEST FAILED ({len(test.failures)} checks):")
        for f in test.failures:
            print("  - " + f)
        return 1
    print("\nCRASH TEST PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
