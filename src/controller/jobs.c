/* SPDX-License-Identifier: BSD-3-Clause */
/* jobs.c - fan-out of client requests to engines and gathering of replies.
 *
 * A job is one client request: a task goes to each target engine, each
 * engine's reply is forwarded to the client as it arrives (header
 * re-encoded with the client's request id, payload forwarded untouched),
 * and a done message follows the last one. Dead and late engines are
 * answered by the controller so a client never waits on them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller.h"
#include "log.h"
#include "targets.h"
#include "util.h"

static struct event_base *jobs_base;
static bool any_paused; /* some peer may have paused reading */
uint64_t jobs_max_value = 4ull << 30;
size_t jobs_keep = 1000;

/* Finished jobs and their replies, oldest first, bounded in count by
 * jobs_keep and in bytes by KEEP_BYTES (output can be large). */
#define KEEP_BYTES (64u << 20)
struct finished {
	uint64_t id;
	char *op, *code, *spec;
	size_t ntargets, nfailed;
	double started, ended;
	msgpack_sbuffer *records;
	size_t nrecords, bytes;
	TAILQ_ENTRY(finished) entry;
};
static TAILQ_HEAD(finished_head_s, finished) finished =
	TAILQ_HEAD_INITIALIZER(finished);
static size_t nfinished, finished_bytes;

static void
finished_free(struct finished *f)
{
	for (size_t i = 0; i < f->nrecords; i++)
		msgpack_sbuffer_destroy(&f->records[i]);
	free(f->records);
	free(f->op);
	free(f->code);
	free(f->spec);
	free(f);
}

/* Keep a finished job's replies; evict the oldest beyond the bounds. */
static void
finished_add(struct job *j)
{
	struct finished *f = xcalloc(1, sizeof(*f)), *old;

	f->id = j->id;
	f->op = j->op;
	f->code = j->code;
	f->spec = j->spec;
	j->op = j->code = j->spec = NULL;
	f->ntargets = j->ntargets;
	f->nfailed = j->nfailed;
	f->started = j->started;
	f->ended = now_monotonic();
	f->records = j->records;
	f->nrecords = j->nrecords;
	j->records = NULL;
	j->nrecords = 0;
	for (size_t i = 0; i < f->nrecords; i++)
		f->bytes += f->records[i].size;
	TAILQ_INSERT_TAIL(&finished, f, entry);
	nfinished++;
	finished_bytes += f->bytes;
	while ((nfinished > jobs_keep || finished_bytes > KEEP_BYTES) &&
	       (old = TAILQ_FIRST(&finished)) != NULL) {
		TAILQ_REMOVE(&finished, old, entry);
		nfinished--;
		finished_bytes -= old->bytes;
		finished_free(old);
	}
}

/* An sbuffer starts at 8 KiB: for a reply header of 100 bytes that is
 * 8 MB per kept job of 1,000 engines. Keep only what is used. */
static void
sbuffer_fit(msgpack_sbuffer *sb)
{
	char *d;

	if (sb->size == 0 || sb->size == sb->alloc)
		return;
	d = realloc(sb->data, sb->size);
	if (d != NULL) {
		sb->data = d;
		sb->alloc = sb->size;
	}
}

/* Remember a reply for 'cohort result'. */
static void
job_record(struct job *j, struct msg *m)
{
	struct msg copy = *m;

	copy.has &= ~(1ull << F_CHUNKED);
	j->records = xrealloc(j->records,
			      (j->nrecords + 1) * sizeof(*j->records));
	msgpack_sbuffer_init(&j->records[j->nrecords]);
	msg_encode(&copy, &j->records[j->nrecords]);
	sbuffer_fit(&j->records[j->nrecords]);
	j->nrecords++;
}
static TAILQ_HEAD(job_head_s, job) jobs = TAILQ_HEAD_INITIALIZER(jobs);
static uint64_t next_job_id;

/* Remember the loop that timeouts run on. */
void
jobs_init(struct event_base *base)
{
	jobs_base = base;
	TAILQ_INIT(&jobs);
}

static void
job_free(struct job *j)
{
	TAILQ_REMOVE(&jobs, j, entry);
	if (j->client != NULL)
		TAILQ_REMOVE(&j->client->jobs, j, client_entry);
	if (j->timer != NULL)
		event_free(j->timer);
	for (size_t i = 0; i < j->nrecords; i++)
		msgpack_sbuffer_destroy(&j->records[i]);
	free(j->records);
	free(j->op);
	free(j->code);
	free(j->spec);
	free(j->targets);
	free(j);
}

/* Drop every job (at shutdown). */
void
jobs_free(void)
{
	struct finished *f;
	struct job *j;

	while ((j = TAILQ_FIRST(&jobs)) != NULL)
		job_free(j);
	while ((f = TAILQ_FIRST(&finished)) != NULL) {
		TAILQ_REMOVE(&finished, f, entry);
		finished_free(f);
	}
}

static struct job *
job_find(uint64_t id)
{
	struct job *j;

	/* Recent jobs are at the tail and answered first. */
	TAILQ_FOREACH_REVERSE(j, &jobs, job_head_s, entry)
		if (j->id == id)
			return j;
	return NULL;
}

