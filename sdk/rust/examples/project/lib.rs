//! project: the project-and-filter transform (contract in
//! sdk/conformance/README.md). fields=a,b keeps those top-level members in
//! input order; min_FIELD=N keeps records whose FIELD is a number >= N,
//! compared exactly as decimals (the decimal code is this example's own; the
//! SDK walks the JSON object).

use std::cmp::Ordering;

iq::plugin!();
iq::transform!(Project);

struct Project {
    /// The comma-separated names to keep; None keeps every member.
    fields: Option<String>,
    /// (FIELD, minimum) pairs.
    mins: Vec<(String, String)>,
}

/// The index of the first byte at or after i that is not an ASCII digit.
fn skip_digits(v: &[u8], mut i: usize) -> usize {
    while i < v.len() && v[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// Whether a min_ parameter is `[-]digits[.digits]`.
fn is_decimal_param(v: &str) -> bool {
    let v = v.as_bytes();
    let mut i = usize::from(v.first() == Some(&b'-'));
    let end = skip_digits(v, i);
    if end == i {
        return false;
    }
    i = end;
    if v.get(i) == Some(&b'.') {
        let end = skip_digits(v, i + 1);
        if end == i + 1 {
            return false;
        }
        i = end;
    }
    i == v.len()
}

impl Project {
    fn keeps(&self, name: &str) -> bool {
        match &self.fields {
            None => true,
            Some(f) => f.split(',').any(|n| n == name),
        }
    }
}

impl iq::Transform for Project {
    fn begin(params: &[iq::Param]) -> iq::Result<Self> {
        let mut p = Project { fields: None, mins: Vec::new() };
        for param in params {
            let name = param.name.as_str();
            if name == "fields" {
                p.fields = Some(param.value.clone());
            } else if let Some(field) = name.strip_prefix("min_") {
                if !is_decimal_param(&param.value) {
                    return Err(iq::reject(format!("parameter {} is not a decimal number", name)));
                }
                // A repeated name: the last one wins.
                match p.mins.iter_mut().find(|(f, _)| f == field) {
                    Some(m) => m.1 = param.value.clone(),
                    None => p.mins.push((field.to_string(), param.value.clone())),
                }
            } else {
                return Err(iq::reject(format!("unknown parameter {}", name)));
            }
        }
        Ok(p)
    }

    fn record(&mut self, _key: &str, value: &str, out: &mut Vec<u8>) -> iq::Result {
        // Pass 1: validate the whole object and apply the filters. For a
        // repeated member name, the last occurrence is the one filtered on.
        let mut found: Vec<Option<&str>> = vec![None; self.mins.len()];
        for m in iq::JsonObject::open(value)? {
            let (name, v) = m?;
            for (k, (field, _)) in self.mins.iter().enumerate() {
                if name == field {
                    found[k] = Some(v);
                }
            }
        }
        for (k, (_, min)) in self.mins.iter().enumerate() {
            let v = match found[k] {
                Some(v) if v.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => v,
                _ => return Err(iq::skip()),
            };
            if decimal_cmp(v, min) == Ordering::Less {
                return Err(iq::skip());
            }
        }
        // Pass 2: write the kept members in input order.
        out.push(b'{');
        let mut first = true;
        for m in iq::JsonObject::open(value)? {
            let (name, v) = m?;
            if !self.keeps(name) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
            out.extend_from_slice(v.as_bytes());
        }
        out.push(b'}');
        Ok(())
    }
}

/// A decimal number read exactly: value = sign x 0.D x 10^exp, where D is
/// its significant digits (no leading or trailing zeros), taken from the
/// integer part then the fraction part. Zero has sign 0.
struct Decimal<'a> {
    sign: i32,
    int: &'a [u8],
    frac: &'a [u8],
    first: usize,
    last: usize,
    exp: i64,
}

impl<'a> Decimal<'a> {
    /// Reads a JSON number or a parameter: `[-]digits[.digits][(e|E)[+|-]digits]`.
    fn parse(a: &'a str) -> Decimal<'a> {
        let a = a.as_bytes();
        let neg = a.first() == Some(&b'-');
        let mut i = usize::from(neg);
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
            let eneg = a.get(i) == Some(&b'-');
            if matches!(a.get(i), Some(b'+') | Some(b'-')) {
                i += 1;
            }
            for &c in &a[i..skip_digits(a, i)] {
                // past 10^15 a number's magnitude is beyond what its digits change
                if exp < 1_000_000_000_000_000 {
                    exp = exp * 10 + (c - b'0') as i64;
                }
            }
            if eneg {
                exp = -exp;
            }
        }
        let mut d = Decimal { sign: 0, int, frac, first: 0, last: 0, exp: 0 };
        let total = int.len() + frac.len();
        let first = (0..total).find(|&j| d.digit(j) != b'0');
        if let Some(f) = first {
            d.first = f;
            d.last = (f..total).rev().find(|&j| d.digit(j) != b'0').unwrap_or(f);
            d.sign = if neg { -1 } else { 1 };
            d.exp = int.len() as i64 + exp - f as i64;
        }
        d
    }

    fn digit(&self, j: usize) -> u8 {
        if j < self.int.len() {
            self.int[j]
        } else {
            self.frac[j - self.int.len()]
        }
    }

    /// The significant digits, in order.
    fn digits(&self) -> impl Iterator<Item = u8> + '_ {
        (self.first..=self.last).map(move |j| self.digit(j))
    }
}

/// Compares two decimal numbers exactly (no floating point).
fn decimal_cmp(a: &str, b: &str) -> Ordering {
    let (x, y) = (Decimal::parse(a), Decimal::parse(b));
    if x.sign != y.sign || x.sign == 0 {
        return x.sign.cmp(&y.sign);
    }
    let mag = x.exp.cmp(&y.exp).then_with(|| x.digits().cmp(y.digits()));
    if x.sign > 0 {
        mag
    } else {
        mag.reverse()
    }
}
