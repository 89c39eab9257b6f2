// The iqengine plugin SDK for AssemblyScript (ABI v1, see sdk/ABI.md).
//
// A plugin's entry file re-exports the SDK's export module of each
// capability it has (each also brings the exports every plugin needs:
// iq_abi_v1, iq_alloc, iq_init, iq_last_error) and registers a plain
// function for it:
//
//   export * from "<sdk>/assembly/export/value-to-json";
//   import { OK, out, reject, valueToJson } from "<sdk>/assembly/index";
//
//   valueToJson((ptr: usize, len: usize): i32 => {
//     if (len < 4) return reject("too short");
//     out.ascii('{"n":');
//     out.uint(load<u8>(ptr));
//     out.byte(0x7d); // }
//     return OK;
//   });
//
// A function writes its result into `out`, emptied before every operation,
// and returns OK (the output is the result) or a status. Everything works on
// raw linear memory: nothing here allocates per call, so the stub runtime
// (`--runtime stub`, which never frees) is enough. The buffers grow
// geometrically and are reused for the life of the instance.

// ---------------------------------------------------------------------------
// Statuses (sdk/ABI.md "Results")

export const OK: i32 = 0;
/** The input is not valid for this plugin: HTTP 422. */
export const REJECT: i32 = -1;
/** The plugin could not do its job: HTTP 500. */
export const FAIL: i32 = -2;
/** Transform records only: the record is filtered out. */
export const SKIP: i32 = -3;

// ---------------------------------------------------------------------------
// A growable byte buffer in linear memory

@unmanaged
export class Buf {
  ptr: usize = 0;
  len: usize = 0;
  cap: usize = 0;

  reset(): void {
    this.len = 0;
  }

  /** Makes room for `extra` more bytes. */
  reserve(extra: usize): void {
    let need = this.len + extra;
    if (need <= this.cap) return;
    let cap = this.cap << 1;
    if (cap < need) cap = need;
    if (cap < 256) cap = 256;
    this.ptr = this.ptr == 0 ? heap.alloc(cap) : heap.realloc(this.ptr, cap);
    this.cap = cap;
  }

  byte(c: u32): void {
    this.reserve(1);
    store<u8>(this.ptr + this.len, <u8>c);
    this.len++;
  }

  write(p: usize, n: usize): void {
    this.reserve(n);
    memory.copy(this.ptr + this.len, p, n);
    this.len += n;
  }

  /** Writes a string of ASCII characters (one byte each). */
  ascii(s: string): void {
    let n = <usize>s.length;
    this.reserve(n);
    let src = changetype<usize>(s);
    for (let i: usize = 0; i < n; i++) {
      store<u8>(this.ptr + this.len + i, <u8>load<u16>(src + (i << 1)));
    }
    this.len += n;
  }

  /** Writes a string as UTF-8. */
  utf8(s: string): void {
    let n = s.length;
    for (let i = 0; i < n; i++) {
      let c = <u32>s.charCodeAt(i);
      if (c >= 0xd800 && c < 0xdc00 && i + 1 < n) {
        let lo = <u32>s.charCodeAt(i + 1);
        if (lo >= 0xdc00 && lo < 0xe000) {
          c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
          i++;
        }
      }
      if (c >= 0xd800 && c < 0xe000) c = 0xfffd;
      this.codePoint(c);
    }
  }

