# Databricks notebook source
import json
import time

dbutils.widgets.text("seconds", "1")

# COMMAND ----------

time.sleep(float(dbutils.widgets.get("seconds")))
dbutils.notebook.exit(json.dumps({"outputs": {"slept": dbutils.widgets.get("seconds")}}))
