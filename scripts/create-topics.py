"""Creates Kafka topics if missing (local runs only; production uses the Helm chart or
the programs' own provisioning). Usage: create-topics.py BOOTSTRAP NAME[:PARTITIONS[:compact]]...
(compact: cleanup.policy=compact, as the enricher's state and progress topics need)."""
import sys

from confluent_kafka.admin import AdminClient, NewTopic


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    admin = AdminClient({"bootstrap.servers": argv[1]})
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = []
    for spec in argv[2:]:
        name, _, rest = spec.partition(":")
        parts, _, policy = rest.partition(":")
        config = {"cleanup.policy": "compact"} if policy == "compact" else {}
        if name not in existing:
            wanted.append(NewTopic(name, int(parts or 1), 1, config=config))
    for name, fut in admin.create_topics(wanted).items() if wanted else []:
        fut.result(timeout=30)
        print(f"created topic {name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
