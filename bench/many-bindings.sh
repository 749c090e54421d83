#!/usr/bin/env bash
# many-bindings.sh -- delivery speed with many bindings and many domains (issue 17).
#
#   bindings:  smtp-source -s 20 -m N --> bindery (Lua: round-robin over B bindings, each its
#              own source address 127.2.x.y) --(Gateway)--> smtp-sink
#   gateway:   inject.py, message i to r<i>@d<i mod D>.test --> bindery (one binding)
#              --(Gateway)--> smtp-sink: D queues, one per domain
#   mx:        the same load, routed by MX records dnsmasq serves: the D domains point at
#              four hosts (mx0..3.big.test on 127.0.0.20-23), as Google's and Microsoft's
#              customers' domains do; a smtp-sink on each
#   mx-nsd:    the same, the zone served by NSD, whose cost per question does not grow with
#              the zone as dnsmasq's does: what bindery alone costs per new domain
#   postfix:   the smtp-source load and the D = 20,000 load through Postfix with relayhost and
#              default_destination_concurrency_limit = 20, the peer
#
# The sink is bench/sink-bench (SINK=smtp-sink for Postfix's): at 10,000 sessions smtp-sink
# spent 12.8 s of CPU for 20,000 messages where bindery spent 15 s, on 2 cores, so it, not the
# MTA, set the pace.
#
# Each bindery queue may open Max_Outbound_Connections = 20 (CONNS). A run ends when the
# sinks have counted N messages; the figure is N / (that moment - start of injection). Every
# second `ss` counts our sockets to the sink port in SYN-SENT and ESTABLISHED; the report
# gives the most of each, bindery's peak RSS (VmHWM), its CPU time per message (reception and
# delivery), the load's CPU seconds (the injector and the sinks), the DNS server's in the MX
# loads, and medians of RUNS runs. Run as root
# (Postfix, ulimit).
#
# PERF=1 records a `perf` profile of bindery in each run ($OUT/perf-MODE-QUEUES-RUN.data,
# read with `perf report -i FILE --no-children`); PERF=dwarf with DWARF call graphs (the
# release build has no frame pointers; slower, and much larger files).
#
# Knobs: N [20000] SIZE [2048] SESSIONS [20] CONNS [20] RUNS [3] SINK [sink-bench] EXTRA ['']
#        BINDINGS ["1 20 200 2000 10000"] DOMAINS ["1 200 2000 20000"] MODES ["bindings gateway mx mx-nsd postfix"]
#        SPOOL_DIR [/var/tmp/bindery-bench] OUT [/tmp/many-bindings-<ts>]
set -euo pipefail
N=${N:-20000}; SIZE=${SIZE:-2048}; SESSIONS=${SESSIONS:-20}; CONNS=${CONNS:-20}; RUNS=${RUNS:-3}
BINDINGS=${BINDINGS:-"1 20 200 2000 10000"}
DOMAINS=${DOMAINS:-"1 200 2000 20000"}
MODES=${MODES:-"bindings gateway mx mx-nsd postfix"}
SINK=${SINK:-sink-bench}
# EXTRA: more bindery configuration for every run (e.g. 'Host_Connect_Rate = 0').
EXTRA=${EXTRA:-}
SPOOL_DIR=${SPOOL_DIR:-/var/tmp/bindery-bench}
OUT=${OUT:-/tmp/many-bindings-$(date +%Y%m%d-%H%M%S)}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
ulimit -n "$(ulimit -Hn)"

SINK_BIN=$ROOT/target/release/sink-bench
[ -x "$SINK_BIN" ] || (cd "$ROOT" && cargo build --release -p sink-bench)
SINK_PORT=$(free_port)
SINK_PIDS=()
# start_sinks NAME IP...: one smtp-sink per address on SINK_PORT, counters in sink-NAME-IP.out.
start_sinks() {
  local name=$1; shift
  SINK_FILES=()
  for ip in "$@"; do
    if [ "$SINK" = smtp-sink ]; then
      smtp-sink -u nobody -m 60000 -c "$ip:$SINK_PORT" 1000 > "$OUT/sink-$name-$ip.out" 2>&1 &
    else
      "$SINK_BIN" "$ip:$SINK_PORT" > "$OUT/sink-$name-$ip.out" 2>&1 &
    fi
    SINK_PIDS+=($!); SINK_FILES+=("$OUT/sink-$name-$ip.out")
  done
  sleep 0.3
}
stop_sinks() {
  for p in "${SINK_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
  SINK_PIDS=()
}
# smtp-sink -c rewrites a counter line in place ("sess=36 quit=36 mesg=1000\r").
sinks_count() {
  local total=0 n f
  for f in "${SINK_FILES[@]}"; do
    n=$(tr '\r' '\n' < "$f" | grep -o 'mesg=[0-9]*' | tail -n1 | cut -d= -f2)
    total=$((total + ${n:-0}))
  done
  echo "$total"
}

