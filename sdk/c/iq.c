/*
 * iq.c - the iqengine plugin SDK for C (ABI v1, see sdk/ABI.md and iq.h).
 *
 * Uses only malloc, realloc and free from libc: no stdio, no files, no
 * clock, so the module has no imports.
 */
#include "iq.h"

#include <stdlib.h>

#define IQ_BAD ((size_t)-1)

static void *iq__grow(void *p, size_t size) {
    void *q = realloc(p, size);
    if (q == NULL) __builtin_trap(); /* memory cap reached: a fault, by design */
    return q;
}

static void iq__copy(uint8_t *dst, const uint8_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = src[i];
}

/* The input region the host wrote at p. */
static iq_bytes iq__in(int32_t p, int32_t n) {
    iq_bytes b;
    b.ptr = (const uint8_t *)(uintptr_t)(uint32_t)p;
    b.len = (size_t)(uint32_t)n;
    return b;
}

/* A region as an operation result. */
static int64_t iq__region(const void *p, size_t n) {
    if (n == 0) return 0;
    return (int64_t)(((uint64_t)(uint32_t)(uintptr_t)p << 32) | (uint64_t)(uint32_t)n);
}

static void iq__begin_call(void);

/* ---------------------------------------------------------------------- */
/* Marker, input buffer, config, last error                               */

IQ_EXPORT("iq_abi_v1") void iq_abi_v1(void) {}

static uint8_t *iq__in_buf;
static size_t iq__in_cap;

IQ_EXPORT("iq_alloc") int32_t iq_alloc(int32_t size) {
    size_t want = (size_t)(uint32_t)size;
    if (want == 0) want = 1;
    if (want > iq__in_cap) {
        size_t cap = iq__in_cap * 2;
        if (cap < want) cap = want;
        if (cap < 256) cap = 256;
        /* The old content need not survive: free first, then allocate. */
        free(iq__in_buf);
        iq__in_buf = malloc(cap);
        if (iq__in_buf == NULL) __builtin_trap();
        iq__in_cap = cap;
    }
    return (int32_t)(uintptr_t)iq__in_buf;
}

static uint8_t *iq__config_buf;
static size_t iq__config_len;

iq_bytes iq_config(void) {
    iq_bytes b;
    b.ptr = iq__config_len ? iq__config_buf : (const uint8_t *)"{}";
    b.len = iq__config_len ? iq__config_len : 2;
    return b;
}

__attribute__((weak)) int32_t iq_on_init(iq_bytes config) {
    (void)config;
    return IQ_OK;
}

IQ_EXPORT("iq_init") int32_t iq_init(int32_t p, int32_t n) {
    iq__begin_call();
    iq_bytes in = iq__in(p, n);
    iq__config_buf = iq__grow(iq__config_buf, in.len ? in.len : 1);
    iq__copy(iq__config_buf, in.ptr, in.len);
    iq__config_len = in.len;
    return iq_on_init(iq_config());
}

static uint8_t *iq__err_buf;
static size_t iq__err_len, iq__err_cap;

void iq_error_append(const void *p, size_t n) {
    if (iq__err_len + n > iq__err_cap) {
        size_t cap = iq__err_cap * 2;
        if (cap < iq__err_len + n) cap = iq__err_len + n;
        if (cap < 128) cap = 128;
        iq__err_buf = iq__grow(iq__err_buf, cap);
        iq__err_cap = cap;
    }
    iq__copy(iq__err_buf + iq__err_len, p, n);
    iq__err_len += n;
}

void iq_error_append_cstr(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    iq_error_append(s, n);
}

void iq_error_set(const char *msg) {
    iq__err_len = 0;
    iq_error_append_cstr(msg);
}

int32_t iq_reject(const char *msg) {
    iq_error_set(msg);
    return IQ_REJECT;
}

int32_t iq_fail(const char *msg) {
    iq_error_set(msg);
    return IQ_FAIL;
}

IQ_EXPORT("iq_last_error") int64_t iq_last_error(void) {
    return iq__region(iq__err_buf, iq__err_len);
}

/* ---------------------------------------------------------------------- */
/* Output                                                                 */

static uint8_t *iq__out_buf;
static size_t iq__out_len, iq__out_cap;

