/*
 * commit.c — group commit of audit records. With synchronous=FULL every
 * commit is an fsync; requests that arrive together share one: their attempt
 * records (which must be durable before the directory is touched) and outcome
 * records are written in one transaction, and only then does each request go
 * on.
 *
 * Once commit_start has run, the transactions are written by a writer thread
 * on its own database connection, so the event loop neither waits for the
 * fsync nor spends its time in SQLite (in profiles that was 45 % of the
 * loop). One batch is in the writer's hands at a time; records queued
 * meanwhile form the next batch, handed over as soon as the writer is done.
 * The chain stays whole because each transaction reads the tail under the
 * write lock, whichever connection writes.
 *
 * Commit delay: every audit fsync also slows slapd's own fsyncs on the same
 * disk (in the bench, moving the audit file to tmpfs raised throughput by a
 * quarter), and at hotline concurrency records arrive about one per commit.
 * So while more requests are in flight than the open batch holds, the
 * writer gathers records for up to [audit] commit_delay_ms before it
 * commits; a lone request is committed at once.
 *
 * Answer first: a change is answered as soon as the directory has answered,
 * and its outcome record joins the next commit. The attempt was durable
 * before the directory was touched; a crash before the outcome's commit
 * leaves the attempt pending, and the next start resolves it by reading the
 * directory (DESIGN: audit model), as for a crash at the directory. Waiting
 * for that second fsync put it in series with every request: at 16
 * concurrent unlocks ~2 of a request's ~8 ms (doc/performance.md). An
 * outcome that carries other writes (a four-eyes request's row) or records
 * a refusal still waits for its commit. Outcomes alone wait up to the delay
 * for an attempt to share their commit: a lone operator's next request then
 * costs one fsync, not two.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "act_internal.h"
#include "audit.h"
#include "log.h"

#define COMMIT_BUSY_MS (180 * 1000)

/* The writer thread and what it shares with the loop (under mu). */
struct committer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct audit *audit;    /* the writer's own connection; only the thread uses it */
	struct event *done_ev;  /* activated by the thread when a batch is written */
	struct event *lazy_ev;  /* the longest early outcomes alone wait for an attempt */
	bool lazy_due;          /* lazy_ev fired: hand them over alone */
	struct act_queue batch; /* the batch in the writer's hands */
	/* W_GATHER: the batch is open, the loop may still add to it. */
	enum { W_IDLE, W_GATHER, W_WRITING, W_DONE } state;
	size_t n;              /* records in batch */
	size_t expect;         /* requests in flight when records were last added */
	struct timespec first; /* when the batch opened (CLOCK_MONOTONIC) */
	long delay_ns;         /* the longest gather */
	bool stop;
	bool stored;   /* W_DONE: the batch's transaction committed */
	char err[256]; /* W_DONE and !stored: why not */
};

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

void commit_pair(struct act *x, const char *result, const char *text,
                 void (*done)(struct act *x, const char *err))
{
	x->pair_result = result;
	x->pair_done = done;
	free(x->out_text);
	x->out_text = text != NULL ? strdup(text) : NULL;
	commit_attempt(x);
}

/* A waiting read (commit_after_settled). */
struct settle_waiter {
	STAILQ_ENTRY(settle_waiter) entry;
	uint64_t target; /* A->answer_seq when it came */
	void (*fn)(void *arg);
	void *arg;
};

/* As many reads as the API runs at once, with room to spare. */
#define SETTLE_WAIT_MAX 4096

/* Whether x may be answered before its outcome is stored (see the top):
 * only with the writer thread (at the stop, batches are written on the
 * loop at once), only a change (a refusal after a stored attempt reads back
 * as something else), only one whose outcome carries no other write, and
 * not the daemon's own expiry (no client waits; its next tick reads the
 * store). */
static bool answers_first(const struct act *x)
{
	return x->A->committer != NULL && x->refuse_result == NULL && x->in_txn == NULL &&
	       x->kind != ACT_EXPIRE;
}

void commit_outcome(struct act *x, enum dir_status st, const char *text)
{
	x->has_outcome = true;
	x->out_st = st;
	free(x->out_text);
	x->out_text = text != NULL ? strdup(text) : NULL;
	TAILQ_INSERT_TAIL(&x->A->outcomes, x, commit);
	if (answers_first(x)) {
		x->early = true;
		x->A->answer_seq++;
		/* As outcome_release would answer it; x stays queued. */
		act_outcome_reply(x, st, x->out_text, x->out_text);
	}
	commit_kick(x->A);
}

