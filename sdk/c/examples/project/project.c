/*
 * project: the project-and-filter transform (contract in
 * sdk/conformance/README.md). fields=a,b keeps those top-level members in
 * input order; min_FIELD=N keeps records whose FIELD is a number >= N,
 * compared exactly as decimals.
 */
#include "iq.h"

#include <stdlib.h>

/* The batch's parameters; they point into the SDK's parameter storage,
 * which lives until the next batch begins. */
static int has_fields;
static iq_bytes fields;
static iq_bytes *min_names, *min_values;
static size_t min_count, min_cap;

static int is_decimal_param(iq_bytes v) {
    size_t i = 0;
    if (i < v.len && v.ptr[i] == '-') i++;
    size_t start = i;
    while (i < v.len && v.ptr[i] >= '0' && v.ptr[i] <= '9') i++;
    if (i == start) return 0;
    if (i < v.len && v.ptr[i] == '.') {
        i++;
        start = i;
        while (i < v.len && v.ptr[i] >= '0' && v.ptr[i] <= '9') i++;
        if (i == start) return 0;
    }
    return i == v.len;
}

static int bytes_equal(iq_bytes a, iq_bytes b) {
    if (a.len != b.len) return 0;
    for (size_t i = 0; i < a.len; i++)
        if (a.ptr[i] != b.ptr[i]) return 0;
    return 1;
}

static int32_t begin(const iq_param *params, size_t count) {
    has_fields = 0;
    min_count = 0;
    for (size_t i = 0; i < count; i++) {
        iq_bytes name = params[i].name, value = params[i].value;
        if (iq_bytes_eq(name, "fields")) {
            has_fields = 1;
            fields = value;
        } else if (iq_bytes_has_prefix(name, "min_")) {
            if (!is_decimal_param(value)) {
                iq_error_set("parameter ");
                iq_error_append(name.ptr, name.len);
                iq_error_append_cstr(" is not a decimal number");
                return IQ_REJECT;
            }
            iq_bytes field = {name.ptr + 4, name.len - 4};
            size_t k = 0;
            while (k < min_count && !bytes_equal(min_names[k], field)) k++;
            if (k == min_count) {
                if (min_count == min_cap) {
                    min_cap = min_cap ? min_cap * 2 : 4;
                    min_names = realloc(min_names, min_cap * sizeof(iq_bytes));
                    min_values = realloc(min_values, min_cap * sizeof(iq_bytes));
                    if (!min_names || !min_values) __builtin_trap();
                }
                min_count++;
            }
            min_names[k] = field;
            min_values[k] = value; /* a repeated name: the last one wins */
        } else {
            iq_error_set("unknown parameter ");
            iq_error_append(name.ptr, name.len);
            return IQ_REJECT;
        }
    }
    return IQ_OK;
}

/* Whether name is one of the comma-separated names in fields. */
static int field_kept(iq_bytes name) {
    if (!has_fields) return 1;
    size_t start = 0;
    for (size_t i = 0; i <= fields.len; i++) {
        if (i == fields.len || fields.ptr[i] == ',') {
            iq_bytes f = {fields.ptr + start, i - start};
            if (bytes_equal(f, name)) return 1;
            start = i + 1;
        }
    }
    return 0;
}

static int64_t record(iq_bytes key, iq_bytes value) {
    (void)key;
    iq_json_object it;
    iq_bytes name, v;
    int r;

    /* Pass 1: validate the whole object and apply the filters. For a
     * repeated member name, the last occurrence is the one filtered on. */
    if (iq_json_object_open(&it, value) != IQ_OK) return iq_reject("value is not a JSON object");
    static iq_bytes *found;
    static size_t found_cap;
    if (min_count > found_cap) {
        found_cap = min_count;
        found = realloc(found, found_cap * sizeof(iq_bytes));
        if (!found) __builtin_trap();
    }
    for (size_t k = 0; k < min_count; k++) found[k].ptr = NULL;
    while ((r = iq_json_object_next(&it, &name, &v)) == 1)
        for (size_t k = 0; k < min_count; k++)
            if (bytes_equal(name, min_names[k])) found[k] = v;
    if (r < 0) return iq_reject("value is not well-formed JSON");
    for (size_t k = 0; k < min_count; k++) {
        if (found[k].ptr == NULL) return IQ_SKIP;
        uint8_t c = found[k].ptr[0];
        if (c != '-' && (c < '0' || c > '9')) return IQ_SKIP;
        if (iq_decimal_cmp(found[k], min_values[k]) < 0) return IQ_SKIP;
    }

    /* Pass 2: write the kept members in input order. */
    iq_json_object_open(&it, value);
    int first = 1;
    iq_out_byte('{');
    while (iq_json_object_next(&it, &name, &v) == 1) {
        if (!field_kept(name)) continue;
        if (!first) iq_out_byte(',');
        first = 0;
        iq_out_byte('"');
        iq_out_write(name.ptr, name.len);
        iq_out_cstr("\":");
        iq_out_write(v.ptr, v.len);
    }
    iq_out_byte('}');
    return iq_out_result();
}

static void end(void) {
    has_fields = 0;
    min_count = 0;
}

IQ_TRANSFORM(begin, record, end)
