#!/bin/bash
# P1 SET, predixy and C++ Predixy in turn, with who had the CPU during each run: redis-benchmark
# -c 100 -P 1 -d 64 -r 1000000 -t set on the 9 x 1 bench cluster (7000-7017), PAIRS times.
# Per run: rps, the proxy's CPU µs per request, % of one core used by the proxy, redis-benchmark
# and all redis-servers, the host's busy and steal (time the hypervisor gave to other guests:
# every process here runs slower meanwhile), PSI "some", the proxy's context switches.
# usage: bench/p1-pairs.sh PAIRS N [PREDIXY_EXE]   (cluster: bun scripts/cluster.ts start --dir .cluster-bench)
PAIRS=$1; N=$2; EXE=${3:-dist/predixy}
CPP=${CPP:-/work/ext/predixy-cpp/src/predixy}; CPP_CONF=${CPP_CONF:-/work/ext/predixy-cpp/bench.conf}
T=${TMPDIR:-/tmp}
printf '[server]\nbind = "127.0.0.1"\nport = 7790\n[cluster]\nentry_points = ["127.0.0.1:7000"]\n[log]\nlevel = "warning"\n[admin]\nport = 0\n' > $T/predixy-p1-pairs.toml
$EXE -c $T/predixy-p1-pairs.toml > $T/predixy-p1-pairs.log 2>&1 & PP=$!
$CPP $CPP_CONF > $T/predixy-cpp-p1-pairs.log 2>&1 & CP=$!
trap 'kill $PP $CP 2>/dev/null' EXIT
for i in $(seq 100); do redis-cli -p 7790 ping 2>/dev/null | grep -q PONG && redis-cli -p 7778 ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done

ticks() { local s=0; for p in "$@"; do [ -r /proc/$p/stat ] && s=$((s + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $s; }
psi() { grep some /proc/pressure/cpu | grep -o "total=[0-9]*" | cut -d= -f2; }
ctx() { cat /proc/$1/task/*/status | awk '/^voluntary_ctxt_switches/{v+=$2} /^nonvoluntary_ctxt_switches/{n+=$2} END{printf "%d %d", v, n}'; }
pct() { echo "$1" | bc -l | xargs printf "%.0f"; }

run() { # PID PORT LABEL
  local nodes=$(pgrep -x redis-server | tr '\n' ' ')
  local t0=$(date +%s.%N) p0=$(ticks $1) n0=$(ticks $nodes) s0=$(psi) c0=($(ctx $1)) h0=($(head -1 /proc/stat))
  redis-benchmark -p $2 -c 100 -n $N -P 1 -d 64 -r 1000000 -t set --csv -q > $T/p1-pairs.out 2>/dev/null & local bp=$!
  local b=0 b1; while kill -0 $bp 2>/dev/null; do b1=$(ticks $bp); [ "$b1" -gt 0 ] && b=$b1; sleep 0.2; done
  local t1=$(date +%s.%N) p1=$(ticks $1) n1=$(ticks $nodes) s1=$(psi) c1=($(ctx $1)) h1=($(head -1 /proc/stat))
  local el=$(echo "$t1 - $t0" | bc) rps=$(tail -1 $T/p1-pairs.out | cut -d, -f2 | tr -d '"')
  local busy=$(( (h1[1]+h1[2]+h1[3]+h1[6]+h1[7]) - (h0[1]+h0[2]+h0[3]+h0[6]+h0[7]) )) steal=$(( h1[8]-h0[8] ))
  local all=$(( busy + steal + h1[4]-h0[4] + h1[5]-h0[5] ))
  echo "$3 rps $rps | proxy µs/req $(echo "($p1-$p0)*10000/$N" | bc -l | xargs printf "%.1f") | % of a core: proxy $(pct "($p1-$p0)/$el") bench $(pct "$b/$el") nodes $(pct "($n1-$n0)/$el") | host busy $(pct "100*$busy/$all")% steal $(pct "100*$steal/$all")% | PSI some $(pct "($s1-$s0)/10000/$el")% | proxy ctx switches per 1k req: vol $(( (c1[0]-c0[0])*1000/N )) invol $(( (c1[1]-c0[1])*1000/N ))"
}
for i in $(seq $PAIRS); do
  run $PP 7790 "predixy #$i"
  run $CP 7778 "C++     #$i"
done