void commit_after_settled(struct actions *A, void (*fn)(void *arg), void *arg)
{
	struct settle_waiter *w;

	/* Too many waiting (or no memory): this one runs now, without waiting. */
	if (A->settled >= A->answer_seq || A->n_settle_wait >= SETTLE_WAIT_MAX ||
	    (w = calloc(1, sizeof(*w))) == NULL) {
		fn(arg);
		return;
	}
	w->target = A->answer_seq;
	w->fn = fn;
	w->arg = arg;
	STAILQ_INSERT_TAIL(&A->settle_wait, w, entry);
	A->n_settle_wait++;
}

/* After a commit: the reads whose outcomes have all had theirs go on (in
 * order: their targets only grow). Each leaves the list before it runs:
 * what it runs may queue another read. */
static void settle_run(struct actions *A)
{
	struct settle_waiter *w;

	while ((w = STAILQ_FIRST(&A->settle_wait)) != NULL && w->target <= A->settled) {
		void (*fn)(void *arg) = w->fn;
		void *arg = w->arg;

		STAILQ_REMOVE_HEAD(&A->settle_wait, entry);
		A->n_settle_wait--;
		free(w);
		fn(arg);
	}
}

static const char *result_word(enum dir_status st)
{
	return st == DIR_OK ? "ok" : st == DIR_UNCHANGED ? "unchanged" : "failed";
}

/* Moves both queues into batch, outcomes first (their attempts are older). */
static void batch_take(struct actions *A, struct act_queue *batch)
{
	TAILQ_CONCAT(batch, &A->outcomes, commit);
	TAILQ_CONCAT(batch, &A->attempts, commit);
}

/* An outcome that cannot be added stays pending, resolved at the next start. */
static const char *outcome_result(const struct act *x);

static void fill_outcome(struct audit *a, struct act *x)
{
	const char *result = outcome_result(x);
	int (*hook)(struct act *, struct audit *, char *, size_t) = x->in_txn;
	struct audit_mark m;
	char err[256];

	x->in_txn = NULL;
	/* Under a savepoint, which also refuses a batch SQLite has rolled back:
	 * the hook's write never lands outside the batch. */
	if (hook != NULL && audit_batch_savepoint(a, &m, err, sizeof(err)) == 0) {
		int rc = hook(x, a, err, sizeof(err));

		audit_batch_release(a, &m, rc == 0);
		if (rc == -1)
			log_warnx("audit: attempt %lld: %s", (long long)x->attempt, err);
	} else if (hook != NULL) {
		log_warnx("audit: attempt %lld: %s", (long long)x->attempt, err);
	}
	if (audit_batch_outcome(a, x->attempt, result, x->out_text, err, sizeof(err)) == -1) {
		log_warnx("audit: cannot record the outcome of attempt %lld: %s (kept to be "
		          "recorded when the store works again)",
		          (long long)x->attempt, err);
		x->commit_err = strdup(err); /* batch_release parks it */
	}
}

/* x's attempt, or its pair, with what its hook writes: whole or not at all
 * (an attempt alone would look pending, and the next start would "recover"
 * a refused request). Return: 0, or -1 with err. */
static int fill_attempt(struct audit *a, struct act *x, char *err, size_t errlen)
{
	int (*hook)(struct act *, struct audit *, char *, size_t) = x->in_txn;
	struct audit_event ev;
	struct audit_mark m;
	int rc;

	if (hook != NULL) {
		if (audit_batch_savepoint(a, &m, err, errlen) == -1)
			return -1; /* in_txn stays set: the hook did not run */
		x->in_txn = NULL;
		if (hook(x, a, err, errlen) == -1) {
			audit_batch_release(a, &m, false);
			return -1;
		}
	}
	act_fill_term(x);
	act_event(x, &ev); /* after the hook, which may fill x (a request id) */
	rc = x->pair_done != NULL && x->pair_result != NULL
	         ? audit_batch_pair(a, &ev, x->pair_result, x->out_text, &x->attempt, err, errlen)
	         : audit_batch_attempt(a, &ev, &x->attempt, err, errlen);
	if (hook != NULL)
		audit_batch_release(a, &m, rc == 0);
	return rc;
}

