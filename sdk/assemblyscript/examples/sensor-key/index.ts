// sensor-key: the composite sensor key serializer (contract in
// sdk/conformance/README.md). Key bytes: u16 site then u32 sensor, both
// big-endian; URL text: SITE-SENSOR, or SITE alone for a prefix.
export * from "../../assembly/export/key-to-json";
export * from "../../assembly/export/key-from-text";
export * from "../../assembly/export/partition";
import { OK, keyFromText, keyToJson, out, partition, reject } from "../../assembly/index";

keyToJson((ptr: usize, len: usize): i32 => {
  if (len != 6) return reject("key is not 6 bytes");
  let site = (<u32>load<u8>(ptr) << 8) | <u32>load<u8>(ptr, 1);
  let sensor = bswap<u32>(load<u32>(ptr, 2));
  out.ascii('{"site":');
  out.uint(site);
  out.ascii(',"sensor":');
  out.uint(sensor);
  out.byte(0x7d); // }
  return OK;
});

const NOT_A_NUMBER: u64 = <u64>-1;

// Decimal digits only (leading zeros allowed), at most max; else NOT_A_NUMBER.
function parseUint(p: usize, n: usize, max: u64): u64 {
  if (n == 0) return NOT_A_NUMBER;
  let v: u64 = 0;
  for (let i: usize = 0; i < n; i++) {
    let c = <u32>load<u8>(p + i);
    if (c < 0x30 || c > 0x39) return NOT_A_NUMBER;
    v = v * 10 + <u64>(c - 0x30);
    if (v > max) return NOT_A_NUMBER;
  }
  return v;
}

keyFromText((ptr: usize, len: usize): i32 => {
  let dash: usize = 0;
  while (dash < len && load<u8>(ptr + dash) != 0x2d) dash++;
  let site = parseUint(ptr, dash, 65535);
  if (site == NOT_A_NUMBER) return reject("key text is not SITE or SITE-SENSOR (decimal, site <= 65535)");
  out.byte(<u32>(site >> 8));
  out.byte(<u32>site);
  if (dash == len) return OK;
  let sensor = parseUint(ptr + dash + 1, len - dash - 1, 4294967295);
  if (sensor == NOT_A_NUMBER) return reject("key text is not SITE or SITE-SENSOR (decimal, sensor <= 4294967295)");
  out.byte(<u32>(sensor >> 24));
  out.byte(<u32>(sensor >> 16));
  out.byte(<u32>(sensor >> 8));
  out.byte(<u32>sensor);
  return OK;
});

partition((ptr: usize, len: usize, partitions: i32): i32 => {
  if (len < 2) return reject("key shorter than 2 bytes");
  let site = (<u32>load<u8>(ptr) << 8) | <u32>load<u8>(ptr, 1);
  return <i32>(site % <u32>partitions);
});
