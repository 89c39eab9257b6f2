/*
 * sensor-key: the composite sensor key serializer (contract in
 * sdk/conformance/README.md). Key bytes: u16 site then u32 sensor, both
 * big-endian; URL text: SITE-SENSOR, or SITE alone for a prefix.
 */
#include "iq.h"

static int32_t key_to_json(iq_bytes in) {
    if (in.len != 6) return iq_reject("key is not 6 bytes");
    const uint8_t *p = in.ptr;
    uint32_t site = (uint32_t)p[0] << 8 | p[1];
    uint32_t sensor = (uint32_t)p[2] << 24 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 8 | p[5];
    iq_out_cstr("{\"site\":");
    iq_out_uint(site);
    iq_out_cstr(",\"sensor\":");
    iq_out_uint(sensor);
    iq_out_byte('}');
    return IQ_OK;
}

/* Parses p[0..n) as decimal digits (leading zeros allowed) no larger than
 * max. Returns 1 and the value, or 0. */
static int parse_uint(const uint8_t *p, size_t n, uint64_t max, uint64_t *out) {
    if (n == 0) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
        v = v * 10 + (uint64_t)(p[i] - '0');
        if (v > max) return 0;
    }
    *out = v;
    return 1;
}

static int32_t key_from_text(iq_bytes in) {
    size_t dash = 0;
    while (dash < in.len && in.ptr[dash] != '-') dash++;
    uint64_t site, sensor = 0;
    if (!parse_uint(in.ptr, dash, 65535, &site))
        return iq_reject("key text is not SITE or SITE-SENSOR (decimal, site <= 65535)");
    uint8_t key[6] = {(uint8_t)(site >> 8), (uint8_t)site};
    if (dash == in.len) {
        iq_out_write(key, 2);
        return IQ_OK;
    }
    if (!parse_uint(in.ptr + dash + 1, in.len - dash - 1, 4294967295u, &sensor))
        return iq_reject("key text is not SITE or SITE-SENSOR (decimal, sensor <= 4294967295)");
    key[2] = (uint8_t)(sensor >> 24);
    key[3] = (uint8_t)(sensor >> 16);
    key[4] = (uint8_t)(sensor >> 8);
    key[5] = (uint8_t)sensor;
    iq_out_write(key, 6);
    return IQ_OK;
}

static int32_t partition(iq_bytes in, int32_t partitions) {
    if (in.len < 2) return iq_reject("key shorter than 2 bytes");
    uint32_t site = (uint32_t)in.ptr[0] << 8 | in.ptr[1];
    return (int32_t)(site % (uint32_t)partitions);
}

IQ_KEY_TO_JSON(key_to_json)
IQ_KEY_FROM_TEXT(key_from_text)
IQ_PARTITION(partition)
