/*
 * KTableDump: a real Kafka Streams application that reads ONE Duro state topic
 * (duro.state.item, duro.state.change_order, ...) the way a user would:
 *
 *     builder.table(topic, Consumed.with(Serdes.String(), Serdes.String()),
 *                   Materialized.as(store))
 *
 * with processing.guarantee=exactly_once_v2 (so its consumers read with
 * isolation.level=read_committed), its state under --state-dir, and then writes the
 * whole content of the materialised key-value store as one JSON object
 * {key: value parsed as JSON} (keys sorted; a tombstoned key is absent, since the
 * KTable deleted it) to --output (a file, written atomically, or "-" for stdout), and
 * exits 0. It is the proof, for tests/integration, that a Kafka Streams application
 * sees a state topic as "Duro's library".
 *
 * How it decides it has caught up (no sleeps; one bounded deadline, --timeout-ms):
 *   1. At start, the Admin client's listOffsets(OffsetSpec.latest(),
 *      IsolationLevel.READ_COMMITTED) gives each partition's last stable offset (LSO):
 *      the end of what a read_committed reader can see now.
 *   2. A plain read_committed consumer (assign(), no group) reads every partition from
 *      its beginning until its position reaches that LSO and notes the offset of the
 *      last record it was given (aborted records and transaction markers are never
 *      given). A partition with no visible record below its LSO needs nothing.
 *   3. The Streams application runs under a fresh application.id (its consumer group).
 *      Kafka Streams commits a task's input offsets only after it has processed the
 *      records below them (exactly_once_v2: in the same transaction as its state), so
 *      the application has applied every visible record below the LSO to its store once
 *      the group's committed offset of each partition is past that partition's last
 *      visible record (Admin listConsumerGroupOffsets, checked every 50 ms and whenever
 *      the Streams state changes).
 *   4. The store is then read through interactive queries (streams.store(...), all()).
 *      Records appended after step 1 may or may not be in the dump: it covers at least
 *      everything committed when the program started.
 * If the deadline passes first, or Kafka Streams fails, it exits non-zero with one
 * line saying so (per partition: LSO, last visible offset, committed offset).
 *
 * Usage: java -cp 'kstreams-dump.jar:lib/*' duro.kstreams.KTableDump
 *          --bootstrap HOST:PORT --topic TOPIC --state-dir DIR
 *          [--output FILE|-] [--timeout-ms N] [--application-id ID] [--store NAME]
 * Exit status: 0 dumped; 2 usage; 3 timed out before catching up; 4 other failure
 * (topic missing, Kafka Streams error, a value that is not JSON, ...).
 * Progress lines on stderr start with "kstreams-dump:"; Kafka's own logging (warnings
 * and errors only, slf4j-simple) also goes to stderr.
 * On exit the application's consumer group is deleted (best effort); the state
 * directory and what Kafka Streams wrote into it are the caller's to remove.
 */
package duro.kstreams;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsOptions;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RemoveMembersFromConsumerGroupOptions;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.InvalidStateStoreException;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;

public final class KTableDump {
    static final int EXIT_OK = 0;
    static final int EXIT_USAGE = 2;
    static final int EXIT_TIMEOUT = 3;
    static final int EXIT_FAILED = 4;
    static final long CHECK_INTERVAL_MS = 50;

    /** A failure with the exit status it maps to. */
    static final class Failure extends Exception {
        final int status;

        Failure(int status, String message) {
            super(message);
            this.status = status;
        }
    }

    static final class Args {
        String bootstrap;
        String topic;
        Path stateDir;
        String output = "-";
        long timeoutMs = 60_000;
        String applicationId = "duro-kstreams-dump-" + UUID.randomUUID();
        String store = "duro-state-store";
    }

    public static void main(String[] argv) {
        int status;
        try {
            status = run(parse(argv));
        } catch (Failure f) {
            log(f.getMessage());
            status = f.status;
        } catch (Exception e) {
            log("failed: " + e);
            status = EXIT_FAILED;
        }
        System.out.flush();
        System.err.flush();
        // exit regardless of any client thread left over (shutdown hooks still run:
        // RocksDB's extracted native library is deleted by one)
        System.exit(status);
    }

    static void log(String line) {
        System.err.println("kstreams-dump: " + line);
        System.err.flush();
    }

