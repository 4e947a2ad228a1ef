#!/usr/bin/env bash
# Register the MLflow webhook that tells Jenkins (through the relay) when `champion` moves.
#
#   MLFLOW_TRACKING_URI    the tracking server (http://...), which must run on a SQL backend
#   MLFLOW_WEBHOOK_SECRET  shared with the relay, which checks every delivery's signature
#   $1                     the relay's URL, e.g. https://relay.example:8088/mlflow-webhook
#
# The tracking server only calls https URLs on public addresses unless it runs with
# MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https and MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true.
set -euo pipefail
: "${MLFLOW_TRACKING_URI:?set MLFLOW_TRACKING_URI to the tracking server}"
: "${1:?usage: mlflow/register-webhook.sh RELAY_URL}"
exec "${PYTHON:-.venv/bin/python}" -m webhook.register --url "$1"
