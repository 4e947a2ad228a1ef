#!/usr/bin/env bash
# run-local.sh SERVICE_PORT PROMETHEUS_PORT ALERTMANAGER_PORT: Prometheus and Alertmanager
# (unpacked by `make monitoring-tools`) against the service on localhost, until Ctrl-C.
# Alert receivers come from CHURN_ALERT_* (monitoring/alertmanager_config.py).
set -euo pipefail
cd "$(dirname "$0")/.."
service_port="$1" prometheus_port="$2" alertmanager_port="$3"
run=.tools/run
mkdir -p "$run/prometheus-data" "$run/alertmanager-data"
cp monitoring/alerts.yml "$run/alerts.yml"
sed -e "s/SERVICE/127.0.0.1:$service_port/" -e "s/ALERTMANAGER/127.0.0.1:$alertmanager_port/" \
  monitoring/prometheus.yml >"$run/prometheus.yml"
.venv/bin/python -m monitoring.alertmanager_config --out "$run/alertmanager.yml"
trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT INT TERM
.tools/alertmanager/usr/bin/prometheus-alertmanager --config.file="$run/alertmanager.yml" \
  --storage.path="$run/alertmanager-data" --web.listen-address="127.0.0.1:$alertmanager_port" \
  --cluster.listen-address= --log.level=warn &
.tools/prometheus/usr/bin/prometheus --config.file="$run/prometheus.yml" \
  --storage.tsdb.path="$run/prometheus-data" --web.listen-address="127.0.0.1:$prometheus_port" \
  --log.level=warn &
echo "Prometheus:   http://127.0.0.1:$prometheus_port/alerts  (scraping http://127.0.0.1:$service_port/metrics)"
echo "Alertmanager: http://127.0.0.1:$alertmanager_port"
echo "Grafana cannot run here; deploy/monitoring/docker-compose.yml runs it with the dashboard."
echo "Ctrl-C stops both."
wait
