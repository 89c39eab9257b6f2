//! project: the project-and-filter transform (contract in
//! sdk/conformance/README.md). fields=a,b keeps those top-level members in
//! input order; min_FIELD=N keeps records whose FIELD is a number >= N,
//! compared exactly as decimals.

use std::cmp::Ordering;

iq::plugin!();
iq::transform!(Project);

struct Project {
    /// The comma-separated names to keep; None keeps every member.
    fields: Option<Vec<u8>>,
    /// (FIELD, minimum) pairs.
    mins: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The index of the first byte at or after i that is not an ASCII digit.
fn skip_digits(v: &[u8], mut i: usize) -> usize {
    while i < v.len() && v[i].is_ascii_digit() {
        i += 1;
    }
    i
}

fn is_decimal_param(v: &[u8]) -> bool {
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
    fn keeps(&self, name: &[u8]) -> bool {
        match &self.fields {
            None => true,
            Some(f) => f.split(|&c| c == b',').any(|n| n == name),
        }
    }
}

impl iq::Transform for Project {
    fn begin(params: &[iq::Param]) -> iq::Result<Self> {
        let mut p = Project { fields: None, mins: Vec::new() };
        for param in params {
            let name = &param.name[..];
            if name == b"fields" {
                p.fields = Some(param.value.clone());
            } else if name.starts_with(b"min_") {
                if !is_decimal_param(&param.value) {
                    return Err(iq::reject(format!(
                        "parameter {} is not a decimal number",
                        String::from_utf8_lossy(name)
                    )));
                }
                let field = name[4..].to_vec();
                // A repeated name: the last one wins.
                match p.mins.iter_mut().find(|(f, _)| *f == field) {
                    Some(m) => m.1 = param.value.clone(),
                    None => p.mins.push((field, param.value.clone())),
                }
            } else {
                return Err(iq::reject(format!(
                    "unknown parameter {}",
                    String::from_utf8_lossy(name)
                )));
            }
        }
        Ok(p)
    }

    fn record(&mut self, _key: &[u8], value: &[u8], out: &mut Vec<u8>) -> iq::Result {
        let members = iq::object_members(value).ok_or_else(|| iq::reject("value is not a JSON object"))?;
        // Pass 1: validate the whole object and apply the filters. For a
        // repeated member name, the last occurrence is the one filtered on.
        let mut found: Vec<Option<&[u8]>> = vec![None; self.mins.len()];
        for m in members {
            let (name, v) = m.map_err(|_| iq::reject("value is not well-formed JSON"))?;
            for (k, (field, _)) in self.mins.iter().enumerate() {
                if name == &field[..] {
                    found[k] = Some(v);
                }
            }
        }
        for (k, (_, min)) in self.mins.iter().enumerate() {
            let v = match found[k] {
                Some(v) if v[0] == b'-' || v[0].is_ascii_digit() => v,
                _ => return Err(iq::skip()),
            };
            if iq::decimal_cmp(v, min) == Ordering::Less {
                return Err(iq::skip());
            }
        }
        // Pass 2: write the kept members in input order.
        out.push(b'{');
        let mut first = true;
        for m in iq::object_members(value).into_iter().flatten() {
            let (name, v) = match m {
                Ok(m) => m,
                Err(_) => break,
            };
            if !self.keeps(name) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(name);
            out.extend_from_slice(b"\":");
            out.extend_from_slice(v);
        }
        out.push(b'}');
        Ok(())
    }
}
