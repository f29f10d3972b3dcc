# Databricks notebook source
# MAGIC %md
# MAGIC # Train stage: one model on a data version
# MAGIC
# MAGIC Fits a scikit-learn pipeline (text normalisation, TF-IDF word and optional character
# MAGIC n-grams, `model_type` classifier with `model_params`) on the train split, evaluates it on the
# MAGIC test split and logs everything to MLflow: parameters, metrics, a confusion matrix, the
# MAGIC classification report, the dataset and the model, registered as `model_name`
# MAGIC (`<uc_catalog>.<uc_schema>.<model_name>` on Unity Catalog).
# MAGIC
# MAGIC Parameters and outputs: `docs/STAGES.md` ("train"). Code: `sentiment/stages/train.py`.

# COMMAND ----------

import json

from sentiment.stages import train as stage

for name, default in stage.WIDGETS.items():
    dbutils.widgets.text(name, default)

# COMMAND ----------

params = {name: dbutils.widgets.get(name) for name in stage.WIDGETS}
result = stage.run(params)

# COMMAND ----------

for key, value in result.outputs.items():
    dbutils.jobs.taskValues.set(key, value)
dbutils.notebook.exit(json.dumps(result.exit_value()))
