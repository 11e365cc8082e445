import java.io.BufferedWriter;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * An independent reader for the integration tests: Kafka's own KafkaConsumer reads every
 * partition of one topic from the beginning and prints one JSON object per record:
 *
 *   {"p":0,"o":12,"ts":1700000000000,"tt":"CREATE_TIME","k":"base64"|null,"v":...,
 *    "h":[["name","base64"|null],...]}
 *
 * Usage: ConsumeAll BOOTSTRAP TOPIC EXPECTED IDLE_MS MAX_MS ISOLATION [CLIENT_PROPERTIES]
 *
 * CLIENT_PROPERTIES: a .properties file of more client settings (security.protocol,
 * ssl.*, sasl.*), applied before the fixed ones above so it cannot change what is read.
 *
 * It stops when it has at least EXPECTED records (EXPECTED < 0: no target) and its
 * position has reached the end offset of every partition (so records beyond EXPECTED
 * show up too), or when IDLE_MS pass without a new record, or after MAX_MS in all.
 * The last line on stderr is "DONE <count> <reason>".
 */
public class ConsumeAll {
    public static void main(String[] args) throws Exception {
        if (args.length != 6 && args.length != 7) {
            System.err.println("usage: ConsumeAll BOOTSTRAP TOPIC EXPECTED IDLE_MS MAX_MS ISOLATION [CLIENT_PROPERTIES]");
            System.exit(2);
        }
        String bootstrap = args[0];
        String topic = args[1];
        long expected = Long.parseLong(args[2]);
        long idleMs = Long.parseLong(args[3]);
        long maxMs = Long.parseLong(args[4]);
        String isolation = args[5];

        Properties props = new Properties();
        if (args.length == 7) {
            try (java.io.Reader in = java.nio.file.Files.newBufferedReader(
                    java.nio.file.Paths.get(args[6]), StandardCharsets.UTF_8)) {
                props.load(in);
            }
        }
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        props.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "20000");
        props.put(ConsumerConfig.CHECK_CRCS_CONFIG, "true");
        props.put(ConsumerConfig.CLIENT_ID_CONFIG, "fastprod-test-consume-all");

        long start = System.currentTimeMillis();
        Base64.Encoder b64 = Base64.getEncoder();
        BufferedWriter out = new BufferedWriter(
            new OutputStreamWriter(System.out, StandardCharsets.UTF_8), 1 << 20);
        long count = 0;
        String reason;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofMillis(maxMs));
            List<TopicPartition> tps = new ArrayList<>();
            for (PartitionInfo info : infos) {
                tps.add(new TopicPartition(topic, info.partition()));
            }
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            long lastData = System.currentTimeMillis();
            StringBuilder sb = new StringBuilder(256);
            while (true) {
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
                long now = System.currentTimeMillis();
                if (!records.isEmpty()) {
                    lastData = now;
                }
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    sb.setLength(0);
                    sb.append("{\"p\":").append(r.partition())
                      .append(",\"o\":").append(r.offset())
                      .append(",\"ts\":").append(r.timestamp())
                      .append(",\"tt\":\"").append(r.timestampType().name()).append('"')
                      .append(",\"k\":");
                    bytes(sb, b64, r.key());
                    sb.append(",\"v\":");
                    bytes(sb, b64, r.value());
                    sb.append(",\"h\":[");
                    boolean first = true;
                    for (Header h : r.headers()) {
                        if (!first) sb.append(',');
                        first = false;
                        sb.append('[');
                        string(sb, h.key());
                        sb.append(',');
                        bytes(sb, b64, h.value());
                        sb.append(']');
                    }
                    sb.append("]}\n");
                    out.write(sb.toString());
                    count++;
                }
                if (expected >= 0 && count >= expected && atEnd(consumer, tps)) {
                    reason = "complete";
                    break;
                }
                if (now - lastData >= idleMs) {
                    reason = "idle";
                    break;
                }
                if (now - start >= maxMs) {
                    reason = "max";
                    break;
                }
            }
        }
        out.flush();
        System.err.println("DONE " + count + " " + reason);
    }

    private static boolean atEnd(KafkaConsumer<byte[], byte[]> consumer, List<TopicPartition> tps) {
        // endOffsets is the high watermark (read_uncommitted) or the LSO (read_committed).
        Map<TopicPartition, Long> ends = consumer.endOffsets(tps, Duration.ofSeconds(10));
        for (TopicPartition tp : tps) {
            if (consumer.position(tp) < ends.get(tp)) {
                return false;
            }
        }
        return true;
    }

    private static void bytes(StringBuilder sb, Base64.Encoder b64, byte[] data) {
        if (data == null) {
            sb.append("null");
        } else {
            sb.append('"').append(b64.encodeToString(data)).append('"');
        }
    }

    private static void string(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': sb.append("\\\""); break;
                case '\\': sb.append("\\\\"); break;
                default:
                    if (c < 0x20 || c > 0x7e) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
            }
        }
        sb.append('"');
    }
}
