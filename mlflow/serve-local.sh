#!/usr/bin/env bash
# MLflow tracking server and UI on the embedded store that `make demo` writes to.
set -euo pipefail
port="${1:-5000}"
mkdir -p mlruns/artifacts
exec .venv/bin/mlflow server \
  --backend-store-uri "sqlite:///mlruns/mlflow.db" \
  --default-artifact-root "$(pwd)/mlruns/artifacts" \
  --host 127.0.0.1 --port "$port"
