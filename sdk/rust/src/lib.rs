//! The iqengine plugin SDK for Rust (ABI v1, see `sdk/ABI.md`).
//!
//! A plugin is a `cdylib` for `wasm32-unknown-unknown`. It calls
//! [`plugin!`] once (the `iq_abi_v1` marker, `iq_alloc`, `iq_init`,
//! `iq_last_error`) and one macro per capability, each naming a plain
//! function:
//!
//! ```ignore
//! iq::plugin!();
//! iq::value_to_json!(value_to_json);
//!
//! fn value_to_json(input: &[u8], out: &mut Vec<u8>) -> iq::Result {
//!     if input.len() < 4 {
//!         return Err(iq::reject("too short"));
//!     }
//!     out.extend_from_slice(b"{\"n\":");
//!     iq::write_u64(out, input[0] as u64);
//!     out.push(b'}');
//!     Ok(())
//! }
//! ```
//!
//! Results are written into one output buffer owned by the SDK, emptied
//! before every operation and kept until the host's next call, as the ABI
//! wants. Nothing here imports anything from the host.

use std::borrow::Cow;
use std::cmp::Ordering;

// ---------------------------------------------------------------------------
// Statuses and errors

/// Status: the input is not valid for this plugin (HTTP 422).
pub const REJECT: i32 = -1;
/// Status: the plugin could not do its job (HTTP 500).
pub const FAIL: i32 = -2;
/// Status: transform records only, the record is filtered out.
pub const SKIP: i32 = -3;

/// Why an operation gave no result: a status and, for reject and fail, the
/// message `iq_last_error` returns.
#[derive(Debug, Clone)]
pub struct Error {
    code: i32,
    message: Cow<'static, str>,
}

impl Error {
    /// The ABI status: [`REJECT`], [`FAIL`] or [`SKIP`].
    pub fn code(&self) -> i32 {
        self.code
    }
    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The input is not valid for this plugin.
pub fn reject<M: Into<Cow<'static, str>>>(message: M) -> Error {
    Error { code: REJECT, message: message.into() }
}

/// The plugin could not do its job.
pub fn fail<M: Into<Cow<'static, str>>>(message: M) -> Error {
    Error { code: FAIL, message: message.into() }
}

/// Filters the record out (from [`Transform::record`] only).
pub fn skip() -> Error {
    Error { code: SKIP, message: Cow::Borrowed("") }
}

/// What every plugin function returns.
pub type Result<T = ()> = core::result::Result<T, Error>;

// ---------------------------------------------------------------------------
// Instance state. An instance is single-threaded (sdk/ABI.md), so plain
// statics are enough.

static mut INPUT: Vec<u8> = Vec::new();
static mut OUT: Vec<u8> = Vec::new();
static mut ERROR: Vec<u8> = Vec::new();
static mut CONFIG: Vec<u8> = Vec::new();
static mut IN_BATCH: bool = false;

// SAFETY (all four): the host never calls an instance concurrently, each
// buffer has its own static, and no reference returned here outlives the
// host call that took it.
fn input_buf() -> &'static mut Vec<u8> {
    unsafe { &mut *core::ptr::addr_of_mut!(INPUT) }
}
fn out_buf() -> &'static mut Vec<u8> {
    unsafe { &mut *core::ptr::addr_of_mut!(OUT) }
}
fn error_buf() -> &'static mut Vec<u8> {
    unsafe { &mut *core::ptr::addr_of_mut!(ERROR) }
}
fn set_in_batch(v: bool) {
    unsafe { IN_BATCH = v }
}
fn in_batch() -> bool {
    unsafe { IN_BATCH }
}

/// The static config given to `iq_init` (a JSON object, `{}` when none).
pub fn config() -> &'static [u8] {
    let c = unsafe { &*core::ptr::addr_of!(CONFIG) };
    if c.is_empty() {
        b"{}"
    } else {
        c
    }
}

