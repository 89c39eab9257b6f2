// AvroProducer writes Avro records in the Confluent wire format to a topic
// with Kafka's Java producer and Apache Avro: what a Java service using a
// schema registry serializer writes (the frame is written here by hand: a
// zero byte, the schema id as 4 big-endian bytes, then Avro's binary
// encoding). The schemas are registered beforehand (by the Go test); their
// ids and texts are arguments.
//
//   java -cp KAFKA_JARS:AVRO_JARS AvroProducer.java BOOTSTRAP TOPIC COUNT \
//       KEY_ID KEY_SCHEMA_FILE V1_ID V1_SCHEMA_FILE V2_ID V2_SCHEMA_FILE
//
// Record i has the key "o-%05d" (an Avro string) and a value of schema
// version 1 when i is even, version 2 when odd, with fields derived from i
// (the Go test computes the same): see value().
import java.io.ByteArrayOutputStream;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;

import org.apache.avro.Conversions;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class AvroProducer {
  static final long BASE_MILLIS = 1796207400000L; // 2026-12-02T10:30:00Z

  public static void main(String[] args) throws Exception {
    String bootstrap = args[0], topic = args[1];
    int count = Integer.parseInt(args[2]);
    int keyId = Integer.parseInt(args[3]);
    Schema keySchema = parse(args[4]);
    int v1Id = Integer.parseInt(args[5]);
    Schema v1 = parse(args[6]);
    int v2Id = Integer.parseInt(args[7]);
    Schema v2 = parse(args[8]);

    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    p.put("acks", "all");
    p.put("enable.idempotence", "true");
    try (KafkaProducer<byte[], byte[]> producer =
        new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
      for (int i = 0; i < count; i++) {
        String key = String.format("o-%05d", i);
        boolean even = i % 2 == 0;
        byte[] k = frame(keyId, keySchema, key);
        byte[] v = even ? frame(v1Id, v1, value(v1, i)) : frame(v2Id, v2, value(v2, i));
        producer.send(new ProducerRecord<>(topic, k, v)).get();
      }
    }
  }

  static Schema parse(String file) throws Exception {
    return new Schema.Parser().parse(Files.readString(Path.of(file)));
  }

  // value is record i: v1 has every field, v2 adds "channel" (default "web").
  static GenericRecord value(Schema s, int i) {
    GenericRecord r = new GenericData.Record(s);
    r.put("id", String.format("o-%05d", i));
    Schema totalSchema = s.getField("total").schema();
    BigDecimal total = BigDecimal.valueOf(i * 100L + 5, 2); // i + 0.05
    r.put("total", new Conversions.DecimalConversion().toBytes(total, totalSchema, totalSchema.getLogicalType()));
    r.put("placed", BASE_MILLIS + i * 1000L);
    Schema customerSchema = s.getField("customer").schema();
    GenericRecord c = new GenericData.Record(customerSchema);
    c.put("name", "c-" + i);
    c.put("email", i % 3 == 0 ? null : "c" + i + "@example.com");
    r.put("customer", c);
    switch (i % 4) {
      case 0: r.put("discount", null); break;
      case 1: r.put("discount", i); break;
      default: r.put("discount", i + 0.5); break;
    }
    Schema status = s.getField("status").schema();
    r.put("status", new GenericData.EnumSymbol(status, status.getEnumSymbols().get(i % 3)));
    if (s.getField("channel") != null) {
      r.put("channel", i % 5 == 0 ? "app" : "web");
    }
    return r;
  }

  static byte[] frame(int id, Schema s, Object datum) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.write(0);
    out.write(ByteBuffer.allocate(4).putInt(id).array());
    BinaryEncoder enc = EncoderFactory.get().binaryEncoder(out, null);
    new GenericDatumWriter<Object>(s).write(datum, enc);
    enc.flush();
    return out.toByteArray();
  }
}