static struct job_target *
job_target(struct job *j, int64_t engine)
{
	for (size_t i = 0; i < j->ntargets; i++)
		if (j->targets[i].engine == engine)
			return &j->targets[i];
	return NULL;
}

static void
job_maybe_done(struct job *j)
{
	struct msg m;

	if (j->npending > 0)
		return;
	if (j->client != NULL) {
		msg_init(&m, MSG_DONE);
		msg_set_int(&m, F_ID, (int64_t)j->client_id);
		msg_set_int(&m, F_NTARGETS, (int64_t)j->ntargets);
		msg_set_int(&m, F_NFAILED, (int64_t)j->nfailed);
		msg_set_int(&m, F_JOBID, (int64_t)j->id);
		conn_send(j->client->conn, &m, NULL);
	}
	if (j->op != NULL && strcmp(j->op, "interrupt") != 0 && !j->side)
		finished_add(j);
	job_free(j);
}

/* Answer one target on the engine's behalf (dead, timeout). */
static void
job_answer(struct job *j, struct job_target *t, const char *status,
	   const char *ename, const char *evalue, const char *escalation)
{
	struct engine *e = registry_get(t->engine);
	struct msg m;

	t->pending = false;
	j->npending--;
	j->nfailed++;
	/* A timed-out engine still runs the task: its late reply will
	 * lower ntasks and make it idle again. */
	msg_init(&m, MSG_REPLY);
	msg_set_int(&m, F_ENGINE, t->engine);
	msg_set_int(&m, F_RANK, e ? e->rank : -1);
	msg_set_str(&m, F_STATUS, status);
	msg_set_str(&m, F_ENAME, ename);
	msg_set_str(&m, F_EVALUE, evalue);
	if (escalation != NULL)
		msg_set_str(&m, F_ESCALATION, escalation);
	msg_set_int(&m, F_ID, (int64_t)j->client_id);
	job_record(j, &m);
	if (j->client == NULL) {
		t->streaming = false;
		return;
	}
	if (t->streaming) {
		struct msg abort;

		/* The client holds part of this engine's value: drop it. */
		t->streaming = false;
		msg_init(&abort, MSG_CHUNK);
		msg_set_int(&abort, F_ID, (int64_t)j->client_id);
		msg_set_int(&abort, F_ENGINE, t->engine);
		msg_set_str(&abort, F_STATUS, "abort");
		conn_send(j->client->conn, &abort, NULL);
	}
	conn_send(j->client->conn, &m, NULL);
}

static void
send_interrupt(struct engine *e)
{
	struct msg m;

	msg_init(&m, MSG_INTERRUPT);
	if (e->peer != NULL)
		conn_send(e->peer->conn, &m, NULL);
}

static const char *const step_names[] = {
	[ESCALATE_NONE] = "none",
	[ESCALATE_INTERRUPT] = "interrupt",
	[ESCALATE_TERM] = "term",
	[ESCALATE_KILL] = "kill",
};

/* The on_timeout of a request: "" (none), interrupt, term or kill. */
static int
escalate_parse(struct str s, enum escalate *out)
{
	if (s.n == 0) {
		*out = ESCALATE_NONE;
		return 0;
	}
	for (int i = ESCALATE_INTERRUPT; i <= ESCALATE_KILL; i++)
		if (str_eq(s, step_names[i])) {
			*out = (enum escalate)i;
			return 0;
		}
	return -1;
}

/* Ask a late engine's process to end itself (term, kill). */
static void
send_signal(struct engine *e, enum escalate step)
{
	struct msg m;

	msg_init(&m, MSG_SIGNAL);
	msg_set_str(&m, F_NAME, step_names[step]);
	if (e->peer != NULL)
		conn_send(e->peer->conn, &m, NULL);
}

/* What a late engine got, for its report. died: it went away after the
 * last step. */
static void
escalation_text(const struct job *j, const struct job_target *t, bool died,
		char *buf, size_t n)
{
	int k = snprintf(buf, n, "no answer within %g s", j->timeout);

	if (k < 0 || (size_t)k >= n || j->side)
		return;
	buf += k;
	n -= (size_t)k;
	switch (t->got) {
	case ESCALATE_NONE:
		snprintf(buf, n, "; its code keeps running");
		break;
	case ESCALATE_INTERRUPT:
		snprintf(buf, n, "; interrupted, and still running %g s later",
			 j->grace);
		break;
	case ESCALATE_TERM:
		snprintf(buf, n, died ? "; the interrupt had no effect in %g s;"
			 " terminated by SIGTERM" : "; neither the interrupt "
			 "nor SIGTERM ended it (%g s each)", j->grace);
		break;
	case ESCALATE_KILL:
		snprintf(buf, n, died ? "; the interrupt and SIGTERM had no "
			 "effect (%g s each); killed by SIGKILL"
			 : "; SIGKILL sent, but the engine was still there %g "
			 "s later", j->grace);
		break;
	}
}

/* Answer a late target with what it got. */
static void
answer_late(struct job *j, struct job_target *t, bool died)
{
	static const char *const enames[] = {
		[ESCALATE_NONE] = "Timeout",
		[ESCALATE_INTERRUPT] = "Timeout",
		[ESCALATE_TERM] = "Terminated",
		[ESCALATE_KILL] = "Killed",
	};
	char text[300];

	escalation_text(j, t, died, text, sizeof(text));
	job_answer(j, t, "timeout", died ? enames[t->got] : "Timeout", text,
		   t->got != ESCALATE_NONE ? step_names[t->got] : NULL);
}

