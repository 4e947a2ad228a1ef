#!/usr/bin/env bash
# Container smoke test: run the image, wait for /readyz, send one /predict, check it, stop it.
#   deploy/smoke-test.sh IMAGE [PORT]
set -euo pipefail
image="${1:?usage: deploy/smoke-test.sh IMAGE [PORT]}"
port="${2:-3100}"
host="${CONTAINER_HOST:-127.0.0.1}"
name="churn-smoke-$$"
python="${PYTHON:-.venv/bin/python}"

docker run -d --rm --name "$name" -p "$port:3000" "$image" >/dev/null
trap 'docker logs --tail 50 "$name" 2>/dev/null || true; docker stop "$name" >/dev/null 2>&1 || true' EXIT

for _ in $(seq 1 120); do
  curl -sf "http://$host:$port/readyz" >/dev/null && break
  sleep 1
done
curl -sf "http://$host:$port/readyz" >/dev/null || { echo "not ready after 120 s"; exit 1; }

request=$("$python" -m serving example-request | sed "s#http://localhost:[0-9]*#http://$host:$port#")
answer=$(eval "$request")
echo "$answer"
echo "$answer" | "$python" -c '
import json, sys
predictions = json.load(sys.stdin)
assert isinstance(predictions, list) and len(predictions) == 1, predictions
p = predictions[0]
assert 0.0 <= p["churn_probability"] <= 1.0 and p["risk_tier"] in {"low", "medium", "high"}, p
print("smoke test passed: model version", p["model_version"])
'
