# Databricks notebook source
# Test notebook: cell 3 raises.

dbutils.widgets.text("what", "nothing")

# COMMAND ----------

# MAGIC %md
# MAGIC Cell 2 is markdown.

# COMMAND ----------


def explode(what):
    raise ValueError(f"boom: {what}")


explode(dbutils.widgets.get("what"))

# COMMAND ----------

dbutils.notebook.exit("{}")
