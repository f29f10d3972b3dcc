# Databricks notebook source
# MAGIC %md
# MAGIC # Inference stage: batch predictions
# MAGIC
# MAGIC Loads `model` (`models:/NAME@ALIAS`, `models:/NAME/VERSION` or `runs:/ID/model`), scores a
# MAGIC split of a data version or the CSV at `input_path` in batches and writes
# MAGIC `<output_root>/<output_name>/<pipectl_run_id>/predictions.parquet` (and `.csv` with
# MAGIC `write_csv`). Reports accuracy and macro-F1 when the input carries labels.
# MAGIC
# MAGIC Parameters and outputs: `docs/STAGES.md` ("inference"). Code: `sentiment/stages/inference.py`.

# COMMAND ----------

import json

from sentiment.stages import inference as stage

for name, default in stage.WIDGETS.items():
    dbutils.widgets.text(name, default)

# COMMAND ----------

params = {name: dbutils.widgets.get(name) for name in stage.WIDGETS}
result = stage.run(params)

# COMMAND ----------

for key, value in result.outputs.items():
    dbutils.jobs.taskValues.set(key, value)
dbutils.notebook.exit(json.dumps(result.exit_value()))
