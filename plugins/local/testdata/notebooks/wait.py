# Databricks notebook source
# Test notebook: waits for a file (so a test can show output streams live), or sleeps until
# killed. With spawn=true it starts a child process that ignores SIGTERM; with ignore_term=true
# the notebook ignores SIGTERM too (only SIGKILL stops it); with mlflow=true it first starts an
# MLflow run tagged as the notebooks tag theirs, and with log_after=true logs a metric to it after
# the wait (failing at once if the server is gone).

import os
import signal
import subprocess
import sys
import time

widgets = {
    "until_file": "",
    "spawn": "false",
    "ignore_term": "false",
    "mlflow": "false",
    "log_after": "false",
}
for name, default in widgets.items():
    dbutils.widgets.text(name, default)

# COMMAND ----------

if dbutils.widgets.get("mlflow") == "true":
    import mlflow

    mlflow.set_tracking_uri(dbutils.widgets.get("mlflow_tracking_uri"))
    mlflow.set_experiment("pipectl-test-wait")
    run = mlflow.start_run(
        tags={
            "pipectl.run_id": dbutils.widgets.get("pipectl_run_id"),
            "pipectl.stage": dbutils.widgets.get("pipectl_stage"),
        }
    )
    print(f"mlflow run {run.info.run_id}", flush=True)
if dbutils.widgets.get("spawn") == "true":
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)",
        ]
    )
    print(f"child {child.pid}", flush=True)
if dbutils.widgets.get("ignore_term") == "true":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print(f"ready {os.getpid()}", flush=True)

# COMMAND ----------

until = dbutils.widgets.get("until_file")
deadline = time.monotonic() + 300
while time.monotonic() < deadline:
    if until and os.path.exists(until):
        print("file seen", flush=True)
        break
    time.sleep(0.02)
if dbutils.widgets.get("log_after") == "true":
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    mlflow.log_metric("after", 1.0)
dbutils.notebook.exit('{"outputs": {"waited": true}}')
