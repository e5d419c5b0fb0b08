/*
 * job.h — work that reads or writes the whole audit store (a report, a chain
 * verify, a CSV import) runs on a thread of its own with its own database
 * connection, so the event loop goes on serving while it takes seconds; the
 * result is handed back to the loop. WAL lets a job read while the daemon
 * writes; a job that writes (an import) holds the write lock for its one
 * transaction, which the audit writer waits out (commit.c).
 */
#pragma once
#include <stddef.h>

struct audit;
struct event_base;
struct job;

/* Runs on the job's thread with the job's own connection a. Return 0, or -1
 * with err filled. It must touch nothing the loop touches but arg. */
typedef int (*job_work_fn)(struct audit *a, void *arg, char *err, size_t errlen);

/* Runs on the loop once the work is done: rc and err as work left them
 * (rc -1 with err also when the database could not be opened). */
typedef void (*job_done_fn)(void *arg, int rc, const char *err);

/* Starts work(arg) on a new thread that opens parent's database (its own
 * connection, sharing parent's guard: audit.h); done(arg) follows on base's
 * loop, after which the job frees itself. base must have been created after
 * evthread_use_pthreads(). Call on the loop that owns parent.
 * Return: the job (for job_cancel), or NULL with err filled (nothing runs). */
struct job *job_start(struct event_base *base, struct audit *parent, job_work_fn work,
                      job_done_fn done, void *arg, char *err, size_t errlen);

/* Shutdown: waits for the thread and frees the job; done is not called, so
 * arg stays the caller's to free. NULL is a no-op. */
void job_cancel(struct job *j);

/* done's rc for a job job_stop ended: the work rolled back, err says so. */
#define JOB_STOPPED (-3)

/* Shutdown: makes the work fail at its next statement (a write rolls back);
 * done follows on the loop with rc JOB_STOPPED. Does not wait. */
void job_stop(struct job *j);