fn set_error(e: &Error) -> i32 {
    let b = error_buf();
    b.clear();
    b.extend_from_slice(e.message.as_bytes());
    e.code
}

fn region(ptr: *const u8, len: usize) -> i64 {
    if len == 0 {
        return 0;
    }
    (((ptr as usize as u64) << 32) | (len as u32 as u64)) as i64
}

/// # Safety
/// `p` and `n` must describe memory the host wrote (an `iq_alloc` region).
unsafe fn input<'a>(p: i32, n: i32) -> &'a [u8] {
    let n = n as u32 as usize;
    if n == 0 {
        return &[];
    }
    core::slice::from_raw_parts(p as u32 as usize as *const u8, n)
}

fn finish(r: Result) -> i64 {
    match r {
        Ok(()) => {
            let out = out_buf();
            region(out.as_ptr(), out.len())
        }
        Err(e) => set_error(&e) as i64,
    }
}

// ---------------------------------------------------------------------------
// What the export macros call. Not part of the API.

#[doc(hidden)]
pub fn __alloc(size: i32) -> i32 {
    let want = (size as u32 as usize).max(1);
    let buf = input_buf();
    if want > buf.len() {
        let cap = want.max(buf.len() * 2).max(256);
        // The old content need not survive: drop it before allocating.
        // The whole buffer is initialised once, so that reading what the
        // host wrote there reads initialised memory.
        *buf = Vec::new();
        buf.resize(cap, 0);
    }
    buf.as_mut_ptr() as usize as i32
}

#[doc(hidden)]
pub fn __init(p: i32, n: i32, hook: Option<fn(&[u8]) -> Result>) -> i32 {
    out_buf().clear();
    {
        let cfg = unsafe { &mut *core::ptr::addr_of_mut!(CONFIG) };
        cfg.clear();
        cfg.extend_from_slice(unsafe { input(p, n) });
    }
    match hook {
        Some(f) => match f(config()) {
            Ok(()) => 0,
            Err(e) => set_error(&e),
        },
        None => 0,
    }
}

#[doc(hidden)]
pub fn __last_error() -> i64 {
    let e = error_buf();
    region(e.as_ptr(), e.len())
}

#[doc(hidden)]
pub fn __op(p: i32, n: i32, f: fn(&[u8], &mut Vec<u8>) -> Result) -> i64 {
    let out = out_buf();
    out.clear();
    let r = f(unsafe { input(p, n) }, out);
    finish(r)
}

#[doc(hidden)]
pub fn __partition(p: i32, n: i32, parts: i32, f: fn(&[u8], i32) -> Result<i32>) -> i32 {
    out_buf().clear();
    match f(unsafe { input(p, n) }, parts) {
        Ok(v) => v,
        Err(e) => set_error(&e),
    }
}

#[doc(hidden)]
pub fn __transform_begin<F: FnOnce(&[Param]) -> Result>(p: i32, n: i32, f: F) -> i32 {
    out_buf().clear();
    set_in_batch(false);
    let params = match parse_params(unsafe { input(p, n) }) {
        Ok(v) => v,
        Err(e) => return set_error(&e),
    };
    match f(&params) {
        Ok(()) => {
            set_in_batch(true);
            0
        }
        Err(e) => set_error(&e),
    }
}

#[doc(hidden)]
pub fn __transform_record<F: FnOnce(&[u8], &[u8], &mut Vec<u8>) -> Result>(
    p: i32,
    n: i32,
    f: F,
) -> i64 {
    let out = out_buf();
    out.clear();
    if !in_batch() {
        return finish(Err(fail("iq_transform_record called outside a batch")));
    }
    let frame = unsafe { input(p, n) };
    if frame.len() < 4 {
        return finish(Err(reject("record frame shorter than 4 bytes")));
    }
    let klen = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    if klen > frame.len() - 4 {
        return finish(Err(reject("record frame: key length past the end")));
    }
    let (key, value) = frame[4..].split_at(klen);
    let r = f(key, value, out);
    finish(r)
}

