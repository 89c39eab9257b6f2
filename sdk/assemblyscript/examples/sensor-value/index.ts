// sensor-value: the sensor record value serializer (contract in
// sdk/conformance/README.md). A fixed little-endian layout of at least 24
// bytes, written as one JSON object.
export * from "../../assembly/export/value-to-json";
import { OK, out, reject, utf8Valid, valueToJson } from "../../assembly/index";

valueToJson((ptr: usize, len: usize): i32 => {
  if (len < 24) return reject("value shorter than 24 bytes");
  if (load<u8>(ptr) != 1) return reject("version is not 1");
  let status = load<u8>(ptr, 1);
  if (status > 2) return reject("status is not 0, 1 or 2");
  let label = ptr + 24;
  let labelLen = len - 24;
  if (labelLen > 64) return reject("label longer than 64 bytes");
  if (!utf8Valid(label, labelLen)) return reject("label is not valid UTF-8");

  // wasm32 is little-endian, as the record is.
  out.ascii('{"sensor":');
  out.uint(load<u32>(ptr, 4));
  out.ascii(',"site":');
  out.uint(load<u16>(ptr, 2));
  out.ascii(',"time":');
  out.int(load<i64>(ptr, 8));
  out.ascii(',"status":"');
  out.ascii(status == 0 ? "ok" : status == 1 ? "degraded" : "offline");
  out.ascii('","temp_c":');
  out.fixed(load<i32>(ptr, 16), 2);
  out.ascii(',"humidity":');
  out.fixed(load<u32>(ptr, 20), 1);
  out.ascii(',"label":');
  out.jsonString(label, labelLen);
  out.byte(0x7d); // }
  return OK;
});
