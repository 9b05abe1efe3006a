#!/bin/sh
# Web API benchmark: send/message throughput with wrk at concurrency 50.
# Usage: bench/web_api.sh sqlite|postgresql [seconds]
# PostgreSQL uses $POSTAL_BENCH_POSTGRESQL_URL (a server URL; a fresh database is made on it).
set -eu
ENGINE=${1:-sqlite}
SECONDS_TO_RUN=${2:-20}
PY=${PYTHON:-/work/venv/bin/python}
TWISTD=${TWISTD:-/work/venv/bin/twistd}
PORT=${POSTAL_BENCH_PORT:-5099}
DIR=$(mktemp -d /tmp/postal-bench-web.XXXXXX)
HERE=$(cd "$(dirname "$0")" && pwd)
if [ "$ENGINE" = sqlite ]; then
  URL="sqlite:///$DIR/postal.sqlite"
else
  BASE=${POSTAL_BENCH_POSTGRESQL_URL:-postgresql+psycopg://postgres@127.0.0.1:5433/postgres}
  NAME="postal_bench_$(date +%s)"
  "$PY" -c "import sqlalchemy as s; e=s.create_engine('$BASE', isolation_level='AUTOCOMMIT'); e.connect().execute(s.text('CREATE DATABASE $NAME'))"
  URL="${BASE%/*}/$NAME"
fi
cat > "$DIR/postal.yml" <<YAML
version: 2
database:
  url: "$URL"
web_server:
  default_port: $PORT
  default_bind_address: 127.0.0.1
YAML
POSTAL_BENCH_KEY=$("$PY" "$HERE/web_setup.py" "$URL")
export POSTAL_BENCH_KEY
"$TWISTD" -n --pidfile "$DIR/twistd.pid" postal-web --config "$DIR/postal.yml" > "$DIR/twistd.out" 2>&1 &
TWISTD_PID=$!
trap 'kill $TWISTD_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  curl -s "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  sleep 0.2
done
wrk -t2 -c50 -d"${SECONDS_TO_RUN}s" --latency -s "$HERE/web_send.lua" "http://127.0.0.1:$PORT/api/v1/send/message"
kill $TWISTD_PID
wait $TWISTD_PID 2>/dev/null || true
trap - EXIT
"$PY" -c "
import sqlalchemy as s
from postal.db import schema
e = s.create_engine('$URL')
with e.connect() as c:
    m = c.execute(s.select(s.func.count()).select_from(schema.messages)).scalar()
    q = c.execute(s.select(s.func.count()).select_from(schema.queued_messages)).scalar()
print(f'messages stored: {m}, queue rows: {q}, accepted/s over ${SECONDS_TO_RUN}s: {m / ${SECONDS_TO_RUN}:.0f}')
"
echo "work dir: $DIR"
