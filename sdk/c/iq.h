/*
 * iq.h - the iqengine plugin SDK for C (ABI v1, see sdk/ABI.md).
 *
 * Build a plugin with iq.c and your own file:
 *
 *   clang --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor -O2 \
 *         -I sdk/c sdk/c/iq.c my_plugin.c -o my_plugin.wasm
 *
 * iq.c exports what every plugin needs: the iq_abi_v1 marker, iq_alloc (one
 * reusable input buffer), iq_init (stores the static config; define
 * iq_on_init to look at it) and iq_last_error. A plugin adds its capabilities
 * with the IQ_* export macros below, each naming a plain C function:
 *
 *   static int32_t value_to_json(iq_bytes in) {
 *       if (in.len < 4) return iq_reject("too short");
 *       iq_out_cstr("{\"n\":");
 *       iq_out_uint(in.ptr[0]);
 *       iq_out_byte('}');
 *       return IQ_OK;
 *   }
 *   IQ_VALUE_TO_JSON(value_to_json)
 *
 * A function writes its result into one output buffer owned by the SDK,
 * emptied before every operation and valid until the host's next call (as
 * the ABI wants), and returns IQ_OK (the buffer is the result) or a status.
 * Nothing here uses stdio, files or the clock: a module built with this SDK
 * imports nothing at all.
 */
#ifndef IQ_H
#define IQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks a function as a module export with the given name. */
#define IQ_EXPORT(name) __attribute__((export_name(name), visibility("default"), used))

/* Statuses (sdk/ABI.md "Results"). */
#define IQ_OK 0
#define IQ_REJECT (-1) /* the input is not valid for this plugin: HTTP 422 */
#define IQ_FAIL (-2)   /* the plugin could not do its job: HTTP 500 */
#define IQ_SKIP (-3)   /* transform records only: filter the record out */

/* A byte region: an input, a part of one, or a decoded parameter. */
typedef struct {
    const uint8_t *ptr;
    size_t len;
} iq_bytes;

/* The static config given to iq_init (a JSON object; "{}" when none). */
iq_bytes iq_config(void);

/* Called by iq_init after the config is stored. The default accepts any
 * config; define your own (a strong symbol) to validate it. Return IQ_OK,
 * iq_reject(...) or iq_fail(...). */
int32_t iq_on_init(iq_bytes config);

/* ---- errors: set iq_last_error's message and return the status ---- */

int32_t iq_reject(const char *msg);
int32_t iq_fail(const char *msg);
/* Builds a longer message: iq_error_set, then iq_error_append*. */
void iq_error_set(const char *msg);
void iq_error_append(const void *p, size_t n);
void iq_error_append_cstr(const char *s);

/* ---- results: the output buffer ---- */

void iq_out_reset(void);
void iq_out_write(const void *p, size_t n);
void iq_out_byte(uint8_t c);
void iq_out_cstr(const char *s);

/* ---- the SDK helpers of every language (sdk/ABI.md "SDK helpers") ---- */

/* An integer in decimal. */
void iq_out_int(int64_t v);
void iq_out_uint(uint64_t v);
/* v / 10^places written exactly, with `places` fraction digits:
 * iq_out_fixed(2137, 2) writes 21.37, iq_out_fixed(-5, 2) -0.05,
 * iq_out_fixed(451, 1) 45.1, iq_out_fixed(7, 0) 7. */
void iq_out_fixed(int64_t v, unsigned places);
/* A JSON string with its quotes: " and \ escaped, \n \r \t \b \f in short
 * form, other bytes below 0x20 as \u00xx, every other byte copied. */
void iq_out_json_string(const void *p, size_t n);

/* 1 if the bytes are valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int iq_utf8_valid(const void *p, size_t n);

/* Walks the members of a JSON object without copying anything. */
typedef struct {
    const uint8_t *s;
    size_t n, i;
    int state; /* 0 before first member, 1 after a member, 2 done */
} iq_json_object;