#[doc(hidden)]
pub fn __transform_end() {
    out_buf().clear();
    set_in_batch(false);
}

// ---------------------------------------------------------------------------
// Export macros

/// Exports what every plugin needs: the `iq_abi_v1` marker, `iq_alloc`,
/// `iq_init` (stores the config; see [`config`]) and `iq_last_error`.
/// `iq::plugin!(init = check)` also runs `fn check(config: &[u8]) ->
/// iq::Result` at init: an error refuses the module for that store.
#[macro_export]
macro_rules! plugin {
    () => {
        $crate::__plugin_exports!(None);
    };
    (init = $hook:path) => {
        $crate::__plugin_exports!(Some($hook as fn(&[u8]) -> $crate::Result));
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __plugin_exports {
    ($hook:expr) => {
        #[export_name = "iq_abi_v1"]
        pub extern "C" fn __iq_abi_v1() {}

        #[export_name = "iq_alloc"]
        pub extern "C" fn __iq_alloc(size: i32) -> i32 {
            $crate::__alloc(size)
        }

        #[export_name = "iq_init"]
        pub extern "C" fn __iq_init(p: i32, n: i32) -> i32 {
            $crate::__init(p, n, $hook)
        }

        #[export_name = "iq_last_error"]
        pub extern "C" fn __iq_last_error() -> i64 {
            $crate::__last_error()
        }
    };
}

/// Exports `iq_key_to_json` from `fn(key: &[u8], out: &mut Vec<u8>) -> iq::Result`.
#[macro_export]
macro_rules! key_to_json {
    ($f:path) => {
        #[export_name = "iq_key_to_json"]
        pub extern "C" fn __iq_key_to_json(p: i32, n: i32) -> i64 {
            $crate::__op(p, n, $f)
        }
    };
}

/// Exports `iq_value_to_json` from `fn(value: &[u8], out: &mut Vec<u8>) -> iq::Result`.
#[macro_export]
macro_rules! value_to_json {
    ($f:path) => {
        #[export_name = "iq_value_to_json"]
        pub extern "C" fn __iq_value_to_json(p: i32, n: i32) -> i64 {
            $crate::__op(p, n, $f)
        }
    };
}

/// Exports `iq_key_from_text` from `fn(text: &[u8], out: &mut Vec<u8>) -> iq::Result`.
#[macro_export]
macro_rules! key_from_text {
    ($f:path) => {
        #[export_name = "iq_key_from_text"]
        pub extern "C" fn __iq_key_from_text(p: i32, n: i32) -> i64 {
            $crate::__op(p, n, $f)
        }
    };
}

/// Exports `iq_partition` from `fn(key: &[u8], partitions: i32) -> iq::Result<i32>`.
#[macro_export]
macro_rules! partition {
    ($f:path) => {
        #[export_name = "iq_partition"]
        pub extern "C" fn __iq_partition(p: i32, n: i32, parts: i32) -> i32 {
            $crate::__partition(p, n, parts, $f)
        }
    };
}

/// Exports the three `iq_transform_*` functions from a type implementing
/// [`Transform`]: one value per batch, created by `begin` and dropped by
/// `end`.
#[macro_export]
macro_rules! transform {
    ($t:ty) => {
        static mut __IQ_TRANSFORM: Option<$t> = None;

        fn __iq_transform_slot() -> &'static mut Option<$t> {
            unsafe { &mut *::core::ptr::addr_of_mut!(__IQ_TRANSFORM) }
        }

        #[export_name = "iq_transform_begin"]
        pub extern "C" fn __iq_transform_begin(p: i32, n: i32) -> i32 {
            *__iq_transform_slot() = None;
            $crate::__transform_begin(p, n, |params| {
                let t = <$t as $crate::Transform>::begin(params)?;
                *__iq_transform_slot() = Some(t);
                Ok(())
            })
        }

        #[export_name = "iq_transform_record"]
        pub extern "C" fn __iq_transform_record(p: i32, n: i32) -> i64 {
            $crate::__transform_record(p, n, |key, value, out| match __iq_transform_slot() {
                Some(t) => $crate::Transform::record(t, key, value, out),
                None => Err($crate::fail("iq_transform_record called outside a batch")),
            })
        }

        #[export_name = "iq_transform_end"]
        pub extern "C" fn __iq_transform_end() {
            if let Some(t) = __iq_transform_slot().take() {
                $crate::Transform::end(t);
            }
            $crate::__transform_end();
        }
    };
}

/// A query transform: one value per batch.
pub trait Transform: Sized {
    /// Starts a batch with its parameters (decoded, in the order given).
    /// `Err(iq::reject(..))` answers the query 422 (a bad parameter).
    fn begin(params: &[Param]) -> Result<Self>;
    /// Maps one record: writes the value JSON to answer into `out`, or
    /// returns `Err(iq::skip())` to filter it out.
    fn record(&mut self, key: &[u8], value: &[u8], out: &mut Vec<u8>) -> Result;
    /// Ends the batch.
    fn end(self) {}
}

/// One transform parameter, with JSON escapes resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

// ---------------------------------------------------------------------------
// Writing results

/// Writes `v` in decimal.
pub fn write_u64(out: &mut Vec<u8>, v: u64) {
    write_digits(out, v, 1);
}

/// Writes `v` in decimal, `-` for negatives.
pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    write_digits(out, v.unsigned_abs(), 1);
}

