# Databricks notebook source
import json
import os

dbutils.widgets.text("data_root", "")
dbutils.widgets.text("name", "out")

# COMMAND ----------

root = dbutils.widgets.get("data_root")
path = os.path.join(root, dbutils.widgets.get("name"))
os.makedirs(path, exist_ok=True)
with open(os.path.join(path, "part.txt"), "w") as fh:
    fh.write("hello")
dbutils.notebook.exit(
    json.dumps({"outputs": {"data_path": path, "predictions_path": os.path.join(path, "part.txt")}})
)