# Every second: our sockets to the sink port in SYN-SENT and ESTABLISHED (the most of each).
start_sampler() {
  ( syn=0; est=0
    while :; do
      s=$(ss -Htn state syn-sent "( dport = :$SINK_PORT )" | wc -l)
      e=$(ss -Htn state established "( dport = :$SINK_PORT )" | wc -l)
      [ "$s" -gt "$syn" ] && syn=$s; [ "$e" -gt "$est" ] && est=$e
      echo "$syn $est" > "$OUT/sampled"
      sleep 1
    done ) &
  SAMPLER=$!
}
stop_sampler() { kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null || true; cat "$OUT/sampled"; }

# wait_sinks NAME: until the sinks have N, then msg/s since T0.
wait_sinks() {
  local deadline t1
  deadline=$(( $(date +%s) + 600 ))
  while [ "$(sinks_count)" -lt "$N" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { log "$1: sinks have $(sinks_count) of $N after 600 s"; return 1; }
    sleep 0.05
  done
  t1=$(now)
  python3 -c "print(f'{$N/($t1-$T0):.0f}')"
}

# The injectors run under /usr/bin/time: their CPU, with the sinks', is the load's share of
# the machine (LOAD_CPU), which with bindery's and the DNS server's makes the whole budget.
inject_source() { # PORT
  /usr/bin/time -f '%U %S' -o "$OUT/inject.time" smtp-source -4 -s "$SESSIONS" -l "$SIZE" -m "$N" -f a@example.com -t b@example.net "127.0.0.1:$1" \
    > "$OUT/source.out" 2>&1 || { log "smtp-source exited $?: $(tail -n1 "$OUT/source.out")"; return 1; }
}
inject_domains() { # PORT DOMAINS
  /usr/bin/time -f '%U %S' -o "$OUT/inject.time" python3 "$HERE/inject.py" "$1" "$N" "$SESSIONS" "$SIZE" "$2"
}

# bindings_conf B: B bindings in one group, a Lua policy spreading messages over them.
bindings_conf() {
  local b=$1 i
  cat > "$OUT/rr.lua" <<LUA
require("msys.core")
local mod = {}
local n = 0
function mod:validate_set_binding(msg)
  n = n % $b + 1
  msg:binding("b" .. n)
  return msys.core.VALIDATE_CONT
end
msys.registerModule("rr", mod)
LUA
  echo 'binding_group "pool" {'
  for i in $(seq "$b"); do
    printf '  binding "b%d" { Bind_Address = 127.2.%d.%d }\n' "$i" $((i / 250)) $((i % 250 + 1))
  done
  echo '}'
  printf 'scriptlet "scriptlet" { script "rr" { source = "%s/rr.lua" } }\n' "$OUT"
}

# The MX zone: D domains over four hosts. start_dns KIND D serves it with dnsmasq (mx-host
# lines in its configuration) or NSD (an authoritative server that compiles its zone file
# into a tree, so a question costs the same at any zone size); both answer with TTL 0 and
# give the exchange's address as glue. Sets DNS_PID.
DNS_PORT=$(free_port)
start_dns() { # KIND D
  local kind=$1 d=$2 i
  case $kind in
    dnsmasq)
      { for k in 0 1 2 3; do echo "host-record=mx$k.big.test,127.0.0.2$k"; done
        for i in $(seq 0 $((d - 1))); do echo "mx-host=d$i.test,mx$((i % 4)).big.test,10"; done
      } > "$OUT/dnsmasq.conf"
      dnsmasq -k --conf-file="$OUT/dnsmasq.conf" --no-resolv --no-hosts --listen-address=127.0.0.1 \
        --bind-interfaces --port="$DNS_PORT" --user=root --pid-file= --local=/test/ \
        > "$OUT/dnsmasq.log" 2>&1 &
      DNS_PID=$! ;;
    nsd)
      { printf '$ORIGIN test.\n$TTL 0\n@ SOA ns.test. hostmaster.test. 1 3600 600 86400 0\n'
        printf '@ NS ns\nns A 127.0.0.1\n'
        for k in 0 1 2 3; do echo "mx$k.big A 127.0.0.2$k"; done
        for i in $(seq 0 $((d - 1))); do echo "d$i MX 10 mx$((i % 4)).big"; done
      } > "$OUT/test.zone"
      cat > "$OUT/nsd.conf" <<NSD