/// Writes `v / 10^places` exactly, with `places` fraction digits:
/// `write_fixed(out, -5, 2)` writes `-0.05`.
pub fn write_fixed(out: &mut Vec<u8>, v: i64, places: u32) {
    if v < 0 {
        out.push(b'-');
    }
    write_ufixed(out, v.unsigned_abs(), places);
}

/// [`write_fixed`] for an unsigned value: `write_ufixed(out, 451, 1)` writes `45.1`.
pub fn write_ufixed(out: &mut Vec<u8>, v: u64, places: u32) {
    if places == 0 {
        write_digits(out, v, 1);
        return;
    }
    let places = places.min(19);
    let p10 = 10u64.pow(places);
    write_digits(out, v / p10, 1);
    out.push(b'.');
    write_digits(out, v % p10, places as usize);
}

fn write_digits(out: &mut Vec<u8>, mut v: u64, width: usize) {
    let mut tmp = [0u8; 24];
    let mut k = 0;
    loop {
        tmp[k] = b'0' + (v % 10) as u8;
        k += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    while k < width && k < tmp.len() {
        tmp[k] = b'0';
        k += 1;
    }
    out.extend(tmp[..k].iter().rev());
}

/// Writes a JSON string with its quotes: `"` and `\` escaped, `\n \r \t \b
/// \f` in short form, other bytes below 0x20 as `\u00xx`, every other byte
/// copied as is.
pub fn write_json_string(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut start = 0;
    for (i, &c) in s.iter().enumerate() {
        if c >= 0x20 && c != b'"' && c != b'\\' {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        start = i + 1;
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(c >> 4) as usize],
                HEX[(c & 15) as usize],
            ]),
        }
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

/// Whether the bytes are valid UTF-8 (no overlongs, no surrogates, at most U+10FFFF).
pub fn utf8_valid(s: &[u8]) -> bool {
    core::str::from_utf8(s).is_ok()
}

// ---------------------------------------------------------------------------
// Reading JSON

/// The deepest nesting [`skip_value`] accepts.
pub const JSON_MAX_DEPTH: usize = 10000;

/// The index of the first non-whitespace byte at or after `i`.
pub fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

fn skip_string(s: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    while i < s.len() {
        match s[i] {
            b'"' => return Some(i + 1),
            c if c < 0x20 => return None,
            b'\\' => match s.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' => {
                    if s.len() - i < 6 || !s[i + 2..i + 6].iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    i += 6;
                }
                _ => return None,
            },
            _ => i += 1,
        }
    }
    None
}

