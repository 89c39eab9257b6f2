/*
 * project: the project-and-filter transform (contract in
 * sdk/conformance/README.md). fields=a,b keeps those top-level members in
 * input order; min_FIELD=N keeps records whose FIELD is a number >= N,
 * compared exactly as decimals (the decimal code is this example's own; the
 * SDK walks the JSON object).
 */
#include "iq.h"

#include <stdlib.h>

/* The batch's parameters; they point into the SDK's parameter storage,
 * which lives until the next batch begins. */
static int has_fields;
static iq_bytes fields;
static iq_bytes *min_names, *min_values;
static size_t min_count, min_cap;

static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

static size_t skip_digits(iq_bytes v, size_t i) {
    while (i < v.len && is_digit(v.ptr[i])) i++;
    return i;
}

/* Whether a min_ parameter is [-]digits[.digits]. */
static int is_decimal_param(iq_bytes v) {
    size_t i = v.len > 0 && v.ptr[0] == '-';
    size_t start = i;
    i = skip_digits(v, i);
    if (i == start) return 0;
    if (i < v.len && v.ptr[i] == '.') {
        start = i + 1;
        i = skip_digits(v, start);
        if (i == start) return 0;
    }
    return i == v.len;
}

/* A decimal number read exactly: value = sign x 0.D x 10^exp, where D is
 * its significant digits (no leading or trailing zeros), taken from the
 * integer part then the fraction part. Zero has sign 0. */
typedef struct {
    int sign;
    const uint8_t *ip, *fp; /* integer and fraction digits */
    size_t il, fl;
    size_t first, last; /* D's first and last digit, counted over ip then fp */
    int64_t exp;
} decimal;

static uint8_t decimal_digit(const decimal *d, size_t j) {
    return j < d->il ? d->ip[j] : d->fp[j - d->il];
}

/* Reads a JSON number or a parameter: [-]digits[.digits][(e|E)[+|-]digits]. */
static void decimal_parse(iq_bytes a, decimal *d) {
    size_t i = a.len > 0 && a.ptr[0] == '-';
    int neg = i == 1;
    d->ip = a.ptr + i;
    i = skip_digits(a, i);
    d->il = (size_t)(a.ptr + i - d->ip);
    d->fp = a.ptr + i;
    d->fl = 0;
    if (i < a.len && a.ptr[i] == '.') {
        d->fp = a.ptr + i + 1;
        i = skip_digits(a, i + 1);
        d->fl = (size_t)(a.ptr + i - d->fp);
    }
    int64_t e = 0;
    if (i < a.len && (a.ptr[i] == 'e' || a.ptr[i] == 'E')) {
        i++;
        int eneg = i < a.len && a.ptr[i] == '-';
        if (i < a.len && (a.ptr[i] == '+' || a.ptr[i] == '-')) i++;
        /* past 10^15 a number's magnitude is beyond what its digits change */
        for (; i < a.len && is_digit(a.ptr[i]); i++)
            if (e < 1000000000000000LL) e = e * 10 + (a.ptr[i] - '0');
        if (eneg) e = -e;
    }
    size_t total = d->il + d->fl, f = 0;
    while (f < total && decimal_digit(d, f) == '0') f++;
    if (f == total) {
        d->sign = 0;
        return;
    }
    size_t l = total - 1;
    while (decimal_digit(d, l) == '0') l--;
    d->first = f;
    d->last = l;
    d->sign = neg ? -1 : 1;
    d->exp = (int64_t)d->il + e - (int64_t)f;
}

/* Compares two decimal numbers exactly (no floating point): -1, 0 or 1. */
static int decimal_cmp(iq_bytes a, iq_bytes b) {
    decimal x, y;
    decimal_parse(a, &x);
    decimal_parse(b, &y);
    if (x.sign != y.sign) return x.sign < y.sign ? -1 : 1;
    if (x.sign == 0) return 0;
    int mag = 0; /* |a| against |b| */
    if (x.exp != y.exp) {
        mag = x.exp > y.exp ? 1 : -1;
    } else {
        for (size_t j = 0;; j++) {
            int hx = x.first + j <= x.last, hy = y.first + j <= y.last;
            if (!hx || !hy) {
                mag = hx - hy;
                break;
            }
            uint8_t cx = decimal_digit(&x, x.first + j), cy = decimal_digit(&y, y.first + j);
            if (cx != cy) {
                mag = cx > cy ? 1 : -1;
                break;
            }
        }
    }
    return x.sign * mag;
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

static int32_t record(iq_bytes key, iq_bytes value) {
    (void)key;
    iq_json_object it;
    iq_bytes name, v;
    int32_t st;
    int r;

    /* Pass 1: validate the whole object and apply the filters. For a
     * repeated member name, the last occurrence is the one filtered on. */
    if ((st = iq_json_object_open(&it, value)) != IQ_OK) return st;
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
    if (r < 0) return IQ_REJECT; /* the walker set the message */
    for (size_t k = 0; k < min_count; k++) {
        if (found[k].ptr == NULL) return IQ_SKIP;
        uint8_t c = found[k].ptr[0];
        if (c != '-' && !is_digit(c)) return IQ_SKIP;
        if (decimal_cmp(found[k], min_values[k]) < 0) return IQ_SKIP;
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
    return IQ_OK;
}

static void end(void) {
    has_fields = 0;
    min_count = 0;
}

IQ_TRANSFORM(begin, record, end)