server:
  ip-address: 127.0.0.1@$DNS_PORT
  port: $DNS_PORT
  do-ip6: no
  username: ""
  chroot: ""
  zonesdir: "$OUT"
  database: ""
  zonelistfile: "$OUT/nsd-zone.list"
  xfrdfile: "$OUT/nsd-xfrd.state"
  pidfile: "$OUT/nsd.pid"
  logfile: "$OUT/nsd.log"
  server-count: 1
remote-control:
  control-enable: no
zone:
  name: "test"
  zonefile: "test.zone"
NSD
      # -d: in the foreground, so DNS_PID is the server (its CPU is what stop_dns reads).
      nsd -d -c "$OUT/nsd.conf" > "$OUT/nsd.out" 2>&1 &
      DNS_PID=$! ;;
  esac
  printf 'nameserver 127.0.0.1:%s\n' "$DNS_PORT" > "$OUT/resolv.conf"
  sleep 1
}
# cpu_of PID: the process's CPU seconds so far (user + system).
# The name in field 2 may hold spaces ("(nsd: xfrd)"): count the fields after its ')'.
cpu_of() { sed 's/.*) //' "/proc/$1/stat" | awk '{printf "%.1f", ($12+$13)/100}'; }
# The peer's share: dnsmasq keeps mx-host records in a list, so 20,000 of them cost it CPU.
# Sets DNS_CPU (of the process and its descendants: NSD's server is a grandchild).
tree_cpu() { # PID
  local sum c
  sum=$(cpu_of "$1")
  for c in $(pgrep -P "$1" || true); do
    sum=$(python3 -c "print(f'{$sum + $(tree_cpu "$c"):.1f}')")
  done
  echo "$sum"
}
stop_dns() {
  DNS_CPU=$(tree_cpu "$DNS_PID")
  log "DNS server used $DNS_CPU s of CPU"
  kill "$DNS_PID" 2>/dev/null; wait "$DNS_PID" 2>/dev/null || true
}

# load_cpu: CPU seconds of the last injector and of the running sinks.
load_cpu() {
  local sum p
  sum=$(awk '{printf "%.1f", $1 + $2}' "$OUT/inject.time" 2>/dev/null || echo 0)
  for p in "${SINK_PIDS[@]}"; do
    sum=$(python3 -c "print(f'{$sum + $(cpu_of "$p"):.1f}')")
  done
  echo "$sum"
}

# run_bindery MODE X CONF-EXTRA: one measured run; prints "msg/s hwm_kb syn est cpu load_cpu".
run_bindery() {
  local mode=$1 x=$2 rate hwm sampled
  start_bindery "Relay_Hosts = ( 127.0.0.0/8 )
Max_Outbound_Connections = $CONNS
$EXTRA
$3"
  start_sampler
  if [ -n "${PERF:-}" ]; then
    if [ "$PERF" = dwarf ]; then cg=(--call-graph dwarf,16384); else cg=(-g); fi
    perf record -q -F 499 "${cg[@]}" -p "$BINDERY_PID" -o "$OUT/perf-$mode-$x-$r.data" 2>/dev/null &
    PERF_PID=$!
  fi
  T0=$(now)
  case $mode in
    bindings) inject_source "$B_PORT" ;;
    *) inject_domains "$B_PORT" "$x" ;;
  esac
  rate=$(wait_sinks "$mode $x") || rate=0
  if [ -n "${PERF:-}" ]; then kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null || true; fi
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$BINDERY_PID/status")
  cpu=$(cpu_of "$BINDERY_PID")
  sampled=$(stop_sampler)
  stop_bindery
  echo "$rate $hwm $sampled $cpu $(load_cpu)"
}

printf 'mode\tqueues\trun\tmsg_s\thwm_kb\tmax_syn_sent\tmax_established\tcpu_s\tload_cpu_s\tdns_cpu_s\n' > "$OUT/results.tsv"
# record MODE QUEUES RUN MSG_S HWM_KB SYN EST [CPU_S [LOAD_CPU_S [DNS_CPU_S]]]
record() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7" "${8:--}" "${9:--}" "${10:--}" \
    >> "$OUT/results.tsv"
  log "$*"
}