fn skip_digits(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i].is_ascii_digit() {
        i += 1;
    }
    i
}

fn skip_number(s: &[u8], mut i: usize) -> Option<usize> {
    if s.get(i) == Some(&b'-') {
        i += 1;
    }
    match s.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = skip_digits(s, i),
        _ => return None,
    }
    if s.get(i) == Some(&b'.') {
        i += 1;
        if !s.get(i)?.is_ascii_digit() {
            return None;
        }
        i = skip_digits(s, i);
    }
    if matches!(s.get(i), Some(b'e') | Some(b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'+') | Some(b'-')) {
            i += 1;
        }
        if !s.get(i)?.is_ascii_digit() {
            return None;
        }
        i = skip_digits(s, i);
    }
    Some(i)
}

fn skip_literal(s: &[u8], i: usize, lit: &[u8]) -> Option<usize> {
    if s.len() >= i + lit.len() && &s[i..i + lit.len()] == lit {
        Some(i + lit.len())
    } else {
        None
    }
}

/// Skips `"name" :` and the whitespace after the colon.
fn skip_key(s: &[u8], i: usize) -> Option<usize> {
    if s.get(i) != Some(&b'"') {
        return None;
    }
    let i = skip_ws(s, skip_string(s, i)?);
    if s.get(i) != Some(&b':') {
        return None;
    }
    Some(skip_ws(s, i + 1))
}

/// Skips one JSON value starting at `s[i]` (no leading whitespace) and
/// returns the index just past it, or `None` when it is not well-formed.
pub fn skip_value(s: &[u8], mut i: usize) -> Option<usize> {
    let mut stack: Vec<u8> = Vec::new();
    loop {
        // A value starts at s[i].
        let c = *s.get(i)?;
        let mut opened = false;
        match c {
            b'{' | b'[' => {
                if stack.len() == JSON_MAX_DEPTH {
                    return None;
                }
                i = skip_ws(s, i + 1);
                let close = if c == b'{' { b'}' } else { b']' };
                if s.get(i) == Some(&close) {
                    i += 1;
                } else {
                    stack.push(c);
                    if c == b'{' {
                        i = skip_key(s, i)?;
                    }
                    opened = true;
                }
            }
            b'"' => i = skip_string(s, i)?,
            b'-' | b'0'..=b'9' => i = skip_number(s, i)?,
            b't' => i = skip_literal(s, i, b"true")?,
            b'f' => i = skip_literal(s, i, b"false")?,
            b'n' => i = skip_literal(s, i, b"null")?,
            _ => return None,
        }
        if opened {
            continue;
        }
        // After a value: close containers until a comma or the end.
        loop {
            let top = match stack.last() {
                None => return Some(i),
                Some(&t) => t,
            };
            i = skip_ws(s, i);
            let c = *s.get(i)?;
            if c == b',' {
                i = skip_ws(s, i + 1);
                if top == b'{' {
                    i = skip_key(s, i)?;
                }
                break;
            }
            if c == if top == b'{' { b'}' } else { b']' } {
                stack.pop();
                i += 1;
                continue;
            }
            return None;
        }
    }
}

/// The input is not well-formed JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonError;

/// The members of a JSON object, without copying: each is `(name, value)`
/// with the name's raw text between its quotes (not unescaped) and the
/// value's raw text. Made by [`object_members`].
pub struct Members<'a> {
    s: &'a [u8],
    i: usize,
    state: u8, // 0 before the first member, 1 after a member, 2 done
}

/// Walks a JSON object's members; `None` when the text (after optional
/// whitespace) is not an object. The walk ends with an error at the first
/// malformed byte, including trailing bytes after the object.
pub fn object_members(json: &[u8]) -> Option<Members<'_>> {
    let i = skip_ws(json, 0);
    if json.get(i) != Some(&b'{') {
        return None;
    }
    Some(Members { s: json, i: i + 1, state: 0 })
}

