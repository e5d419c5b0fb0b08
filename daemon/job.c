/*
 * job.c — one thread per job: open the database, run the work, close, and
 * wake the loop with an event that the thread activates (safe across
 * threads once evthread_use_pthreads ran).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "audit.h"
#include "job.h"

struct job {
	pthread_t thread;
	pthread_mutex_t mu; /* guards a and stopped */
	struct audit *a;    /* the thread's connection while it works */
	bool stopped;
	struct audit_guard *guard; /* parent's, a reference the thread hands on */
	struct event *done_ev;
	char db[4096];
	job_work_fn work;
	job_done_fn done;
	void *arg;
	int rc;        /* set by the thread before done_ev fires */
	char err[512]; /* likewise */
};

static void *job_main(void *arg)
{
	struct job *j = arg;
	struct audit *a = NULL;

	j->rc = audit_open_existing(j->db, &a, j->err, sizeof(j->err));
	if (j->rc == 0)
		audit_guard_join(a, j->guard);
	else
		audit_guard_drop(j->guard);
	if (j->rc == 0) {
		audit_stoppable(a);
		pthread_mutex_lock(&j->mu);
		j->a = a;
		if (j->stopped)
			audit_interrupt(a);
		pthread_mutex_unlock(&j->mu);
		j->rc = j->work(a, j->arg, j->err, sizeof(j->err));
	}
	pthread_mutex_lock(&j->mu);
	j->a = NULL;
	/* Only a failure the stop caused (SQLite: "interrupted"): a bad row or
	 * a repeated import that merely ended after the stop keeps its answer. */
	if (j->stopped && j->rc != 0 && strstr(j->err, "interrupt") != NULL) {
		j->rc = JOB_STOPPED;
		snprintf(j->err, sizeof(j->err),
		         "ldapdeskd is stopping: this was stopped before it finished and nothing "
		         "was changed; try again once the daemon is back");
	}
	pthread_mutex_unlock(&j->mu);
	audit_close(a);
	event_active(j->done_ev, EV_TIMEOUT, 0);
	return NULL;
}

static void job_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;

	(void)fd;
	(void)what;
	pthread_join(j->thread, NULL);
	j->done(j->arg, j->rc, j->err);
	event_free(j->done_ev);
	pthread_mutex_destroy(&j->mu);
	free(j);
}

void job_stop(struct job *j)
{
	pthread_mutex_lock(&j->mu);
	j->stopped = true;
	if (j->a != NULL)
		audit_interrupt(j->a);
	pthread_mutex_unlock(&j->mu);
}

struct job *job_start(struct event_base *base, struct audit *parent, job_work_fn work,
                      job_done_fn done, void *arg, char *err, size_t errlen)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j == NULL || (j->done_ev = event_new(base, -1, 0, job_done_cb, j)) == NULL) {
		free(j);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&j->mu, NULL);
	snprintf(j->db, sizeof(j->db), "%s", audit_path(parent));
	j->work = work;
	j->done = done;
	j->arg = arg;
	j->guard = audit_guard_take(parent);
	if (pthread_create(&j->thread, NULL, job_main, j) != 0) {
		audit_guard_drop(j->guard);
		event_free(j->done_ev);
		pthread_mutex_destroy(&j->mu);
		free(j);
		snprintf(err, errlen, "cannot start a thread: try again");
		return NULL;
	}
	return j;
}

void job_cancel(struct job *j)
{
	if (j == NULL)
		return;
	pthread_join(j->thread, NULL);
	event_free(j->done_ev);
	pthread_mutex_destroy(&j->mu);
	free(j);
}
