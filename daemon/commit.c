/*
 * commit.c — group commit of audit records. With synchronous=FULL every
 * commit is an fsync on the event loop; requests that arrive together share
 * one: their attempt records (which must be durable before the directory is
 * touched) and outcome records are written in one transaction when the loop
 * comes round, and only then does each request go on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "act_internal.h"
#include "audit.h"
#include "log.h"

/* Called from the loop once per burst (an active event coalesces). */
void commit_flush_cb(evutil_socket_t fd, short what, void *arg);

static void commit_kick(struct actions *A)
{
	if (A->flush_ev != NULL)
		event_active(A->flush_ev, EV_TIMEOUT, 0);
	else
		commit_flush(A);
}

void commit_attempt(struct act *x)
{
	TAILQ_INSERT_TAIL(&x->A->attempts, x, commit);
	commit_kick(x->A);
}

void commit_outcome(struct act *x, enum dir_status st, const char *text)
{
	x->has_outcome = true;
	x->out_st = st;
	free(x->out_text);
	x->out_text = text != NULL ? strdup(text) : NULL;
	TAILQ_INSERT_TAIL(&x->A->outcomes, x, commit);
	commit_kick(x->A);
}

static const char *result_word(enum dir_status st)
{
	return st == DIR_OK ? "ok" : st == DIR_UNCHANGED ? "unchanged" : "failed";
}

/* Adds every queued record to the open batch; an attempt that cannot be
 * added is dropped from the batch and answered 503 at once. */
static void batch_fill(struct actions *A, struct act_queue *ready)
{
	struct act *x;
	struct audit_event ev;
	char err[256];

	while ((x = TAILQ_FIRST(&A->outcomes)) != NULL) {
		TAILQ_REMOVE(&A->outcomes, x, commit);
		if (audit_batch_outcome(A->audit, x->attempt, result_word(x->out_st), x->out_text,
		                        err, sizeof(err)) == -1)
			log_warnx("audit: cannot record the outcome of attempt %lld: %s (it stays "
			          "pending and is resolved at the next start)",
			          (long long)x->attempt, err);
		TAILQ_INSERT_TAIL(ready, x, commit);
	}
	while ((x = TAILQ_FIRST(&A->attempts)) != NULL) {
		TAILQ_REMOVE(&A->attempts, x, commit);
		act_event(x, &ev);
		if (audit_batch_attempt(A->audit, &ev, &x->attempt, err, sizeof(err)) == -1) {
			x->attempt = 0;
			act_reply(
			    x, ACT_UNAVAILABLE, "audit_unavailable",
			    "the audit store cannot record this action, so it was not done: %s",
			    err);
			continue;
		}
		TAILQ_INSERT_TAIL(ready, x, commit);
	}
}

/* After the commit: attempts go on to the directory, outcomes are answered.
 * If the commit failed, nothing was stored: attempts are refused (the
 * directory was not touched) and outcomes answered (left pending). */
static void batch_release(struct actions *A, struct act_queue *ready, bool stored, const char *err)
{
	struct act *x;

	while ((x = TAILQ_FIRST(ready)) != NULL) {
		TAILQ_REMOVE(ready, x, commit);
		if (x->has_outcome) {
			enum dir_status st = x->out_st;

			act_outcome_reply(x, st, x->out_text, x->out_text);
		} else if (stored) {
			act_dispatch(x);
		} else {
			x->attempt = 0;
			act_reply(
			    x, ACT_UNAVAILABLE, "audit_unavailable",
			    "the audit store cannot record this action, so it was not done: %s",
			    err);
		}
	}
	(void)A;
}

void commit_flush(struct actions *A)
{
	struct act_queue ready = TAILQ_HEAD_INITIALIZER(ready);
	char err[256] = "";
	bool stored;

	if (TAILQ_EMPTY(&A->attempts) && TAILQ_EMPTY(&A->outcomes))
		return;
	if (audit_batch_begin(A->audit, err, sizeof(err)) == -1) {
		stored = false;
		while (!TAILQ_EMPTY(&A->outcomes) || !TAILQ_EMPTY(&A->attempts)) {
			struct act *x = TAILQ_FIRST(&A->outcomes) != NULL
			                    ? TAILQ_FIRST(&A->outcomes)
			                    : TAILQ_FIRST(&A->attempts);

			if (x->has_outcome)
				TAILQ_REMOVE(&A->outcomes, x, commit);
			else
				TAILQ_REMOVE(&A->attempts, x, commit);
			TAILQ_INSERT_TAIL(&ready, x, commit);
		}
	} else {
		batch_fill(A, &ready);
		stored = audit_batch_commit(A->audit, err, sizeof(err)) == 0;
	}
	if (stored) {
		A->audit_error[0] = '\0';
	} else {
		snprintf(A->audit_error, sizeof(A->audit_error), "%s", err);
		log_warnx("audit: cannot store records, refusing their actions: %s", err);
	}
	batch_release(A, &ready, stored, err);
}

void commit_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	commit_flush(arg);
}