impl<'a> Members<'a> {
    fn step(&mut self) -> Option<Option<(&'a [u8], &'a [u8])>> {
        let s = self.s;
        let mut i = skip_ws(s, self.i);
        if s.get(i) == Some(&b'}') {
            i = skip_ws(s, i + 1);
            if i != s.len() {
                return None;
            }
            self.i = i;
            return Some(None);
        }
        if self.state == 1 {
            if s.get(i) != Some(&b',') {
                return None;
            }
            i = skip_ws(s, i + 1);
        }
        if s.get(i) != Some(&b'"') {
            return None;
        }
        let j = skip_string(s, i)?;
        let name = &s[i + 1..j - 1];
        i = skip_ws(s, j);
        if s.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(s, i + 1);
        let j = skip_value(s, i)?;
        self.i = j;
        Some(Some((name, &s[i..j])))
    }
}

impl<'a> Iterator for Members<'a> {
    type Item = core::result::Result<(&'a [u8], &'a [u8]), JsonError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.state == 2 {
            return None;
        }
        match self.step() {
            Some(Some(m)) => {
                self.state = 1;
                Some(Ok(m))
            }
            Some(None) => {
                self.state = 2;
                None
            }
            None => {
                self.state = 2;
                Some(Err(JsonError))
            }
        }
    }
}

/// Parses a JSON object of strings (transform parameters), resolving escapes.
pub fn parse_params(json: &[u8]) -> Result<Vec<Param>> {
    parse_params_inner(json).ok_or_else(|| reject("parameters are not a JSON object of strings"))
}