static void iq__out_reserve(size_t extra) {
    if (iq__out_len + extra <= iq__out_cap) return;
    size_t cap = iq__out_cap * 2;
    if (cap < iq__out_len + extra) cap = iq__out_len + extra;
    if (cap < 256) cap = 256;
    iq__out_buf = iq__grow(iq__out_buf, cap);
    iq__out_cap = cap;
}

static void iq__begin_call(void) { iq__out_len = 0; }

void iq_out_reset(void) { iq__out_len = 0; }

void iq_out_write(const void *p, size_t n) {
    iq__out_reserve(n);
    iq__copy(iq__out_buf + iq__out_len, p, n);
    iq__out_len += n;
}

void iq_out_byte(uint8_t c) {
    iq__out_reserve(1);
    iq__out_buf[iq__out_len++] = c;
}

void iq_out_cstr(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    iq_out_write(s, n);
}

/* Writes v in decimal, at least `width` digits (zero-padded). */
static void iq__out_digits(uint64_t v, unsigned width) {
    uint8_t tmp[20];
    unsigned k = 0;
    do {
        tmp[k++] = (uint8_t)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (; width > k; width--) iq_out_byte('0');
    iq__out_reserve(k);
    while (k > 0) iq__out_buf[iq__out_len++] = tmp[--k];
}

void iq_out_uint(uint64_t v) { iq__out_digits(v, 1); }

void iq_out_int(int64_t v) { iq_out_fixed(v, 0); }

void iq_out_fixed(int64_t v, unsigned places) {
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    if (v < 0) iq_out_byte('-');
    if (places == 0) {
        iq__out_digits(mag, 1);
        return;
    }
    uint64_t whole = 0, frac = mag;
    if (places < 20) { /* 10^19 is the largest power of ten a uint64_t holds */
        uint64_t p10 = 1;
        for (unsigned i = 0; i < places; i++) p10 *= 10;
        whole = mag / p10;
        frac = mag % p10;
    }
    iq__out_digits(whole, 1);
    iq_out_byte('.');
    iq__out_digits(frac, places);
}

void iq_out_json_string(const void *p, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const uint8_t *s = p;
    iq_out_byte('"');
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        iq_out_write(s + start, i - start);
        start = i + 1;
        uint8_t esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t k = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = (uint8_t)hex[c >> 4];
            esc[5] = (uint8_t)hex[c & 15];
            k = 6;
        }
        iq_out_write(esc, k);
    }
    iq_out_write(s + start, n - start);
    iq_out_byte('"');
}

/* An operation's i64 result from its function's status: IQ_OK is the output
 * buffer. */
static int64_t iq__result(int32_t st) {
    if (st == IQ_OK) return iq__region(iq__out_buf, iq__out_len);
    if (st > 0) return iq_fail("the plugin returned an unknown status");
    return st;
}

/* ---------------------------------------------------------------------- */
/* UTF-8                                                                  */

int iq_utf8_valid(const void *p, size_t n) {
    const uint8_t *s = p;
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            return 0;
        }
        if (n - i - 1 < need) return 0;
        if (s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
        i += need + 1;
    }
    return 1;
}

/* ---------------------------------------------------------------------- */
/* JSON reading                                                           */

#define IQ_JSON_MAX_DEPTH 10000

static int iq__is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

static int iq__hex(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static size_t iq__skip_ws(const uint8_t *s, size_t n, size_t i) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

/* s[i] is the opening quote. */
static size_t iq__skip_string(const uint8_t *s, size_t n, size_t i) {
    i++;
    while (i < n) {
        uint8_t c = s[i];
        if (c == '"') return i + 1;
        if (c < 0x20) return IQ_BAD;
        if (c != '\\') {
            i++;
            continue;
        }
        if (i + 1 >= n) return IQ_BAD;
        uint8_t e = s[i + 1];
        if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' ||
            e == 't') {
            i += 2;
        } else if (e == 'u') {
            if (n - i < 6) return IQ_BAD;
            for (size_t k = 2; k < 6; k++)
                if (iq__hex(s[i + k]) < 0) return IQ_BAD;
            i += 6;
        } else {
            return IQ_BAD;
        }
    }
    return IQ_BAD;
}