/* Writes every record of batch into the open transaction of a. An attempt
 * that cannot be added is left out and marked (commit_err) to be answered
 * 503. Runs on the writer thread or, without one, on the loop: it touches
 * nothing but the records and the acts' commit fields. */
static void batch_fill(struct audit *a, struct act_queue *batch)
{
	struct act *x;
	char err[256];

	TAILQ_FOREACH(x, batch, commit)
	{
		if (x->has_outcome) {
			fill_outcome(a, x);
			continue;
		}
		if (fill_attempt(a, x, err, sizeof(err)) == -1) {
			x->attempt = 0;
			x->commit_err = strdup(err);
			if (x->commit_err == NULL)
				x->commit_err = strdup("out of memory");
		}
	}
}

/* One transaction for the whole batch. Return: 0 stored, or -1 with err
 * (nothing stored). */
static int batch_write(struct audit *a, struct act_queue *batch, char *err, size_t errlen)
{
	if (audit_batch_begin(a, err, errlen) == -1)
		return -1;
	batch_fill(a, batch);
	return audit_batch_commit(a, err, errlen);
}

static void refuse_unstored(struct act *x, const char *err)
{
	x->attempt = 0;
	act_reply(x, ACT_UNAVAILABLE, "audit_unavailable",
	          "the audit store cannot record this action, so it was not done: %s", err);
}

static const char *outcome_result(const struct act *x)
{
	return x->refuse_result != NULL ? x->refuse_result : result_word(x->out_st);
}

/* An outcome is answered as the directory gave it: the change is made
 * whether or not its record was stored. One the store did not take is kept
 * (act_park) and written as soon as the store works again (a full disk
 * freed), so it does not wait for the next start as a pending attempt. */
static void outcome_release(struct act *x, bool stored)
{
	if ((!stored || x->commit_err != NULL) && !act_park(x, outcome_result(x), x->out_text))
		log_warnx("audit: attempt %lld stays pending until the next start (too many "
		          "outcomes wait for the store)",
		          (long long)x->attempt);
	if (x->refuse_result != NULL)
		act_reply(x, x->refuse_status, x->refuse_code, "%s",
		          x->out_text != NULL ? x->out_text : "");
	else
		act_outcome_reply(x, x->out_st, x->out_text, x->out_text);
}

/* After the commit, on the loop: attempts go on to the directory, outcomes
 * are answered. If the commit failed, nothing was stored: attempts are
 * refused (the directory was not touched) and outcomes answered (left
 * pending). */
static void batch_release(struct actions *A, struct act_queue *batch, bool stored, const char *err)
{
	struct act *x;

	if (stored) {
		A->commits++;
		TAILQ_FOREACH(x, batch, commit)
		{
			bool pair =
			    x->pair_done != NULL && x->pair_result != NULL && x->commit_err == NULL;

			A->pairs += pair;
			A->committed += pair ? 2 : x->commit_err == NULL;
		}
		A->audit_error[0] = '\0';
	} else {
		snprintf(A->audit_error, sizeof(A->audit_error), "%s", err);
		log_warnx("audit: cannot store records, refusing their actions: %s", err);
	}
	/* Outcomes are answered, queued and committed in one order: counting
	 * this batch's early ones brings settled to the last of them. */
	TAILQ_FOREACH(x, batch, commit)
	A->settled += x->early;
	while ((x = TAILQ_FIRST(batch)) != NULL) {
		TAILQ_REMOVE(batch, x, commit);
		if (x->pair_done != NULL)
			x->pair_done(x, stored ? x->commit_err : err);
		else if (x->has_outcome)
			outcome_release(x, stored);
		else if (!stored)
			refuse_unstored(x, err);
		else if (x->commit_err != NULL)
			refuse_unstored(x, x->commit_err);
		else
			act_dispatch(x);
	}
	settle_run(A);
}

static void deadline_after(const struct timespec *t, long ns, struct timespec *out)
{
	out->tv_sec = t->tv_sec + (t->tv_nsec + ns) / 1000000000L;
	out->tv_nsec = (t->tv_nsec + ns) % 1000000000L;
}

/* Under mu: gathers until the batch holds a record for every request in
 * flight, or the delay has passed since it opened. */