fn parse_params_inner(s: &[u8]) -> Option<Vec<Param>> {
    let mut params = Vec::new();
    let mut i = skip_ws(s, 0);
    if s.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(s, i + 1);
    if s.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            if s.get(i) != Some(&b'"') {
                return None;
            }
            let (name, j) = decode_string(s, i)?;
            i = skip_ws(s, j);
            if s.get(i) != Some(&b':') {
                return None;
            }
            i = skip_ws(s, i + 1);
            if s.get(i) != Some(&b'"') {
                return None;
            }
            let (value, j) = decode_string(s, i)?;
            params.push(Param { name, value });
            i = skip_ws(s, j);
            match s.get(i) {
                Some(b',') => i = skip_ws(s, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    if skip_ws(s, i) != s.len() {
        return None;
    }
    Some(params)
}

fn hex4(s: &[u8]) -> u32 {
    s[..4].iter().fold(0, |acc, &c| acc << 4 | (c as char).to_digit(16).unwrap_or(0))
}

fn push_utf8(out: &mut Vec<u8>, cp: u32) {
    let c = char::from_u32(cp).unwrap_or('\u{fffd}');
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// Decodes the JSON string opening at `s[i]`; returns it and the index past
/// its closing quote.
fn decode_string(s: &[u8], i: usize) -> Option<(Vec<u8>, usize)> {
    let end = skip_string(s, i)?;
    let body = &s[i + 1..end - 1];
    let mut out = Vec::with_capacity(body.len());
    let mut k = 0;
    while k < body.len() {
        let c = body[k];
        if c != b'\\' {
            out.push(c);
            k += 1;
            continue;
        }
        let e = body[k + 1];
        k += 2;
        match e {
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'u' => {
                let mut cp = hex4(&body[k..]);
                k += 4;
                if (0xD800..0xDC00).contains(&cp)
                    && k + 6 <= body.len()
                    && body[k] == b'\\'
                    && body[k + 1] == b'u'
                {
                    let lo = hex4(&body[k + 2..]);
                    if (0xDC00..0xE000).contains(&lo) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        k += 6;
                    }
                }
                push_utf8(&mut out, cp); // a lone surrogate becomes U+FFFD
            }
            _ => out.push(e), // " \ /
        }
    }
    Some((out, end))
}

// ---------------------------------------------------------------------------
// Exact decimal comparison

/// Whether the text is `[-]digits[.digits][(e|E)[+|-]digits]` (a JSON
/// number, or a decimal with leading zeros).
pub fn decimal_valid(a: &[u8]) -> bool {
    let mut i = 0;
    if a.first() == Some(&b'-') {
        i += 1;
    }
    let j = skip_digits(a, i);
    if j == i {
        return false;
    }
    i = j;
    if a.get(i) == Some(&b'.') {
        let j = skip_digits(a, i + 1);
        if j == i + 1 {
            return false;
        }
        i = j;
    }
    if matches!(a.get(i), Some(b'e') | Some(b'E')) {
        i += 1;
        if matches!(a.get(i), Some(b'+') | Some(b'-')) {
            i += 1;
        }
        let j = skip_digits(a, i);
        if j == i {
            return false;
        }
        i = j;
    }
    i == a.len()
}

struct Dec<'a> {
    neg: bool,
    int: &'a [u8],
    frac: &'a [u8],
    exp: i64,
}

impl<'a> Dec<'a> {
    fn parse(a: &'a [u8]) -> Dec<'a> {
        let mut i = 0;
        let neg = a.first() == Some(&b'-');
        if neg {
            i += 1;
        }
        let j = skip_digits(a, i);
        let int = &a[i..j];
        i = j;
        let mut frac: &[u8] = &[];
        if a.get(i) == Some(&b'.') {
            let j = skip_digits(a, i + 1);
            frac = &a[i + 1..j];
            i = j;
        }
        let mut exp = 0i64;
        if matches!(a.get(i), Some(b'e') | Some(b'E')) {
            i += 1;
            let mut eneg = false;
            if matches!(a.get(i), Some(b'+') | Some(b'-')) {
                eneg = a[i] == b'-';
                i += 1;
            }
            while i < a.len() && a[i].is_ascii_digit() {
                if exp < 1_000_000_000_000_000 {
                    exp = exp * 10 + (a[i] - b'0') as i64;
                }
                i += 1;
            }
            if eneg {
                exp = -exp;
            }
        }
        Dec { neg, int, frac, exp }
    }

    fn digit(&self, j: usize) -> u8 {
        if j < self.int.len() {
            self.int[j]
        } else {
            self.frac[j - self.int.len()]
        }
    }

    /// (sign, first significant digit, last significant digit, exponent)
    /// with value = 0.d[first..=last] x 10^exponent.
    fn normal(&self) -> (i32, usize, usize, i64) {
        let total = self.int.len() + self.frac.len();
        let mut f = 0;
        while f < total && self.digit(f) == b'0' {
            f += 1;
        }
        if f == total {
            return (0, 0, 0, 0);
        }
        let mut l = total - 1;
        while self.digit(l) == b'0' {
            l -= 1;
        }
        let sign = if self.neg { -1 } else { 1 };
        (sign, f, l, self.int.len() as i64 + self.exp - f as i64)
    }
}

/// Compares two decimal numbers exactly (no floating point). Both must be
/// well-formed ([`decimal_valid`]).
pub fn decimal_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let (da, db) = (Dec::parse(a), Dec::parse(b));
    let (sa, fa, la, ea) = da.normal();
    let (sb, fb, lb, eb) = db.normal();
    if sa != sb {
        return sa.cmp(&sb);
    }
    if sa == 0 {
        return Ordering::Equal;
    }
    let mag = if ea != eb {
        ea.cmp(&eb)
    } else {
        let mut j = 0;
        loop {
            let (ha, hb) = (fa + j <= la, fb + j <= lb);
            if !ha || !hb {
                break ha.cmp(&hb);
            }
            let (ca, cb) = (da.digit(fa + j), db.digit(fb + j));
            if ca != cb {
                break ca.cmp(&cb);
            }
            j += 1;
        }
    };
    if sa > 0 {
        mag
    } else {
        mag.reverse()
    }
}