static size_t iq__skip_number(const uint8_t *s, size_t n, size_t i) {
    if (i < n && s[i] == '-') i++;
    if (i >= n) return IQ_BAD;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && iq__is_digit(s[i])) i++;
    } else {
        return IQ_BAD;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !iq__is_digit(s[i])) return IQ_BAD;
        while (i < n && iq__is_digit(s[i])) i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= n || !iq__is_digit(s[i])) return IQ_BAD;
        while (i < n && iq__is_digit(s[i])) i++;
    }
    return i;
}

static size_t iq__skip_literal(const uint8_t *s, size_t n, size_t i, const char *lit) {
    for (; *lit; lit++, i++)
        if (i >= n || s[i] != (uint8_t)*lit) return IQ_BAD;
    return i;
}

/* s[i] should open a member name: skips `"name" :` and the whitespace
 * after the colon. */
static size_t iq__skip_key(const uint8_t *s, size_t n, size_t i) {
    if (i >= n || s[i] != '"') return IQ_BAD;
    i = iq__skip_string(s, n, i);
    if (i == IQ_BAD) return IQ_BAD;
    i = iq__skip_ws(s, n, i);
    if (i >= n || s[i] != ':') return IQ_BAD;
    return iq__skip_ws(s, n, i + 1);
}

static uint8_t iq__stack[IQ_JSON_MAX_DEPTH];

static size_t iq__skip_value(const uint8_t *s, size_t n, size_t i) {
    size_t depth = 0;
    for (;;) {
        /* A value starts at s[i]. */
        if (i >= n) return IQ_BAD;
        uint8_t c = s[i];
        if (c == '{' || c == '[') {
            if (depth == IQ_JSON_MAX_DEPTH) return IQ_BAD;
            iq__stack[depth++] = c;
            i = iq__skip_ws(s, n, i + 1);
            if (i < n && s[i] == (c == '{' ? '}' : ']')) {
                depth--;
                i++;
            } else {
                if (c == '{') {
                    i = iq__skip_key(s, n, i);
                    if (i == IQ_BAD) return IQ_BAD;
                }
                continue;
            }
        } else if (c == '"') {
            i = iq__skip_string(s, n, i);
        } else if (c == '-' || iq__is_digit(c)) {
            i = iq__skip_number(s, n, i);
        } else if (c == 't') {
            i = iq__skip_literal(s, n, i, "true");
        } else if (c == 'f') {
            i = iq__skip_literal(s, n, i, "false");
        } else if (c == 'n') {
            i = iq__skip_literal(s, n, i, "null");
        } else {
            return IQ_BAD;
        }
        if (i == IQ_BAD) return IQ_BAD;
        /* After a value: close containers until a comma or the end. */
        for (;;) {
            if (depth == 0) return i;
            i = iq__skip_ws(s, n, i);
            if (i >= n) return IQ_BAD;
            uint8_t top = iq__stack[depth - 1];
            if (s[i] == ',') {
                i = iq__skip_ws(s, n, i + 1);
                if (top == '{') {
                    i = iq__skip_key(s, n, i);
                    if (i == IQ_BAD) return IQ_BAD;
                }
                break;
            }
            if (s[i] == (top == '{' ? '}' : ']')) {
                depth--;
                i++;
                continue;
            }
            return IQ_BAD;
        }
    }
}

int32_t iq_json_object_open(iq_json_object *it, iq_bytes json) {
    it->s = json.ptr;
    it->n = json.len;
    size_t i = iq__skip_ws(json.ptr, json.len, 0);
    if (i >= json.len || json.ptr[i] != '{') {
        it->state = 2;
        return iq_reject("not a JSON object");
    }
    it->i = i + 1;
    it->state = 0;
    return IQ_OK;
}

