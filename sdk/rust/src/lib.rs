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
//!     iq::write_uint(out, input[0] as u64);
//!     out.push(b'}');
//!     Ok(())
//! }
//! ```
//!
//! Results are written into one output buffer owned by the SDK, emptied
//! before every operation and kept until the host's next call, as the ABI
//! wants. Text crosses as `&str` (a key in a URL, transform parameters, the
//! JSON a transform sees), bytes as `&[u8]`. Nothing here imports anything
//! from the host.

use std::borrow::Cow;
use std::cell::Cell;

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
// Instance state. An instance is single-threaded (sdk/ABI.md), and wasm32
// has one thread: thread-locals are the instance's state. A buffer is taken
// out of its cell for the length of a host call and put back, so no two
// borrows of it can overlap, and moving a Vec does not move its bytes, so a
// result region stays valid.

thread_local! {
    static INPUT: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    static OUT: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    static ERROR: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    static CONFIG: Cell<String> = const { Cell::new(String::new()) };
    static IN_BATCH: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` on the buffer in `cell`, taken out for the call.
fn with<T: Default, R>(
    cell: &'static std::thread::LocalKey<Cell<T>>,
    f: impl FnOnce(&mut T) -> R,
) -> R {
    cell.with(|c| {
        let mut v = c.take();
        let r = f(&mut v);
        c.set(v);
        r
    })
}

/// The static config given to `iq_init` (a JSON object, `{}` when none).
pub fn config() -> String {
    with(&CONFIG, |c| if c.is_empty() { "{}".to_string() } else { c.clone() })
}

fn set_error(e: &Error) -> i32 {
    with(&ERROR, |b| {
        b.clear();
        b.extend_from_slice(e.message.as_bytes());
    });
    e.code
}

/// A region as an operation result: the region stays valid until the next
/// call because the buffer holding it is not touched before then.
fn region(b: &[u8]) -> i64 {
    if b.is_empty() {
        return 0;
    }
    (((b.as_ptr() as usize as u64) << 32) | (b.len() as u32 as u64)) as i64
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

/// Runs `f` with the emptied output buffer and turns what it returns into
/// the operation's result.
fn with_out(f: impl FnOnce(&mut Vec<u8>) -> Result) -> i64 {
    let r = with(&OUT, |out| {
        out.clear();
        f(out).map(|()| region(out))
    });
    r.unwrap_or_else(|e| set_error(&e) as i64)
}

fn text<'a>(b: &'a [u8], what: &'static str) -> Result<&'a str> {
    core::str::from_utf8(b).map_err(|_| reject(what))
}

// ---------------------------------------------------------------------------
// What the export macros call. Not part of the API.

#[doc(hidden)]
pub fn __alloc(size: i32) -> i32 {
    let want = (size as u32 as usize).max(1);
    with(&INPUT, |buf| {
        if want > buf.len() {
            let cap = want.max(buf.len() * 2).max(256);
            // The old content need not survive: drop it before allocating.
            // The whole buffer is initialised once, so that reading what the
            // host wrote there reads initialised memory.
            *buf = Vec::new();
            buf.resize(cap, 0);
        }
        buf.as_mut_ptr() as usize as i32
    })
}

#[doc(hidden)]
pub fn __init(p: i32, n: i32, hook: Option<fn(&str) -> Result>) -> i32 {
    let r = text(unsafe { input(p, n) }, "the config is not UTF-8").and_then(|cfg| {
        CONFIG.with(|c| c.set(cfg.to_string()));
        match hook {
            Some(f) => f(&config()),
            None => Ok(()),
        }
    });
    match r {
        Ok(()) => 0,
        Err(e) => set_error(&e),
    }
}

#[doc(hidden)]
pub fn __last_error() -> i64 {
    with(&ERROR, |e| region(e))
}

#[doc(hidden)]
pub fn __op(p: i32, n: i32, f: fn(&[u8], &mut Vec<u8>) -> Result) -> i64 {
    with_out(|out| f(unsafe { input(p, n) }, out))
}

#[doc(hidden)]
pub fn __text_op(p: i32, n: i32, f: fn(&str, &mut Vec<u8>) -> Result) -> i64 {
    with_out(|out| f(text(unsafe { input(p, n) }, "the key text is not UTF-8")?, out))
}

#[doc(hidden)]
pub fn __partition(p: i32, n: i32, parts: i32, f: fn(&[u8], i32) -> Result<i32>) -> i32 {
    if parts <= 0 {
        return set_error(&fail("iq_partition: partitions must be positive"));
    }
    match f(unsafe { input(p, n) }, parts) {
        Ok(v) if (0..parts).contains(&v) => v,
        Ok(_) => set_error(&fail(
            "iq_partition: the plugin returned a partition outside [0, partitions)",
        )),
        Err(e) => set_error(&e),
    }
}

#[doc(hidden)]
pub fn __transform_begin<F: FnOnce(&[Param]) -> Result>(p: i32, n: i32, f: F) -> i32 {
    IN_BATCH.with(|b| b.set(false));
    match parse_params(unsafe { input(p, n) }).and_then(|params| f(&params)) {
        Ok(()) => {
            IN_BATCH.with(|b| b.set(true));
            0
        }
        Err(e) => set_error(&e),
    }
}

#[doc(hidden)]
pub fn __transform_record<F: FnOnce(&str, &str, &mut Vec<u8>) -> Result>(
    p: i32,
    n: i32,
    f: F,
) -> i64 {
    with_out(|out| {
        if !IN_BATCH.with(Cell::get) {
            return Err(fail("iq_transform_record called outside a batch"));
        }
        let frame = unsafe { input(p, n) };
        if frame.len() < 4 {
            return Err(reject("record frame shorter than 4 bytes"));
        }
        let klen = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        if klen > frame.len() - 4 {
            return Err(reject("record frame: key length past the end"));
        }
        let (key, value) = frame[4..].split_at(klen);
        let what = "the record's JSON is not UTF-8";
        f(text(key, what)?, text(value, what)?, out)
    })
}

#[doc(hidden)]
pub fn __transform_end() {
    IN_BATCH.with(|b| b.set(false));
}

// ---------------------------------------------------------------------------
// Export macros

/// Exports what every plugin needs: the `iq_abi_v1` marker, `iq_alloc`,
/// `iq_init` (stores the config; see [`config`]) and `iq_last_error`.
/// `iq::plugin!(init = check)` also runs `fn check(config: &str) ->
/// iq::Result` at init: an error refuses the module for that store.
#[macro_export]
macro_rules! plugin {
    () => {
        $crate::__plugin_exports!(None);
    };
    (init = $hook:path) => {
        $crate::__plugin_exports!(Some($hook as fn(&str) -> $crate::Result));
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

/// Exports `iq_key_from_text` from `fn(text: &str, out: &mut Vec<u8>) -> iq::Result`.
/// Text that is not UTF-8 is rejected before `f` runs.
#[macro_export]
macro_rules! key_from_text {
    ($f:path) => {
        #[export_name = "iq_key_from_text"]
        pub extern "C" fn __iq_key_from_text(p: i32, n: i32) -> i64 {
            $crate::__text_op(p, n, $f)
        }
    };
}

/// Exports `iq_partition` from `fn(key: &[u8], partitions: i32) -> iq::Result<i32>`.
/// The SDK fails the call when `partitions` is not positive or `f` returns a
/// partition outside `0..partitions`.
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
        ::std::thread_local! {
            static __IQ_TRANSFORM: ::core::cell::Cell<Option<$t>> = const { ::core::cell::Cell::new(None) };
        }

        #[export_name = "iq_transform_begin"]
        pub extern "C" fn __iq_transform_begin(p: i32, n: i32) -> i32 {
            __IQ_TRANSFORM.with(|slot| slot.set(None));
            $crate::__transform_begin(p, n, |params| {
                let t = <$t as $crate::Transform>::begin(params)?;
                __IQ_TRANSFORM.with(|slot| slot.set(Some(t)));
                Ok(())
            })
        }

        #[export_name = "iq_transform_record"]
        pub extern "C" fn __iq_transform_record(p: i32, n: i32) -> i64 {
            $crate::__transform_record(p, n, |key, value, out| {
                // Taken out of its cell for the call and put back.
                __IQ_TRANSFORM.with(|slot| {
                    let mut t = slot.take();
                    let r = match t.as_mut() {
                        Some(t) => $crate::Transform::record(t, key, value, out),
                        None => Err($crate::fail("iq_transform_record called outside a batch")),
                    };
                    slot.set(t);
                    r
                })
            })
        }

        #[export_name = "iq_transform_end"]
        pub extern "C" fn __iq_transform_end() {
            if let Some(t) = __IQ_TRANSFORM.with(|slot| slot.take()) {
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
    /// Maps one record, given its key JSON and value JSON: writes the value
    /// JSON to answer into `out`, or returns `Err(iq::skip())` to filter it
    /// out.
    fn record(&mut self, key: &str, value: &str, out: &mut Vec<u8>) -> Result;
    /// Ends the batch.
    fn end(self) {}
}

/// One transform parameter, with JSON escapes resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub value: String,
}

// ---------------------------------------------------------------------------
// The SDK helpers every language's SDK has (sdk/ABI.md "SDK helpers")

/// Writes `v` in decimal.
pub fn write_uint(out: &mut Vec<u8>, v: u64) {
    write_digits(out, v, 1);
}

/// Writes `v` in decimal, `-` for negatives.
pub fn write_int(out: &mut Vec<u8>, v: i64) {
    write_fixed(out, v, 0);
}

/// Writes `v / 10^places` exactly, with `places` fraction digits:
/// `write_fixed(out, 2137, 2)` writes `21.37`, `(-5, 2)` `-0.05`,
/// `(451, 1)` `45.1`, `(7, 0)` `7`.
pub fn write_fixed(out: &mut Vec<u8>, v: i64, places: u32) {
    if v < 0 {
        out.push(b'-');
    }
    let mag = v.unsigned_abs();
    if places == 0 {
        write_digits(out, mag, 1);
        return;
    }
    // 10^19 is the largest power of ten a u64 holds.
    let (whole, frac) = match 10u64.checked_pow(places) {
        Some(p10) => (mag / p10, mag % p10),
        None => (0, mag),
    };
    write_digits(out, whole, 1);
    out.push(b'.');
    write_digits(out, frac, places as usize);
}

/// Writes `v` in decimal, at least `width` digits (zero-padded).
fn write_digits(out: &mut Vec<u8>, mut v: u64, width: usize) {
    let mut tmp = [0u8; 20];
    let mut k = 0;
    loop {
        tmp[k] = b'0' + (v % 10) as u8;
        k += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for _ in k..width {
        out.push(b'0');
    }
    out.extend(tmp[..k].iter().rev());
}

/// Writes a JSON string with its quotes: `"` and `\` escaped, `\n \r \t \b
/// \f` in short form, other bytes below 0x20 as `\u00xx`, every other byte
/// copied as is.
pub fn write_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let s = s.as_bytes();
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

/// The deepest nesting of arrays and objects [`JsonObject`] accepts in a
/// member's value.
pub const JSON_MAX_DEPTH: usize = 10000;

/// Walks the members of a JSON object without copying: each member is
/// `(name, value)`, the name being the raw text between its quotes (escapes
/// not resolved) and the value its raw JSON text. The walk is strict: it
/// ends with `Err(iq::reject(..))` at the first byte that is not
/// well-formed JSON, including anything but whitespace after the object.
///
/// ```ignore
/// for member in iq::JsonObject::open(value)? {
///     let (name, value) = member?;
/// }
/// ```
pub struct JsonObject<'a> {
    s: &'a str,
    i: usize,
    state: u8, // 0 before the first member, 1 after a member, 2 done
}

impl<'a> JsonObject<'a> {
    /// Starts a walk over `json`, which must be an object after optional
    /// whitespace: `Err(iq::reject("not a JSON object"))` otherwise.
    pub fn open(json: &'a str) -> Result<JsonObject<'a>> {
        let i = skip_ws(json.as_bytes(), 0);
        if json.as_bytes().get(i) != Some(&b'{') {
            return Err(reject("not a JSON object"));
        }
        Ok(JsonObject { s: json, i: i + 1, state: 0 })
    }

    /// The next member's (name start, name end, value start, value end), or
    /// None at the end of the object; Err when malformed.
    fn step(&mut self) -> core::result::Result<Option<(usize, usize, usize, usize)>, ()> {
        let s = self.s.as_bytes();
        let mut i = skip_ws(s, self.i);
        if s.get(i) == Some(&b'}') {
            return if skip_ws(s, i + 1) == s.len() { Ok(None) } else { Err(()) };
        }
        if self.state == 1 {
            if s.get(i) != Some(&b',') {
                return Err(());
            }
            i = skip_ws(s, i + 1);
        }
        if s.get(i) != Some(&b'"') {
            return Err(());
        }
        let j = skip_string(s, i).ok_or(())?;
        let name = (i + 1, j - 1);
        i = skip_ws(s, j);
        if s.get(i) != Some(&b':') {
            return Err(());
        }
        i = skip_ws(s, i + 1);
        let j = skip_value(s, i).ok_or(())?;
        self.i = j;
        Ok(Some((name.0, name.1, i, j)))
    }
}

impl<'a> Iterator for JsonObject<'a> {
    type Item = Result<(&'a str, &'a str)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.state == 2 {
            return None;
        }
        // Every boundary is next to an ASCII byte, so a char boundary.
        let s = self.s;
        match self.step() {
            Ok(Some((a, b, c, d))) => {
                self.state = 1;
                Some(Ok((&s[a..b], &s[c..d])))
            }
            Ok(None) => {
                self.state = 2;
                None
            }
            Err(()) => {
                self.state = 2;
                Some(Err(reject("not well-formed JSON")))
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Reading JSON (the walker's and the parameters')

/// The index of the first non-whitespace byte at or after `i`.
fn skip_ws(s: &[u8], mut i: usize) -> usize {
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
fn skip_value(s: &[u8], mut i: usize) -> Option<usize> {
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

/// Parses a JSON object of strings (transform parameters), resolving escapes.
fn parse_params(json: &[u8]) -> Result<Vec<Param>> {
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
            params.push(Param {
                name: String::from_utf8(name).ok()?,
                value: String::from_utf8(value).ok()?,
            });
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