  /** Writes one code point as UTF-8. */
  codePoint(c: u32): void {
    if (c < 0x80) {
      this.byte(c);
    } else if (c < 0x800) {
      this.byte(0xc0 | (c >> 6));
      this.byte(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
      this.byte(0xe0 | (c >> 12));
      this.byte(0x80 | ((c >> 6) & 0x3f));
      this.byte(0x80 | (c & 0x3f));
    } else {
      this.byte(0xf0 | (c >> 18));
      this.byte(0x80 | ((c >> 12) & 0x3f));
      this.byte(0x80 | ((c >> 6) & 0x3f));
      this.byte(0x80 | (c & 0x3f));
    }
  }

  /** Writes v in decimal, at least `width` digits (zero-padded). */
  private digits(v: u64, width: i32): void {
    let tmp = memory.data(20);
    let k = 0;
    do {
      store<u8>(tmp + k, <u8>(0x30 + <u32>(v % 10)));
      k++;
      v /= 10;
    } while (v != 0);
    for (; width > k; width--) this.byte(0x30);
    this.reserve(<usize>k);
    while (k > 0) {
      k--;
      store<u8>(this.ptr + this.len, load<u8>(tmp + k));
      this.len++;
    }
  }

  /** An integer in decimal. */
  uint(v: u64): void {
    this.digits(v, 1);
  }

  int(v: i64): void {
    this.fixed(v, 0);
  }

  /** v / 10^places written exactly, with `places` fraction digits:
   *  fixed(2137, 2) writes 21.37, fixed(-5, 2) -0.05, fixed(451, 1) 45.1,
   *  fixed(7, 0) 7. */
  fixed(v: i64, places: i32): void {
    let mag: u64 = v < 0 ? <u64>0 - <u64>v : <u64>v;
    if (v < 0) this.byte(0x2d);
    if (places <= 0) {
      this.digits(mag, 1);
      return;
    }
    let whole: u64 = 0;
    let frac = mag;
    if (places < 20) {
      // 10^19 is the largest power of ten a u64 holds
      let p10: u64 = 1;
      for (let i = 0; i < places; i++) p10 *= 10;
      whole = mag / p10;
      frac = mag % p10;
    }
    this.digits(whole, 1);
    this.byte(0x2e);
    this.digits(frac, places);
  }

  /** A JSON string with its quotes: " and \ escaped, \n \r \t \b \f in
   *  short form, other bytes below 0x20 as \u00xx, every other byte copied. */
  jsonString(p: usize, n: usize): void {
    this.byte(0x22);
    let start: usize = 0;
    for (let i: usize = 0; i < n; i++) {
      let c = <u32>load<u8>(p + i);
      if (c >= 0x20 && c != 0x22 && c != 0x5c) continue;
      this.write(p + start, i - start);
      start = i + 1;
      this.byte(0x5c);
      if (c == 0x22) this.byte(0x22);
      else if (c == 0x5c) this.byte(0x5c);
      else if (c == 0x0a) this.byte(0x6e); // n
      else if (c == 0x0d) this.byte(0x72); // r
      else if (c == 0x09) this.byte(0x74); // t
      else if (c == 0x08) this.byte(0x62); // b
      else if (c == 0x0c) this.byte(0x66); // f
      else {
        this.ascii("u00");
        this.byte(hexDigit(c >> 4));
        this.byte(hexDigit(c & 15));
      }
    }
    this.write(p + start, n - start);
    this.byte(0x22);
  }
}

function hexDigit(v: u32): u32 {
  return v < 10 ? 0x30 + v : 0x61 + v - 10;
}

// ---------------------------------------------------------------------------
// Instance state: the host never calls an instance concurrently.

/** The output buffer: emptied before every operation; what a function
 *  returning OK wrote there is the operation's result. */
export const out = new Buf();
const errorBuf = new Buf();
const configBuf = new Buf();
let inputPtr: usize = 0;
let inputCap: usize = 0;

// A region as an operation result.
function region(ptr: usize, len: usize): i64 {
  if (len == 0) return 0;
  return (<i64>ptr << 32) | <i64>(<u32>len);
}

// An operation's i64 result from its function's status: OK is the output.
function result(st: i32): i64 {
  if (st == OK) return region(out.ptr, out.len);
  if (st > 0) return fail("the plugin returned an unknown status");
  return st;
}

/** Sets iq_last_error's message and returns REJECT. */
export function reject(msg: string): i32 {
  setError(msg);
  return REJECT;
}

/** Sets iq_last_error's message and returns FAIL. */
export function fail(msg: string): i32 {
  setError(msg);
  return FAIL;
}

/** Sets iq_last_error's message; append more with errorBytes(). */
export function setError(msg: string): void {
  errorBuf.reset();
  errorBuf.utf8(msg);
}

/** Appends raw bytes to iq_last_error's message. */
export function errorBytes(p: usize, n: usize): void {
  errorBuf.write(p, n);
}

/** Appends a string to iq_last_error's message. */
export function errorString(s: string): void {
  errorBuf.utf8(s);
}

/** The static config (a JSON object; "{}" when none). */
export function configPtr(): usize {
  if (configBuf.len == 0) configBuf.ascii("{}");
  return configBuf.ptr;
}
export function configLen(): usize {
  if (configBuf.len == 0) configBuf.ascii("{}");
  return configBuf.len;
}

// ---------------------------------------------------------------------------
// Registering the plugin's functions. Call these from the entry file's top
// level, which runs when the instance starts, before any export is called.

/** A serializer operation: the input region in, OK (the output is `out`)
 *  or a status back. */
export type Op = (ptr: usize, len: usize) => i32;
/** A partitioner: the key region and the partition count in, the partition
 *  or a status back. */
export type PartitionOp = (ptr: usize, len: usize, partitions: i32) => i32;
/** A transform's batch start: the parameters are paramCount(), paramNamePtr(i)
 *  and the rest; OK, or a status (reject: a bad parameter). */
export type BeginOp = () => i32;
/** A transform's record: its key JSON and value JSON in; OK (the answer's
 *  value is `out`), SKIP to filter it out, or a status. */
export type RecordOp = (keyPtr: usize, keyLen: usize, valuePtr: usize, valueLen: usize) => i32;
/** A transform's batch end. */
export type EndOp = () => void;

let initFn: Op | null = null;
let keyToJsonFn: Op | null = null;
let valueToJsonFn: Op | null = null;
let keyFromTextFn: Op | null = null;
let partitionFn: PartitionOp | null = null;
let beginFn: BeginOp | null = null;
let recordFn: RecordOp | null = null;
let endFn: EndOp | null = null;

/** Checks the static config (a JSON object) when the instance starts: a
 *  status other than OK refuses the module for that store. */
export function onInit(f: Op): void {
  initFn = f;
}
/** iq_key_to_json (re-export "<sdk>/assembly/export/key-to-json"). */
export function keyToJson(f: Op): void {
  keyToJsonFn = f;
}
/** iq_value_to_json (re-export "<sdk>/assembly/export/value-to-json"). */
export function valueToJson(f: Op): void {
  valueToJsonFn = f;
}
/** iq_key_from_text (re-export "<sdk>/assembly/export/key-from-text"). */
export function keyFromText(f: Op): void {
  keyFromTextFn = f;
}
/** iq_partition (re-export "<sdk>/assembly/export/partition"). The SDK fails
 *  the call when partitions is not positive or f returns one past the last. */
export function partition(f: PartitionOp): void {
  partitionFn = f;
}
/** iq_transform_begin, _record and _end (re-export
 *  "<sdk>/assembly/export/transform"). The SDK parses the parameters (a
 *  malformed object rejects the batch) and unframes each record (a malformed
 *  frame rejects the record). */
export function transform(begin: BeginOp, record: RecordOp, end: EndOp | null = null): void {
  beginFn = begin;
  recordFn = record;
  endFn = end;
}

// ---------------------------------------------------------------------------
// The exports. The modules in export/ re-export them; what follows is not
// API.

/** The ABI version marker; never called. */
export function iq_abi_v1(): void {}

/** An input buffer of at least `size` bytes, reused across calls. */
export function iq_alloc(size: usize): usize {
  let want: usize = size == 0 ? 1 : size;
  if (want > inputCap) {
    let cap = inputCap << 1;
    if (cap < want) cap = want;
    if (cap < 256) cap = 256;
    // The old content need not survive: free first, then allocate.
    if (inputPtr != 0) heap.free(inputPtr);
    inputPtr = heap.alloc(cap);
    inputCap = cap;
  }
  return inputPtr;
}

/** Stores the config and runs the onInit function. */
export function iq_init(ptr: usize, len: usize): i32 {
  out.reset();
  configBuf.reset();
  configBuf.write(ptr, len);
  let f = initFn;
  return f == null ? OK : f(configPtr(), configLen());
}

/** The message of the last failed call. */
export function iq_last_error(): i64 {
  return region(errorBuf.ptr, errorBuf.len);
}

function noHandler(register: string): i32 {
  setError("no handler registered (call ");
  errorString(register);
  errorString(" from the entry file)");
  return FAIL;
}

function op(f: Op | null, register: string, ptr: usize, len: usize): i64 {
  out.reset();
  if (f == null) return noHandler(register);
  return result(f(ptr, len));
}

export function __iqKeyToJson(ptr: usize, len: usize): i64 {
  return op(keyToJsonFn, "keyToJson", ptr, len);
}

export function __iqValueToJson(ptr: usize, len: usize): i64 {
  return op(valueToJsonFn, "valueToJson", ptr, len);
}

export function __iqKeyFromText(ptr: usize, len: usize): i64 {
  return op(keyFromTextFn, "keyFromText", ptr, len);
}

export function __iqPartition(ptr: usize, len: usize, partitions: i32): i32 {
  out.reset();
  let f = partitionFn;
  if (f == null) return noHandler("partition");
  if (partitions <= 0) return fail("iq_partition: partitions must be positive");
  let p = f(ptr, len, partitions);
  if (p >= partitions) return fail("iq_partition: the plugin returned a partition past the last");
  return p;
}

// ---------------------------------------------------------------------------
// Bytes

/** Whether the bytes are valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
export function utf8Valid(p: usize, n: usize): bool {
  let i: usize = 0;
  while (i < n) {
    let c = <u32>load<u8>(p + i);
    if (c < 0x80) {
      i++;
      continue;
    }
    let need: usize = 0;
    let lo: u32 = 0x80;
    let hi: u32 = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return false;
    }
    if (n - i - 1 < need) return false;
    let c1 = <u32>load<u8>(p + i + 1);
    if (c1 < lo || c1 > hi) return false;
    for (let k: usize = 2; k <= need; k++) {
      let ck = <u32>load<u8>(p + i + k);
      if (ck < 0x80 || ck > 0xbf) return false;
    }
    i += need + 1;
  }
  return true;
}

/** Whether two regions hold the same bytes. */
export function bytesEqual(a: usize, an: usize, b: usize, bn: usize): bool {
  return an == bn && memory.compare(a, b, an) == 0;
}

/** Whether the region holds exactly the ASCII string s. */
export function bytesEqualAscii(p: usize, n: usize, s: string): bool {
  return n == <usize>s.length && bytesHasPrefixAscii(p, n, s);
}

/** Whether the region begins with the ASCII string s. */
export function bytesHasPrefixAscii(p: usize, n: usize, s: string): bool {
  let k = <usize>s.length;
  if (k > n) return false;
  for (let i: usize = 0; i < k; i++) {
    if (<u32>load<u8>(p + i) != <u32>s.charCodeAt(<i32>i)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Reading JSON

const BAD: usize = <usize>-1;
/** The deepest nesting of arrays and objects JsonObject accepts in a member's value. */
export const JSON_MAX_DEPTH: usize = 10000;
const stack = new Buf();

function isDigit(c: u32): bool {
  return c >= 0x30 && c <= 0x39;
}

function hexValue(c: u32): i32 {
  if (c >= 0x30 && c <= 0x39) return <i32>(c - 0x30);
  if (c >= 0x61 && c <= 0x66) return <i32>(c - 0x61 + 10);
  if (c >= 0x41 && c <= 0x46) return <i32>(c - 0x41 + 10);
  return -1;
}

@inline function at(s: usize, i: usize): u32 {
  return <u32>load<u8>(s + i);
}

// Index of the first non-whitespace byte at or after i (n when none).
function skipWs(s: usize, n: usize, i: usize): usize {
  while (i < n) {
    let c = at(s, i);
    if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
    i++;
  }
  return i;
}

// s[i] is the opening quote.
function skipString(s: usize, n: usize, i: usize): usize {
  i++;
  while (i < n) {
    let c = at(s, i);
    if (c == 0x22) return i + 1;
    if (c < 0x20) return BAD;
    if (c != 0x5c) {
      i++;
      continue;
    }
    if (i + 1 >= n) return BAD;
    let e = at(s, i + 1);
    if (e == 0x22 || e == 0x5c || e == 0x2f || e == 0x62 || e == 0x66 || e == 0x6e || e == 0x72 || e == 0x74) {
      i += 2;
    } else if (e == 0x75) {
      if (n - i < 6) return BAD;
      for (let k: usize = 2; k < 6; k++) if (hexValue(at(s, i + k)) < 0) return BAD;
      i += 6;
    } else {
      return BAD;
    }
  }
  return BAD;
}

function skipDigits(s: usize, n: usize, i: usize): usize {
  while (i < n && isDigit(at(s, i))) i++;
  return i;
}

function skipNumber(s: usize, n: usize, i: usize): usize {
  if (i < n && at(s, i) == 0x2d) i++;
  if (i >= n) return BAD;
  let c = at(s, i);
  if (c == 0x30) i++;
  else if (c >= 0x31 && c <= 0x39) i = skipDigits(s, n, i);
  else return BAD;
  if (i < n && at(s, i) == 0x2e) {
    i++;
    if (i >= n || !isDigit(at(s, i))) return BAD;
    i = skipDigits(s, n, i);
  }
  if (i < n && (at(s, i) == 0x65 || at(s, i) == 0x45)) {
    i++;
    if (i < n && (at(s, i) == 0x2b || at(s, i) == 0x2d)) i++;
    if (i >= n || !isDigit(at(s, i))) return BAD;
    i = skipDigits(s, n, i);
  }
  return i;
}

function skipLiteral(s: usize, n: usize, i: usize, lit: string): usize {
  let k = <usize>lit.length;
  if (n - i < k) return BAD;
  for (let j: usize = 0; j < k; j++) {
    if (at(s, i + j) != <u32>lit.charCodeAt(<i32>j)) return BAD;
  }
  return i + k;
}

// Skips `"name" :` and the whitespace after the colon.
function skipKey(s: usize, n: usize, i: usize): usize {
  if (i >= n || at(s, i) != 0x22) return BAD;
  i = skipString(s, n, i);
  if (i == BAD) return BAD;
  i = skipWs(s, n, i);
  if (i >= n || at(s, i) != 0x3a) return BAD;
  return skipWs(s, n, i + 1);
}

// Skips one JSON value starting at s[i] (no leading whitespace); returns
// the index just past it, or BAD when it is not well-formed.
function skipValue(s: usize, n: usize, i: usize): usize {
  stack.reset();
  while (true) {
    // A value starts at s[i].
    if (i >= n) return BAD;
    let c = at(s, i);
    if (c == 0x7b || c == 0x5b) {
      if (stack.len == JSON_MAX_DEPTH) return BAD;
      i = skipWs(s, n, i + 1);
      if (i < n && at(s, i) == c + 2) {
        // {} or [] ('}' is '{' + 2, ']' is '[' + 2)
        i++;
      } else {
        stack.byte(c);
        if (c == 0x7b) {
          i = skipKey(s, n, i);
          if (i == BAD) return BAD;
        }
        continue;
      }
    } else if (c == 0x22) {
      i = skipString(s, n, i);
    } else if (c == 0x2d || isDigit(c)) {
      i = skipNumber(s, n, i);
    } else if (c == 0x74) {
      i = skipLiteral(s, n, i, "true");
    } else if (c == 0x66) {
      i = skipLiteral(s, n, i, "false");
    } else if (c == 0x6e) {
      i = skipLiteral(s, n, i, "null");
    } else {
      return BAD;
    }
    if (i == BAD) return BAD;
    // After a value: close containers until a comma or the end.
    while (true) {
      if (stack.len == 0) return i;
      i = skipWs(s, n, i);
      if (i >= n) return BAD;
      let top = <u32>load<u8>(stack.ptr + stack.len - 1);
      let d = at(s, i);
      if (d == 0x2c) {
        i = skipWs(s, n, i + 1);
        if (top == 0x7b) {
          i = skipKey(s, n, i);
          if (i == BAD) return BAD;
        }
        break;
      }
      if (d == top + 2) {
        stack.len--;
        i++;
        continue;
      }
      return BAD;
    }
  }
  return BAD;
}

/** Walks the members of a JSON object without copying anything: each
 *  member's name is the raw text between its quotes (escapes not resolved)
 *  and its value the raw JSON text. The walk is strict: it stops at the
 *  first byte that is not well-formed JSON, including anything but
 *  whitespace after the object. Create walkers once, at module level (each
 *  `new` allocates). */
@unmanaged
export class JsonObject {
  s: usize = 0;
  n: usize = 0;
  i: usize = 0;
  state: i32 = 2; // 0 before the first member, 1 after a member, 2 done
  /** The current member's name: the raw text between its quotes. */
  namePtr: usize = 0;
  nameLen: usize = 0;
  /** The current member's value: its raw JSON text. */
  valuePtr: usize = 0;
  valueLen: usize = 0;

  /** OK when the text (after optional whitespace) is an object, else
   *  reject("not a JSON object"). */
  open(p: usize, n: usize): i32 {
    this.s = p;
    this.n = n;
    let i = skipWs(p, n, 0);
    if (i >= n || at(p, i) != 0x7b) {
      this.state = 2;
      return reject("not a JSON object");
    }
    this.i = i + 1;
    this.state = 0;
    return OK;
  }

  /** 1: a member (namePtr.. and valuePtr.. are set); 0: the end of the
   *  object and of the input; -1: malformed JSON (nesting deeper than
   *  JSON_MAX_DEPTH included), with reject("not well-formed JSON")'s message
   *  set. */
  next(): i32 {
    if (this.state == 2) return 0;
    let s = this.s;
    let n = this.n;
    let i = skipWs(s, n, this.i);
    if (i < n && at(s, i) == 0x7d) {
      i = skipWs(s, n, i + 1);
      if (i != n) return this.bad();
      this.state = 2;
      return 0;
    }
    if (this.state == 1) {
      if (i >= n || at(s, i) != 0x2c) return this.bad();
      i = skipWs(s, n, i + 1);
    }
    if (i >= n || at(s, i) != 0x22) return this.bad();
    let j = skipString(s, n, i);
    if (j == BAD) return this.bad();
    this.namePtr = s + i + 1;
    this.nameLen = j - i - 2;
    i = skipWs(s, n, j);
    if (i >= n || at(s, i) != 0x3a) return this.bad();
    i = skipWs(s, n, i + 1);
    j = skipValue(s, n, i);
    if (j == BAD) return this.bad();
    this.valuePtr = s + i;
    this.valueLen = j - i;
    this.i = j;
    this.state = 1;
    return 1;
  }

  private bad(): i32 {
    this.state = 2;
    reject("not well-formed JSON");
    return -1;
  }
}

// ---------------------------------------------------------------------------
// Transform batches and their parameters

const arena = new Buf(); // decoded parameter text
const table = new Buf(); // per parameter: name offset, name length, value offset, value length (u32 each)
let paramTotal: i32 = 0;
let inBatch = false;

function hex4(p: usize): u32 {
  return (
    (<u32>hexValue(at(p, 0)) << 12) |
    (<u32>hexValue(at(p, 1)) << 8) |
    (<u32>hexValue(at(p, 2)) << 4) |
    <u32>hexValue(at(p, 3))
  );
}

// Decodes the JSON string opening at s[i] into the arena; returns the
// index past its closing quote, or BAD.
function decodeString(s: usize, n: usize, i: usize): usize {
  let end = skipString(s, n, i);
  if (end == BAD) return BAD;
  i++;
  while (i < end - 1) {
    let c = at(s, i);
    if (c != 0x5c) {
      arena.byte(c);
      i++;
      continue;
    }
    let e = at(s, i + 1);
    i += 2;
    if (e == 0x62) arena.byte(0x08);
    else if (e == 0x66) arena.byte(0x0c);
    else if (e == 0x6e) arena.byte(0x0a);
    else if (e == 0x72) arena.byte(0x0d);
    else if (e == 0x74) arena.byte(0x09);
    else if (e == 0x75) {
      let cp = hex4(s + i);
      i += 4;
      if (cp >= 0xd800 && cp < 0xdc00 && i + 6 <= end - 1 && at(s, i) == 0x5c && at(s, i + 1) == 0x75) {
        let lo = hex4(s + i + 2);
        if (lo >= 0xdc00 && lo < 0xe000) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          i += 6;
        }
      }
      if (cp >= 0xd800 && cp < 0xe000) cp = 0xfffd; // a lone surrogate
      arena.codePoint(cp);
    } else arena.byte(e); // " \ /
  }
  return end;
}

function parseParamsInner(s: usize, n: usize): bool {
  let i = skipWs(s, n, 0);
  if (i >= n || at(s, i) != 0x7b) return false;
  i = skipWs(s, n, i + 1);
  if (i < n && at(s, i) == 0x7d) {
    i++;
  } else {
    while (true) {
      if (i >= n || at(s, i) != 0x22) return false;
      let nameOff = arena.len;
      i = decodeString(s, n, i);
      if (i == BAD) return false;
      let nameLen = arena.len - nameOff;
      i = skipWs(s, n, i);
      if (i >= n || at(s, i) != 0x3a) return false;
      i = skipWs(s, n, i + 1);
      if (i >= n || at(s, i) != 0x22) return false;
      let valueOff = arena.len;
      i = decodeString(s, n, i);
      if (i == BAD) return false;
      table.reserve(16);
      store<u32>(table.ptr + table.len, <u32>nameOff);
      store<u32>(table.ptr + table.len, <u32>nameLen, 4);
      store<u32>(table.ptr + table.len, <u32>valueOff, 8);
      store<u32>(table.ptr + table.len, <u32>(arena.len - valueOff), 12);
      table.len += 16;
      paramTotal++;
      i = skipWs(s, n, i);
      if (i < n && at(s, i) == 0x2c) {
        i = skipWs(s, n, i + 1);
        continue;
      }
      if (i < n && at(s, i) == 0x7d) {
        i++;
        break;
      }
      return false;
    }
  }
  return skipWs(s, n, i) == n;
}

// Parses a JSON object of strings into the parameter table. OK, or REJECT
// with the error set. The table lives until the next parseParams.
function parseParams(ptr: usize, len: usize): i32 {
  arena.reset();
  table.reset();
  paramTotal = 0;
  if (!parseParamsInner(ptr, len)) {
    paramTotal = 0;
    return reject("parameters are not a JSON object of strings");
  }
  return OK;
}

/** The number of the batch's parameters (in a transform's begin function;
 *  they stay valid until the next batch begins). */
export function paramCount(): i32 {
  return paramTotal;
}
/** Parameter i's name (decoded: escapes resolved). */
export function paramNamePtr(i: i32): usize {
  return arena.ptr + <usize>load<u32>(table.ptr + (<usize>i << 4));
}
export function paramNameLen(i: i32): usize {
  return <usize>load<u32>(table.ptr + (<usize>i << 4), 4);
}
/** Parameter i's value (decoded: escapes resolved). */
export function paramValuePtr(i: i32): usize {
  return arena.ptr + <usize>load<u32>(table.ptr + (<usize>i << 4), 8);
}
export function paramValueLen(i: i32): usize {
  return <usize>load<u32>(table.ptr + (<usize>i << 4), 12);
}

export function __iqTransformBegin(ptr: usize, len: usize): i32 {
  out.reset();
  inBatch = false;
  let f = beginFn;
  if (f == null) return noHandler("transform");
  let st = parseParams(ptr, len);
  if (st == OK) st = f();
  inBatch = st == OK;
  return st;
}

export function __iqTransformRecord(ptr: usize, len: usize): i64 {
  out.reset();
  let f = recordFn;
  if (f == null) return noHandler("transform");
  if (!inBatch) return fail("iq_transform_record called outside a batch");
  if (len < 4) return reject("record frame shorter than 4 bytes");
  let klen = <usize>load<u32>(ptr);
  if (klen > len - 4) return reject("record frame: key length past the end");
  return result(f(ptr + 4, klen, ptr + 4 + klen, len - 4 - klen));
}

export function __iqTransformEnd(): void {
  out.reset();
  inBatch = false;
  let f = endFn;
  if (f != null) f();
}
