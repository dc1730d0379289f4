/* SPDX-License-Identifier: BSD-3-Clause */
/* cohort/client.h - libcohort's C client API.
 *
 * Connect to a running controller through a profile's client connection
 * file, send requests to engines and receive one reply per target engine.
 * Calls block until the request completes. A client is not thread-safe:
 * use one per thread.
 *
 *	struct cohort_error err;
 *	struct cohort_client *c = cohort_connect(NULL, &err);
 *	struct cohort_request rq = { .op = "execute", .code = "1+1" };
 *	if (c == NULL || cohort_request(c, &rq, on_reply, NULL, &err) < 0)
 *		fprintf(stderr, "%s\n", err.text);
 */
#ifndef COHORT_CLIENT_H
#define COHORT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "cohort/error.h"

struct cohort_client;

/* One engine's answer to a request. Pointers are valid during the
 * callback only; strings are NUL-terminated. */
struct cohort_reply {
	int64_t engine;          /* engine id */
	int64_t rank;            /* MPI rank of the engine */
	const char *status;      /* "ok", "error", "dead" or "timeout" */
	const char *escalation;  /* late engines: the last step of an
				    escalating timeout sent to it
				    ("interrupt", "term", "kill"), or NULL */
	const char *out;         /* captured stdout ("" if none) */
	const char *err;         /* captured stderr ("" if none) */
	const char *result;      /* repr of a trailing expression, or NULL */
	const char *ename;       /* error: exception name, or NULL */
	const char *evalue;      /* error: exception text, or NULL */
	const char *traceback;   /* error: traceback text, or NULL */
	int64_t execution_count; /* execute: the engine's counter */
	double elapsed;          /* seconds the engine spent */
	const void *data;        /* pull: encoded msgpack value, or NULL */
	size_t len;              /* pull: its length */
};

/* A request. op is "execute" (code), "push" (name, data/len: one msgpack
 * value), or "pull" (name). targets is a spec such as "all", "0,2", "1-3";
 * NULL means all. timeout is in seconds; 0 waits for ever. */
struct cohort_request {
	const char *op;
	const char *targets;
	const char *code;
	const char *name;
	const void *data;
	size_t len;
	double timeout;
	/* On timeout, interrupt the engines still running (else their code
	 * keeps running and only the wait ends). */
	int interrupt_on_timeout;
	/* Return as soon as the controller has accepted the request; the
	 * results wait in its table of jobs (cohort_result). */
	int nonblock;
	/* Let code call collectives on communicators that include ranks
	 * the request does not target (the engines' guard refuses them by
	 * default, since they would wait for ever). */
	int allow_partial_collectives;
	/* What to do with engines still running at the timeout: NULL or ""
	 * (nothing: their code runs on), "interrupt", "term" or "kill".
	 * Each step is taken in turn, grace seconds apart (default 2), on
	 * the engines still running: interrupt, then SIGTERM, then SIGKILL.
	 * interrupt_on_timeout is the same as "interrupt". */
	const char *on_timeout;
	double grace;
	/* Data movement over MPI among the engines of one job (op "bcast",
	 * "move", "allgather", "redistribute"; name is the value): root is
	 * the source engine of bcast and move (move's one target receives);
	 * as, if set, the name to bind (move, allgather). */
	int64_t root;
	const char *as;
};

/* One job in the controller's table. */
struct cohort_job {
	int64_t id, ntargets, ndone, nfailed;
	char op[16];
	char state[16]; /* "running", "done" or "failed" */
	char targets[64];
	char code[64];  /* the code (or value name), shortened */
	double age;     /* seconds since it started */
	double elapsed; /* seconds it ran (so far) */
};

/* One registered engine. */
struct cohort_engine {
	int64_t id, rank, size, pid;
	char host[256];
	char kernel[32];
	char job[64];
	char state[16];
	double uptime;
};

/* Connect using a profile (a name, a path containing '/', or NULL for the
 * default; COHORT_DIR is honoured). NULL with err on failure, e.g.
 * "controller unreachable at 127.0.0.1:4567: Connection refused". */
struct cohort_client *cohort_connect(const char *profile,
				     struct cohort_error *err);
/* Close the connection and free the client; NULL is fine. */
void cohort_disconnect(struct cohort_client *c);

typedef void (*cohort_reply_fn)(const struct cohort_reply *r, void *arg);

/* Live output: text an engine wrote to name ("stdout" or "stderr") while
 * running the current request; not NUL-terminated. */
typedef void (*cohort_stream_fn)(int64_t engine, const char *name,
				 const char *text, size_t len, void *arg);

/* Receive live output of later requests through fn (NULL: off, the
 * default; replies always carry the whole output anyway). */
void cohort_set_stream(struct cohort_client *c, cohort_stream_fn fn,
		       void *arg);

/* Progress of a streaming request: called about every 0.25 s while it
 * runs with the engines done so far and the number targeted. */
typedef void (*cohort_progress_fn)(size_t done, size_t total, double elapsed,
				   void *arg);
void cohort_set_progress(struct cohort_client *c, cohort_progress_fn fn,
			 void *arg);

/* Make later requests interruptible from the terminal: a first SIGINT
 * (Ctrl-C) while a request runs interrupts the targets' code (a Python
 * KeyboardInterrupt, reported per engine) and keeps waiting; a second
 * within a second stops waiting and returns -1 ("left running"). If the
 * request's value (over 4 MiB) is still being sent then, the client
 * closes its connection instead (the engines drop the part they got;
 * later calls fail with the reason). */
