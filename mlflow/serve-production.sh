#!/usr/bin/env bash
# Production tracking server: PostgreSQL backend store, local or S3-compatible artifact store,
# and MLflow's basic-auth app, so only known users can register models or move `champion`.
#
#   MLFLOW_BACKEND_STORE_URI      postgresql+psycopg://mlflow:secret@db:5432/mlflow   (required)
#   MLFLOW_ARTIFACTS_DESTINATION  s3://churn-mlflow/artifacts or /srv/mlflow/artifacts (required)
#   MLFLOW_AUTH_ADMIN_PASSWORD    the admin user's password on first start; no default (required)
#   MLFLOW_AUTH_DATABASE_URI      where users and permissions live, e.g. a second PostgreSQL
#                                 database (required; not the backend store's database)
#   MLFLOW_AUTH_ADMIN_USERNAME (admin), MLFLOW_AUTH_DEFAULT_PERMISSION (NO_PERMISSIONS)
#   MLFLOW_FLASK_SERVER_SECRET_KEY  signs the UI's CSRF tokens; the same on every server (required)
#   MLFLOW_S3_ENDPOINT_URL        for MinIO or another S3-compatible store (optional)
#   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY   S3 credentials (optional)
#   MLFLOW_HOST (0.0.0.0), MLFLOW_PORT (5000), MLFLOW_WORKERS (4)
#   MLFLOW_AUTH_CACHE_TTL_SECONDS (60)   how long a worker trusts a checked password; 0 checks
#                                 every request (a scrypt hash, 175 ms of CPU on 2 vCPUs), and
#                                 training's hundreds of requests would spend minutes on it.
#                                 A password changed or a user deleted on another worker is
#                                 refused here only after this long.
#
# Clients set MLFLOW_TRACKING_URI=http://<host>:5000 and MLFLOW_TRACKING_USERNAME/PASSWORD;
# artifacts are proxied by the server, so they need no storage credentials of their own.
set -euo pipefail
: "${MLFLOW_BACKEND_STORE_URI:?set MLFLOW_BACKEND_STORE_URI to a postgresql+psycopg:// URL}"
: "${MLFLOW_ARTIFACTS_DESTINATION:?set MLFLOW_ARTIFACTS_DESTINATION to s3://... or a folder}"
: "${MLFLOW_AUTH_ADMIN_PASSWORD:?set MLFLOW_AUTH_ADMIN_PASSWORD: the server has no default password}"
: "${MLFLOW_AUTH_DATABASE_URI:?set MLFLOW_AUTH_DATABASE_URI to the users and permissions database}"
: "${MLFLOW_FLASK_SERVER_SECRET_KEY:?set MLFLOW_FLASK_SERVER_SECRET_KEY to a long random secret}"
mlflow_bin="${MLFLOW_BIN:-.venv/bin/mlflow}"

# MLflow reads the auth database from a file: a private one (mode 600), made for this server.
auth_config="$(mktemp -t mlflow-auth-XXXXXX.ini)"
cat >"$auth_config" <<INI
[mlflow]
default_permission = ${MLFLOW_AUTH_DEFAULT_PERMISSION:-NO_PERMISSIONS}
database_uri = ${MLFLOW_AUTH_DATABASE_URI}
admin_username = ${MLFLOW_AUTH_ADMIN_USERNAME:-admin}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
auth_cache_ttl_seconds = ${MLFLOW_AUTH_CACHE_TTL_SECONDS:-60}
INI
export MLFLOW_AUTH_CONFIG_PATH="$auth_config"

exec "$mlflow_bin" server \
  --app-name basic-auth \
  --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" \
  --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION" \
  --serve-artifacts \
  --host "${MLFLOW_HOST:-0.0.0.0}" \
  --port "${MLFLOW_PORT:-5000}" \
  --workers "${MLFLOW_WORKERS:-4}"
