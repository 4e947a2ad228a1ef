#!/usr/bin/env bash
# Container smoke test: run the image with API keys required, wait for /readyz, check that a
# request without a key gets a 401, make a key inside the container, send one /predict with
# it, check the answer, stop it.
#   deploy/smoke-test.sh IMAGE [PORT]
set -euo pipefail
image="${1:?usage: deploy/smoke-test.sh IMAGE [PORT]}"
port="${2:-3100}"
host="${CONTAINER_HOST:-127.0.0.1}"
name="churn-smoke-$$"
python="${PYTHON:-.venv/bin/python}"

# An absolute key file, so the server and `docker exec` find the same one.
docker run -d --rm --name "$name" -p "$port:3000" \
  -e CHURN_AUTH=required -e CHURN_AUTH_DB=sqlite:////tmp/churn-keys/api-keys.db "$image" >/dev/null
trap 'docker logs --tail 50 "$name" 2>/dev/null || true; docker stop "$name" >/dev/null 2>&1 || true' EXIT

for _ in $(seq 1 120); do
  curl -sf "http://$host:$port/readyz" >/dev/null && break
  sleep 1
done
curl -sf "http://$host:$port/readyz" >/dev/null || { echo "not ready after 120 s"; exit 1; }

status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$host:$port/predict" -d '{}')
[ "$status" = 401 ] || { echo "a request without a key got $status, not 401"; exit 1; }
key=$(docker exec "$name" python -m serving keys create --name smoke --scopes predict 2>/dev/null)
request=$("$python" -m serving example-request --api-key "$key" | sed "s#http://localhost:[0-9]*#http://$host:$port#")
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
