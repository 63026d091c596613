/*
 * response.h - an HTTP response under construction, and the JSON error body
 * every refusal carries: {"error": "...", "code": "...", "trace_id": "..."}.
 * Status codes and their meaning follow RFC 9110.
 */
#ifndef FM_RESPONSE_H
#define FM_RESPONSE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define FM_RESPONSE_MAX_HEADERS 12
#define FM_RESPONSE_HEADER_MAX 256 /* bytes per header line, without CRLF */
#define FM_RESPONSE_TYPE_MAX 64    /* bytes of a content_type */

typedef struct fm_response {
    int status; /* 0 until set */
    char headers[FM_RESPONSE_MAX_HEADERS][FM_RESPONSE_HEADER_MAX];
    size_t nheaders;
    char *body;      /* heap, owned; NULL = empty */
    size_t body_len; /* bytes */
    bool has_file;   /* the body is instead file_len bytes of file_fd, from its offset 0 */
    int file_fd;     /* owned while has_file: closed by fm_response_reset or a later body */
    uint64_t file_len;
    const char *content_type; /* static, < FM_RESPONSE_TYPE_MAX bytes; NULL: application/json */
} fm_response;

/* fm_response_reset - free the body and clear everything, ready for reuse. */
void fm_response_reset(fm_response *resp);

/*
 * fm_response_header - add one "Name: value" line (printf-style, no CRLF).
 * CR and LF are refused so no value can split the response (RFC 9110
 * section 5.5). Returns FM_OK, or FM_EINVAL when the table is full
 * (FM_RESPONSE_MAX_HEADERS), the line does not fit FM_RESPONSE_HEADER_MAX or
 * it contains CR/LF; the line is then not added.
 */
fm_err fm_response_header(fm_response *resp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * fm_response_json - set status and a JSON body rendered from json (not
 * consumed; the caller still owns it) with Content-Type application/json.
 * Returns FM_OK, or FM_ESYS (errno ENOMEM) when the body cannot be rendered:
 * the response is then a bare 500.
 */
fm_err fm_response_json(fm_response *resp, int status, const cJSON *json);

/*
 * fm_response_json_take - set status and a JSON body the caller has already
 * rendered (for a handler that caches most of its rendering): body is heap
 * memory from malloc holding len bytes of JSON and a NUL, and the response
 * owns it from now on (freed by fm_response_reset or a later body). Content
 * Type is application/json as for fm_response_json. Replaces any body already
 * set; headers already added stay. Never fails.
 */
void fm_response_json_take(fm_response *resp, int status, char *body, size_t len);

/*
 * fm_response_text_take - as fm_response_json_take, for a body of another
 * media type: content_type (a static string under FM_RESPONSE_TYPE_MAX bytes, e.g. "text/plain;
 * version=0.0.4; charset=utf-8") is the Content-Type sent. Never fails.
 */
void fm_response_text_take(fm_response *resp, int status, const char *content_type, char *body,
                           size_t len);

/*
 * fm_response_error - set status and the JSON error body with code (e.g.
 * "UNAUTHORIZED"), message (must not contain secrets; it is sent as is) and
 * trace_id. Replaces any body already set. Headers already added stay.
 */
void fm_response_error(fm_response *resp, int status, const char *code, const char *message,
                       const char *trace_id);

/*
 * fm_response_file - set status and a body streamed from fd (len bytes read
 * from its offset 0, a download; the writer sends them in chunks, never
 * whole in memory). The response owns fd from now on and closes it when it
 * is reset or given another body (fm_response_json, _json_take, _error).
 * No Content-Type is added: the handler names one with fm_response_header.
 * Never fails.
 */
void fm_response_file(fm_response *resp, int status, int fd, uint64_t len);

/* fm_response_reason - RFC 9110 reason phrase for status ("Not Found"), "Unknown" otherwise. */
const char *fm_response_reason(int status);

#endif