static void writer_gather(struct committer *c)
{
	struct timespec until;

	deadline_after(&c->first, c->delay_ns, &until);
	while (c->state == W_GATHER && !c->stop && c->n < c->expect &&
	       pthread_cond_timedwait(&c->cv, &c->mu, &until) == 0)
		;
}

static void *writer_main(void *arg)
{
	struct committer *c = arg;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (c->state != W_GATHER && !c->stop)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->state != W_GATHER)
			break;
		if (c->delay_ns > 0)
			writer_gather(c);
		/* From here the loop leaves the batch alone until it sees W_DONE. */
		c->state = W_WRITING;
		pthread_mutex_unlock(&c->mu);
		c->err[0] = '\0';
		c->stored = batch_write(c->audit, &c->batch, c->err, sizeof(c->err)) == 0;
		pthread_mutex_lock(&c->mu);
		c->state = W_DONE;
		event_active(c->done_ev, EV_READ,
		             0); /* safe across threads: evthread_use_pthreads */
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* Takes a finished batch back from the writer. Return: true if there was one. */
static bool writer_collect(struct committer *c, struct act_queue *batch, bool *stored, char *err,
                           size_t errlen)
{
	bool done;

	pthread_mutex_lock(&c->mu);
	done = c->state == W_DONE;
	if (done) {
		TAILQ_CONCAT(batch, &c->batch, commit);
		*stored = c->stored;
		snprintf(err, errlen, "%s", c->err);
		c->state = W_IDLE;
	}
	pthread_mutex_unlock(&c->mu);
	return done;
}

static size_t queue_len(const struct act_queue *q)
{
	const struct act *x;
	size_t n = 0;

	TAILQ_FOREACH(x, q, commit)
	n++;
	return n;
}

/* Hands the queued records to the writer: a new batch if it is idle (and
 * may_open), more for the batch it is gathering. leaving: requests still
 * counted in flight that will add no record (writer_done_cb). Return:
 * false if they wait (it is writing, or idle and !may_open). */
static bool writer_hand(struct actions *A, struct committer *c, bool may_open, size_t leaving)
{
	bool open;

	bool fresh;

	pthread_mutex_lock(&c->mu);
	open = (may_open && c->state == W_IDLE) || c->state == W_GATHER;
	fresh = open && c->state == W_IDLE;
	if (fresh) {
		c->n = 0;
		clock_gettime(CLOCK_MONOTONIC, &c->first);
		c->state = W_GATHER;
	}
	if (open) {
		c->n += queue_len(&A->outcomes) + queue_len(&A->attempts);
		c->expect =
		    A->busy > 0 && (size_t)A->busy > leaving ? (size_t)A->busy - leaving : 0;
		/* Outcomes that waited out the delay for company (commit_hand)
		 * are not made to wait again. */
		if (c->lazy_due)
			c->expect = 0;
		batch_take(A, &c->batch);
		/* A gathering writer is woken only when its batch is full: every
		 * wake-up is a context switch, and its deadline wakes it anyway. */
		if (fresh || c->n >= c->expect)
			pthread_cond_signal(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	return open;
}

static bool queues_empty(const struct actions *A)
{
	return TAILQ_EMPTY(&A->attempts) && TAILQ_EMPTY(&A->outcomes);
}

/* The requests of batch that have no record left to add. */
static size_t batch_finished(const struct act_queue *batch)
{
	const struct act *x;
	size_t n = 0;

	TAILQ_FOREACH(x, batch, commit)
	n += x->has_outcome || x->pair_done != NULL;
	return n;
}

/* Whether every queued outcome was answered early (none waits for it). */
static bool outcomes_answered(const struct actions *A)
{
	const struct act *x;

	TAILQ_FOREACH(x, &A->outcomes, commit)
	if (!x->answered)
		return false;
	return true;
}

/* Early outcomes alone do not open a commit of their own: they join the
 * batch the writer is gathering, or wait up to the commit delay for an
 * attempt to share their fsync (at a lone operator's pace the next request
 * comes within a millisecond of the reply). Anything else is handed to the
 * writer now; while it writes, writer_done_cb hands them over. */
static void commit_hand(struct actions *A, struct committer *c, size_t leaving)
{
	bool lazy =
	    TAILQ_EMPTY(&A->attempts) && !c->lazy_due && c->delay_ns > 0 && outcomes_answered(A);

	if (writer_hand(A, c, !lazy, leaving)) {
		c->lazy_due = false;
		evtimer_del(c->lazy_ev);
	} else if (lazy && !evtimer_pending(c->lazy_ev, NULL)) {
		struct timeval tv = {.tv_sec = 0, .tv_usec = c->delay_ns / 1000};

		evtimer_add(c->lazy_ev, &tv);
	}
}

static void lazy_cb(evutil_socket_t fd, short what, void *arg)
{
	struct actions *A = arg;

	(void)fd;
	(void)what;
	A->committer->lazy_due = true;
	commit_flush(A);
}

static void writer_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct actions *A = arg;
	struct act_queue batch = TAILQ_HEAD_INITIALIZER(batch);
	char err[256];
	bool stored = false;

	(void)fd;
	(void)what;
	if (!writer_collect(A->committer, &batch, &stored, err, sizeof(err)))
		return;
	/* Records queued while the writer was busy go next, before this batch's
	 * requests (released below) queue more. Those whose records are all in
	 * it (outcomes, pairs) are still counted in flight until then, but will
	 * add none to the next batch: its gather does not wait for them. */
	if (!queues_empty(A))
		commit_hand(A, A->committer, batch_finished(&batch));
	batch_release(A, &batch, stored, err);
}

void commit_flush(struct actions *A)
{
	struct act_queue batch = TAILQ_HEAD_INITIALIZER(batch);
	char err[256] = "";
	bool stored;

	if (queues_empty(A))
		return;
	if (A->committer != NULL) {
		commit_hand(A, A->committer, 0);
		return;
	}
	batch_take(A, &batch);
	stored = batch_write(A->audit, &batch, err, sizeof(err)) == 0;
	batch_release(A, &batch, stored, err);
}

void commit_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	commit_flush(arg);
}

