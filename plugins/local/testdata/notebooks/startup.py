# Databricks notebook source
# Test and benchmark notebook (worker_test.go, BenchmarkStageStartup): says when its first cell
# runs, what its process inherited (preloaded modules, its parent), when MLflow, scikit-learn and
# pandas are imported, and what earlier stages may have left behind (they must leave nothing).

import os
import sys

print("first cell", flush=True)
preloaded = ",".join(m for m in ("pandas", "sklearn", "mlflow") if m in sys.modules)
try:
    with open(f"/proc/{os.getppid()}/cmdline", "rb") as fh:
        parent = fh.read().replace(b"\0", b" ").decode(errors="replace").splitlines()[0][:120]
except (OSError, IndexError):
    parent = "?"

# COMMAND ----------

import mlflow  # noqa: E402
import pandas  # noqa: E402
import sklearn.feature_extraction.text  # noqa: E402
import sklearn.linear_model  # noqa: E402, F401

print("imports done", flush=True)

# COMMAND ----------

import json  # noqa: E402

import numpy as np  # noqa: E402

seen = {
    "module_mark": getattr(json, "pipectl_test_mark", None),
    "env_mark": os.environ.get("PIPECTL_TEST_MARK"),
    "cwd": os.getcwd(),
    "random": float(np.random.rand()),
    "pid": os.getpid(),
    "tracking_uri": os.environ.get("MLFLOW_TRACKING_URI"),
    "argv0": sys.argv[0],
    "versions": [mlflow.__version__, pandas.__version__],
}
# What a stage changes must not reach the next one.
json.pipectl_test_mark = "set by " + dbutils.widgets.get("pipectl_stage")
os.environ["PIPECTL_TEST_MARK"] = "set"
np.random.seed(1)
os.chdir("/")
outputs = {"seen": json.dumps(seen), "parent": parent, "preloaded": preloaded}
dbutils.notebook.exit(json.dumps({"outputs": outputs}))
