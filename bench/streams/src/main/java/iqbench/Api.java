package iqbench;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.URI;
import java.net.URLDecoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyQueryMetadata;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsMetadata;
import org.apache.kafka.streams.errors.InvalidStateStoreException;
import org.apache.kafka.streams.state.HostInfo;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;
import org.apache.kafka.streams.state.ValueAndTimestamp;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;

/**
 * The peer's HTTP API, shaped like iqengine's public one so that the same load generator drives
 * both:
 *
 * <pre>
 * GET /v1/stores/{store}/keys/{key}              {"key","value","partition","timestamp","served_by"}; 404 when absent
 * GET /v1/stores/{store}/keys?from=&amp;to=&amp;limit=   {"items":[{"key","value","partition","timestamp"}],"next_cursor":null}
 * GET /readyz                                    200 when RUNNING and the store is queryable
 * GET /healthz                                   200 while the process runs
 * GET /v1/metadata/instances                     the hosts and the partitions each owns
 * </pre>
 *
 * A request for a key another instance owns is forwarded once to that instance's
 * {@code application.server}, which answers it from its local store; the answer is relayed. A
 * forwarded request carries {@value #HOP} and is never forwarded again (421 instead). A scan asks
 * every instance for its partitions' items in the range (at most {@code limit} from each
 * partition, in the internal binary form below), merges them in key order and keeps the first
 * {@code limit}. Values are the raw record bytes (JSON), written into the answer as they are.
 * Every answer names the instance that read the store in {@value #SERVED_BY}.
 */
final class Api implements HttpHandler {
    static final String HOP = "X-Peer-Hop";
    static final String SERVED_BY = "X-Served-By";
    private static final String KEYS_PREFIX = "/v1/stores/";
    private static final Serializer<String> KEY_SERIALIZER = new StringSerializer();

    private final KafkaStreams streams;
    private final String store;
    private final String topic;
    private final HostInfo self;
    private final String selfName;
    private final int expectInstances;
    private final int partitions;
    private final HttpClient client;
    private final StoreQueryParameters<ReadOnlyKeyValueStore<String, ValueAndTimestamp<byte[]>>> params;

