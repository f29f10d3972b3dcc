# Databricks notebook source
# MAGIC %md
# MAGIC Test notebook: echoes its parameters as outputs and reports metrics.

# COMMAND ----------

import json
import time

dbutils.widgets.text("greeting", "hello")
dbutils.widgets.text("count", "3")
print("first cell", flush=True)

# COMMAND ----------

params = dbutils.widgets.getAll()
for i in range(int(dbutils.widgets.get("count"))):
    print(f"line {i}")
    time.sleep(0.01)
print("to stderr", file=__import__("sys").stderr)

# COMMAND ----------

outputs = {
    "params": params,
    "greeting": dbutils.widgets.get("greeting"),
    "number": 4000,
    "ratio": 0.25,
    "flag": True,
    "nothing": None,
    "list": ["a", 1],
}
metrics = {"count": int(dbutils.widgets.get("count")), "score": 0.5, "nan": float("nan"), "label": "x"}
dbutils.notebook.exit(json.dumps({"outputs": outputs, "metrics": metrics}))
