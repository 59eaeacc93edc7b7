"""kafka-python against the stack's broker from the host: creates a topic, produces records
with acks=all, then reads them back in a consumer group (subscribe, group coordinator, offset
commits) and prints one JSON line with what it saw. Exit 0 only if every record came back once.

Usage: kafka_clients.py BOOTSTRAP TOPIC GROUP COUNT
"""

import json
import sys
import time

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError


def main() -> int:
    bootstrap, topic, group, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="fleet-test-admin")
    try:
        admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    except TopicAlreadyExistsError:
        pass
    admin.close()

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    futures = [
        producer.send(topic, key=f"k{i % 7}".encode(), value=f"record-{i}".encode())
        for i in range(count)
    ]
    producer.flush()
    acknowledged = sum(1 for f in futures if f.get(timeout=30) is not None)
    producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
    )
    seen = {}
    deadline = time.monotonic() + 90
    while len(seen) < count and time.monotonic() < deadline:
        for message in consumer:
            value = message.value.decode()
            seen[value] = seen.get(value, 0) + 1
    assigned = sorted(p.partition for p in consumer.assignment())
    consumer.commit()
    committed = {
        p.partition: consumer.committed(p) for p in consumer.assignment()
    }
    consumer.close()

    duplicates = sum(n - 1 for n in seen.values() if n > 1)
    ok = acknowledged == count and len(seen) == count and duplicates == 0
    print(
        json.dumps(
            {
                "acknowledged": acknowledged,
                "consumed": len(seen),
                "duplicates": duplicates,
                "assigned": assigned,
                "committed": committed,
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
