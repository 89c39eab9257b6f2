//! sensor-value: the sensor record value serializer (contract in
//! sdk/conformance/README.md). A fixed little-endian layout of at least 24
//! bytes, written as one JSON object.

iq::plugin!();
iq::value_to_json!(value_to_json);

const STATUS: [&[u8]; 3] = [b"ok", b"degraded", b"offline"];

fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le64(b: &[u8]) -> u64 {
    le32(b) as u64 | (le32(&b[4..]) as u64) << 32
}

fn value_to_json(v: &[u8], out: &mut Vec<u8>) -> iq::Result {
    if v.len() < 24 {
        return Err(iq::reject("value shorter than 24 bytes"));
    }
    if v[0] != 1 {
        return Err(iq::reject("version is not 1"));
    }
    if v[1] > 2 {
        return Err(iq::reject("status is not 0, 1 or 2"));
    }
    let label = &v[24..];
    if label.len() > 64 {
        return Err(iq::reject("label longer than 64 bytes"));
    }
    let label = core::str::from_utf8(label).map_err(|_| iq::reject("label is not valid UTF-8"))?;

    out.extend_from_slice(b"{\"sensor\":");
    iq::write_uint(out, le32(&v[4..]) as u64);
    out.extend_from_slice(b",\"site\":");
    iq::write_uint(out, le16(&v[2..]) as u64);
    out.extend_from_slice(b",\"time\":");
    iq::write_int(out, le64(&v[8..]) as i64);
    out.extend_from_slice(b",\"status\":\"");
    out.extend_from_slice(STATUS[v[1] as usize]);
    out.extend_from_slice(b"\",\"temp_c\":");
    iq::write_fixed(out, le32(&v[16..]) as i32 as i64, 2);
    out.extend_from_slice(b",\"humidity\":");
    iq::write_fixed(out, le32(&v[20..]) as i64, 1);
    out.extend_from_slice(b",\"label\":");
    iq::write_json_string(out, label);
    out.push(b'}');
    Ok(())
}
