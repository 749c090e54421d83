#!/usr/bin/env bash
# http-inject.sh -- the Transmissions API against bindery's own SMTP injection, same run.
#
#   smtp-source -s SESSIONS -l SIZE -m N            --> bindery ESMTP listener    (msg/s)
#   ab -c CLIENTS -n N       single-recipient JSON  --> bindery HTTP_Listener API (rcpt/s)
#   ab -c CLIENTS -n N/100   100-recipient JSON     --> bindery HTTP_Listener API (rcpt/s)
#
# Every side is durable: each message is fsynced into the spool before its 250 or before the
# 200 of its request (delivery is suspended, so only injection is measured). Messages are SIZE
# bytes of text; the API's carry a `{{first}}` substitution per recipient, so each recipient's
# message is generated from the template. The sides alternate within each run so machine
# noise hits all of them; reported per side are medians over RUNS of recipients accepted per
# second, and the ratios the issue names: 100-recipient HTTP over SMTP, single-recipient HTTP
# over SMTP. Each HTTP side checks `injection summary` counted every recipient and ab saw no
# non-2xx reply.
#
# Knobs: N [20000] SIZE [2048] SESSIONS [20] CLIENTS [8] RUNS [3] SPOOL_SYNC [fsync|syncfs]
#        SPOOL_KEEP [1] (spools moved aside and removed at exit; see lib.sh)
#        SPOOL_DIR [/var/tmp/bindery-bench] OUT [/tmp/http-inject-<ts>]
# Needs: postfix (smtp-source), apache2-utils (ab).
set -euo pipefail
N=${N:-20000}; SIZE=${SIZE:-2048}; SESSIONS=${SESSIONS:-20}; CLIENTS=${CLIENTS:-8}; RUNS=${RUNS:-3}
SPOOL_SYNC=${SPOOL_SYNC:-fsync}
SPOOL_KEEP=${SPOOL_KEEP:-1}
SPOOL_DIR=${SPOOL_DIR:-/var/tmp/bindery-bench}
OUT=${OUT:-/tmp/http-inject-$(date +%Y%m%d-%H%M%S)}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
command -v ab >/dev/null || { echo "ab not found (apt-get install apache2-utils)"; exit 2; }

read -r KEY LINE < <("$BIN" api-key bench | awk '/^key:/{k=$2} /^line:/{l=$2} END{print k, l}')
echo "$LINE" > "$OUT/api_keys"

# The request bodies: SIZE bytes of text with a substitution, for 1 and for 100 recipients.
python3 - "$OUT" "$SIZE" <<'PY'
import json, sys
out, size = sys.argv[1], int(sys.argv[2])
line = "Hello {{first}}, this is the benchmark's text line, long enough to fill a body.\r\n"
text = (line * (size // len(line) + 1))[:size]
for n in (1, 100):
    body = {"return_path": "a@example.com",
            "recipients": [{"address": {"email": f"r{i}@example.net"},
                            "substitution_data": {"first": f"R{i}"}} for i in range(n)],
            "content": {"from": "a@example.com", "subject": "bench {{first}}", "text": text}}
    with open(f"{out}/body-{n}.json", "w") as f:
        json.dump(body, f)
PY

CONF="Spool_Sync = $SPOOL_SYNC
Relay_Hosts = ( 127.0.0.0/8 )
Suspend_Delivery = true
Control_Listener { Listen \"$SPOOL_DIR/console.sock\" { } }
HTTP_Listener { Listen \"127.0.0.1:0\" { API_Key_File = \"$OUT/api_keys\" } }"

http_port() {
  for _ in $(seq 100); do
    H_PORT=$(grep -o 'listening (HTTP) addr=127.0.0.1:[0-9]*' "$OUT/bindery.log" | head -1 | cut -d: -f2 || true)
    [ -n "$H_PORT" ] && return 0; sleep 0.1
  done
  echo "no HTTP listener"; exit 1
}

# api_rate NAME RCPTS: N recipients in requests of RCPTS each, CLIENTS at once (rcpt/s).
api_rate() {
  local reqs=$((N / $2)) t0 t1
  t0=$(now)
  ab -q -n "$reqs" -c "$CLIENTS" -p "$OUT/body-$2.json" -T application/json \
     -H "Authorization: $KEY" "http://127.0.0.1:$H_PORT/api/v1/transmissions" > "$OUT/ab-$1.out" 2>&1
  t1=$(now)
  if grep -q '^Non-2xx responses' "$OUT/ab-$1.out" || grep -q '^Failed requests: *[1-9]' "$OUT/ab-$1.out"; then
    log "$1: ab saw failures"; cat "$OUT/ab-$1.out" >&2; exit 1
  fi
  local counted
  counted=$("$BIN" console -s "$SPOOL_DIR/console.sock" --json injection summary \
    | python3 -c 'import json,sys; print(sum(r["recipients"] for r in json.load(sys.stdin)["injections"] if r["via"]=="api"))')
  [ "$counted" = "$((reqs * $2))" ] || { log "$1: counted $counted of $((reqs * $2))"; exit 1; }
  python3 -c "print(f'{$reqs*$2/($t1-$t0):.0f}')"
}

declare -A R
for run in $(seq "$RUNS"); do
  for side in smtp http-1 http-100; do
    start_bindery "$CONF"
    http_port
    case $side in
      smtp) r=$(inject_rate "smtp-$run" "$B_PORT") ;;
      http-1) r=$(api_rate "$side-$run" 1) ;;
      http-100) r=$(api_rate "$side-$run" 100) ;;
    esac
    stop_bindery
    R[$side]="${R[$side]:-} $r"
    log "run $run $side: $r recipients/s"
  done
done

median() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.0f}')" $1; }
S=$(median "${R[smtp]}"); H1=$(median "${R[http-1]}"); H100=$(median "${R[http-100]}")
{
  printf 'side\trecipients_per_s_runs\tmedian\n'
  printf 'smtp\t%s\t%s\n' "${R[smtp]# }" "$S"
  printf 'http-1\t%s\t%s\n' "${R[http-1]# }" "$H1"
  printf 'http-100\t%s\t%s\n' "${R[http-100]# }" "$H100"
  python3 -c "print(f'ratio http-100/smtp\t\t{$H100/$S:.2f}\nratio http-1/smtp\t\t{$H1/$S:.2f}')"
} | tee "$OUT/summary.tsv"
