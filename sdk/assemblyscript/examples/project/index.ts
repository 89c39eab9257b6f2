// project: the project-and-filter transform (contract in
// sdk/conformance/README.md). fields=a,b keeps those top-level members in
// input order; min_FIELD=N keeps records whose FIELD is a number >= N,
// compared exactly as decimals.
export { iq_abi_v1, iq_alloc, iq_init, iq_last_error } from "../../assembly/index";
import {
  Buf, JsonObject, OK, REJECT, SKIP,
  acceptBatch, beginBatch, bytesEqual, bytesEqualAscii, bytesHasPrefixAscii, decimalCmp, endBatch,
  errorBytes, errorString, out, paramCount, paramNameLen, paramNamePtr, paramValueLen, paramValuePtr,
  readRecord, recordValueLen, recordValuePtr, reject, result, setError,
} from "../../assembly/index";

// The batch's parameters, as indexes into the SDK's parameter table.
let fieldsParam: i32 = -1;
const mins = new Buf(); // per min_ filter: the parameter index (i32)
const found = new Buf(); // per min_ filter: the value found (ptr u32, len u32)
const members = new JsonObject();

function minCount(): i32 {
  return <i32>(mins.len >> 2);
}

function minParam(k: i32): i32 {
  return load<i32>(mins.ptr + (<usize>k << 2));
}

function isDecimalParam(p: usize, n: usize): bool {
  let i: usize = 0;
  if (i < n && load<u8>(p) == 0x2d) i++;
  let start = i;
  while (i < n && load<u8>(p + i) >= 0x30 && load<u8>(p + i) <= 0x39) i++;
  if (i == start) return false;
  if (i < n && load<u8>(p + i) == 0x2e) {
    i++;
    start = i;
    while (i < n && load<u8>(p + i) >= 0x30 && load<u8>(p + i) <= 0x39) i++;
    if (i == start) return false;
  }
  return i == n;
}

export function iq_transform_begin(ptr: usize, len: usize): i32 {
  let st = beginBatch(ptr, len);
  if (st != OK) return st;
  fieldsParam = -1;
  mins.reset();
  for (let i = 0; i < paramCount(); i++) {
    let name = paramNamePtr(i);
    let nameLen = paramNameLen(i);
    if (bytesEqualAscii(name, nameLen, "fields")) {
      fieldsParam = i;
    } else if (bytesHasPrefixAscii(name, nameLen, "min_")) {
      if (!isDecimalParam(paramValuePtr(i), paramValueLen(i))) {
        setError("parameter ");
        errorBytes(name, nameLen);
        errorString(" is not a decimal number");
        return REJECT;
      }
      // A repeated name: the last one wins.
      let k = 0;
      while (k < minCount()) {
        let m = minParam(k);
        if (bytesEqual(paramNamePtr(m), paramNameLen(m), name, nameLen)) break;
        k++;
      }
      if (k == minCount()) {
        mins.reserve(4);
        mins.len += 4;
      }
      store<i32>(mins.ptr + (<usize>k << 2), i);
    } else {
      setError("unknown parameter ");
      errorBytes(name, nameLen);
      return REJECT;
    }
  }
  return acceptBatch();
}

// Whether the member name is one of the comma-separated names in fields.
function kept(name: usize, nameLen: usize): bool {
  if (fieldsParam < 0) return true;
  let f = paramValuePtr(fieldsParam);
  let n = paramValueLen(fieldsParam);
  let start: usize = 0;
  for (let i: usize = 0; i <= n; i++) {
    if (i == n || load<u8>(f + i) == 0x2c) {
      if (bytesEqual(f + start, i - start, name, nameLen)) return true;
      start = i + 1;
    }
  }
  return false;
}

export function iq_transform_record(ptr: usize, len: usize): i64 {
  let st = readRecord(ptr, len);
  if (st != OK) return st;
  let value = recordValuePtr();
  let valueLen = recordValueLen();
  let count = minCount();

  // Pass 1: validate the whole object and apply the filters. For a
  // repeated member name, the last occurrence is the one filtered on.
  if (members.open(value, valueLen) != OK) return reject("value is not a JSON object");
  found.reset();
  found.reserve(<usize>count << 3);
  found.len = <usize>count << 3;
  memory.fill(found.ptr, 0, found.len);
  let r: i32;
  while ((r = members.next()) == 1) {
    for (let k = 0; k < count; k++) {
      // min_FIELD: the field name starts after the 4 bytes of "min_"
      let m = minParam(k);
      if (bytesEqual(members.namePtr, members.nameLen, paramNamePtr(m) + 4, paramNameLen(m) - 4)) {
        store<u32>(found.ptr + (<usize>k << 3), <u32>members.valuePtr);
        store<u32>(found.ptr + (<usize>k << 3), <u32>members.valueLen, 4);
      }
    }
  }
  if (r < 0) return reject("value is not well-formed JSON");
  for (let k = 0; k < count; k++) {
    let v = <usize>load<u32>(found.ptr + (<usize>k << 3));
    let vn = <usize>load<u32>(found.ptr + (<usize>k << 3), 4);
    if (v == 0) return SKIP;
    let c = load<u8>(v);
    if (c != 0x2d && (c < 0x30 || c > 0x39)) return SKIP;
    let m = minParam(k);
    if (decimalCmp(v, vn, paramValuePtr(m), paramValueLen(m)) < 0) return SKIP;
  }

  // Pass 2: write the kept members in input order.
  members.open(value, valueLen);
  let first = true;
  out.byte(0x7b); // {
  while (members.next() == 1) {
    if (!kept(members.namePtr, members.nameLen)) continue;
    if (!first) out.byte(0x2c); // ,
    first = false;
    out.byte(0x22);
    out.write(members.namePtr, members.nameLen);
    out.ascii('":');
    out.write(members.valuePtr, members.valueLen);
  }
  out.byte(0x7d); // }
  return result();
}

export function iq_transform_end(): void {
  endBatch();
  fieldsParam = -1;
  mins.reset();
}
