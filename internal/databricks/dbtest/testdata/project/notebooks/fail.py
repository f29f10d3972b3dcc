# Databricks notebook source
dbutils.widgets.text("message", "boom")

# COMMAND ----------


def explode(message):
    raise ValueError(message)


explode(dbutils.widgets.get("message"))
