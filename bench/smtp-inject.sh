#!/usr/bin/env bash
# smtp-inject.sh -- reception speed, bindery against Postfix, same machine, same run.
#
#   smtp-source -s SESSIONS -l SIZE -m N  -->  bindery (durable spool, no delivery yet)
#   smtp-source -s SESSIONS -l SIZE -m N  -->  Postfix holding mail (defer_transports = smtp)
#
# Both fsync every accepted message before answering 250. Runs alternate (bindery, Postfix,
# bindery, ...) so machine noise hits both; the report gives each side's median msg/s and the
# ratio. Postfix listens on a free port picked at start, bindery on port 0 (read back from its
# log). Run as root (Postfix). Needs: postfix (smtp-source), python3, a release build.
#
# Knobs: N [20000] SIZE [2048] SESSIONS [20] RUNS [3] SPOOL_SYNC [fsync|syncfs, fsync]
#        SPOOL_DIR [/var/tmp/bindery-bench] OUT [/tmp/smtp-inject-<ts>]
set -euo pipefail
N=${N:-20000}; SIZE=${SIZE:-2048}; SESSIONS=${SESSIONS:-20}; RUNS=${RUNS:-3}
SPOOL_SYNC=${SPOOL_SYNC:-fsync}
SPOOL_DIR=${SPOOL_DIR:-/var/tmp/bindery-bench}
OUT=${OUT:-/tmp/smtp-inject-$(date +%Y%m%d-%H%M%S)}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release/bindery
mkdir -p "$OUT"
log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release -p bindery)
command -v smtp-source >/dev/null || { echo "smtp-source not found (apt-get install postfix)"; exit 2; }

BINDERY_PID=""; STARTED_POSTFIX=0
cleanup() {
  [ -n "$BINDERY_PID" ] && kill "$BINDERY_PID" 2>/dev/null && wait "$BINDERY_PID" 2>/dev/null || true
  [ $STARTED_POSTFIX = 1 ] && postfix stop >/dev/null 2>&1 || true
  rm -rf "$SPOOL_DIR"
}
trap cleanup EXIT

# ---- Postfix: accept, fsync, hold (nothing is delivered) ----
PF_PORT=$(free_port)
postfix stop >/dev/null 2>&1 || true
[ -f /etc/postfix/master.cf.pre-bench ] || cp -p /etc/postfix/master.cf /etc/postfix/master.cf.pre-bench
cp -p /etc/postfix/master.cf.pre-bench /etc/postfix/master.cf
cat > /etc/postfix/main.cf <<CF
# bindery bench/smtp-inject.sh: Postfix accepts on loopback and holds every message
compatibility_level = 3.6
myhostname = inject-bench.localdomain
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
local_recipient_maps =
relay_domains =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
relayhost = [127.0.0.1]:9
defer_transports = smtp
default_process_limit = 100
smtpd_tls_security_level = none
biff = no
maillog_file = /var/log/postfix-inject-bench.log
CF
postconf -M# smtp/inet
postconf -M "127.0.0.1:${PF_PORT}/inet = 127.0.0.1:${PF_PORT} inet n - n - - smtpd"
postconf -F '*/*/chroot = n'
postsuper -d ALL >/dev/null 2>&1 || true
postfix start >/dev/null; STARTED_POSTFIX=1
sleep 1

# ---- bindery ----
start_bindery() {
  rm -rf "$SPOOL_DIR"; mkdir -p "$SPOOL_DIR"
  cat > "$OUT/bindery.conf" <<CF
Spoolbase = "$SPOOL_DIR/spool"
Spool_Sync = $SPOOL_SYNC
# Reception only: accepted mail stays in the spool, like Postfix with defer_transports.
Suspend_Delivery = true
Relay_Hosts = ( 127.0.0.0/8 )
ESMTP_Listener { Listen "127.0.0.1:0" { } }
CF
  # Remove the old log first: the loop below must not read the previous run's port before
  # the new process has truncated the file.
  rm -f "$OUT/bindery.log"
  "$BIN" run -c "$OUT/bindery.conf" 2> "$OUT/bindery.log" &
  BINDERY_PID=$!
  for _ in $(seq 100); do
    B_PORT=$(grep -o 'addr=127.0.0.1:[0-9]*' "$OUT/bindery.log" 2>/dev/null | head -1 | cut -d: -f2 || true)
    [ -n "$B_PORT" ] && return 0; sleep 0.1
  done
  echo "bindery did not start"; cat "$OUT/bindery.log"; exit 1
}
stop_bindery() { kill "$BINDERY_PID"; wait "$BINDERY_PID" || true; BINDERY_PID=""; }

# measure NAME PORT -> msg/s on stdout
measure() {
  local t0 t1 rc=0
  t0=$(now)
  smtp-source -4 -s "$SESSIONS" -l "$SIZE" -m "$N" -f a@example.com -t b@example.net "127.0.0.1:$2" \
    > "$OUT/source-$1.out" 2>&1 || rc=$?
  t1=$(now)
  [ $rc = 0 ] || { log "smtp-source against $1 exited $rc: $(tail -n1 "$OUT/source-$1.out")"; exit 1; }
  python3 -c "print(f'{$N/($t1-$t0):.0f}')"
}
pf_held() { find /var/spool/postfix/deferred /var/spool/postfix/active /var/spool/postfix/incoming -type f | wc -l; }

log "warm-up (1000 each)"
start_bindery
N=1000 measure warm "$B_PORT" >/dev/null
stop_bindery
N=1000 measure warm "$PF_PORT" >/dev/null
postsuper -d ALL >/dev/null 2>&1 || true

printf 'run\tbindery_msg_s\tpostfix_msg_s\n' > "$OUT/results.tsv"
for r in $(seq "$RUNS"); do
  start_bindery
  b=$(measure bindery "$B_PORT")
  stop_bindery
  kept=$("$BIN" spool list -c "$OUT/bindery.conf" 2>/dev/null | wc -l)
  [ "$kept" = "$N" ] || { log "bindery spool holds $kept of $N"; exit 1; }
  p=$(measure postfix "$PF_PORT")
  sleep 2; held=$(pf_held); postsuper -d ALL >/dev/null 2>&1 || true
  log "run $r: bindery $b msg/s ($kept spooled), Postfix $p msg/s ($held held)"
  printf '%s\t%s\t%s\n' "$r" "$b" "$p" >> "$OUT/results.tsv"
done
python3 - "$OUT/results.tsv" <<'PY'
import statistics, sys
rows = [l.split('\t') for l in open(sys.argv[1]).read().split('\n')[1:] if l]
b = statistics.median(float(r[1]) for r in rows); p = statistics.median(float(r[2]) for r in rows)
print(f"bindery median {b:.0f} msg/s, Postfix median {p:.0f} msg/s, ratio {b/p:.2f}x")
PY
