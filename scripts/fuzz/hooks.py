"""Schemathesis hooks for scripts/fuzz-api.sh: records every call (operation, status) and the task id of every
successful create, so the script can prove that no task was stored from a request the server refused."""
import json
import os
import threading

import schemathesis

LOG = os.environ["KLING_FUZZ_CALLS"]
_lock = threading.Lock()

# Creates and where their answers carry the task id.
CREATES = {
    ("POST", "/api/v1/jobs/createTask"): ("data", "taskId"),
    ("POST", "/api/v1/client/job/CreateTask"): ("data", "task_id"),
    ("POST", "/v1/videos/text2video"): ("data", "task_id"),
    ("POST", "/v1/videos/image2video"): ("data", "task_id"),
    ("POST", "/v1/videos"): ("id",),
}


def _scheme(headers):
    """Which credential the request carried: a Kling JWT, a Bearer API key, an x-api-key, or none."""
    authorization = headers.get("Authorization", "")
    if authorization.lower().startswith("bearer "):
        return "jwt" if authorization.count(".") == 2 else "bearer"
    return "x-api-key" if headers.get("x-api-key") else "none"


@schemathesis.hook
def after_call(context, case, response):
    key = (case.operation.method.upper(), case.operation.path)
    record = {"op": f"{key[0]} {key[1]}", "status": response.status_code, "auth": _scheme(response.request.headers)}
    if key in CREATES and 200 <= response.status_code < 300:
        try:
            value = response.json()
            for part in CREATES[key]:
                value = value[part]
            record["task"] = value
        except Exception as error:  # an unreadable create answer is itself a failure
            record["task_error"] = repr(error)
    with _lock, open(LOG, "a") as file:
        file.write(json.dumps(record) + "\n")
