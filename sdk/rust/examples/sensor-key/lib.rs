//! sensor-key: the composite sensor key serializer (contract in
//! sdk/conformance/README.md). Key bytes: u16 site then u32 sensor, both
//! big-endian; URL text: SITE-SENSOR, or SITE alone for a prefix.

iq::plugin!();
iq::key_to_json!(key_to_json);
iq::key_from_text!(key_from_text);
iq::partition!(partition);

fn key_to_json(k: &[u8], out: &mut Vec<u8>) -> iq::Result {
    if k.len() != 6 {
        return Err(iq::reject("key is not 6 bytes"));
    }
    let site = u16::from_be_bytes([k[0], k[1]]);
    let sensor = u32::from_be_bytes([k[2], k[3], k[4], k[5]]);
    out.extend_from_slice(b"{\"site\":");
    iq::write_uint(out, site as u64);
    out.extend_from_slice(b",\"sensor\":");
    iq::write_uint(out, sensor as u64);
    out.push(b'}');
    Ok(())
}

/// Decimal digits only (leading zeros allowed), at most `max`.
fn parse_uint(t: &[u8], max: u64) -> Option<u64> {
    if t.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in t {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u64;
        if v > max {
            return None;
        }
    }
    Some(v)
}

fn key_from_text(text: &str, out: &mut Vec<u8>) -> iq::Result {
    let t = text.as_bytes(); // the key's format is ASCII
    let dash = t.iter().position(|&c| c == b'-').unwrap_or(t.len());
    let site = parse_uint(&t[..dash], 65535).ok_or_else(|| {
        iq::reject("key text is not SITE or SITE-SENSOR (decimal, site <= 65535)")
    })?;
    out.extend_from_slice(&(site as u16).to_be_bytes());
    if dash == t.len() {
        return Ok(());
    }
    let sensor = parse_uint(&t[dash + 1..], 4294967295).ok_or_else(|| {
        iq::reject("key text is not SITE or SITE-SENSOR (decimal, sensor <= 4294967295)")
    })?;
    out.extend_from_slice(&(sensor as u32).to_be_bytes());
    Ok(())
}

fn partition(k: &[u8], partitions: i32) -> iq::Result<i32> {
    if k.len() < 2 {
        return Err(iq::reject("key shorter than 2 bytes"));
    }
    let site = u16::from_be_bytes([k[0], k[1]]) as u32;
    Ok((site % partitions as u32) as i32)
}
