#!/usr/bin/env bash
# Production tracking server: PostgreSQL backend store, local or S3-compatible artifact store.
#
#   MLFLOW_BACKEND_STORE_URI      postgresql+psycopg://mlflow:secret@db:5432/mlflow   (required)
#   MLFLOW_ARTIFACTS_DESTINATION  s3://churn-mlflow/artifacts or /srv/mlflow/artifacts (required)
#   MLFLOW_S3_ENDPOINT_URL        for MinIO or another S3-compatible store (optional)
#   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY   S3 credentials (optional)
#   MLFLOW_HOST (0.0.0.0), MLFLOW_PORT (5000), MLFLOW_WORKERS (4)
#
# Clients then set MLFLOW_TRACKING_URI=http://<host>:5000; artifacts are proxied by the server,
# so trainers and `make bento` need no storage credentials of their own.
set -euo pipefail
: "${MLFLOW_BACKEND_STORE_URI:?set MLFLOW_BACKEND_STORE_URI to a postgresql+psycopg:// URL}"
: "${MLFLOW_ARTIFACTS_DESTINATION:?set MLFLOW_ARTIFACTS_DESTINATION to s3://... or a folder}"
mlflow_bin="${MLFLOW_BIN:-.venv/bin/mlflow}"

exec "$mlflow_bin" server \
  --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" \
  --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION" \
  --serve-artifacts \
  --host "${MLFLOW_HOST:-0.0.0.0}" \
  --port "${MLFLOW_PORT:-5000}" \
  --workers "${MLFLOW_WORKERS:-4}"