void cohort_set_interruptible(struct cohort_client *c, int on);

/* Send an interrupt to the targets' running code. */
int cohort_interrupt(struct cohort_client *c, const char *targets,
		     cohort_reply_fn fn, void *arg, struct cohort_error *err);

/* Send a request and call fn once per target engine as replies arrive (in
 * arrival order). Returns the number of targets whose status is not "ok"
 * (0 if all succeeded), or -1 with err if the request as a whole failed
 * (bad targets, unknown engines, controller unreachable). */
int cohort_request(struct cohort_client *c, const struct cohort_request *rq,
		   cohort_reply_fn fn, void *arg, struct cohort_error *err);

/* Run code on the targets (a wrapper of cohort_request). */
int cohort_execute(struct cohort_client *c, const char *targets,
		   const char *code, double timeout, cohort_reply_fn fn,
		   void *arg, struct cohort_error *err);

/* Bind name to a value (one msgpack object, see cohort/kernel.h) on every
 * target. Returns as cohort_request. */
int cohort_push(struct cohort_client *c, const char *targets,
		const char *name, const void *data, size_t len,
		cohort_reply_fn fn, void *arg, struct cohort_error *err);

/* Fetch the value bound to name from each target: each reply carries the
 * engine's encoded value in data/len, valid during the callback. The
 * client keeps the buffers of large values (1 MiB and more) for the next
 * ones, so repeated transfers do not fault in fresh memory: up to 2 GiB,
 * each freed when a request ends more than 5 s after its last use, all
 * at cohort_disconnect(). */
int cohort_pull(struct cohort_client *c, const char *targets,
		const char *name, cohort_reply_fn fn, void *arg,
		struct cohort_error *err);

/* Split an array value (ndarray or list) along its first axis across the
 * targets in engine order, part sizes differing by at most one, and bind
 * each part to name on its engine. One request: each part's head, then
 * its slice of data, sent by reference (not copied); the controller
 * slices the payload without decoding it. */
int cohort_scatter(struct cohort_client *c, const char *targets,
		   const char *name, const void *data, size_t len,
		   cohort_reply_fn fn, void *arg, struct cohort_error *err);

/* Pull name from the targets and concatenate the parts in engine order
 * into *out (malloc'd, *outlen bytes: one msgpack value). Fails with err
 * if any target fails (its reply is still passed to fn). */
int cohort_gather(struct cohort_client *c, const char *targets,
		  const char *name, void **out, size_t *outlen,
		  cohort_reply_fn fn, void *arg, struct cohort_error *err);

/* The controller's job id of the last request (0 if none). */
int64_t cohort_last_job(struct cohort_client *c);

/* Deliver the replies of job id so far; targets still running come as
 * replies with status "pending". *running is set to 1 if the job has not
 * finished. -1 with err if the job is unknown or its result was evicted
 * from the controller's bounded table. */
int cohort_result(struct cohort_client *c, int64_t id, cohort_reply_fn fn,
		  void *arg, int *running, struct cohort_error *err);

/* List running and recent jobs into a malloc'd array (free() it). */
int cohort_jobs(struct cohort_client *c, struct cohort_job **list, size_t *n,
		struct cohort_error *err);

/* List registered engines into a malloc'd array (free() it). */
int cohort_engines(struct cohort_client *c, struct cohort_engine **list,
		   size_t *n, struct cohort_error *err);

/* Asynchronous submission. cohort_submit() sends a request as
 * cohort_request() would with nonblock set, but returns as soon as it is
 * queued, without waiting for the controller's acknowledgement: many
 * requests can be in flight on one connection. It returns a ticket (> 0)
 * that the acknowledgement will carry, or -1 with err if the request
 * could not be sent (bad targets, connection lost). At most 4,096
 * submissions wait for their acknowledgement at a time: beyond that (or
 * while over 32 MiB of output are queued) cohort_submit() first waits.
 * rq->data is referenced, not copied, when it is larger than 4 MiB, and
 * cohort_submit() then returns once all of it has been written to the
 * connection (as cohort_push() does), so it may be freed on return. Other
 * calls may be made between submissions; acknowledgements that arrive
 * meanwhile are kept.
 *
 * cohort_collect() waits until every submission made since the last
 * collect is acknowledged, then calls fn once per submission, in
 * submission order, with its ticket and either the job id (the results
 * wait in the controller's table of jobs: cohort_result(); it keeps the
 * last 1,000 finished jobs, see cohort-controller --jobs) or the
 * controller's refusal (error, e.g. "no engine 7"; job is then 0). It
 * returns the number of refused submissions, or -1 with err if the
 * connection was lost (unacknowledged submissions are then forgotten).
 *
 *	for (i = 0; i < n; i++)
 *		if (cohort_submit(c, &rq, &err) < 0) ...
 *	cohort_collect(c, on_ack, &jobs, &err);
 */
int64_t cohort_submit(struct cohort_client *c,
		      const struct cohort_request *rq,
		      struct cohort_error *err);
typedef void (*cohort_ack_fn)(int64_t ticket, int64_t job, const char *error,
			      void *arg);
int cohort_collect(struct cohort_client *c, cohort_ack_fn fn, void *arg,
		   struct cohort_error *err);

#endif
