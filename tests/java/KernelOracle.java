// Reference values from the Apache Kafka Java client, for fastprod's kernel tests.
//
// Compiled and run by tests/javatools.py against the kafka-clients jars that
// fastprod.localkafka fetches. Line protocol on stdin/stdout; every byte string is
// written as "-" (null) or "x" followed by its hex digits (so "x" alone is empty).
//
//   java KernelOracle murmur2 N1 N2 ...   stdin: one hex key per line
//       stdout per key: murmur2(key) toPositive(murmur2(key)) partitionForKey(key, Ni)...
//   java KernelOracle read                stdin: one hex record batch per line
//       stdout per input: "BATCH baseOffset lastOffset codec transactional control
//       producerId producerEpoch baseSequence partitionLeaderEpoch maxTimestamp
//       crc count", one "REC offset timestamp key value nHeaders (hkey hvalue)*" per
//       record, then "END"; or "ERROR <exception class> <message>" when Java rejects it.
//   java KernelOracle write               stdin: "BATCH codec producerId epoch
//       baseSequence transactional baseOffset partitionLeaderEpoch", then
//       "REC timestamp key value nHeaders (hkey hvalue)*" lines, then "END";
//       stdout: the hex of the batch MemoryRecordsBuilder wrote, one line per batch.
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.record.internal.CompressionType;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.MemoryRecordsBuilder;
import org.apache.kafka.common.record.internal.MutableRecordBatch;
import org.apache.kafka.common.record.internal.Record;
import org.apache.kafka.common.record.internal.RecordBatch;
import org.apache.kafka.common.utils.Utils;

public final class KernelOracle {
    private static final HexFormat HEX = HexFormat.of();

    private static byte[] decode(String token) {
        if (token.equals("-")) {
            return null;
        }
        if (!token.startsWith("x")) {
            throw new IllegalArgumentException("bad byte token: " + token);
        }
        return HEX.parseHex(token.substring(1));
    }

    private static String encode(byte[] bytes) {
        return bytes == null ? "-" : "x" + HEX.formatHex(bytes);
    }

    private static String encode(ByteBuffer buf) {
        if (buf == null) {
            return "-";
        }
        byte[] bytes = new byte[buf.remaining()];
        buf.duplicate().get(bytes);
        return encode(bytes);
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII));
        BufferedWriter out = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.US_ASCII), 1 << 16);
        switch (args[0]) {
            case "murmur2" -> murmur2(args, in, out);
            case "read" -> read(in, out);
            case "write" -> write(in, out);
            default -> throw new IllegalArgumentException("unknown mode " + args[0]);
        }
        out.flush();
    }

    private static void murmur2(String[] args, BufferedReader in, BufferedWriter out) throws Exception {
        int[] counts = new int[args.length - 1];
        for (int i = 1; i < args.length; i++) {
            counts[i - 1] = Integer.parseInt(args[i]);
        }
        StringBuilder sb = new StringBuilder();
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            byte[] key = decode(line.strip());
            int h = Utils.murmur2(key);
            sb.setLength(0);
            sb.append(h).append(' ').append(Utils.toPositive(h));
            for (int n : counts) {
                sb.append(' ').append(BuiltInPartitioner.partitionForKey(key, n));
            }
            out.write(sb.toString());
            out.newLine();
        }
    }

    private static void read(BufferedReader in, BufferedWriter out) throws Exception {
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            StringBuilder sb = new StringBuilder();
            try {
                MemoryRecords records = MemoryRecords.readableRecords(ByteBuffer.wrap(decode(line.strip())));
                for (MutableRecordBatch batch : records.batches()) {
                    batch.ensureValid();
                    sb.append("BATCH ").append(batch.baseOffset())
                        .append(' ').append(batch.lastOffset())
                        .append(' ').append(batch.compressionType().id)
                        .append(' ').append(batch.isTransactional())
                        .append(' ').append(batch.isControlBatch())
                        .append(' ').append(batch.producerId())
                        .append(' ').append(batch.producerEpoch())
                        .append(' ').append(batch.baseSequence())
                        .append(' ').append(batch.partitionLeaderEpoch())
                        .append(' ').append(batch.maxTimestamp())
                        .append(' ').append(batch.checksum())
                        .append(' ').append(batch.countOrNull())
                        .append('\n');
                    for (Record record : batch) {
                        record.ensureValid();
                        sb.append("REC ").append(record.offset())
                            .append(' ').append(record.timestamp())
                            .append(' ').append(encode(record.key()))
                            .append(' ').append(encode(record.value()));
                        Header[] headers = record.headers();
                        sb.append(' ').append(headers.length);
                        for (Header h : headers) {
                            sb.append(' ').append(encode(h.key().getBytes(StandardCharsets.UTF_8)))
                                .append(' ').append(encode(h.value()));
                        }
                        sb.append('\n');
                    }
                }
                sb.append("END");
            } catch (Exception e) {
                sb.setLength(0);
                String msg = String.valueOf(e.getMessage()).replace('\n', ' ');
                sb.append("ERROR ").append(e.getClass().getName()).append(' ').append(msg);
            }
            out.write(sb.toString());
            out.newLine();
        }
    }

    private static void write(BufferedReader in, BufferedWriter out) throws Exception {
        MemoryRecordsBuilder builder = null;
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            String[] f = line.strip().split(" ");
            switch (f[0]) {
                case "BATCH" -> {
                    CompressionType type = CompressionType.forId(Integer.parseInt(f[1]));
                    builder = MemoryRecords.builder(
                        ByteBuffer.allocate(1024), RecordBatch.CURRENT_MAGIC_VALUE,
                        Compression.of(type).build(), TimestampType.CREATE_TIME,
                        Long.parseLong(f[6]), RecordBatch.NO_TIMESTAMP,
                        Long.parseLong(f[2]), Short.parseShort(f[3]), Integer.parseInt(f[4]),
                        Boolean.parseBoolean(f[5]), Integer.parseInt(f[7]));
                }
                case "REC" -> {
                    int n = Integer.parseInt(f[4]);
                    List<Header> headers = new ArrayList<>();
                    for (int i = 0; i < n; i++) {
                        String key = new String(decode(f[5 + 2 * i]), StandardCharsets.UTF_8);
                        headers.add(new RecordHeader(key, decode(f[6 + 2 * i])));
                    }
                    builder.append(Long.parseLong(f[1]), decode(f[2]), decode(f[3]),
                        headers.toArray(new Header[0]));
                }
                case "END" -> {
                    ByteBuffer buf = builder.build().buffer();
                    out.write(encode(buf));
                    out.newLine();
                    builder = null;
                }
                default -> throw new IllegalArgumentException("bad line: " + line);
            }
        }
    }
}
