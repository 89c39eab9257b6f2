/*
 * sensor-value: the sensor record value serializer (contract in
 * sdk/conformance/README.md). A fixed little-endian layout of at least 24
 * bytes, written as one JSON object.
 */
#include "iq.h"

static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

static const char *const status_names[] = {"ok", "degraded", "offline"};

static int32_t value_to_json(iq_bytes in) {
    if (in.len < 24) return iq_reject("value shorter than 24 bytes");
    const uint8_t *p = in.ptr;
    if (p[0] != 1) return iq_reject("version is not 1");
    if (p[1] > 2) return iq_reject("status is not 0, 1 or 2");
    const uint8_t *label = p + 24;
    size_t label_len = in.len - 24;
    if (label_len > 64) return iq_reject("label longer than 64 bytes");
    if (!iq_utf8_valid(label, label_len)) return iq_reject("label is not valid UTF-8");

    iq_out_cstr("{\"sensor\":");
    iq_out_uint(le32(p + 4));
    iq_out_cstr(",\"site\":");
    iq_out_uint(le16(p + 2));
    iq_out_cstr(",\"time\":");
    iq_out_int((int64_t)le64(p + 8));
    iq_out_cstr(",\"status\":\"");
    iq_out_cstr(status_names[p[1]]);
    iq_out_cstr("\",\"temp_c\":");
    iq_out_fixed((int32_t)le32(p + 16), 2);
    iq_out_cstr(",\"humidity\":");
    iq_out_fixed(le32(p + 20), 1);
    iq_out_cstr(",\"label\":");
    iq_out_json_string(label, label_len);
    iq_out_byte('}');
    return IQ_OK;
}

IQ_VALUE_TO_JSON(value_to_json)
