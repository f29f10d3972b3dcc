# Databricks notebook source
# MAGIC %md
# MAGIC Test notebook: echoes its parameters as outputs and task values.

# COMMAND ----------

import json

from helper import shout

dbutils.widgets.text("message", "")
dbutils.widgets.text("upstream", "")

# COMMAND ----------

params = dbutils.widgets.getAll()
outputs = {"echo": shout(params.get("message", "")), "n": 42, "params": json.dumps(params, sort_keys=True)}
upstream = params.get("upstream", "")
if upstream:
    outputs["from_upstream"] = dbutils.jobs.taskValues.get(upstream, "echo", debugValue="none")
for key, value in outputs.items():
    dbutils.jobs.taskValues.set(key, value)
dbutils.notebook.exit(json.dumps({"outputs": outputs, "metrics": {"n": 42, "half": 0.5}}))