static void
job_arm(struct job *j, double seconds)
{
	struct timeval tv;

	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
	if (j->timer == NULL || evtimer_add(j->timer, &tv) < 0)
		log_warnx("cannot arm the timer of job %llu",
			  (unsigned long long)j->id);
}

/* The timeout, then each step of its escalation a grace period apart:
 * interrupt, SIGTERM, SIGKILL, as far as the request asked. Engines that
 * answer meanwhile are reported with the step they had got; those that
 * die of a signal, with it; those left at the end, as timed out. */
static void
job_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;
	bool more = j->step < j->escalate;

	(void)fd;
	(void)what;
	if (more) {
		j->step++;
		for (size_t i = 0; i < j->ntargets; i++) {
			struct job_target *t = &j->targets[i];
			struct engine *e = registry_get(t->engine);

			if (!t->pending || e == NULL)
				continue;
			t->got = j->step;
			if (j->step == ESCALATE_INTERRUPT)
				send_interrupt(e);
			else
				send_signal(e, j->step);
		}
		log_info("job %llu: timeout escalated to %s",
			 (unsigned long long)j->id, step_names[j->step]);
		job_arm(j, j->grace);
		return;
	}
	for (size_t i = 0; i < j->ntargets; i++)
		if (j->targets[i].pending)
			answer_late(j, &j->targets[i], false);
	job_maybe_done(j);
}

/* An interrupt job: signal each target and answer for it at once. */
static void
jobs_interrupt(struct job *j)
{
	for (size_t i = 0; i < j->ntargets; i++) {
		struct job_target *t = &j->targets[i];
		struct engine *e = registry_get(t->engine);
		struct msg m;

		if (e->state == ENGINE_DEAD) {
			job_answer(j, t, "dead", "EngineDead",
				   "the engine is dead", NULL);
			continue;
		}
		send_interrupt(e);
		t->pending = false;
		j->npending--;
		msg_init(&m, MSG_REPLY);
		msg_set_int(&m, F_ID, (int64_t)j->client_id);
		msg_set_int(&m, F_ENGINE, e->id);
		msg_set_int(&m, F_RANK, e->rank);
		msg_set_str(&m, F_STATUS, "ok");
		msg_set_str(&m, F_RESULT, e->state == ENGINE_BUSY
						  ? "interrupt sent"
						  : "interrupt sent (engine idle)");
		conn_send(j->client->conn, &m, NULL);
	}
	job_maybe_done(j);
}

/* A 'where' job: each live target's I/O thread answers at once with the
 * stack of its main thread, busy or not; no task is queued. */
static void
jobs_where(struct job *j, double timeout)
{
	struct msg w;

	j->side = true;
	msg_init(&w, MSG_WHERE);
	msg_set_int(&w, F_ID, (int64_t)j->id);
	for (size_t i = 0; i < j->ntargets; i++) {
		struct job_target *t = &j->targets[i];
		struct engine *e = registry_get(t->engine);

		if (e->state == ENGINE_DEAD || e->peer == NULL ||
		    conn_send(e->peer->conn, &w, NULL) < 0)
			job_answer(j, t, "dead", "EngineDead",
				   "the engine is dead", NULL);
	}
	if (j->npending > 0 && timeout > 0) {
		j->timeout = timeout;
		j->timer = evtimer_new(jobs_base, job_timeout_cb, j);
		job_arm(j, timeout);
	}
	job_maybe_done(j);
}

/* Forward a line of live output to a client that asked for it. */
void
jobs_engine_stream(struct engine *e, struct msg *m)
{
	struct job *j = job_find((uint64_t)m->id);
	struct job_target *t = j ? job_target(j, e->id) : NULL;

	if (t == NULL || !t->pending || !j->stream || j->client == NULL)
		return;
	msg_set_int(m, F_ID, (int64_t)j->client_id);
	msg_set_int(m, F_ENGINE, e->id);
	conn_send(j->client->conn, m, NULL);
}

static int
cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static bool is_move_op(struct str op);

