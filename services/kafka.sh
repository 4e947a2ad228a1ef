#!/usr/bin/env bash
# Apache Kafka for the tests: one node in KRaft mode (broker and controller, no ZooKeeper), its
# jars fetched by Maven from services/kafka/pom.xml into .tools/kafka/libs, a 512 MB heap.
# Each start formats empty storage: the test broker keeps no topics from one start to the next.
# Usage: services/kafka.sh start|stop. CHURN_TEST_KAFKA (host:port) names a broker of your own.
source "$(dirname "$0")/lib.sh"

ADDRESS="${CHURN_TEST_KAFKA:-127.0.0.1:9092}"
HOST="$(host_of "$ADDRESS")"
PORT="$(port_of "$ADDRESS")"
HOME_DIR="$ROOT/.tools/kafka"
POM="$ROOT/services/kafka/pom.xml"
LIBS="$HOME_DIR/libs"
LOG="$LOGS/kafka.log"
PIDFILE="$STATE/kafka.pid"

answers() { listening "$HOST" "$PORT"; }

fetch_jars() {
  local stamp
  stamp="$LIBS/.from-pom-$(cksum < "$POM" | cut -d' ' -f1)"
  [[ -f "$stamp" ]] && return 0
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install maven
  say "Kafka: fetching the broker's jars with Maven into ${LIBS#"$ROOT"/}"
  rm -rf "$LIBS"
  mvn --quiet --batch-mode -f "$POM" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIBS" >"$LOGS/kafka-maven.log" 2>&1 ||
    fail "Maven could not fetch Kafka's jars (log in ${LOGS#"$ROOT"/}/kafka-maven.log)"
  touch "$stamp"
}

write_config() {
  cat >"$HOME_DIR/server.properties" <<PROPERTIES
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${controller_port:?}
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://$HOST:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$HOME_DIR/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPERTIES
}

JAVA=(java -Xms256m -Xmx512m -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$ROOT/services/kafka/log4j2.properties" -cp "$LIBS/*")

start() {
  already_up Kafka "$PIDFILE" CHURN_TEST_KAFKA && return 0
  fetch_jars
  controller_port="$(free_port)"
  write_config
  rm -rf "$HOME_DIR/data"
  "${JAVA[@]}" kafka.tools.StorageTool format --cluster-id "$("${JAVA[@]}" kafka.tools.StorageTool random-uuid)" \
    --config "$HOME_DIR/server.properties" >"$LOGS/kafka-format.log" 2>&1 ||
    fail "Kafka's storage could not be formatted (log in ${LOGS#"$ROOT"/}/kafka-format.log)"
  setsid nohup "${JAVA[@]}" kafka.Kafka "$HOME_DIR/server.properties" >"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  wait_for 90 Kafka started
  say "Kafka 4.4 (KRaft): started on $HOST:$PORT"
}

started() {
  kill -0 "$(cat "$PIDFILE")" 2>/dev/null || fail "Kafka exited while starting (log in ${LOGS#"$ROOT"/}/kafka.log)"
  grep -q "Kafka Server started" "$LOG" && answers
}

stop() { stop_pid Kafka "$PIDFILE"; }

"${1:?start or stop}"
