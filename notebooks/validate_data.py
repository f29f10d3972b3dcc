# Databricks notebook source
# MAGIC %md
# MAGIC # Validate-data stage: declared expectations on a data version
# MAGIC
# MAGIC Reads the splits of `<data_root>/<data_name>/<data_version>/` and checks the expectations
# MAGIC the spec declares: the columns every split must have, the share of missing or empty values
# MAGIC a column may have (`max_null_rate`), the bounds on each class's share of rows and, when set,
# MAGIC the exact classes. Any violation fails the stage, naming the split, the column or class and
# MAGIC the offending rows.
# MAGIC
# MAGIC Parameters and outputs: `docs/STAGES.md` ("validate_data"). Code: `sentiment/stages/validate_data.py`.

# COMMAND ----------

import json

from sentiment.stages import validate_data as stage

for name, default in stage.WIDGETS.items():
    dbutils.widgets.text(name, default)

# COMMAND ----------

params = {name: dbutils.widgets.get(name) for name in stage.WIDGETS}
result = stage.run(params)

# COMMAND ----------

for key, value in result.outputs.items():
    dbutils.jobs.taskValues.set(key, value)
dbutils.notebook.exit(json.dumps(result.exit_value()))