    static Args parse(String[] argv) throws Failure {
        Args a = new Args();
        for (int i = 0; i < argv.length; i++) {
            String opt = argv[i];
            if (opt.equals("--help") || opt.equals("-h")) {
                throw new Failure(EXIT_USAGE, "usage: KTableDump --bootstrap HOST:PORT --topic TOPIC "
                        + "--state-dir DIR [--output FILE|-] [--timeout-ms N] [--application-id ID] [--store NAME]");
            }
            if (i + 1 >= argv.length) {
                throw new Failure(EXIT_USAGE, "usage: " + opt + " needs a value");
            }
            String v = argv[++i];
            switch (opt) {
                case "--bootstrap": a.bootstrap = v; break;
                case "--topic": a.topic = v; break;
                case "--state-dir": a.stateDir = Paths.get(v); break;
                case "--output": a.output = v; break;
                case "--application-id": a.applicationId = v; break;
                case "--store": a.store = v; break;
                case "--timeout-ms":
                    try {
                        a.timeoutMs = Long.parseLong(v);
                    } catch (NumberFormatException e) {
                        a.timeoutMs = -1;
                    }
                    if (a.timeoutMs <= 0) {
                        throw new Failure(EXIT_USAGE, "usage: --timeout-ms needs a positive number, not " + v);
                    }
                    break;
                default:
                    throw new Failure(EXIT_USAGE, "usage: unknown option " + opt + " (try --help)");
            }
        }
        if (a.bootstrap == null || a.topic == null || a.stateDir == null) {
            throw new Failure(EXIT_USAGE, "usage: --bootstrap, --topic and --state-dir are required (try --help)");
        }
        return a;
    }

    static <T> T await(org.apache.kafka.common.KafkaFuture<T> f, long deadline, String what) throws Failure {
        try {
            return f.get(Math.max(1, deadline - System.currentTimeMillis()), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new Failure(EXIT_TIMEOUT, "timed out waiting for " + what);
        } catch (ExecutionException e) {
            throw new Failure(EXIT_FAILED, what + " failed: " + e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new Failure(EXIT_FAILED, what + " interrupted");
        }
    }

    static int run(Args a) throws Exception {
        final long started = System.currentTimeMillis();
        final long deadline = started + a.timeoutMs;
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, a.bootstrap);
        ap.put(AdminClientConfig.CLIENT_ID_CONFIG, a.applicationId + "-dump-admin");
        try (Admin admin = Admin.create(ap)) {
            // 1. partitions and their last stable offsets
            Map<String, TopicDescription> desc = await(admin.describeTopics(List.of(a.topic)).allTopicNames(),
                    deadline, "describing topic " + a.topic);
            List<TopicPartition> parts = new ArrayList<>();
            desc.get(a.topic).partitions().forEach(p -> parts.add(new TopicPartition(a.topic, p.partition())));
            parts.sort((x, y) -> Integer.compare(x.partition(), y.partition()));
            Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
            parts.forEach(tp -> latest.put(tp, OffsetSpec.latest()));
            Map<TopicPartition, ListOffsetsResultInfo> lsoInfo = await(
                    admin.listOffsets(latest, new ListOffsetsOptions(IsolationLevel.READ_COMMITTED)).all(),
                    deadline, "listing the last stable offsets of " + a.topic);
            Map<TopicPartition, Long> lso = new TreeMap<>((x, y) -> Integer.compare(x.partition(), y.partition()));
            lsoInfo.forEach((tp, info) -> lso.put(tp, info.offset()));

            // 2. the last record a read_committed reader is given below each LSO
            Map<TopicPartition, Long> lastVisible = scanLastVisible(a, parts, lso, deadline);
            long visible = lastVisible.values().stream().filter(o -> o >= 0).count();
            log("topic " + a.topic + ": " + parts.size() + " partitions, last stable offsets " + lso
                    + ", last visible record offsets " + lastVisible + " (-1: none)");

            // 3. the Kafka Streams application
            Properties sp = new Properties();
            sp.put(StreamsConfig.APPLICATION_ID_CONFIG, a.applicationId);
            sp.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, a.bootstrap);
            sp.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
            sp.put(StreamsConfig.STATE_DIR_CONFIG, a.stateDir.toAbsolutePath().toString());
            sp.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
            sp.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
            sp.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
            // explicit, although exactly_once_v2 already implies it for every consumer
            sp.put(StreamsConfig.consumerPrefix(ConsumerConfig.ISOLATION_LEVEL_CONFIG), "read_committed");
            Files.createDirectories(a.stateDir);

            StreamsBuilder builder = new StreamsBuilder();
            builder.table(a.topic, Consumed.with(Serdes.String(), Serdes.String()),
                    Materialized.<String, String, KeyValueStore<Bytes, byte[]>>as(a.store));
            Topology topology = builder.build(sp);

            LinkedBlockingQueue<KafkaStreams.State> changes = new LinkedBlockingQueue<>();
            AtomicReference<Throwable> crash = new AtomicReference<>();
            KafkaStreams streams = new KafkaStreams(topology, sp);
            streams.setStateListener((now, before) -> changes.add(now));
            streams.setUncaughtExceptionHandler(e -> {
                crash.compareAndSet(null, e);
                return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
            });
            int status = EXIT_FAILED;
            try {
                streams.start();
                Map<TopicPartition, Long> committed = waitCaughtUp(a, admin, streams, changes, crash, parts,
                        lso, lastVisible, deadline);
                // 4. the store's content
                ObjectNode dump = readStore(a, streams, crash, deadline);
                writeOutput(a.output, dump);
                log("caught up with " + a.topic + " in " + (System.currentTimeMillis() - started)
                        + " ms (" + visible + " partitions with visible records; committed offsets " + committed
                        + "); store " + a.store + " has " + dump.size() + " keys");
                status = EXIT_OK;
            } finally {
                long closeMs = Math.max(5_000, Math.min(30_000, deadline + 15_000 - System.currentTimeMillis()));
                boolean closed = streams.close(new KafkaStreams.CloseOptions()
                        .leaveGroup(true).timeout(Duration.ofMillis(closeMs)));
                if (!closed) {
                    log("warning: Kafka Streams did not close within " + closeMs + " ms");
                } else {
                    // a Streams member does not leave its group on close: removed here, so the
                    // group can be deleted and leaves nothing behind on the broker
                    try {
                        admin.removeMembersFromConsumerGroup(a.applicationId,
                                new RemoveMembersFromConsumerGroupOptions()).all().get(10, TimeUnit.SECONDS);
                        admin.deleteConsumerGroups(List.of(a.applicationId)).all().get(10, TimeUnit.SECONDS);
                    } catch (Exception e) {
                        log("note: consumer group " + a.applicationId + " not deleted: " + e);
                    }
                }
            }
            return status;
        }
    }