int iq_json_object_next(iq_json_object *it, iq_bytes *name, iq_bytes *value) {
    const uint8_t *s = it->s;
    size_t n = it->n;
    if (it->state == 2) return 0;
    size_t i = iq__skip_ws(s, n, it->i);
    int end = 0;
    if (i < n && s[i] == '}') {
        end = 1;
    } else if (it->state == 1) {
        if (i >= n || s[i] != ',') goto bad;
        i = iq__skip_ws(s, n, i + 1);
    }
    if (end) {
        i = iq__skip_ws(s, n, i + 1);
        if (i != n) goto bad;
        it->i = i;
        it->state = 2;
        return 0;
    }
    if (i >= n || s[i] != '"') goto bad;
    size_t j = iq__skip_string(s, n, i);
    if (j == IQ_BAD) goto bad;
    name->ptr = s + i + 1;
    name->len = j - i - 2;
    i = iq__skip_ws(s, n, j);
    if (i >= n || s[i] != ':') goto bad;
    i = iq__skip_ws(s, n, i + 1);
    j = iq__skip_value(s, n, i);
    if (j == IQ_BAD) goto bad;
    value->ptr = s + i;
    value->len = j - i;
    it->i = j;
    it->state = 1;
    return 1;
bad:
    it->state = 2;
    iq_reject("not well-formed JSON");
    return -1;
}

/* ---------------------------------------------------------------------- */
/* Parameters                                                             */

static uint8_t *iq__arena;
static size_t iq__arena_cap;
static iq_param *iq__params;
static size_t iq__params_cap;

