# Databricks notebook source
# Test notebook: finishes without dbutils.notebook.exit.

print("done")
