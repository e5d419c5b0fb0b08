/*
 * api.h — the HTTP API: routes, authentication, request validation, and the
 * mapping of action results to HTTP answers (DESIGN.md "HTTP API").
 */
#pragma once
#include <jansson.h>

struct act_request;

struct config;
struct actions;
struct sessions;
struct audit;
struct dir;
struct evhttp_request;
struct api;
struct http;

/* All pointers are borrowed and must outlive the api. Return NULL on ENOMEM. */
struct api *api_new(const struct config *conf, struct actions *A, struct sessions *s,
                    struct audit *a, struct dir *d);
void api_free(struct api *api);

/* Jobs (report, verify, log query, import) running now: a stop waits for
 * them like for requests in flight. */
int api_jobs(const struct api *api);

/* The daemon stops: a new job (report, verify, log query, import) is
 * answered 503 "stopping" instead of being started. */
void api_stopping(struct api *api);

/* At the stop's deadline: each running job rolls back and is answered 503
 * "stopping" once its thread has ended. */
void api_stop_jobs(struct api *api);

struct backup;

/* The backup scheduler behind POST /v1/backup and health (NULL: none). */
void api_set_backup(struct api *api, struct backup *b);

/* The server whose unsent replies bound new log and report jobs (NULL:
 * none). h must outlive api's use of it. */
void api_set_http(struct api *api, const struct http *h);

/* Requests routed from now on use conf. */
void api_set_config(struct api *api, const struct config *conf);

/* Fills req's event fields (ticket, requester, department, channel, note,
 * until, category, description, permission, days, unlock) from a request
 * body; strings stay owned by body. Return: 0, or -1 when a field has the
 * wrong type or range. */
int api_body_fields(json_t *body, struct act_request *req);

/* The http_handler_fn: answers every request, now or when its action ends. */
void api_handle(void *arg, struct evhttp_request *req);

/* http_gate_fn for POST /v1/import (arg: the api): 0 for an administrator's
 * live session, 401 without one, 403 for other roles. */
int api_import_gate(void *arg, const char *bearer);
/* http_allow_fn: the methods the API takes on uri's path (NULL: none). */
const char *api_allow(void *arg, const char *uri);