static void iq__put_utf8(uint8_t *dst, size_t *k, uint32_t cp) {
    if (cp < 0x80) {
        dst[(*k)++] = (uint8_t)cp;
    } else if (cp < 0x800) {
        dst[(*k)++] = (uint8_t)(0xC0 | (cp >> 6));
        dst[(*k)++] = (uint8_t)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        dst[(*k)++] = (uint8_t)(0xE0 | (cp >> 12));
        dst[(*k)++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        dst[(*k)++] = (uint8_t)(0x80 | (cp & 0x3F));
    } else {
        dst[(*k)++] = (uint8_t)(0xF0 | (cp >> 18));
        dst[(*k)++] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        dst[(*k)++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        dst[(*k)++] = (uint8_t)(0x80 | (cp & 0x3F));
    }
}

static uint32_t iq__hex4(const uint8_t *s) {
    return (uint32_t)(iq__hex(s[0]) << 12 | iq__hex(s[1]) << 8 | iq__hex(s[2]) << 4 | iq__hex(s[3]));
}

/* Decodes the JSON string opening at s[i] into the arena at *k (the
 * decoded text is never longer than the encoded one). Returns the index
 * past the closing quote, or IQ_BAD. */
static size_t iq__decode_string(const uint8_t *s, size_t n, size_t i, size_t *k) {
    size_t end = iq__skip_string(s, n, i);
    if (end == IQ_BAD) return IQ_BAD;
    i++;
    while (i < end - 1) {
        uint8_t c = s[i];
        if (c != '\\') {
            iq__arena[(*k)++] = c;
            i++;
            continue;
        }
        uint8_t e = s[i + 1];
        i += 2;
        switch (e) {
        case 'b': iq__arena[(*k)++] = '\b'; break;
        case 'f': iq__arena[(*k)++] = '\f'; break;
        case 'n': iq__arena[(*k)++] = '\n'; break;
        case 'r': iq__arena[(*k)++] = '\r'; break;
        case 't': iq__arena[(*k)++] = '\t'; break;
        case 'u': {
            uint32_t cp = iq__hex4(s + i);
            i += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && i + 6 <= end - 1 && s[i] == '\\' && s[i + 1] == 'u') {
                uint32_t lo = iq__hex4(s + i + 2);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
            }
            if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD; /* a lone surrogate */
            iq__put_utf8(iq__arena, k, cp);
            break;
        }
        default: iq__arena[(*k)++] = e; /* " \ / */
        }
    }
    return end;
}

/* Parses a JSON object of strings. IQ_OK, or IQ_REJECT (error set). The
 * result lives until the next call. */
static int32_t iq__params_parse(iq_bytes json, const iq_param **params, size_t *count) {
    const uint8_t *s = json.ptr;
    size_t n = json.len, k = 0, cnt = 0;
    *params = NULL;
    *count = 0;
    if (json.len + 1 > iq__arena_cap) {
        iq__arena_cap = json.len + 1;
        iq__arena = iq__grow(iq__arena, iq__arena_cap);
    }
    size_t i = iq__skip_ws(s, n, 0);
    if (i >= n || s[i] != '{') goto bad;
    i = iq__skip_ws(s, n, i + 1);
    if (i < n && s[i] == '}') {
        i++;
    } else {
        for (;;) {
            if (i >= n || s[i] != '"') goto bad;
            size_t name_off = k;
            i = iq__decode_string(s, n, i, &k);
            if (i == IQ_BAD) goto bad;
            size_t name_len = k - name_off;
            i = iq__skip_ws(s, n, i);
            if (i >= n || s[i] != ':') goto bad;
            i = iq__skip_ws(s, n, i + 1);
            if (i >= n || s[i] != '"') goto bad;
            size_t value_off = k;
            i = iq__decode_string(s, n, i, &k);
            if (i == IQ_BAD) goto bad;
            if (cnt == iq__params_cap) {
                iq__params_cap = iq__params_cap ? iq__params_cap * 2 : 8;
                iq__params = iq__grow(iq__params, iq__params_cap * sizeof(iq_param));
            }
            /* The arena does not move during a parse. */
            iq__params[cnt].name.ptr = iq__arena + name_off;
            iq__params[cnt].name.len = name_len;
            iq__params[cnt].value.ptr = iq__arena + value_off;
            iq__params[cnt].value.len = k - value_off;
            cnt++;
            i = iq__skip_ws(s, n, i);
            if (i < n && s[i] == ',') {
                i = iq__skip_ws(s, n, i + 1);
                continue;
            }
            if (i < n && s[i] == '}') {
                i++;
                break;
            }
            goto bad;
        }
    }
    if (iq__skip_ws(s, n, i) != n) goto bad;
    *params = iq__params;
    *count = cnt;
    return IQ_OK;
bad:
    return iq_reject("parameters are not a JSON object of strings");
}

int iq_bytes_eq(iq_bytes b, const char *s) {
    size_t i = 0;
    for (; i < b.len; i++)
        if (s[i] == 0 || (uint8_t)s[i] != b.ptr[i]) return 0;
    return s[i] == 0;
}

int iq_bytes_has_prefix(iq_bytes b, const char *s) {
    for (size_t i = 0; s[i]; i++)
        if (i >= b.len || (uint8_t)s[i] != b.ptr[i]) return 0;
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Operations and transform batches                                       */

int64_t iq__op(int32_t p, int32_t n, int32_t (*fn)(iq_bytes)) {
    iq__begin_call();
    return iq__result(fn(iq__in(p, n)));
}

int32_t iq__partition(int32_t p, int32_t n, int32_t parts, int32_t (*fn)(iq_bytes, int32_t)) {
    iq__begin_call();
    if (parts <= 0) return iq_fail("iq_partition: partitions must be positive");
    int32_t got = fn(iq__in(p, n), parts);
    if (got >= parts) return iq_fail("iq_partition: the plugin returned a partition past the last");
    return got;
}

static int iq__in_batch;

int32_t iq__transform_begin(int32_t p, int32_t n, int32_t (*fn)(const iq_param *, size_t)) {
    iq__begin_call();
    iq__in_batch = 0;
    const iq_param *params;
    size_t count;
    int32_t st = iq__params_parse(iq__in(p, n), &params, &count);
    if (st != IQ_OK) return st;
    st = fn(params, count);
    if (st == IQ_OK) iq__in_batch = 1;
    return st;
}

int64_t iq__transform_record(int32_t p, int32_t n, int32_t (*fn)(iq_bytes, iq_bytes)) {
    iq__begin_call();
    if (!iq__in_batch) return iq_fail("iq_transform_record called outside a batch");
    iq_bytes in = iq__in(p, n);
    if (in.len < 4) return iq_reject("record frame shorter than 4 bytes");
    size_t klen = (size_t)in.ptr[0] | (size_t)in.ptr[1] << 8 | (size_t)in.ptr[2] << 16 |
                  (size_t)in.ptr[3] << 24;
    if (klen > in.len - 4) return iq_reject("record frame: key length past the end");
    iq_bytes key = {in.ptr + 4, klen};
    iq_bytes value = {in.ptr + 4 + klen, in.len - 4 - klen};
    return iq__result(fn(key, value));
}

void iq__transform_end(void (*fn)(void)) {
    iq__begin_call();
    iq__in_batch = 0;
    if (fn) fn();
}
