package streamsapp;

import java.util.List;

import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;
import org.apache.kafka.streams.state.ReadOnlySessionStore;
import org.apache.kafka.streams.state.ReadOnlyWindowStore;

/**
 * The application's three stores, one of each per input partition, as the HTTP API reads them:
 * in {@code run} the partitions this instance holds (Kafka Streams' interactive queries), in the
 * tests a TopologyTestDriver's single partition. A store that cannot be read now (rebalancing,
 * restoring) throws Kafka Streams' {@code InvalidStateStoreException}.
 */
interface Stores {
    /** A key whose partition this instance does not hold. */
    final class NotHereException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        NotHereException(String msg) {
            super(msg);
        }
    }

    /** The input partitions whose stores this instance holds, in ascending order. */
    List<Integer> partitions();

    /** The partition of {@code key}'s records and state; {@link NotHereException} if not held here. */
    int partitionOf(String key);

    /** {@code counts}: events per key. */
    ReadOnlyKeyValueStore<String, Long> counts(int partition);

    /** {@code windowed-counts}: events per key and tumbling window. */
    ReadOnlyWindowStore<String, Long> windows(int partition);

    /** {@code sessions}: the sum of the amounts per key and session. */
    ReadOnlySessionStore<String, Long> sessions(int partition);

    /** Whether the application runs and every store can be queried. */
    boolean ready();
}
