#!/usr/bin/env bash
# A real Apache Kafka for tests and local runs: fetched from Maven Central, never committed.
#
#   scripts/kafka.sh fetch                    jars of org.apache.kafka:kafka_2.13 into the cache
#   scripts/kafka.sh start DIR [BROKERS] [PORT]   format (KRaft) and start 1 or 3 brokers on
#                                             127.0.0.1:PORT.. (default 19092); prints the
#                                             bootstrap servers; data and logs stay in DIR
#   scripts/kafka.sh stop DIR                 stop the brokers started in DIR
#   scripts/kafka.sh stop-broker DIR N        stop broker N only (fault tests), SIGKILL
#   scripts/kafka.sh start-broker DIR N       start broker N again, on its data in DIR
#
# KAFKA_VERSION (default 4.4.0) and AIMESH_KAFKA_CACHE (default ~/.cache/aimesh/kafka) choose
# what and where. Needs Java 17+ and Maven (mvn).
set -euo pipefail

VERSION="${KAFKA_VERSION:-4.4.0}"
CACHE="${AIMESH_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aimesh/kafka}/$VERSION"
LIB="$CACHE/lib"
CLUSTER_ID="aimesh-kafka-test-0000"  # 22 characters, as KRaft's cluster ids are

die() { echo "kafka.sh: $*" >&2; exit 1; }

fetch() {
	[ -f "$LIB/.complete" ] && return 0
	command -v mvn >/dev/null || die "needs Maven (mvn) to fetch Kafka from Maven Central"
	mkdir -p "$CACHE"
	cat >"$CACHE/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>aimesh</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$VERSION</version>
    </dependency>
  </dependencies>
</project>
POM
	rm -rf "$LIB"
	mvn -q -B -f "$CACHE/pom.xml" dependency:copy-dependencies \
		-DoutputDirectory="$LIB" -DincludeScope=runtime >"$CACHE/fetch.log" 2>&1 ||
		die "mvn could not fetch kafka_2.13 $VERSION (see $CACHE/fetch.log)"
	touch "$LIB/.complete"
}

java_ok() {
	command -v java >/dev/null || die "needs Java 17+ (java not found)"
	local major
	major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
	[ "${major:-0}" -ge 17 ] || die "needs Java 17+, found ${major:-none}"
}

props() {  # DIR N BROKERS PORT: the properties of broker N (1-based)
	local dir=$1 n=$2 brokers=$3 port=$4 voters="" i
	for ((i = 1; i <= brokers; i++)); do
		voters+="${voters:+,}$i@127.0.0.1:$((port + 100 + i))"
	done
	cat <<PROPS
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$((port + n - 1)),CONTROLLER://127.0.0.1:$((port + 100 + n))
advertised.listeners=PLAINTEXT://127.0.0.1:$((port + n - 1))
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/broker-$n/data
num.partitions=4
default.replication.factor=$brokers
min.insync.replicas=$(( brokers > 1 ? 2 : 1 ))
offsets.topic.replication.factor=$brokers
transaction.state.log.replication.factor=$brokers
transaction.state.log.min.isr=$(( brokers > 1 ? 2 : 1 ))
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPS
}

wait_port() {  # PORT SECONDS
	local deadline=$((SECONDS + $2))
	while ((SECONDS < deadline)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.3
	done
	return 1
}

start_broker() {  # DIR N
	local dir=$1 n=$2
	local conf="$dir/broker-$n/server.properties"
	[ -f "$conf" ] || die "no broker $n in $dir"
	local port
	port=$(sed -n 's#^advertised.listeners=PLAINTEXT://127.0.0.1:##p' "$conf")
	nohup java -Xms256m -Xmx512m -cp "$LIB/*" kafka.Kafka "$conf" \
		>"$dir/broker-$n/broker.log" 2>&1 &
	echo $! >"$dir/broker-$n/pid"
	wait_port "$port" 90 || die "broker $n did not listen on $port (see $dir/broker-$n/broker.log)"
}

start() {  # DIR [BROKERS] [PORT]
	local dir=$1 brokers=${2:-1} port=${3:-19092} n
	[ "$brokers" = 1 ] || [ "$brokers" = 3 ] || die "BROKERS must be 1 or 3"
	java_ok
	fetch
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	for ((n = 1; n <= brokers; n++)); do
		mkdir -p "$dir/broker-$n"
		props "$dir" "$n" "$brokers" "$port" >"$dir/broker-$n/server.properties"
		if [ ! -f "$dir/broker-$n/data/meta.properties" ]; then
			java -cp "$LIB/*" kafka.tools.StorageTool format -t "$CLUSTER_ID" \
				-c "$dir/broker-$n/server.properties" >"$dir/broker-$n/format.log" 2>&1 ||
				die "could not format broker $n (see $dir/broker-$n/format.log)"
		fi
	done
	for ((n = 1; n <= brokers; n++)); do start_broker "$dir" "$n" & done
	wait
	local servers="" 
	for ((n = 1; n <= brokers; n++)); do servers+="${servers:+,}127.0.0.1:$((port + n - 1))"; done
	echo "$servers" >"$dir/bootstrap"
	echo "$servers"
}

stop_broker() {  # DIR N [SIGNAL]
	local pidfile="$1/broker-$2/pid"
	[ -f "$pidfile" ] || return 0
	local pid
	pid=$(cat "$pidfile")
	kill "-${3:-TERM}" "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$pidfile"
}

stop() {  # DIR
	local n
	for n in 1 2 3; do stop_broker "$1" "$n" TERM; done
}

case "${1:-}" in
	fetch) java_ok; fetch; echo "$LIB" ;;
	start) [ $# -ge 2 ] || die "usage: kafka.sh start DIR [BROKERS] [PORT]"; start "${@:2}" ;;
	stop) [ $# -eq 2 ] || die "usage: kafka.sh stop DIR"; stop "$2" ;;
	stop-broker) [ $# -eq 3 ] || die "usage: kafka.sh stop-broker DIR N"; stop_broker "$2" "$3" KILL ;;
	start-broker) [ $# -eq 3 ] || die "usage: kafka.sh start-broker DIR N"; start_broker "$2" "$3" ;;
	*) die "usage: kafka.sh fetch | start DIR [BROKERS] [PORT] | stop DIR | stop-broker DIR N | start-broker DIR N" ;;
esac