for r in $(seq "$RUNS"); do
  for mode in $MODES; do
    case $mode in
      bindings)
        for b in $BINDINGS; do
          start_sinks "b$b-$r" 127.0.0.1
          # shellcheck disable=SC2046
          set -- $(run_bindery bindings "$b" "Gateway = \"127.0.0.1:$SINK_PORT\"
$(bindings_conf "$b")")
          stop_sinks; record bindings "$b" "$r" "$@"
        done ;;
      gateway)
        for d in $DOMAINS; do
          start_sinks "g$d-$r" 127.0.0.1
          # shellcheck disable=SC2046
          set -- $(run_bindery gateway "$d" "Gateway = \"127.0.0.1:$SINK_PORT\"")
          stop_sinks; record gateway "$d" "$r" "$@"
        done ;;
      mx|mx-nsd)
        if [ "$mode" = mx ]; then dns=dnsmasq; else dns=nsd; fi
        for d in $DOMAINS; do
          start_dns "$dns" "$d"; start_sinks "m$d-$r" 127.0.0.20 127.0.0.21 127.0.0.22 127.0.0.23
          # shellcheck disable=SC2046
          set -- $(run_bindery "$mode" "$d" "Resolv_Conf = \"$OUT/resolv.conf\"
Remote_SMTP_Port = $SINK_PORT")
          stop_sinks; stop_dns; record "$mode" "$d" "$r" "$@" "$DNS_CPU"
        done ;;
      postfix)
        if [ "$STARTED_POSTFIX" = 0 ]; then
          PF_PORT=$(free_port)
          start_postfix "$PF_PORT" many-bindings "relayhost = [127.0.0.1]:$SINK_PORT
default_destination_concurrency_limit = $CONNS
smtp_tls_security_level = none"
        fi
        for load in source domains; do
          start_sinks "p$load-$r" 127.0.0.1
          start_sampler; T0=$(now)
          if [ $load = source ]; then inject_source "$PF_PORT"; else inject_domains "$PF_PORT" 20000; fi
          rate=$(wait_sinks "postfix $load") || rate=0
          sampled=$(stop_sampler); stop_sinks
          # shellcheck disable=SC2086
          record "postfix-$load" "-" "$r" "$rate" "-" $sampled
          postsuper -d ALL >/dev/null 2>&1 || true
        done ;;
    esac
  done
done

python3 - "$OUT/results.tsv" "$N" <<'PY'
import statistics, sys
N = int(sys.argv[2])
from collections import defaultdict
rows = [l.split('\t') for l in open(sys.argv[1]).read().split('\n')[1:] if l]
groups = defaultdict(list)
for r in rows:
    groups[(r[0], r[1])].append(r)
med = lambda rs, i: statistics.median(float(r[i]) for r in rs if r[i] not in ('-', ''))
base = {}
print(f"{'load':<18}{'queues':>8}{'msg/s':>9}{'of 1':>7}{'peak RSS MB':>13}{'KB/queue':>10}{'SYN-SENT':>10}{'ESTAB':>7}{'CPU µs/msg':>12}{'load CPU s':>12}{'DNS CPU s':>11}")
for (mode, q), rs in groups.items():
    rate = med(rs, 3)
    hwm = med(rs, 4) if rs[0][4] != '-' else None
    if q in ('1',):
        base[mode] = (rate, hwm)
    b = base.get(mode)
    share = f"{rate / b[0]:.0%}" if b and b[0] else "-"
    per = f"{(hwm - b[1]) / int(q):.1f}" if b and hwm and q not in ('1', '-') else "-"
    mb = f"{hwm / 1024:.0f}" if hwm else "-"
    has = lambda i: len(rs[0]) > i and rs[0][i] not in ('-', '')
    cpu = f"{med(rs, 7) * 1e6 / N:.0f}" if has(7) else "-"
    load = f"{med(rs, 8):.1f}" if has(8) else "-"
    dns = f"{med(rs, 9):.1f}" if has(9) else "-"
    print(f"{mode:<18}{q:>8}{rate:>9.0f}{share:>7}{mb:>13}{per:>10}{max(int(r[5]) for r in rs):>10}{max(int(r[6]) for r in rs):>7}{cpu:>12}{load:>12}{dns:>11}")
PY
