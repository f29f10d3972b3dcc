# Databricks notebook source
# Test notebook: writes to MLflow the way a train stage does (params, metrics, tags, the dataset
# it used, an artifact, a registered model version), many calls, to show parallel stages do not
# contend. Stages given the same experiment log the same dataset, as the pipeline's trainings do.

import json
import os

import mlflow
import mlflow.data
import pandas as pd
from mlflow.tracking import MlflowClient

dbutils.widgets.text("model_name", "pipectl_test_model")
dbutils.widgets.text("experiment", "")
dbutils.widgets.text("steps", "50")

# COMMAND ----------

mlflow.set_tracking_uri(dbutils.widgets.get("mlflow_tracking_uri"))
mlflow.set_registry_uri(dbutils.widgets.get("mlflow_registry_uri"))
name = dbutils.widgets.get("model_name")
mlflow.set_experiment(dbutils.widgets.get("experiment") or name)
tags = {
    "pipectl.run_id": dbutils.widgets.get("pipectl_run_id"),
    "pipectl.stage": dbutils.widgets.get("pipectl_stage"),
}
with mlflow.start_run(tags=tags) as run:
    mlflow.log_input(
        mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2, 3]}), name="shared"), context="training"
    )
    mlflow.log_params({f"p{i}": i for i in range(20)})
    for step in range(int(dbutils.widgets.get("steps"))):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.set_tag(f"t{step % 5}", step)
    mlflow.log_text("flavors: {}\n", "model/MLmodel")
    artifact_uri = mlflow.get_artifact_uri()
client = MlflowClient()
try:
    client.create_registered_model(name)
except mlflow.exceptions.MlflowException as exc:
    if exc.error_code != "RESOURCE_ALREADY_EXISTS":
        raise
mv = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
print(f"registered {name} version {mv.version}; artifacts at {artifact_uri}; cwd {os.getcwd()}")

# COMMAND ----------

dbutils.notebook.exit(
    json.dumps(
        {
            "outputs": {"run_id": run.info.run_id, "model_name": name, "model_version": str(mv.version)},
            "metrics": {"steps": int(dbutils.widgets.get("steps"))},
        }
    )
)
