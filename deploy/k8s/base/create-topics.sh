#!/bin/sh
# Create the OMS topics and their dead-letter topics with the partition counts, replication
# and retention of deploy/TOPICS.md (keep the table below and that file in step; the
# deploy tests check that every topic of oms_contracts.topics is here).
#
# Runs in the apache/kafka image: the compose one-shot `kafka-init` and the Kubernetes Job
# `oms-create-topics` both use this file.
#
# Idempotent: a topic that exists is left as it is. But an existing topic with FEWER
# partitions than the table fails the run: it was most likely auto-created by a service's
# start-up (which uses KAFKA_PARTITIONS for every topic) before this job ran. Partitions are
# never added automatically here: adding partitions moves keys to other partitions, which
# breaks per-key ordering for events in flight. Do it deliberately (see deploy/TOPICS.md).
#
# Environment:
#   KAFKA_BOOTSTRAP_SERVERS    required, host:port[,host:port]
#   KAFKA_REPLICATION_FACTOR   default 1 (production: 3)
#   KAFKA_MIN_INSYNC_REPLICAS  default 1 (production: 2)
#   KAFKA_BIN                  default /opt/kafka/bin
#   WAIT_SECONDS               how long to wait for the broker, default 120
set -eu

BOOTSTRAP="${KAFKA_BOOTSTRAP_SERVERS:?KAFKA_BOOTSTRAP_SERVERS is required}"
RF="${KAFKA_REPLICATION_FACTOR:-1}"
MIN_ISR="${KAFKA_MIN_INSYNC_REPLICAS:-1}"
KAFKA_BIN="${KAFKA_BIN:-/opt/kafka/bin}"
WAIT_SECONDS="${WAIT_SECONDS:-120}"
DAY_MS=86400000

# topic                        partitions  retention_days
TOPICS='
oms.channel.orders             12          7
oms.orders                     12          7
oms.inventory.reservations     12          7
oms.inventory.stock            6           7
oms.customers                  6           7
oms.alerts                     3           14
'
# Every topic above gets <topic>.dlq with these settings.
DLQ_PARTITIONS=3
DLQ_RETENTION_DAYS=30

# stdin from /dev/null: the loop below feeds the topic table on stdin.
topics() { "${KAFKA_BIN}/kafka-topics.sh" --bootstrap-server "${BOOTSTRAP}" "$@" </dev/null; }

echo "waiting for the broker at ${BOOTSTRAP} (up to ${WAIT_SECONDS}s)"
waited=0
until topics --list >/dev/null 2>&1; do
  if [ "${waited}" -ge "${WAIT_SECONDS}" ]; then
    echo "broker at ${BOOTSTRAP} did not answer within ${WAIT_SECONDS}s" >&2
    exit 1
  fi
  sleep 5
  waited=$((waited + 5))
done

failed=0
ensure() {
  name="$1" partitions="$2" days="$3"
  topics --create --if-not-exists --topic "${name}" \
    --partitions "${partitions}" --replication-factor "${RF}" \
    --config "min.insync.replicas=${MIN_ISR}" \
    --config "retention.ms=$((days * DAY_MS))" \
    --config cleanup.policy=delete >/dev/null
  actual="$(topics --describe --topic "${name}" \
    | sed -n 's/.*PartitionCount:[[:space:]]*\([0-9][0-9]*\).*/\1/p' | head -n 1)"
  if [ -z "${actual}" ]; then
    echo "ERROR ${name}: could not read its partition count" >&2
    failed=1
  elif [ "${actual}" -lt "${partitions}" ]; then
    echo "ERROR ${name}: has ${actual} partitions, wants ${partitions}; it was created" \
      "elsewhere (a service start-up?). See deploy/TOPICS.md before adding partitions." >&2
    failed=1
  else
    echo "ok ${name}: ${actual} partitions, replication ${RF}, retention ${days}d"
  fi
}

# A redirected loop runs in this shell, so `failed` survives it.
while read -r name partitions days; do
  [ -n "${name}" ] || continue
  ensure "${name}" "${partitions}" "${days}"
  ensure "${name}.dlq" "${DLQ_PARTITIONS}" "${DLQ_RETENTION_DAYS}"
done <<TOPICS_TABLE
${TOPICS}
TOPICS_TABLE

exit "${failed}"