    static Map<TopicPartition, Long> scanLastVisible(Args a, List<TopicPartition> parts,
            Map<TopicPartition, Long> lso, long deadline) throws Failure {
        Map<TopicPartition, Long> last = new TreeMap<>((x, y) -> Integer.compare(x.partition(), y.partition()));
        parts.forEach(tp -> last.put(tp, -1L));
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, a.bootstrap);
        cp.put(ConsumerConfig.CLIENT_ID_CONFIG, a.applicationId + "-dump-scan");
        cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(cp)) {
            c.assign(parts);
            c.seekToBeginning(parts);
            List<TopicPartition> pending = new ArrayList<>(parts);
            while (true) {
                pending.removeIf(tp -> c.position(tp, Duration.ofMillis(Math.max(1, deadline
                        - System.currentTimeMillis()))) >= lso.get(tp));
                if (pending.isEmpty()) {
                    return last;
                }
                if (System.currentTimeMillis() >= deadline) {
                    throw new Failure(EXIT_TIMEOUT, "timed out reading " + a.topic + " (read_committed) up to "
                            + "its last stable offsets " + lso + "; not there: " + pending);
                }
                c.pause(c.assignment().stream().filter(tp -> !pending.contains(tp)).toList());
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(Math.min(200,
                        Math.max(1, deadline - System.currentTimeMillis()))))) {
                    TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                    if (r.offset() < lso.get(tp)) {
                        last.merge(tp, r.offset(), Math::max);
                    }
                }
            }
        } catch (org.apache.kafka.common.errors.TimeoutException e) {
            throw new Failure(EXIT_TIMEOUT, "timed out reading " + a.topic + " (read_committed): " + e.getMessage());
        }
    }

    static Map<TopicPartition, Long> waitCaughtUp(Args a, Admin admin, KafkaStreams streams,
            LinkedBlockingQueue<KafkaStreams.State> changes, AtomicReference<Throwable> crash,
            List<TopicPartition> parts, Map<TopicPartition, Long> lso, Map<TopicPartition, Long> lastVisible,
            long deadline) throws Failure {
        Map<TopicPartition, Long> committed = new TreeMap<>((x, y) -> Integer.compare(x.partition(), y.partition()));
        while (true) {
            checkAlive(streams, crash);
            Map<TopicPartition, OffsetAndMetadata> offsets = Collections.emptyMap();
            try {
                offsets = admin.listConsumerGroupOffsets(a.applicationId, new ListConsumerGroupOffsetsOptions()
                        .requireStable(false)).partitionsToOffsetAndMetadata().get(
                        Math.max(1, Math.min(5_000, deadline - System.currentTimeMillis())), TimeUnit.MILLISECONDS);
            } catch (ExecutionException | TimeoutException e) {
                // the group may not exist yet; the deadline below bounds the retries
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new Failure(EXIT_FAILED, "interrupted");
            }
            boolean done = true;
            for (TopicPartition tp : parts) {
                OffsetAndMetadata om = offsets.get(tp);
                long c = om == null ? -1L : om.offset();
                committed.put(tp, c);
                if (lastVisible.get(tp) >= 0 && c <= lastVisible.get(tp)) {
                    done = false;
                }
            }
            if (done && streams.state() == KafkaStreams.State.RUNNING) {
                return committed;
            }
            if (System.currentTimeMillis() >= deadline) {
                StringBuilder sb = new StringBuilder("timed out after " + a.timeoutMs + " ms before catching up with "
                        + a.topic + " (Kafka Streams state " + streams.state() + "):");
                for (TopicPartition tp : parts) {
                    sb.append(" [").append(tp.partition()).append(": LSO ").append(lso.get(tp))
                            .append(", last visible ").append(lastVisible.get(tp))
                            .append(", committed ").append(committed.get(tp)).append("]");
                }
                throw new Failure(EXIT_TIMEOUT, sb.toString());
            }
            try {
                // woken early by a state change (e.g. to RUNNING or ERROR)
                changes.poll(Math.max(1, Math.min(CHECK_INTERVAL_MS, deadline - System.currentTimeMillis())),
                        TimeUnit.MILLISECONDS);
                changes.clear();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new Failure(EXIT_FAILED, "interrupted");
            }
        }
    }

    static void checkAlive(KafkaStreams streams, AtomicReference<Throwable> crash) throws Failure {
        KafkaStreams.State s = streams.state();
        if (crash.get() != null || s == KafkaStreams.State.ERROR || s == KafkaStreams.State.PENDING_ERROR
                || s == KafkaStreams.State.NOT_RUNNING || s == KafkaStreams.State.PENDING_SHUTDOWN) {
            throw new Failure(EXIT_FAILED, "Kafka Streams stopped (state " + s + ")"
                    + (crash.get() != null ? ": " + crash.get() : ""));
        }
    }

    static ObjectNode readStore(Args a, KafkaStreams streams, AtomicReference<Throwable> crash, long deadline)
            throws Failure {
        ObjectMapper mapper = new ObjectMapper();
        while (true) {
            checkAlive(streams, crash);
            try {
                ReadOnlyKeyValueStore<String, String> store = streams.store(
                        StoreQueryParameters.fromNameAndType(a.store, QueryableStoreTypes.keyValueStore()));
                TreeMap<String, JsonNode> sorted = new TreeMap<>();
                try (KeyValueIterator<String, String> it = store.all()) {
                    while (it.hasNext()) {
                        KeyValue<String, String> kv = it.next();
                        if (kv.value == null) {
                            continue;
                        }
                        try {
                            sorted.put(kv.key, mapper.readTree(kv.value));
                        } catch (JsonProcessingException e) {
                            throw new Failure(EXIT_FAILED, "the value of key " + kv.key + " is not JSON: "
                                    + e.getOriginalMessage());
                        }
                    }
                }
                ObjectNode out = mapper.createObjectNode();
                sorted.forEach(out::set);
                return out;
            } catch (InvalidStateStoreException e) {
                // not queryable yet (a rebalance): retried until the deadline
                if (System.currentTimeMillis() >= deadline) {
                    throw new Failure(EXIT_TIMEOUT, "timed out waiting for store " + a.store + " to be queryable: " + e);
                }
                try {
                    retryPause(CHECK_INTERVAL_MS);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new Failure(EXIT_FAILED, "interrupted");
                }
            }
        }
    }

    private static void retryPause(long ms) throws InterruptedException {
        // bounded retry interval for a store that is briefly not queryable
        Thread.sleep(ms);
    }

    static void writeOutput(String output, ObjectNode dump) throws IOException {
        byte[] bytes = (new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(dump) + "\n")
                .getBytes(StandardCharsets.UTF_8);
        if (output.equals("-")) {
            System.out.write(bytes);
            System.out.flush();
            return;
        }
        Path target = Paths.get(output).toAbsolutePath();
        Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
        Files.write(tmp, bytes);
        Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