    Api(KafkaStreams streams, String store, String topic, int partitions, String host, int port, int expectInstances) {
        this.streams = streams;
        this.store = store;
        this.topic = topic;
        this.partitions = partitions;
        this.self = new HostInfo(host, port);
        this.selfName = host + ":" + port;
        this.expectInstances = expectInstances;
        this.client = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(5))
                .build();
        this.params = StoreQueryParameters.fromNameAndType(store, QueryableStoreTypes.timestampedKeyValueStore());
    }

    @Override
    public void handle(HttpExchange ex) throws IOException {
        try {
            if (!ex.getRequestMethod().equals("GET")) {
                send(ex, 405, problem("method not allowed"));
                return;
            }
            String path = ex.getRequestURI().getRawPath();
            boolean hop = ex.getRequestHeaders().containsKey(HOP);
            if (path.equals("/healthz")) {
                send(ex, 200, "{\"status\":\"ok\"}".getBytes(StandardCharsets.UTF_8));
            } else if (path.equals("/readyz")) {
                readyz(ex);
            } else if (path.equals("/v1/metadata/instances")) {
                instances(ex);
            } else if (path.startsWith(KEYS_PREFIX)) {
                String rest = path.substring(KEYS_PREFIX.length());
                int slash = rest.indexOf('/');
                String name = slash < 0 ? rest : decode(rest.substring(0, slash));
                if (!name.equals(store)) {
                    send(ex, 404, problem("unknown store"));
                } else if (rest.startsWith("keys/", slash + 1)) {
                    String key = decode(rest.substring(slash + 1 + "keys/".length()));
                    if (key.isEmpty()) {
                        send(ex, 400, problem("empty key"));
                    } else {
                        get(ex, key, hop);
                    }
                } else if (rest.substring(slash + 1).equals("keys")) {
                    scan(ex, query(ex.getRequestURI().getRawQuery()), hop);
                } else {
                    send(ex, 404, problem("no such endpoint"));
                }
            } else {
                send(ex, 404, problem("no such endpoint"));
            }
        } catch (InvalidStateStoreException e) {
            // Rebalancing, restoring, or the partition just moved.
            ex.getResponseHeaders().set("Retry-After", "1");
            send(ex, 503, problem("store not available: " + e.getMessage()));
        } catch (BadRequest e) {
            send(ex, 400, problem(e.getMessage()));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            send(ex, 503, problem("interrupted"));
        } catch (RuntimeException | IOException e) {
            send(ex, 500, problem(e.toString()));
        } finally {
            ex.close();
        }
    }

    // ---------------------------------------------------------------- key lookups

    private void get(HttpExchange ex, String key, boolean hop) throws IOException, InterruptedException {
        KeyQueryMetadata md = streams.queryMetadataForKey(store, key, KEY_SERIALIZER);
        if (md == null || md.equals(KeyQueryMetadata.NOT_AVAILABLE) || md.activeHost() == null) {
            ex.getResponseHeaders().set("Retry-After", "1");
            send(ex, 503, problem("no active host for the key's partition"));
            return;
        }
        if (!md.activeHost().equals(self)) {
            if (hop) {
                send(ex, 421, problem("not the owner of partition " + md.partition()));
                return;
            }
            forward(ex, md.activeHost(), ex.getRequestURI().getRawPath());
            return;
        }
        ReadOnlyKeyValueStore<String, ValueAndTimestamp<byte[]>> local =
                streams.store(params.withPartition(md.partition()));
        ValueAndTimestamp<byte[]> v = local.get(key);
        if (v == null) {
            ex.getResponseHeaders().set(SERVED_BY, selfName);
            send(ex, 404, problem("key not found"));
            return;
        }
        Json j = new Json(v.value().length + key.length() + 96);
        j.raw("{\"key\":").string(key).raw(",\"value\":").bytes(v.value())
                .raw(",\"partition\":").number(md.partition())
                .raw(",\"timestamp\":").number(v.timestamp())
                .raw(",\"served_by\":").string(selfName).raw("}");
        ex.getResponseHeaders().set(SERVED_BY, selfName);
        send(ex, 200, j.toByteArray());
    }

    /** Relays the owner's answer: status, body and the served-by header. */
    private void forward(HttpExchange ex, HostInfo owner, String rawPathAndQuery) throws IOException, InterruptedException {
        HttpRequest req = HttpRequest.newBuilder(URI.create("http://" + owner.host() + ":" + owner.port() + rawPathAndQuery))
                .header(HOP, "1")
                .timeout(Duration.ofSeconds(10))
                .GET().build();
        HttpResponse<byte[]> resp = client.send(req, HttpResponse.BodyHandlers.ofByteArray());
        resp.headers().firstValue(SERVED_BY).ifPresent(s -> ex.getResponseHeaders().set(SERVED_BY, s));
        send(ex, resp.statusCode(), resp.body());
    }

    // ---------------------------------------------------------------- range scans

    private record Item(byte[] keyBytes, String key, int partition, long timestamp, byte[] value) {}

    private void scan(HttpExchange ex, Map<String, String> q, boolean hop) throws IOException, InterruptedException {
        String from = q.get("from");
        String to = q.get("to");
        int limit = 100;
        if (q.containsKey("limit")) {
            try {
                limit = Integer.parseInt(q.get("limit"));
            } catch (NumberFormatException e) {
                throw new BadRequest("bad limit");
            }
            if (limit < 1 || limit > 10000) {
                throw new BadRequest("limit must be from 1 to 10000");
            }
        }
        if (from != null && to != null && from.compareTo(to) > 0) {
            throw new BadRequest("from sorts after to");
        }
        Collection<StreamsMetadata> hosts = streams.streamsMetadataForStore(store);
        List<Integer> mine = new ArrayList<>();
        List<CompletableFuture<HttpResponse<byte[]>>> remote = new ArrayList<>();
        int owned = 0;
        for (StreamsMetadata md : hosts) {
            int n = 0;
            for (TopicPartition tp : md.topicPartitions()) {
                if (tp.topic().equals(topic)) {
                    n++;
                    if (md.hostInfo().equals(self)) {
                        mine.add(tp.partition());
                    }
                }
            }
            owned += n;
            if (!hop && n > 0 && !md.hostInfo().equals(self)) {
                HttpRequest req = HttpRequest.newBuilder(URI.create("http://" + md.hostInfo().host() + ":"
                                + md.hostInfo().port() + ex.getRequestURI().getRawPath() + "?"
                                + ex.getRequestURI().getRawQuery()))
                        .header(HOP, "1").timeout(Duration.ofSeconds(10)).GET().build();
                remote.add(client.sendAsync(req, HttpResponse.BodyHandlers.ofByteArray()));
            }
        }
        if (!hop && owned < partitions) {
            ex.getResponseHeaders().set("Retry-After", "1");
            send(ex, 503, problem("some partitions have no active host"));
            return;
        }
        List<Item> items = new ArrayList<>();
        for (int p : mine) {
            ReadOnlyKeyValueStore<String, ValueAndTimestamp<byte[]>> local = streams.store(params.withPartition(p));
            try (KeyValueIterator<String, ValueAndTimestamp<byte[]>> it = local.range(from, to)) {
                for (int n = 0; n < limit && it.hasNext(); n++) {
                    KeyValue<String, ValueAndTimestamp<byte[]>> kv = it.next();
                    items.add(new Item(kv.key.getBytes(StandardCharsets.UTF_8), kv.key, p, kv.value.timestamp(), kv.value.value()));
                }
            }
        }
        if (hop) {
            send(ex, 200, encodeItems(items));
            return;
        }
        for (CompletableFuture<HttpResponse<byte[]>> f : remote) {
            HttpResponse<byte[]> resp;
            try {
                resp = f.get();
            } catch (java.util.concurrent.ExecutionException e) {
                throw new IOException("scan of a remote instance failed: " + e.getCause(), e.getCause());
            }
            if (resp.statusCode() != 200) {
                send(ex, resp.statusCode() == 503 ? 503 : 502, problem("remote instance answered " + resp.statusCode()));
                return;
            }
            decodeItems(resp.body(), items);
        }
        items.sort((a, b) -> {
            int c = Arrays.compareUnsigned(a.keyBytes, b.keyBytes);
            return c != 0 ? c : Integer.compare(a.partition, b.partition);
        });
        Json j = new Json(256 * Math.min(limit, items.size()) + 64);
        j.raw("{\"items\":[");
        for (int i = 0; i < items.size() && i < limit; i++) {
            Item it = items.get(i);
            if (i > 0) {
                j.raw(",");
            }
            j.raw("{\"key\":").string(it.key).raw(",\"value\":").bytes(it.value)
                    .raw(",\"partition\":").number(it.partition)
                    .raw(",\"timestamp\":").number(it.timestamp).raw("}");
        }
        j.raw("],\"next_cursor\":null}");
        ex.getResponseHeaders().set(SERVED_BY, selfName);
        send(ex, 200, j.toByteArray());
    }

    /** Items between instances: per item partition, timestamp, key and value, length-prefixed. */
    private static byte[] encodeItems(List<Item> items) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream(items.size() * 256 + 4);
        DataOutputStream out = new DataOutputStream(b);
        out.writeInt(items.size());
        for (Item it : items) {
            out.writeInt(it.partition);
            out.writeLong(it.timestamp);
            out.writeInt(it.keyBytes.length);
            out.write(it.keyBytes);
            out.writeInt(it.value.length);
            out.write(it.value);
        }
        out.flush();
        return b.toByteArray();
    }

    private static void decodeItems(byte[] body, List<Item> into) throws IOException {
        DataInputStream in = new DataInputStream(new java.io.ByteArrayInputStream(body));
        int n = in.readInt();
        for (int i = 0; i < n; i++) {
            int p = in.readInt();
            long ts = in.readLong();
            byte[] k = in.readNBytes(in.readInt());
            byte[] v = in.readNBytes(in.readInt());
            into.add(new Item(k, new String(k, StandardCharsets.UTF_8), p, ts, v));
        }
    }

    // ---------------------------------------------------------------- readiness and metadata

    private void readyz(HttpExchange ex) throws IOException {
        KafkaStreams.State state = streams.state();
        String why = null;
        if (state != KafkaStreams.State.RUNNING) {
            why = "state " + state;
        } else {
            streams.store(params); // throws InvalidStateStoreException (503) until queryable
            int withPartitions = 0;
            for (StreamsMetadata md : streams.streamsMetadataForStore(store)) {
                if (!md.topicPartitions().isEmpty()) {
                    withPartitions++;
                }
            }
            if (withPartitions < expectInstances) {
                why = withPartitions + " of " + expectInstances + " instances own partitions";
            }
        }
        if (why != null) {
            send(ex, 503, problem("not ready: " + why));
            return;
        }
        send(ex, 200, "{\"status\":\"ready\"}".getBytes(StandardCharsets.UTF_8));
    }

    private void instances(HttpExchange ex) throws IOException {
        Json j = new Json(512);
        j.raw("{\"state\":").string(streams.state().toString()).raw(",\"instances\":[");
        boolean first = true;
        for (StreamsMetadata md : streams.metadataForAllStreamsClients()) {
            if (!first) {
                j.raw(",");
            }
            first = false;
            List<Integer> ps = new ArrayList<>();
            for (TopicPartition tp : md.topicPartitions()) {
                ps.add(tp.partition());
            }
            ps.sort(null);
            j.raw("{\"url\":").string("http://" + md.hostInfo().host() + ":" + md.hostInfo().port())
                    .raw(",\"partitions\":").raw(ps.toString()).raw("}");
        }
        j.raw("]}");
        send(ex, 200, j.toByteArray());
    }

    // ---------------------------------------------------------------- helpers

    private static final class BadRequest extends RuntimeException {
        BadRequest(String msg) {
            super(msg);
        }
    }

    private static Map<String, String> query(String raw) {
        Map<String, String> m = new HashMap<>();
        if (raw == null || raw.isEmpty()) {
            return m;
        }
        for (String part : raw.split("&")) {
            int eq = part.indexOf('=');
            String k = decodeQuery(eq < 0 ? part : part.substring(0, eq));
            String v = eq < 0 ? "" : decodeQuery(part.substring(eq + 1));
            if (!v.isEmpty()) {
                m.put(k, v);
            }
        }
        return m;
    }

    private static String decode(String pathSegment) {
        // Path segments: '+' is a plus sign, not a space.
        return URLDecoder.decode(pathSegment.replace("+", "%2B"), StandardCharsets.UTF_8);
    }

    private static String decodeQuery(String s) {
        return URLDecoder.decode(s, StandardCharsets.UTF_8);
    }

    private static byte[] problem(String detail) {
        return new Json(detail.length() + 32).raw("{\"detail\":").string(detail).raw("}").toByteArray();
    }

    private static void send(HttpExchange ex, int status, byte[] body) throws IOException {
        ex.getResponseHeaders().set("Content-Type", status < 300 ? "application/json" : "application/problem+json");
        ex.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
        if (body.length > 0) {
            try (OutputStream out = ex.getResponseBody()) {
                out.write(body);
            }
        }
    }

    /** A small JSON writer: strings escaped, raw JSON values copied. */
    static final class Json {
        private final ByteArrayOutputStream out;

        Json(int size) {
            out = new ByteArrayOutputStream(size);
        }

        Json raw(String s) {
            out.writeBytes(s.getBytes(StandardCharsets.UTF_8));
            return this;
        }

        Json bytes(byte[] b) {
            out.writeBytes(b);
            return this;
        }

        Json number(long n) {
            return raw(Long.toString(n));
        }

        Json string(String s) {
            StringBuilder b = new StringBuilder(s.length() + 2).append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"' -> b.append("\\\"");
                    case '\\' -> b.append("\\\\");
                    case '\n' -> b.append("\\n");
                    case '\r' -> b.append("\\r");
                    case '\t' -> b.append("\\t");
                    default -> {
                        if (c < 0x20) {
                            b.append(String.format("\\u%04x", (int) c));
                        } else {
                            b.append(c);
                        }
                    }
                }
            }
            return raw(b.append('"').toString());
        }

        byte[] toByteArray() {
            return out.toByteArray();
        }
    }
}
