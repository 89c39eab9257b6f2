package streamsapp;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * The layouts of the changelog records' keys and values, as Kafka Streams writes them (see
 * README.md, where they are shown on real records):
 *
 * <ul>
 *   <li>key-value: the key is the serialized key;
 *   <li>window: {@code [serialized key][window start, 8 bytes big-endian][sequence number, 4
 *       bytes big-endian]};
 *   <li>session: {@code [serialized key][session end, 8 bytes big-endian][session start, 8
 *       bytes big-endian]}.
 * </ul>
 *
 * Values are the serialized aggregate (here a Long: 8 bytes big-endian), also for the
 * timestamped stores, whose timestamp is the record's; a null value (a tombstone) deletes.
 */
enum Layout {
    /** A key-value store's changelog. */
    KV,
    /** A window store's changelog. */
    WINDOW,
    /** A session store's changelog. */
    SESSION,
    /** Bytes only. */
    RAW;

    /** A window changelog key, decoded. */
    record WindowKey(String key, long start, int seq) {}

    /** A session changelog key, decoded. */
    record SessionKey(String key, long end, long start) {}

    /**
     * The layout a topic's name suggests: a changelog ending in "session-changelog" or
     * "sessions-changelog" is a session store's, another changelog with "window" in its name a
     * window store's, anything else key-value (the input topic too: String key, Long value).
     */
    static Layout guess(String topic) {
        if (topic.endsWith("-changelog")) {
            if (topic.endsWith("sessions-changelog") || topic.endsWith("session-changelog")) {
                return SESSION;
            }
            if (topic.contains("window")) {
                return WINDOW;
            }
        }
        return KV;
    }

    static WindowKey window(byte[] b) {
        if (b.length < 12) {
            throw new IllegalArgumentException("a window key has at least 12 bytes, this one " + b.length);
        }
        ByteBuffer buf = ByteBuffer.wrap(b);
        int n = b.length - 12;
        return new WindowKey(new String(b, 0, n, StandardCharsets.UTF_8), buf.getLong(n), buf.getInt(n + 8));
    }

    static SessionKey session(byte[] b) {
        if (b.length < 16) {
            throw new IllegalArgumentException("a session key has at least 16 bytes, this one " + b.length);
        }
        ByteBuffer buf = ByteBuffer.wrap(b);
        int n = b.length - 16;
        return new SessionKey(new String(b, 0, n, StandardCharsets.UTF_8), buf.getLong(n), buf.getLong(n + 8));
    }

    /** An 8-byte big-endian Long value, or null for a tombstone. */
    static Long longValue(byte[] b) {
        if (b == null) {
            return null;
        }
        if (b.length != 8) {
            throw new IllegalArgumentException("a Long value has 8 bytes, this one " + b.length);
        }
        return ByteBuffer.wrap(b).getLong();
    }

    static String hex(byte[] b) {
        if (b == null) {
            return null;
        }
        StringBuilder s = new StringBuilder(b.length * 2);
        for (byte x : b) {
            s.append(Character.forDigit((x >> 4) & 0xf, 16)).append(Character.forDigit(x & 0xf, 16));
        }
        return s.toString();
    }
}
