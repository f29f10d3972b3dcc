# Databricks notebook source
# MAGIC %md
# MAGIC # Evaluate stage: pick the best candidate and decide on the champion
# MAGIC
# MAGIC Scores every model in `candidates` on the same split, takes the best by `metric`, sets the
# MAGIC `challenger_alias` on it and moves the `alias` (champion) to it only when it beats the current
# MAGIC champion on that split by at least `min_delta`. The decision is logged to MLflow.
# MAGIC
# MAGIC Parameters and outputs: `docs/STAGES.md` ("evaluate"). Code: `sentiment/stages/evaluate.py`.

# COMMAND ----------

import json

from sentiment.stages import evaluate as stage

for name, default in stage.WIDGETS.items():
    dbutils.widgets.text(name, default)

# COMMAND ----------

params = {name: dbutils.widgets.get(name) for name in stage.WIDGETS}
result = stage.run(params)

# COMMAND ----------

for key, value in result.outputs.items():
    dbutils.jobs.taskValues.set(key, value)
dbutils.notebook.exit(json.dumps(result.exit_value()))
