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
	free(j->targets);
	free(j);
}

/* Drop every job (at shutdown). */
void
jobs_free(void)
{
	struct job *j;

	while ((j = TAILQ_FIRST(&jobs)) != NULL)
		job_free(j);
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
		conn_send(j->client->conn, &m, NULL);
	}
	job_free(j);
}

/* Answer one target on the engine's behalf (dead, timeout). */
static void
job_answer(struct job *j, struct job_target *t, const char *status,
	   const char *ename, const char *evalue)
{
	struct engine *e = registry_get(t->engine);
	struct msg m;

	t->pending = false;
	j->npending--;
	j->nfailed++;
	if (e != NULL && e->ntasks > 0 && strcmp(status, "dead") != 0)
		e->ntasks--;
	if (j->client == NULL)
		return;
	msg_init(&m, MSG_REPLY);
	msg_set_int(&m, F_ID, (int64_t)j->client_id);
	msg_set_int(&m, F_ENGINE, t->engine);
	msg_set_int(&m, F_RANK, e ? e->rank : -1);
	msg_set_str(&m, F_STATUS, status);
	msg_set_str(&m, F_ENAME, ename);
	msg_set_str(&m, F_EVALUE, evalue);
	conn_send(j->client->conn, &m, NULL);
}

static void
job_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;
	char text[160];

	(void)fd;
	(void)what;
	for (size_t i = 0; i < j->ntargets; i++) {
		if (!j->targets[i].pending)
			continue;
		snprintf(text, sizeof(text), "engine %lld did not answer "
			 "within the timeout; its code keeps running",
			 (long long)j->targets[i].engine);
		job_answer(j, &j->targets[i], "timeout", "Timeout", text);
	}
	job_maybe_done(j);
}

static int
check_request(struct msg *m, struct evbuffer *payload, char *why, size_t n)
{
	if (str_eq(m->op, "execute")) {
		if (!msg_has(m, F_CODE))
			return snprintf(why, n, "execute needs code"), -1;
	} else if (str_eq(m->op, "push")) {
		if (!msg_has(m, F_NAME) || payload == NULL)
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
		if (total != (payload ? evbuffer_get_length(payload) : 0))
			return snprintf(why, n, "scatter part sizes do not add "
					"up to the payload"), -1;
	} else {
		return snprintf(why, n, "unknown operation '%.*s'",
				(int)(m->op.n > 32 ? 32 : m->op.n), m->op.p),
		       -1;
	}
	if (msg_has(m, F_TIMEOUT) && !(m->timeout >= 0 && m->timeout < 1e9))
		return snprintf(why, n, "bad timeout"), -1;
	return 0;
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
	bool scatter;

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
	} else {
		n = registry_live_ids(&ids);
		if (n == 0) {
			free(ids);
			peer_send_error(client, m->id, "no engines are "
					"registered with the controller");
			return;
		}
	}

	j = xcalloc(1, sizeof(*j));
	j->id = ++next_job_id;
	j->client_id = (uint64_t)m->id;
	j->client = client;
	j->targets = xcalloc(n, sizeof(*j->targets));
	j->ntargets = j->npending = n;
	TAILQ_INSERT_TAIL(&jobs, j, entry);
	TAILQ_INSERT_TAIL(&client->jobs, j, client_entry);
	for (size_t i = 0; i < n; i++) {
		j->targets[i].engine = ids[i];
		j->targets[i].pending = true;
	}
	free(ids);

	/* The task is the request with the job id in place of the client's
	 * request id; the payload is referenced by every target's output.
	 * A scatter is a push of one slice of the payload to each target:
	 * slices are cut by moving buffer chains, never by decoding. */
	task = *m;
	task.type = MSG_TASK;
	task.has &= ~((1ull << F_TARGETS) | (1ull << F_PARTS));
	task.id = (int64_t)j->id;
	scatter = str_eq(m->op, "scatter");
	if (scatter)
		msg_set_str(&task, F_OP, "push");
	for (size_t i = 0; i < n; i++) {
		struct job_target *t = &j->targets[i];
		struct engine *e = registry_get(t->engine);
		struct evbuffer *part = payload;
		int rc = -1;

		if (scatter) {
			part = evbuffer_new();
			if (part != NULL)
				evbuffer_remove_buffer(payload, part,
						       (size_t)m->parts[i]);
		}
		if (e->state != ENGINE_DEAD && (!scatter || part != NULL))
			rc = conn_send(e->peer->conn, &task, part);
		if (scatter && part != NULL)
			evbuffer_free(part);
		if (e->state == ENGINE_DEAD) {
			job_answer(j, t, "dead", "EngineDead",
				   "the engine is dead");
			continue;
		}
		if (rc < 0) {
			job_answer(j, t, "dead", "EngineDead",
				   "cannot send to the engine");
			continue;
		}
		e->ntasks++;
		e->state = ENGINE_BUSY;
	}
	if (msg_has(m, F_TIMEOUT) && m->timeout > 0 && j->npending > 0) {
		struct timeval tv;

		tv.tv_sec = (time_t)m->timeout;
		tv.tv_usec = (suseconds_t)((m->timeout - (double)tv.tv_sec) *
					   1e6);
		j->timer = evtimer_new(jobs_base, job_timeout_cb, j);
		if (j->timer == NULL || evtimer_add(j->timer, &tv) < 0)
			log_warnx("cannot arm the timeout of job %llu",
				  (unsigned long long)j->id);
	}
	job_maybe_done(j);
}

/* Forward an engine's reply to the job's client. */
void
jobs_engine_reply(struct engine *e, struct msg *m, struct evbuffer *payload)
{
	struct job *j = job_find((uint64_t)m->id);
	struct job_target *t;

	if (e->ntasks > 0 && --e->ntasks == 0)
		e->state = ENGINE_IDLE;
	if (j == NULL || (t = job_target(j, e->id)) == NULL || !t->pending) {
		log_debug("late reply from engine %lld for task %lld dropped",
			  (long long)e->id, (long long)m->id);
		return;
	}
	t->pending = false;
	j->npending--;
	if (!str_eq(m->status, "ok"))
		j->nfailed++;
	if (j->client != NULL) {
		msg_set_int(m, F_ID, (int64_t)j->client_id);
		msg_set_int(m, F_ENGINE, e->id);
		msg_set_int(m, F_RANK, e->rank);
		conn_send(j->client->conn, m, payload);
	}
	job_maybe_done(j);
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
		job_answer(j, t, "dead", "EngineDead", text);
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
	}
}
