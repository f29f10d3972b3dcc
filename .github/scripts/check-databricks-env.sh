#!/usr/bin/env bash
# Fails a job early, naming the fix, when the GitHub environment it runs in
# lacks what pipectl needs to reach Databricks (docs/CI.md). Reads TARGET,
# ENVIRONMENT (the GitHub environment, when not named like the target),
# DATABRICKS_HOST, DATABRICKS_CLIENT_ID, DATABRICKS_AUTH_TYPE and HAS_TOKEN;
# prints no secret.
set -euo pipefail

target=${TARGET:?TARGET is not set}
environment=${ENVIRONMENT:-$target}
auth=${DATABRICKS_AUTH_TYPE:-github-oidc}
missing=()
if [ -z "${DATABRICKS_HOST:-}" ]; then
  missing+=("variable DATABRICKS_HOST (the workspace URL, e.g. https://dbc-1234.cloud.databricks.com)")
fi
case "$auth" in
github-oidc)
  if [ -z "${DATABRICKS_CLIENT_ID:-}" ]; then
    missing+=("variable DATABRICKS_CLIENT_ID (the application id of the environment's service principal)")
  fi
  ;;
pat)
  if [ "${HAS_TOKEN:-false}" != "true" ]; then
    missing+=("secret DATABRICKS_TOKEN (its variable DATABRICKS_AUTH_TYPE is pat)")
  fi
  ;;
*)
  echo "::error::GitHub environment '$environment': variable DATABRICKS_AUTH_TYPE is '$auth'; use github-oidc (the default when unset) or pat. See docs/CI.md"
  exit 1
  ;;
esac
if [ "${#missing[@]}" -gt 0 ]; then
  for m in "${missing[@]}"; do
    echo "::error::GitHub environment '$environment' has no $m. See docs/CI.md"
  done
  exit 1
fi
echo "target $target: Databricks workspace $DATABRICKS_HOST, auth $auth"
