#!/usr/bin/env bash
# Lints .github/workflows with actionlint at the version pinned in tools/go.mod
# (v1.7.12, apart from the product module), so every
# machine runs the same checks without installing anything: `go tool`
# builds it from the module cache.
#
# actionlint runs shellcheck on run: scripts when shellcheck is on PATH (it
# is on GitHub's Ubuntu runners) and silently skips that rule otherwise; set
# ACTIONLINT_SHELLCHECK=require to fail instead of skipping. Extra
# arguments go to actionlint (e.g. -verbose).
set -euo pipefail

cd "$(dirname "$0")/.."
if ! command -v shellcheck >/dev/null 2>&1; then
  if [ "${ACTIONLINT_SHELLCHECK:-}" = "require" ]; then
    echo "actionlint.sh: shellcheck is not on PATH and ACTIONLINT_SHELLCHECK=require" >&2
    exit 1
  fi
  echo "actionlint.sh: shellcheck not found; linting without it (scripts in run: steps are not shellchecked)" >&2
fi
# Scripts the workflows call, which actionlint does not open.
if command -v shellcheck >/dev/null 2>&1; then
  shellcheck .github/scripts/*.sh scripts/*.sh
fi
exec go tool -modfile=tools/go.mod actionlint "$@"
