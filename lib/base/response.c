/*
 * response.c - response building. Bodies are rendered by cJSON; headers are
 * checked for CR/LF here, once, so no handler can inject a header.
 */
#include "response.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void drop_file(fm_response *resp)
{
    if (resp->has_file)
        (void)close(resp->file_fd);
    resp->has_file = false;
    resp->file_len = 0;
}

void fm_response_reset(fm_response *resp)
{
    drop_file(resp);
    free(resp->body);
    memset(resp, 0, sizeof(*resp));
}

void fm_response_file(fm_response *resp, int status, int fd, uint64_t len)
{
    drop_file(resp);
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    resp->status = status;
    resp->has_file = true;
    resp->file_fd = fd;
    resp->file_len = len;
}

fm_err fm_response_header(fm_response *resp, const char *fmt, ...)
{
    va_list ap;
    char *line;
    int n;

    if (resp->nheaders >= FM_RESPONSE_MAX_HEADERS)
        return FM_EINVAL;
    line = resp->headers[resp->nheaders];
    va_start(ap, fmt);
    n = vsnprintf(line, FM_RESPONSE_HEADER_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= FM_RESPONSE_HEADER_MAX || strpbrk(line, "\r\n") != NULL) {
        line[0] = '\0';
        return FM_EINVAL;
    }
    resp->nheaders++;
    return FM_OK;
}

static void set_body(fm_response *resp, char *body)
{
    drop_file(resp);
    free(resp->body);
    resp->content_type = NULL;
    resp->body = body;
    resp->body_len = body != NULL ? strlen(body) : 0;
}

fm_err fm_response_json(fm_response *resp, int status, const cJSON *json)
{
    char *text = cJSON_PrintUnformatted(json);

    if (text == NULL) {
        set_body(resp, NULL);
        resp->status = 500;
        errno = ENOMEM;
        return FM_ESYS;
    }
    set_body(resp, text);
    resp->status = status;
    return FM_OK;
}

void fm_response_json_take(fm_response *resp, int status, char *body, size_t len)
{
    drop_file(resp);
    free(resp->body);
    resp->body = body;
    resp->body_len = len;
    resp->status = status;
    resp->content_type = NULL;
}

void fm_response_text_take(fm_response *resp, int status, const char *content_type, char *body,
                           size_t len)
{
    fm_response_json_take(resp, status, body, len);
    resp->content_type = content_type;
}

void fm_response_error(fm_response *resp, int status, const char *code, const char *message,
                       const char *trace_id)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || cJSON_AddStringToObject(o, "error", message) == NULL ||
        cJSON_AddStringToObject(o, "code", code) == NULL ||
        cJSON_AddStringToObject(o, "trace_id", trace_id != NULL ? trace_id : "") == NULL) {
        cJSON_Delete(o);
        set_body(resp, NULL);
        resp->status = status;
        return;
    }
    (void)fm_response_json(resp, status, o);
    cJSON_Delete(o);
}

const char *fm_response_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    }
    return "Unknown";
}
