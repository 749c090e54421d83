#!/usr/bin/env bash
# policy-inject.sh -- what the Lua binding policy costs on the wire: bindery with no script,
# bindery with the shipped seed-style script (examples/policy), and Postfix, same run.
#
#   smtp-source -s SESSIONS -l SIZE -m N  -->  bindery, no policy           (spool, hold)
#   smtp-source -s SESSIONS -l SIZE -m N  -->  bindery, examples/policy     (spool, hold)
#   smtp-source -s SESSIONS -l SIZE -m N  -->  Postfix (defer_transports = smtp)
#
# All three fsync every accepted message before the 250. Runs rotate so machine noise hits
# each side alike; the report gives medians and ratios. After the scripted runs the mainlog
# must show every message assigned by the script (binding "general"), so the number cannot
# come from a policy that did not run. Run as root (Postfix).
#
# Knobs: N [20000] SIZE [2048] SESSIONS [20] RUNS [3]
#        SPOOL_DIR [/var/tmp/bindery-bench] OUT [/tmp/policy-inject-<ts>]
set -euo pipefail
N=${N:-20000}; SIZE=${SIZE:-2048}; SESSIONS=${SESSIONS:-20}; RUNS=${RUNS:-3}
SPOOL_DIR=${SPOOL_DIR:-/var/tmp/bindery-bench}
OUT=${OUT:-/tmp/policy-inject-$(date +%Y%m%d-%H%M%S)}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

PF_PORT=$(free_port)
start_postfix "$PF_PORT" policy-inject "relayhost = [127.0.0.1]:9
defer_transports = smtp"

COMMON="Suspend_Delivery = true
Relay_Hosts = ( 127.0.0.0/8 )
Mainlog = \"$SPOOL_DIR/mainlog.jsonl\""
# The example's bindings and script, by absolute path.
POLICY="$COMMON
binding \"general\" { bind_address = \"127.0.0.2\" }
binding \"transactional\" { bind_address = \"127.0.0.3\" }
binding_group \"marketing\" {
  binding \"mkt1\" { bind_address = \"127.0.0.4\" }
  binding \"mkt2\" { bind_address = \"127.0.0.5\" }
}
binding \"partner\" { bind_address = \"127.0.0.6\" }
scriptlet \"scriptlet\" { script \"assign\" { source = \"$ROOT/examples/policy/policy/assign.lua\" } }"

assigned() { grep -c '"type":"reception".*"binding":"general"' "$SPOOL_DIR/mainlog.jsonl" || true; }

log "warm-up (1000 each)"
start_bindery "$POLICY"; N=1000 inject_rate warm "$B_PORT" >/dev/null; stop_bindery
N=1000 inject_rate warm "$PF_PORT" >/dev/null
postsuper -d ALL >/dev/null 2>&1 || true

printf 'run\tbindery_msg_s\tbindery_policy_msg_s\tpostfix_msg_s\n' > "$OUT/results.tsv"
for r in $(seq "$RUNS"); do
  # Alternate which bindery goes first: the one after a big spool clean-up pays for it.
  if [ $((r % 2)) = 1 ]; then
    start_bindery "$COMMON"; b=$(inject_rate bindery "$B_PORT"); stop_bindery
    start_bindery "$POLICY"; s=$(inject_rate policy "$B_PORT"); got=$(assigned); stop_bindery
  else
    start_bindery "$POLICY"; s=$(inject_rate policy "$B_PORT"); got=$(assigned); stop_bindery
    start_bindery "$COMMON"; b=$(inject_rate bindery "$B_PORT"); stop_bindery
  fi
  [ "$got" = "$N" ] || { log "the script assigned $got of $N messages"; exit 1; }
  p=$(inject_rate postfix "$PF_PORT")
  sleep 2; postsuper -d ALL >/dev/null 2>&1 || true
  log "run $r: bindery $b msg/s, with policy $s msg/s ($got assigned), Postfix $p msg/s"
  printf '%s\t%s\t%s\t%s\n' "$r" "$b" "$s" "$p" >> "$OUT/results.tsv"
done
python3 - "$OUT/results.tsv" <<'PY'
import statistics, sys
rows = [l.split('\t') for l in open(sys.argv[1]).read().split('\n')[1:] if l]
b, s, p = (statistics.median(float(r[i]) for r in rows) for i in (1, 2, 3))
print(f"medians: bindery {b:.0f} msg/s, bindery+policy {s:.0f} msg/s, Postfix {p:.0f} msg/s; "
      f"policy/no-policy {s/b:.2f}, bindery+policy/Postfix {s/p:.2f}x")
PY
