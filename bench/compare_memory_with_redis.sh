#!/usr/bin/env bash
# Per-session memory overhead beyond id + value: the memory tier vs Redis, same sessions, same run.
# Redis stores each session as SETEX id 1200 value (what a web app using Redis directly sends).
#   bench/compare_memory_with_redis.sh [sessions=200000] [value_bytes=1024]
# Needs build/release (scripts/build.sh release) and redis-server (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200000}
value_bytes=${2:-1024}
tool=build/release/bench/memory_overhead
[[ -x $tool ]] || { echo "build first: scripts/build.sh release" >&2; exit 2; }

dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$dir" \
  --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
trap 'kill $(cat "$dir/redis.pid") 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done

used() { redis-cli -p "$port" info memory | awk -F: '/^used_memory:/{print $2+0}'; }
before=$(used)
# Same 22-byte ids as the memory_overhead tool, as raw RESP through redis-cli --pipe.
python3 - "$n" "$value_bytes" <<'PY' | redis-cli -p "$port" --pipe >/dev/null
import sys
n, vb = int(sys.argv[1]), int(sys.argv[2])
value = b"v" * vb
out = sys.stdout.buffer
for i in range(n):
    key = b"sid%019d" % (i * 2654435761 % 1000000000000000000)
    out.write(b"*4\r\n$5\r\nSETEX\r\n$%d\r\n%s\r\n$4\r\n1200\r\n$%d\r\n%s\r\n" % (len(key), key, vb, value))
PY
after=$(used)
keys=$(redis-cli -p "$port" dbsize)
redis_overhead=$(python3 -c "print(round(($after - $before) / $keys - 22 - $value_bytes, 1))")

ours=$("$tool" "$n" "$value_bytes")
charged=$(echo "$ours" | awk -F= '/charged_overhead/{print $2}')
rss=$(echo "$ours" | awk -F= '/rss_overhead/{print $2}')
echo "sessions=$n value_bytes=$value_bytes id_bytes=22"
printf '%-34s %10s\n' "overhead per session (bytes)" "value"
printf '%-34s %10s\n' "redis used_memory" "$redis_overhead"
printf '%-34s %10s\n' "sessionserver charged (budget)" "$charged"
printf '%-34s %10s\n' "sessionserver resident (RSS)" "$rss"
python3 -c "print('ratio redis/sessionserver (RSS): %.1fx' % ($redis_overhead / $rss))"