static int
check_request(struct msg *m, struct evbuffer *payload, char *why, size_t n)
{
	enum escalate e;
	uint64_t plen = payload ? evbuffer_get_length(payload) : 0;

	if (msg_has(m, F_CHUNKED)) {
		if (plen != 0 || m->chunked <= 0 ||
		    !(str_eq(m->op, "push") || str_eq(m->op, "scatter")))
			return snprintf(why, n, "only push and scatter take a "
					"chunked value"), -1;
		plen = (uint64_t)m->chunked;
	}
	if (plen > jobs_max_value)
		return snprintf(why, n, "value of %llu bytes is over the "
				"controller's limit of %llu (--max-payload)",
				(unsigned long long)plen,
				(unsigned long long)jobs_max_value), -1;
	if (str_eq(m->op, "interrupt") || str_eq(m->op, "where")) {
		return 0;
	} else if (is_move_op(m->op)) {
		if (!msg_has(m, F_NAME))
			return snprintf(why, n, "%.*s needs a name",
					(int)m->op.n, m->op.p), -1;
		if ((str_eq(m->op, "bcast") || str_eq(m->op, "move")) &&
		    !msg_has(m, F_ROOT))
			return snprintf(why, n, "%.*s needs a source engine",
					(int)m->op.n, m->op.p), -1;
		if (str_eq(m->op, "move") &&
		    (!msg_has(m, F_TARGETS) || m->ntarget_list != 1))
			return snprintf(why, n, "move needs exactly one "
					"receiving engine"), -1;
	} else if (str_eq(m->op, "execute")) {
		if (!msg_has(m, F_CODE))
			return snprintf(why, n, "execute needs code"), -1;
	} else if (str_eq(m->op, "push")) {
		if (!msg_has(m, F_NAME) || plen == 0)
			return snprintf(why, n, "push needs a name and a "
					"value"), -1;
	} else if (str_eq(m->op, "pull")) {
		if (!msg_has(m, F_NAME))
			return snprintf(why, n, "pull needs a name"), -1;
	} else if (str_eq(m->op, "scatter")) {
		uint64_t total = 0;

		if (!msg_has(m, F_NAME) || !msg_has(m, F_TARGETS) ||
		    !msg_has(m, F_PARTS) || m->nparts != m->ntarget_list)
			return snprintf(why, n, "scatter needs a name, targets "
					"and one part size per target"), -1;
		for (size_t i = 0; i < m->nparts; i++)
			total += (uint64_t)m->parts[i];
		if (total != plen)
			return snprintf(why, n, "scatter part sizes do not add "
					"up to the payload"), -1;
	} else {
		return snprintf(why, n, "unknown operation '%.*s'",
				(int)(m->op.n > 32 ? 32 : m->op.n), m->op.p),
		       -1;
	}
	if (msg_has(m, F_TIMEOUT) && !(m->timeout >= 0 && m->timeout < 1e9))
		return snprintf(why, n, "bad timeout"), -1;
	if (msg_has(m, F_GRACE) && !(m->grace > 0 && m->grace < 1e6))
		return snprintf(why, n, "bad grace period"), -1;
	if (msg_has(m, F_ONTIMEOUT) && escalate_parse(m->on_timeout, &e) < 0)
		return snprintf(why, n, "bad on_timeout '%.*s' (interrupt, "
				"term or kill)", (int)(m->on_timeout.n > 32 ? 32
				: m->on_timeout.n), m->on_timeout.p), -1;
	return 0;
}

/* bcast, move, allgather, redistribute: engines move data over MPI. */
static bool
is_move_op(struct str op)
{
	return str_eq(op, "bcast") || str_eq(op, "move") ||
	       str_eq(op, "allgather") || str_eq(op, "redistribute");
}

static int
cmp_rank(const void *a, const void *b)
{
	const struct engine *x = registry_get(*(const int64_t *)a);
	const struct engine *y = registry_get(*(const int64_t *)b);

	return (x->rank > y->rank) - (x->rank < y->rank);
}

/* Check that the engines of a data-movement request can do it among
 * themselves: alive and of one MPI job. Fills ranks (the order the
 * engines will use: by rank; for move, from then to). */
static int
move_check(struct msg *m, int64_t *ids, size_t n, int64_t *ranks, char *why,
	   size_t size)
{
	const struct engine *first = registry_get(ids[0]);
	char a[64], b[64];

	for (size_t i = 0; i < n; i++) {
		const struct engine *e = registry_get(ids[i]);

		if (e->state == ENGINE_DEAD)
			return snprintf(why, size, "engine %lld is dead",
					(long long)e->id), -1;
		if (strcmp(e->job, first->job) != 0) {
			int64_t x = first->id, y = e->id;

			targets_format(&x, 1, a, sizeof(a));
			targets_format(&y, 1, b, sizeof(b));
			return snprintf(why, size, "%.*s runs over MPI within "
					"one MPI job, but engines %s and %s "
					"were started by different mpiexec "
					"runs; move values between jobs with "
					"pull and push", (int)m->op.n, m->op.p,
					a, b), -1;
		}
	}
	if (str_eq(m->op, "move")) {
		const struct engine *from = registry_get(m->root);

		ranks[0] = from->rank;
		ranks[1] = registry_get(m->targets[0])->rank;
		return 0;
	}
	qsort(ids, n, sizeof(*ids), cmp_rank);
	for (size_t i = 0; i < n; i++)
		ranks[i] = registry_get(ids[i])->rank;
	return 0;
}

static void
send_records(struct peer *client, int64_t id, msgpack_sbuffer *records,
	     size_t n)
{
	struct cohort_error err;

	for (size_t i = 0; i < n; i++) {
		struct msg r;

		if (msg_decode(&r, records[i].data, records[i].size, &err) < 0)
			continue;
		msg_set_int(&r, F_ID, id);
		conn_send(client->conn, &r, NULL);
		msg_clear(&r);
	}
}

