#!/bin/bash
# Big values: redis-benchmark -c 20 -d SIZE SET then GET on the 9 x 1 bench cluster (7000-7017):
# the cluster direct (--cluster), predixy (7790) and C++ Predixy (CPP, CPP_CONF: port 7778),
# one after the other; then both proxies' RSS (now and peak), and again 2 s later.
# usage: bench/big-values.sh SIZE N [PREDIXY_EXE]   (cluster: bun scripts/cluster.ts start --dir .cluster-bench)
SIZE=$1; N=$2; EXE=${3:-dist/predixy}
CPP=${CPP:-/work/ext/predixy-cpp/src/predixy}; CPP_CONF=${CPP_CONF:-/work/ext/predixy-cpp/bench.conf}
cat > ${TMPDIR:-/tmp}/predixy-big-values.toml <<T
[server]
bind = "127.0.0.1"
port = 7790
[cluster]
entry_points = ["127.0.0.1:7000"]
[log]
level = "warning"
[admin]
port = 0
T
$EXE -c ${TMPDIR:-/tmp}/predixy-big-values.toml > ${TMPDIR:-/tmp}/predixy-big-values.log 2>&1 & PP=$!
$CPP $CPP_CONF > ${TMPDIR:-/tmp}/predixy-cpp-big-values.log 2>&1 & CP=$!
for i in $(seq 100); do redis-cli -p 7790 ping 2>/dev/null | grep -q PONG && redis-cli -p 7778 ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
for t in set get; do
  for target in "direct:--cluster -p 7000" "predixy:-p 7790" "cpp:-p 7778"; do
    name=${target%%:*}; args=${target#*:}
    r=$(timeout 300 redis-benchmark $args -c 20 -n $N -d $SIZE -r 1000 -t $t --csv -q 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"')
    echo "$SIZE $t $name $r"
  done
done
# RssFile: pages of the executable and libraries (clean, shared with the page cache); RssAnon: heap and buffers.
mb() { grep "^$2:" /proc/$1/status | awk '{print int($2/1024)}'; }
rss() { echo "$(mb $1 VmRSS) MB (anon $(mb $1 RssAnon), file $(mb $1 RssFile)), peak $(mb $1 VmHWM) MB"; }
echo "RSS at end: predixy $(rss $PP); cpp $(rss $CP)"
sleep 2
echo "RSS 2 s later: predixy $(rss $PP); cpp $(rss $CP)"
kill $PP $CP; wait 2>/dev/null
