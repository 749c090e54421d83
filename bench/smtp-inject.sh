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
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

# ---- Postfix: accept, fsync, hold (nothing is delivered) ----
PF_PORT=$(free_port)
start_postfix "$PF_PORT" smtp-inject "relayhost = [127.0.0.1]:9
defer_transports = smtp"

# ---- bindery: accept, fsync, hold ----
start_inject_bindery() {
  # Reception only: accepted mail stays in the spool, like Postfix with defer_transports.
  start_bindery "Spool_Sync = $SPOOL_SYNC
Suspend_Delivery = true
Relay_Hosts = ( 127.0.0.0/8 )"
}

pf_held() { find /var/spool/postfix/deferred /var/spool/postfix/active /var/spool/postfix/incoming -type f | wc -l; }

log "warm-up (1000 each)"
start_inject_bindery
N=1000 inject_rate warm "$B_PORT" >/dev/null
stop_bindery
N=1000 inject_rate warm "$PF_PORT" >/dev/null
postsuper -d ALL >/dev/null 2>&1 || true

printf 'run\tbindery_msg_s\tpostfix_msg_s\n' > "$OUT/results.tsv"
for r in $(seq "$RUNS"); do
  start_inject_bindery
  b=$(inject_rate bindery "$B_PORT")
  stop_bindery
  kept=$("$BIN" spool list -c "$OUT/bindery.conf" 2>/dev/null | wc -l)
  [ "$kept" = "$N" ] || { log "bindery spool holds $kept of $N"; exit 1; }
  p=$(inject_rate postfix "$PF_PORT")
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