/* 'cohort result': the replies of a job so far, "pending" for the rest. */
static void
jobs_result(struct peer *client, struct msg *m)
{
	struct finished *f;
	struct msg done;
	struct job *j;

	if (!msg_has(m, F_JOBID)) {
		peer_send_error(client, m->id, "result needs a job id");
		return;
	}
	msg_init(&done, MSG_DONE);
	msg_set_int(&done, F_ID, m->id);
	msg_set_int(&done, F_JOBID, m->jobid);
	if ((j = job_find((uint64_t)m->jobid)) != NULL) {
		send_records(client, m->id, j->records, j->nrecords);
		for (size_t i = 0; i < j->ntargets; i++) {
			struct engine *e = registry_get(j->targets[i].engine);
			struct msg r;

			if (!j->targets[i].pending)
				continue;
			msg_init(&r, MSG_REPLY);
			msg_set_int(&r, F_ID, m->id);
			msg_set_int(&r, F_ENGINE, j->targets[i].engine);
			msg_set_int(&r, F_RANK, e ? e->rank : -1);
			msg_set_str(&r, F_STATUS, "pending");
			msg_set_str(&r, F_EVALUE, "still running");
			conn_send(client->conn, &r, NULL);
		}
		msg_set_str(&done, F_STATE, "running");
		conn_send(client->conn, &done, NULL);
		return;
	}
	TAILQ_FOREACH(f, &finished, entry) {
		if (f->id != (uint64_t)m->jobid)
			continue;
		send_records(client, m->id, f->records, f->nrecords);
		msg_set_str(&done, F_STATE, "done");
		msg_set_int(&done, F_NFAILED, (int64_t)f->nfailed);
		conn_send(client->conn, &done, NULL);
		return;
	}
	if (m->jobid > 0 && (uint64_t)m->jobid <= next_job_id)
		peer_send_error(client, m->id, "the result of job %lld was "
				"evicted: the controller keeps the last %zu "
				"(cohort-controller --jobs N)",
				(long long)m->jobid, jobs_keep);
	else
		peer_send_error(client, m->id, "no job %lld (the last job is "
				"%llu)", (long long)m->jobid,
				(unsigned long long)next_job_id);
}

/* 'cohort jobs': running jobs and the kept finished ones, oldest first. */
static void
jobs_list(struct peer *client, struct msg *m)
{
	size_t n = 0, cap = nfinished + 16;
	struct msg_job *list = xcalloc(cap, sizeof(*list));
	double now = now_monotonic();
	struct finished *f;
	struct job *j;
	struct msg out;

#define S(x) ((struct str){ (x), strlen(x) })
	TAILQ_FOREACH(f, &finished, entry) {
		list[n] = (struct msg_job){
			.jobid = (int64_t)f->id,
			.ntargets = (int64_t)f->ntargets,
			.ndone = (int64_t)f->ntargets,
			.nfailed = (int64_t)f->nfailed,
			.op = S(f->op), .code = S(f->code),
			.state = S(f->nfailed ? "failed" : "done"),
			.targets = S(f->spec),
			.age = now - f->started,
			.elapsed = f->ended - f->started,
		};
		n++;
	}
	TAILQ_FOREACH(j, &jobs, entry) {
		if (j->op == NULL || strcmp(j->op, "interrupt") == 0 ||
		    j->side)
			continue;
		if (n == cap)
			list = xrealloc(list, (cap *= 2) * sizeof(*list));
		list[n] = (struct msg_job){
			.jobid = (int64_t)j->id,
			.ntargets = (int64_t)j->ntargets,
			.ndone = (int64_t)(j->ntargets - j->npending),
			.nfailed = (int64_t)j->nfailed,
			.op = S(j->op), .code = S(j->code),
			.state = S("running"),
			.targets = S(j->spec),
			.age = now - j->started,
			.elapsed = now - j->started,
		};
		n++;
	}
#undef S
	msg_init(&out, MSG_ENGINES);
	msg_set_int(&out, F_ID, m->id);
	msg_set_engines(&out, NULL, 0);
	msg_set_jobs(&out, list, n);
	conn_send(client->conn, &out, NULL);
	free(list);
}

/* The engines of a data-movement request: the targets plus the source
 * (bcast without targets: the source's MPI job). Returns the ranks they
 * will use (see move_check), or NULL after answering the client. */
static int64_t *
move_targets(struct peer *client, struct msg *m, int64_t **ids, size_t *n)
{
	struct engine *root = NULL;
	char why[400];
	int64_t *ranks;
	bool have = false;

	if (msg_has(m, F_ROOT) && (root = registry_get(m->root)) == NULL) {
		registry_describe(why, sizeof(why));
		peer_send_error(client, m->id, "no engine %lld (engines: %s)",
				(long long)m->root, why);
		goto fail;
	}
	if (root != NULL && str_eq(m->op, "bcast") && !msg_has(m, F_TARGETS)) {
		size_t k = 0;

		for (size_t i = 0; i < *n; i++)
			if (strcmp(registry_get((*ids)[i])->job, root->job) == 0)
				(*ids)[k++] = (*ids)[i];
		*n = k;
	}
	for (size_t i = 0; root != NULL && i < *n; i++)
		have = have || (*ids)[i] == root->id;
	if (root != NULL && !have) {
		*ids = xrealloc(*ids, (*n + 1) * sizeof(**ids));
		(*ids)[(*n)++] = root->id;
		qsort(*ids, *n, sizeof(**ids), cmp_id);
	}
	ranks = xcalloc(*n + 2, sizeof(*ranks));
	if (move_check(m, *ids, *n, ranks, why, sizeof(why)) == 0)
		return ranks;
	free(ranks);
	peer_send_error(client, m->id, "%s", why);
fail:
	free(*ids);
	*ids = NULL;
	return NULL;
}

