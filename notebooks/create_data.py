# Databricks notebook source
# MAGIC %md
# MAGIC # Data stage: raw CSV to a versioned dataset
# MAGIC
# MAGIC Reads the raw CSV (`source`), drops empty texts and missing labels, removes exact duplicates,
# MAGIC resolves sentences with conflicting labels (`conflicts`), splits into train/test/holdout
# MAGIC (stratified, group-aware: the same sentence never lands in two splits) and writes
# MAGIC `<data_root>/<data_name>/<data_version>/` with Parquet splits and `manifest.json`.
# MAGIC Versions are immutable: the same inputs again are a no-op.
# MAGIC
# MAGIC Parameters and outputs: `docs/STAGES.md` ("data"). Code: `sentiment/stages/data.py`.

# COMMAND ----------

import json

from sentiment.stages import data as stage

for name, default in stage.WIDGETS.items():
    dbutils.widgets.text(name, default)

# COMMAND ----------

params = {name: dbutils.widgets.get(name) for name in stage.WIDGETS}
result = stage.run(params)

# COMMAND ----------

for key, value in result.outputs.items():
    dbutils.jobs.taskValues.set(key, value)
dbutils.notebook.exit(json.dumps(result.exit_value()))
