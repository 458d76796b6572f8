#!/usr/bin/env bash
# Make Redis and InfluxDB (v1 HTTP API) reachable on loopback for the demo and the tests.
#
#   scripts/services.sh up     reuse servers that answer at the configured URLs, else
#                              install the Debian packages if missing and start our own
#                              with data under .run/ (pid files there too)
#   scripts/services.sh down   stop only what `up` started (by pid file)
#   scripts/services.sh status
#
# Configuration (environment): SUBMETER_REDIS_URL (default redis://127.0.0.1:6389),
# SUBMETER_INFLUX_URL (default http://127.0.0.1:8096). The resolved URLs are written
# to .run/services.env, which the Makefile, the demo and the tests read.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUN="$ROOT/.run"
mkdir -p "$RUN"

REDIS_URL=${SUBMETER_REDIS_URL:-redis://127.0.0.1:6389}
INFLUX_URL=${SUBMETER_INFLUX_URL:-http://127.0.0.1:8096}

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] error: %s\n' "$*" >&2; exit 1; }

# host and port out of a URL like redis://127.0.0.1:6389/0 or http://127.0.0.1:8096
url_host() { local u=${1#*://}; u=${u#*@}; u=${u%%/*}; echo "${u%%:*}"; }
url_port() { local u=${1#*://}; u=${u#*@}; u=${u%%/*}; [[ $u == *:* ]] && echo "${u##*:}" || echo "$2"; }

REDIS_HOST=$(url_host "$REDIS_URL"); REDIS_PORT=$(url_port "$REDIS_URL" 6379)
INFLUX_HOST=$(url_host "$INFLUX_URL"); INFLUX_PORT=$(url_port "$INFLUX_URL" 8086)

redis_up() { command -v redis-cli >/dev/null && [ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }
influx_up() { curl -fsS -o /dev/null -m 2 "$INFLUX_URL/ping" 2>/dev/null; }

apt_install() {
  local pkgs=("$@") missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "need Debian packages ${missing[*]}; install them as root (apt-get install -y ${missing[*]}) or point SUBMETER_REDIS_URL / SUBMETER_INFLUX_URL at running servers"
  log "installing ${missing[*]}"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >"$RUN/apt.log" 2>&1; then
    apt-get update -qq >>"$RUN/apt.log" 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >>"$RUN/apt.log" 2>&1 \
      || die "apt-get install ${missing[*]} failed; see $RUN/apt.log"
  fi
}

wait_for() { # name, check function, seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do "$2" && return 0; sleep 0.1; done
  return 1
}

start_redis() {
  if redis_up; then log "redis: reusing $REDIS_URL"; return; fi
  case "$REDIS_HOST" in 127.*|localhost) ;; *) die "redis at $REDIS_URL does not answer and is not on loopback; start it or change SUBMETER_REDIS_URL";; esac
  apt_install redis-server
  mkdir -p "$RUN/redis"
  # AOF with fsync every second: a crash loses at most a second of queue state,
  # and BullMQ jobs are idempotent (docs/architecture.md).
  redis-server --bind "$REDIS_HOST" --port "$REDIS_PORT" --dir "$RUN/redis" \
    --appendonly yes --appendfsync everysec --save "" \
    --daemonize yes --pidfile "$RUN/redis.pid" --logfile "$RUN/redis.log" \
    || die "redis-server failed to start; see $RUN/redis.log"
  wait_for redis redis_up 10 || die "redis-server started but does not answer on $REDIS_HOST:$REDIS_PORT; see $RUN/redis.log"
  log "redis: started on $REDIS_HOST:$REDIS_PORT (data $RUN/redis)"
}

start_influx() {
  if influx_up; then log "influxdb: reusing $INFLUX_URL"; return; fi
  case "$INFLUX_HOST" in 127.*|localhost) ;; *) die "influxdb at $INFLUX_URL does not answer and is not on loopback; start it or change SUBMETER_INFLUX_URL";; esac
  apt_install influxdb curl
  local d="$RUN/influxdb"
  mkdir -p "$d"
  cat >"$RUN/influxdb.conf" <<CONF
reporting-enabled = false
bind-address = "127.0.0.1:$((INFLUX_PORT + 2))"
[meta]
  dir = "$d/meta"
[data]
  dir = "$d/data"
  wal-dir = "$d/wal"
  query-log-enabled = false
  index-version = "inmem"
[monitor]
  store-enabled = false
[http]
  bind-address = "$INFLUX_HOST:$INFLUX_PORT"
  log-enabled = false
  max-body-size = 0
[continuous_queries]
  enabled = false
CONF
  nohup influxd run -config "$RUN/influxdb.conf" -pidfile "$RUN/influxdb.pid" >"$RUN/influxdb.log" 2>&1 &
  wait_for influxdb influx_up 30 || die "influxd started but does not answer on $INFLUX_URL; see $RUN/influxdb.log"
  log "influxdb: started on $INFLUX_HOST:$INFLUX_PORT (data $d)"
}

stop_one() { # name, pidfile
  local pf="$RUN/$2"
  if [ -f "$pf" ]; then
    local pid; pid=$(cat "$pf")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"; for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
      log "$1: stopped (pid $pid)"
    fi
    rm -f "$pf"
  else
    log "$1: not started by us; left alone"
  fi
}

write_env() {
  cat >"$RUN/services.env" <<ENV
SUBMETER_REDIS_URL=$REDIS_URL
SUBMETER_INFLUX_URL=$INFLUX_URL
ENV
}

case "${1:-up}" in
  up)
    command -v curl >/dev/null || apt_install curl
    start_redis
    start_influx
    write_env
    ;;
  down)
    stop_one redis redis.pid
    stop_one influxdb influxdb.pid
    ;;
  status)
    redis_up && echo "redis: up at $REDIS_URL" || echo "redis: down at $REDIS_URL"
    influx_up && echo "influxdb: up at $INFLUX_URL" || echo "influxdb: down at $INFLUX_URL"
    ;;
  *) die "usage: $0 up|down|status" ;;
esac