/* IQ_OK when json is an object (after optional whitespace), else
 * iq_reject(...). */
int32_t iq_json_object_open(iq_json_object *it, iq_bytes json);
/* 1: a member, with name = the raw text between the quotes (not
 * unescaped) and value = the raw value text; 0: end of the object (and of
 * the input, apart from whitespace); -1: malformed JSON (nesting deeper
 * than 10000 included), with iq_reject(...)'s message set. */
int iq_json_object_next(iq_json_object *it, iq_bytes *name, iq_bytes *value);

/* ---- transform parameters ---- */

/* One parameter of a transform batch, decoded (escapes resolved). The SDK
 * parses them before calling the begin function; they stay valid until the
 * next batch begins. */
typedef struct {
    iq_bytes name;
    iq_bytes value;
} iq_param;

/* 1 if b holds exactly the C string s. */
int iq_bytes_eq(iq_bytes b, const char *s);
/* 1 if b begins with the C string s. */
int iq_bytes_has_prefix(iq_bytes b, const char *s);

/* ---- internals used by the export macros ---- */

int64_t iq__op(int32_t p, int32_t n, int32_t (*fn)(iq_bytes));
int32_t iq__partition(int32_t p, int32_t n, int32_t parts, int32_t (*fn)(iq_bytes, int32_t));
int32_t iq__transform_begin(int32_t p, int32_t n, int32_t (*fn)(const iq_param *, size_t));
int64_t iq__transform_record(int32_t p, int32_t n, int32_t (*fn)(iq_bytes, iq_bytes));
void iq__transform_end(void (*fn)(void));

/* ---- export macros: one per capability ----
 * Each function writes its result with iq_out_* and returns IQ_OK, or
 * returns a status: iq_reject(msg), iq_fail(msg), or (transform records
 * only) IQ_SKIP. */

/* int32_t fn(iq_bytes key) */
#define IQ_KEY_TO_JSON(fn)                                                      \
    IQ_EXPORT("iq_key_to_json") int64_t iq_key_to_json(int32_t p, int32_t n) { \
        return iq__op(p, n, fn);                                                \
    }

/* int32_t fn(iq_bytes value) */
#define IQ_VALUE_TO_JSON(fn)                                                        \
    IQ_EXPORT("iq_value_to_json") int64_t iq_value_to_json(int32_t p, int32_t n) { \
        return iq__op(p, n, fn);                                                    \
    }

/* int32_t fn(iq_bytes text) */
#define IQ_KEY_FROM_TEXT(fn)                                                        \
    IQ_EXPORT("iq_key_from_text") int64_t iq_key_from_text(int32_t p, int32_t n) { \
        return iq__op(p, n, fn);                                                    \
    }

/* int32_t fn(iq_bytes key, int32_t partitions): a partition or a status. The
 * SDK fails the call when partitions is not positive. */
#define IQ_PARTITION(fn)                                                                    \
    IQ_EXPORT("iq_partition") int32_t iq_partition(int32_t p, int32_t n, int32_t parts) { \
        return iq__partition(p, n, parts, fn);                                              \
    }

/* int32_t begin(const iq_param *params, size_t count)
 * int32_t record(iq_bytes key_json, iq_bytes value_json)
 * void end(void)
 * The SDK parses the parameters (a malformed object rejects the batch) and
 * unframes each record (a malformed frame rejects the record). */
#define IQ_TRANSFORM(begin, record, end)                                                 \
    IQ_EXPORT("iq_transform_begin") int32_t iq_transform_begin(int32_t p, int32_t n) {   \
        return iq__transform_begin(p, n, begin);                                         \
    }                                                                                    \
    IQ_EXPORT("iq_transform_record") int64_t iq_transform_record(int32_t p, int32_t n) { \
        return iq__transform_record(p, n, record);                                       \
    }                                                                                    \
    IQ_EXPORT("iq_transform_end") void iq_transform_end(void) { iq__transform_end(end); }

#ifdef __cplusplus
}
#endif

#endif /* IQ_H */
