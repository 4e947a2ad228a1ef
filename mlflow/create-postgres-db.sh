#!/usr/bin/env bash
# Create the PostgreSQL role and database the tracking server uses. Run once, as a superuser.
#
#   PGHOST (127.0.0.1), PGPORT (5432), PGUSER (postgres): where and as whom to connect
#   MLFLOW_DB (mlflow), MLFLOW_DB_USER (mlflow), MLFLOW_DB_PASSWORD (required)
set -euo pipefail
: "${MLFLOW_DB_PASSWORD:?set MLFLOW_DB_PASSWORD}"
db="${MLFLOW_DB:-mlflow}"
user="${MLFLOW_DB_USER:-mlflow}"
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"

psql -v ON_ERROR_STOP=1 -v user="$user" -v password="$MLFLOW_DB_PASSWORD" -v db="$db" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'user', :'password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
echo "MLFLOW_BACKEND_STORE_URI=postgresql+psycopg://$user:<password>@$PGHOST:$PGPORT/$db"
