// project: the project-and-filter transform (contract in
// sdk/conformance/README.md). fields=a,b keeps those top-level members in
// input order; min_FIELD=N keeps records whose FIELD is a number >= N,
// compared exactly as decimals (the decimal code is this example's own; the
// SDK walks the JSON object).
export * from "../../assembly/export/transform";
import {
  Buf, JsonObject, OK, REJECT, SKIP,
  bytesEqual, bytesEqualAscii, bytesHasPrefixAscii, errorBytes, errorString, out, paramCount,
  paramNameLen, paramNamePtr, paramValueLen, paramValuePtr, setError, transform,
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

function isDigit(c: u32): bool {
  return c >= 0x30 && c <= 0x39;
}

function skipDigits(p: usize, n: usize, i: usize): usize {
  while (i < n && isDigit(load<u8>(p + i))) i++;
  return i;
}

// Whether a min_ parameter is [-]digits[.digits].
function isDecimalParam(p: usize, n: usize): bool {
  let i: usize = n > 0 && load<u8>(p) == 0x2d ? 1 : 0;
  let start = i;
  i = skipDigits(p, n, i);
  if (i == start) return false;
  if (i < n && load<u8>(p + i) == 0x2e) {
    start = i + 1;
    i = skipDigits(p, n, start);
    if (i == start) return false;
  }
  return i == n;
}

function begin(): i32 {
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
  return OK;
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

function record(keyPtr: usize, keyLen: usize, value: usize, valueLen: usize): i32 {
  let count = minCount();

  // Pass 1: validate the whole object and apply the filters. For a
  // repeated member name, the last occurrence is the one filtered on.
  let st = members.open(value, valueLen);
  if (st != OK) return st;
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
  if (r < 0) return REJECT; // the walker set the message
  for (let k = 0; k < count; k++) {
    let v = <usize>load<u32>(found.ptr + (<usize>k << 3));
    let vn = <usize>load<u32>(found.ptr + (<usize>k << 3), 4);
    if (v == 0) return SKIP;
    let c = load<u8>(v);
    if (c != 0x2d && !isDigit(c)) return SKIP;
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
  return OK;
}

function end(): void {
  fieldsParam = -1;
  mins.reset();
}

// A decimal number read exactly: value = sign x 0.D x 10^exp, where D is its
// significant digits (no leading or trailing zeros), taken from the integer
// part then the fraction part. Zero has sign 0.
@unmanaged
class Decimal {
  sign: i32 = 0;
  ip: usize = 0; // integer digits
  il: usize = 0;
  fp: usize = 0; // fraction digits
  first: usize = 0; // D's first and last digit, counted over ip then fp
  last: usize = 0;
  exp: i64 = 0;

  digit(j: usize): u32 {
    return j < this.il ? load<u8>(this.ip + j) : load<u8>(this.fp + j - this.il);
  }

  // Reads a JSON number or a parameter: [-]digits[.digits][(e|E)[+|-]digits].
  parse(p: usize, n: usize): void {
    let i: usize = n > 0 && load<u8>(p) == 0x2d ? 1 : 0;
    let neg = i == 1;
    this.ip = p + i;
    i = skipDigits(p, n, i);
    this.il = p + i - this.ip;
    this.fp = p + i;
    let fl: usize = 0;
    if (i < n && load<u8>(p + i) == 0x2e) {
      this.fp = p + i + 1;
      i = skipDigits(p, n, i + 1);
      fl = p + i - this.fp;
    }
    let e: i64 = 0;
    if (i < n && (load<u8>(p + i) | 0x20) == 0x65) {
      i++;
      let eneg = i < n && load<u8>(p + i) == 0x2d;
      if (i < n && (load<u8>(p + i) == 0x2b || load<u8>(p + i) == 0x2d)) i++;
      // past 10^15 a number's magnitude is beyond what its digits change
      for (; i < n && isDigit(load<u8>(p + i)); i++) {
        if (e < 1000000000000000) e = e * 10 + <i64>(load<u8>(p + i) - 0x30);
      }
      if (eneg) e = -e;
    }
    let total = this.il + fl;
    let f: usize = 0;
    while (f < total && this.digit(f) == 0x30) f++;
    if (f == total) {
      this.sign = 0;
      return;
    }
    let l = total - 1;
    while (this.digit(l) == 0x30) l--;
    this.first = f;
    this.last = l;
    this.sign = neg ? -1 : 1;
    this.exp = <i64>this.il + e - <i64>f;
  }
}

const decA = new Decimal();
const decB = new Decimal();

// Compares two decimal numbers exactly (no floating point): -1, 0 or 1.
function decimalCmp(a: usize, an: usize, b: usize, bn: usize): i32 {
  decA.parse(a, an);
  decB.parse(b, bn);
  if (decA.sign != decB.sign) return decA.sign < decB.sign ? -1 : 1;
  if (decA.sign == 0) return 0;
  let mag: i32 = 0; // |a| against |b|
  if (decA.exp != decB.exp) {
    mag = decA.exp > decB.exp ? 1 : -1;
  } else {
    for (let j: usize = 0; ; j++) {
      let ha = decA.first + j <= decA.last;
      let hb = decB.first + j <= decB.last;
      if (!ha || !hb) {
        mag = <i32>ha - <i32>hb;
        break;
      }
      let ca = decA.digit(decA.first + j);
      let cb = decB.digit(decB.first + j);
      if (ca != cb) {
        mag = ca > cb ? 1 : -1;
        break;
      }
    }
  }
  return decA.sign * mag;
}

transform(begin, record, end);