int commit_start(struct actions *A, struct event_base *base, const char *db, int delay_ms,
                 char *err, size_t errlen)
{
	struct committer *c = calloc(1, sizeof(*c));
	pthread_condattr_t ca;

	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	TAILQ_INIT(&c->batch);
	c->delay_ns = (long)delay_ms * 1000000L;
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	/* Opened here, then used by the thread alone until audit_close after
	 * the join: never by two threads at once. */
	if (audit_open_single(db, &c->audit, err, errlen) == -1)
		goto fail;
	audit_guard_join(c->audit, audit_guard_take(A->audit));
	/* An import (job.h) holds the write lock for its one transaction, a
	 * minute for a million rows here: the writer waits it out instead of
	 * refusing every action meanwhile and leaving outcomes pending. */
	audit_set_busy_timeout(c->audit, COMMIT_BUSY_MS);
	/* The writer only appends: the right edges of the table and its indexes
	 * fit in 256 KiB. The default 2 MB filled up over hours and was most of
	 * the daemon's growth in RSS (bench: 30 MB fresh, 32.3 MB after 100 runs). */
	audit_set_cache(c->audit, 256);
	c->done_ev = event_new(base, -1, 0, writer_done_cb, A);
	c->lazy_ev = evtimer_new(base, lazy_cb, A);
	if (c->done_ev == NULL || c->lazy_ev == NULL ||
	    pthread_create(&c->thread, NULL, writer_main, c) != 0) {
		snprintf(err, errlen, "cannot start the audit writer thread");
		goto fail;
	}
	pthread_setname_np(c->thread, "ldapdeskd-audit"); /* top -H, perf --sort comm */
	A->committer = c;
	return 0;
fail:
	if (c->done_ev != NULL)
		event_free(c->done_ev);
	if (c->lazy_ev != NULL)
		event_free(c->lazy_ev);
	audit_close(c->audit);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
	return -1;
}

/* Waits for the writer's batch, answers it, then writes what is left on the
 * loop's connection and stops the thread. */
void commit_stop(struct actions *A)
{
	struct committer *c = A->committer;
	struct act_queue batch = TAILQ_HEAD_INITIALIZER(batch);
	char err[256] = "";
	bool stored = false;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	A->committer = NULL;
	if (writer_collect(c, &batch, &stored, err, sizeof(err)))
		batch_release(A, &batch, stored, err);
	event_free(c->done_ev);
	event_free(c->lazy_ev);
	audit_close(c->audit);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
	commit_flush(A);
}
