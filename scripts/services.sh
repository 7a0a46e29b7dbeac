#!/usr/bin/env bash
# The servers `make test` and `make bench` talk to, on 127.0.0.1 default ports:
#   PostgreSQL 5432 (trust auth on loopback, database "test"), Redis 6379 (keeps
#   nothing on disk), RabbitMQ 5672 (guest/guest, loopback only by default).
# A server that already answers is left alone; one that does not is started,
# and on a bare Debian machine first installed from Debian's packages (as root).
#   usage: scripts/services.sh [postgres] [redis] [rabbitmq]    (default: all three)
set -uo pipefail

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
fail() { echo "services: $*" >&2; exit 1; }

await_port() {  # await_port PORT SECONDS NAME
  local deadline=$((SECONDS + $2))
  until answers "$1"; do
    ((SECONDS < deadline)) || fail "$3 does not answer on 127.0.0.1:$1 after $2 s"
    sleep 1
  done
}

install_debian() { "$(dirname "$0")/install-debian.sh" "$@" || exit 1; }

postgres() {
  if ! answers 5432; then
    ls -d /etc/postgresql/*/main >/dev/null 2>&1 || install_debian postgresql
    local version hba
    version=$(ls /etc/postgresql | sort -n | tail -1)
    hba=/etc/postgresql/$version/main/pg_hba.conf
    # Tests connect as postgres over TCP without a password: trust loopback only.
    sed -i -E 's/^(host[[:space:]]+all[[:space:]]+all[[:space:]]+(127\.0\.0\.1\/32|::1\/128)[[:space:]]+)[a-z0-9-]+/\1trust/' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1
    await_port 5432 30 PostgreSQL
  fi
  local sql=(psql -h 127.0.0.1 -U postgres -d postgres -tAq)
  [ "$("${sql[@]}" -c "select 1 from pg_database where datname = 'test'")" = 1 ] \
    || "${sql[@]}" -c "create database test" >/dev/null \
    || fail "cannot create database test (is loopback trust auth on in pg_hba.conf?)"
}

redis() {
  answers 6379 && return
  command -v redis-server >/dev/null || install_debian redis-server
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/payments-tests.log >/dev/null
  await_port 6379 20 Redis
}

rabbitmq() {
  answers 5672 && return
  command -v rabbitmq-server >/dev/null || install_debian rabbitmq-server
  rabbitmq-server -detached >/dev/null 2>&1
  await_port 5672 90 RabbitMQ
}

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(postgres redis rabbitmq)
for service in "${wanted[@]}"; do
  case "$service" in
  postgres | redis | rabbitmq) "$service" ;;
  *) fail "unknown service $service (postgres, redis or rabbitmq)" ;;
  esac
done
echo "services: answering: ${wanted[*]}"