/* Fan a client's request out to its target engines. */
void
jobs_submit(struct peer *client, struct msg *m, struct evbuffer *payload)
{
	char why[256], known[256];
	int64_t *ids = NULL;
	size_t n;
	struct job *j;
	struct msg task;
	bool scatter, chunked;
	int64_t *ranks = NULL, *move_ranks = NULL;

	if (str_eq(m->op, "result")) {
		jobs_result(client, m);
		return;
	}
	if (str_eq(m->op, "jobs")) {
		jobs_list(client, m);
		return;
	}
	if (check_request(m, payload, why, sizeof(why)) < 0) {
		peer_send_error(client, m->id, "%s", why);
		return;
	}
	if (msg_has(m, F_TARGETS)) {
		n = m->ntarget_list;
		for (size_t i = 0; i < n; i++) {
			if (registry_get(m->targets[i]) == NULL) {
				peer_send_error(client, m->id,
						"no engine %lld (engines: %s)",
						(long long)m->targets[i],
						registry_describe(
							known, sizeof(known)));
				return;
			}
		}
		if (n == 0) {
			peer_send_error(client, m->id, "empty target list");
			return;
		}
		ids = xcalloc(n, sizeof(*ids));
		memcpy(ids, m->targets, n * sizeof(*ids));
		/* One task per engine, however often a client names it. */
		qsort(ids, n, sizeof(*ids), cmp_id);
		for (size_t i = 0, k = 0; i < n; i++) {
			if (k == 0 || ids[k - 1] != ids[i])
				ids[k++] = ids[i];
			if (i + 1 == n)
				n = k;
		}
	} else {
		n = registry_live_ids(&ids);
		if (n == 0) {
			size_t all = registry_count(NULL);

			free(ids);
			if (all > 0)
				peer_send_error(client, m->id, "no live engines: "
						"all %zu registered engines are "
						"dead (cohort engines)", all);
			else
				peer_send_error(client, m->id, "no engines are "
						"registered with the controller");
			return;
		}
	}

	if (is_move_op(m->op)) {
		move_ranks = move_targets(client, m, &ids, &n);
		if (move_ranks == NULL)
			return;
	}

	j = xcalloc(1, sizeof(*j));
	j->id = ++next_job_id;
	j->client_id = (uint64_t)m->id;
	j->client = client;
	j->targets = xcalloc(n, sizeof(*j->targets));
	j->ntargets = j->npending = n;
	j->stream = msg_has(m, F_STREAM) && m->stream;
	j->started = now_monotonic();
	j->op = str_dup(m->op);
	j->code = msg_has(m, F_CODE) ? str_dup(m->code)
		  : msg_has(m, F_NAME) ? str_dup(m->name) : xstrdup("");
	if (strlen(j->code) > 60)
		strcpy(j->code + 57, "...");
	for (char *p = j->code; *p != '\0'; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	if (msg_has(m, F_ONTIMEOUT))
		(void)escalate_parse(m->on_timeout, &j->escalate);
	j->timeout = msg_has(m, F_TIMEOUT) ? m->timeout : 0;
	j->grace = msg_has(m, F_GRACE) ? m->grace : 2.0;
	TAILQ_INSERT_TAIL(&jobs, j, entry);
	TAILQ_INSERT_TAIL(&client->jobs, j, client_entry);
	for (size_t i = 0; i < n; i++) {
		j->targets[i].engine = ids[i];
		j->targets[i].pending = true;
	}
	j->spec = xmalloc(256);
	targets_format(ids, n, j->spec, 256);
	free(ids);

	if (str_eq(m->op, "interrupt")) {
		jobs_interrupt(j);
		return;
	}
	if (str_eq(m->op, "where")) {
		jobs_where(j, msg_has(m, F_TIMEOUT) ? m->timeout : 5.0);
		return;
	}
	if (j->stream) {
		struct msg acc;

		/* Interactive clients show progress: tell them the count. */
		msg_init(&acc, MSG_ACCEPTED);
		msg_set_int(&acc, F_ID, (int64_t)j->client_id);
		msg_set_int(&acc, F_JOBID, (int64_t)j->id);
		msg_set_int(&acc, F_NTARGETS, (int64_t)n);
		conn_send(client->conn, &acc, NULL);
	}
	/* The task is the request with the job id in place of the client's
	 * request id; the payload is referenced by every target's output.
	 * A scatter is a push of one slice of the payload to each target:
	 * slices are cut by moving buffer chains, never by decoding. */
	task = *m;
	task.type = MSG_TASK;
	task.has &= ~((1ull << F_TARGETS) | (1ull << F_PARTS));
	task.id = (int64_t)j->id;
	scatter = str_eq(m->op, "scatter");
	chunked = msg_has(m, F_CHUNKED);
	if (msg_has(m, F_TARGETS) && str_eq(m->op, "execute"))
		ranks = xcalloc(n, sizeof(*ranks));
	if (chunked) {
		/* The value follows in chunk messages from this client. */
		j->inbound_stream = true;
		client->stream_job = j->id;
	}
	if (scatter)
		msg_set_str(&task, F_OP, "push");
	if (move_ranks != NULL && msg_has(m, F_ROOT))
		msg_set_int(&task, F_ROOT, registry_get(m->root)->rank);
	for (size_t i = 0; i < n; i++) {
		struct job_target *t = &j->targets[i];
		struct engine *e = registry_get(t->engine);
		struct evbuffer *part = payload;
		int rc = -1;

		if (scatter && !chunked) {
			part = evbuffer_new();
			if (part != NULL)
				evbuffer_remove_buffer(payload, part,
						       (size_t)m->parts[i]);
		}
		if (chunked)
			msg_set_int(&task, F_CHUNKED, scatter ? m->parts[i]
							      : m->chunked);
		task.has &= ~(1ull << F_RANKS);
		if (move_ranks != NULL)
			msg_set_ranks(&task, move_ranks, n);
		if (ranks != NULL && e->state != ENGINE_DEAD) {
			size_t k = 0;

			/* The ranks of e's MPI job that this request runs on,
			 * for the engine's partial-collective guard. */
			for (size_t q = 0; q < n; q++) {
				struct engine *o =
					registry_get(j->targets[q].engine);

				if (strcmp(o->job, e->job) == 0)
					ranks[k++] = o->rank;
			}
			if ((int64_t)k < e->size)
				msg_set_ranks(&task, ranks, k);
		}
		if (e->state != ENGINE_DEAD &&
		    (!scatter || chunked || part != NULL))
			rc = conn_send(e->peer->conn, &task,
				       chunked ? NULL : part);
		if (scatter && !chunked && part != NULL)
			evbuffer_free(part);
		if (e->state == ENGINE_DEAD) {
			job_answer(j, t, "dead", "EngineDead",
				   "the engine is dead", NULL);
			continue;
		}
		if (rc < 0) {
			job_answer(j, t, "dead", "EngineDead",
				   "cannot send to the engine", NULL);
			continue;
		}
		e->ntasks++;
		e->state = ENGINE_BUSY;
	}
	free(ranks);
	free(move_ranks);
	if (msg_has(m, F_NONBLOCK) && m->nonblock && j->client != NULL &&
	    j->npending > 0) {
		struct msg ack;

		/* Answer now with the job id; results wait in the table. */
		msg_init(&ack, MSG_DONE);
		msg_set_int(&ack, F_ID, (int64_t)j->client_id);
		msg_set_int(&ack, F_JOBID, (int64_t)j->id);
		msg_set_int(&ack, F_NONBLOCK, 1);
		msg_set_int(&ack, F_NTARGETS, (int64_t)j->ntargets);
		conn_send(client->conn, &ack, NULL);
		if (j->inbound_stream) {
			/* Its chunks are still to come from this client. */
			j->detach = true;
		} else {
			TAILQ_REMOVE(&client->jobs, j, client_entry);
			j->client = NULL;
		}
	}
	if (j->timeout > 0 && j->npending > 0) {
		j->timer = evtimer_new(jobs_base, job_timeout_cb, j);
		job_arm(j, j->timeout);
	}
	job_maybe_done(j);
}

/* One of e's tasks ended (answered, or dropped with its value): the last
 * makes it idle. */
static void
task_ended(struct engine *e)
{
	if (e->ntasks > 0 && --e->ntasks == 0)
		e->state = ENGINE_IDLE;
}

/* Forward an engine's reply to the job's client. */
void
jobs_engine_reply(struct engine *e, struct msg *m, struct evbuffer *payload)
{
	struct job *j = job_find((uint64_t)m->id);
	struct job_target *t;

	/* A 'where' answer is not the end of a task. */
	if (j == NULL || !j->side)
		task_ended(e);
	if (j == NULL || (t = job_target(j, e->id)) == NULL || !t->pending) {
		log_debug("late reply from engine %lld for task %lld dropped",
			  (long long)e->id, (long long)m->id);
		return;
	}
	if (!str_eq(m->status, "ok"))
		j->nfailed++;
	if (t->got != ESCALATE_NONE)
		msg_set_str(m, F_ESCALATION, step_names[t->got]);
	msg_set_int(m, F_ID, (int64_t)j->client_id);
	msg_set_int(m, F_ENGINE, e->id);
	msg_set_int(m, F_RANK, e->rank);
	job_record(j, m);
	if (j->client != NULL)
		conn_send(j->client->conn, m, payload);
	if (msg_has(m, F_CHUNKED) && m->chunked > 0) {
		/* The value follows in chunks; the target is done with the
		 * last of them. */
		t->streaming = true;
		t->stream_total = (uint64_t)m->chunked;
		t->stream_seen = 0;
		return;
	}
	t->pending = false;
	j->npending--;
	job_maybe_done(j);
}

static bool
any_congested_target(struct job *j)
{
	for (size_t i = 0; i < j->ntargets; i++) {
		struct engine *e = registry_get(j->targets[i].engine);

		if (e != NULL && e->peer != NULL && conn_congested(e->peer->conn))
			return true;
	}
	return false;
}

/* Forward a chunk of a client's request value to its target engines. */
void
jobs_client_chunk(struct peer *client, struct msg *m, struct evbuffer *payload)
{
	struct job *j = job_find(client->stream_job);
	struct msg fwd;
	bool last = msg_has(m, F_LAST) && m->last;

	if (j == NULL || !j->inbound_stream || j->client != client) {
		peer_send_error(client, m->id, "chunk without a chunked request");
		return;
	}
	msg_init(&fwd, MSG_CHUNK);
	msg_set_int(&fwd, F_ID, (int64_t)j->id);
	for (size_t i = 0; i < j->ntargets; i++) {
		struct engine *e = registry_get(j->targets[i].engine);

		/* Scatter chunks name their engine; push chunks go to all. */
		if (msg_has(m, F_ENGINE) && m->engine != e->id)
			continue;
		if (e->peer != NULL)
			conn_send(e->peer->conn, &fwd, payload);
	}
	if (last) {
		j->inbound_stream = false;
		client->stream_job = 0;
		if (j->detach) {
			TAILQ_REMOVE(&client->jobs, j, client_entry);
			j->client = NULL;
		}
	}
	/* Backpressure: stop reading this client while an engine is behind;
	 * jobs_drained() resumes it. */
	if (any_congested_target(j)) {
		client->paused = true;
		any_paused = true;
		conn_pause(client->conn, true);
	}
}

/* Forward a chunk of an engine's reply value to the job's client. */
void
jobs_engine_chunk(struct engine *e, struct msg *m, struct evbuffer *payload)
{
	struct job *j = job_find((uint64_t)m->id);
	struct job_target *t = j ? job_target(j, e->id) : NULL;
	size_t len = payload ? evbuffer_get_length(payload) : 0;

	if (t == NULL || !t->streaming) {
		log_debug("stray chunk from engine %lld dropped",
			  (long long)e->id);
		return;
	}
	t->stream_seen += len;
	if (j->client != NULL) {
		msg_set_int(m, F_ID, (int64_t)j->client_id);
		msg_set_int(m, F_ENGINE, e->id);
		conn_send(j->client->conn, m, payload);
		if (conn_congested(j->client->conn) && e->peer != NULL) {
			e->peer->paused = true;
			any_paused = true;
			conn_pause(e->peer->conn, true);
		}
	}
	if (t->stream_seen >= t->stream_total) {
		t->streaming = false;
		t->pending = false;
		j->npending--;
		job_maybe_done(j);
	}
}

/* p's output drained: resume every paused peer no longer held back. */
void
jobs_drained(struct peer *p)
{
	struct peer *q;
	bool still = false;

	(void)p;
	/* Every connection's drain calls this: scan the peers only when one
	 * may be paused (a scan per drain is O(engines^2) per request). */
	if (!any_paused)
		return;
	for (q = peer_first(); q != NULL; q = peer_next(q)) {
		bool held = false;
		struct job *j;

		if (!q->paused)
			continue;
		if (q->kind == PEER_CLIENT) {
			j = job_find(q->stream_job);
			held = j != NULL && any_congested_target(j);
		} else if (q->kind == PEER_ENGINE) {
			/* An engine waits on the clients of its streams. */
			TAILQ_FOREACH(j, &jobs, entry) {
				struct job_target *t = job_target(j,
							  q->engine->id);

				if (t != NULL && t->streaming &&
				    j->client != NULL &&
				    conn_congested(j->client->conn))
					held = true;
			}
		}
		if (!held) {
			q->paused = false;
			conn_pause(q->conn, false);
		} else {
			still = true;
		}
	}
	any_paused = still;
}

/* Answer every pending target of a dead engine. */
void
jobs_engine_dead(struct engine *e, const char *reason)
{
	struct job *j, *next;
	char text[512];

	snprintf(text, sizeof(text), "engine %lld (rank %lld, pid %lld on %s) "
		 "died: %s", (long long)e->id, (long long)e->rank,
		 (long long)e->pid, e->host, reason);
	for (j = TAILQ_FIRST(&jobs); j != NULL; j = next) {
		struct job_target *t = job_target(j, e->id);

		next = TAILQ_NEXT(j, entry);
		if (t == NULL || !t->pending)
			continue;
		/* Gone after our signal, and not for want of heartbeats
		 * (a stopped process never got it). */
		if (t->got >= ESCALATE_TERM && !e->silent)
			answer_late(j, t, true);
		else
			job_answer(j, t, "dead", "EngineDead", text, NULL);
		job_maybe_done(j);
	}
}

/* Detach a departed client from its jobs; engines still finish them. */
void
jobs_client_gone(struct peer *client)
{
	struct job *j;

	while ((j = TAILQ_FIRST(&client->jobs)) != NULL) {
		TAILQ_REMOVE(&client->jobs, j, client_entry);
		j->client = NULL;
		if (j->inbound_stream) {
			struct msg abort;

			/* Engines drop the partial value and do not reply. */
			msg_init(&abort, MSG_CHUNK);
			msg_set_int(&abort, F_ID, (int64_t)j->id);
			msg_set_str(&abort, F_STATUS, "abort");
			j->inbound_stream = false;
			for (size_t i = 0; i < j->ntargets; i++) {
				struct engine *e =
					registry_get(j->targets[i].engine);

				if (e->peer != NULL)
					conn_send(e->peer->conn, &abort, NULL);
				if (j->targets[i].pending) {
					j->targets[i].pending = false;
					j->npending--;
					task_ended(e); /* no reply will */
				}
			}
			job_maybe_done(j);
		}
	}
}
