#!/bin/sh
# PostgreSQL image init script (docker-compose.yml mounts it into /docker-entrypoint-initdb.d/; it runs
# once, when the data volume is created): the role postgres_exporter connects as. pg_monitor gives it
# read access to every statistics view it needs, and nothing else; it is not a superuser.
set -eu
: "${POSTGRES_MONITOR_PASSWORD:?set POSTGRES_MONITOR_PASSWORD in .env}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set=password="$POSTGRES_MONITOR_PASSWORD" <<'SQL'
CREATE ROLE covet_monitor LOGIN PASSWORD :'password';
GRANT pg_monitor TO covet_monitor;
SQL
