/* SPDX-License-Identifier: BSD-3-Clause */
/* client.c - libcohort's blocking client API over one TLS connection. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#include <event2/event.h>

#include "cohort/client.h"
#include "cohort/profile.h"
#include "conn.h"
#include "log.h"
#include "proto.h"
#include "targets.h"
#include "util.h"
#include "value.h"

#define CONNECT_TIMEOUT 10.0

enum client_state { CS_CONNECTING, CS_READY, CS_LOST };

/* An engine's reply whose value is arriving in chunks. */
struct stream {
	int64_t engine;
	msgpack_sbuffer header; /* the reply, re-encoded, decoded at the end */
	char *data;
	size_t len, total, cap; /* cap: data's allocated size */
	struct stream *next;
};

/* Blocks that received large values, kept for the next ones: a fresh
 * block costs a page fault per 4 KiB as it fills (about as much CPU as
 * the copy into it), a reused one none. A block not reused within
 * SPARE_TTL seconds is freed when a request ends (or at disconnect), and
 * at most SPARE_BYTES are kept. */
#define SPARE_MIN (1u << 20)            /* smaller: plain malloc/free */
#define SPARE_MAX 16                    /* blocks kept */
#define SPARE_BYTES ((size_t)2 << 30)   /* bytes kept */
#define SPARE_TTL 5.0
struct spares {
	struct block {
		char *p;
		size_t cap;
		double freed; /* monotonic time it was put back */
	} b[SPARE_MAX];
	size_t n, bytes;
};

struct cohort_client {
	struct event_base *base;
	struct tls_ctx *tls;
	struct conn *conn;
	enum client_state state;
	bool tls_done;
	char reason[600];
	char addr[96];
	uint64_t next_id;

	/* The request in flight. */
	uint64_t cur_id;
	cohort_reply_fn fn;
	void *arg;
	int nfailed;
	bool done;
	bool failed;
	struct cohort_engine *engines;
	size_t nengines;
	struct stream *streams;
	struct spares spares;
	size_t refs_out; /* chunks still referencing the caller's value */
	char *reply_block; /* a streamed reply's block, while its callback
			      runs: take_reply_block() keeps it */
	size_t reply_cap;
	cohort_stream_fn stream_fn;
	void *stream_arg;
	bool interruptible;
	struct event *sigint_ev;
	double last_sigint;
	char *cur_targets; /* the running request's target spec */
	int64_t last_job;
	bool job_running;
	cohort_progress_fn progress_fn;
	void *progress_arg;
	struct event *progress_ev;
	size_t ntargets, nreplies;
	double started;
	struct cohort_job *jobs;
	size_t njobs;
	bool abandoned;
};

static void deliver_reply(struct cohort_client *c, struct msg *m,
			  const void *bytes, size_t nbytes);

/* A block of at least size bytes (its size in *cap), NULL if memory is
 * short: the smallest kept one that fits, else a new one. */
static char *
block_get(struct cohort_client *c, size_t size, size_t *cap)
{
	struct spares *sp = &c->spares;
	struct block *best = NULL;
	char *p;

	for (size_t i = 0; i < sp->n && size >= SPARE_MIN; i++)
		if (sp->b[i].cap >= size &&
		    (best == NULL || sp->b[i].cap < best->cap))
			best = &sp->b[i];
	if (best != NULL) {
		p = best->p;
		*cap = best->cap;
		sp->bytes -= best->cap;
		*best = sp->b[--sp->n];
		return p;
	}
	*cap = size;
	return malloc(size ? size : 1);
}

/* Done with a block block_get() gave. */
static void
block_put(struct cohort_client *c, char *p, size_t cap)
{
	struct spares *sp = &c->spares;

	if (p == NULL)
		return;
	if (cap < SPARE_MIN || sp->n == SPARE_MAX ||
	    sp->bytes + cap > SPARE_BYTES) {
		free(p);
		return;
	}
	sp->b[sp->n++] = (struct block){ p, cap, now_monotonic() };
	sp->bytes += cap;
}

/* Free the kept blocks not reused for SPARE_TTL seconds (all: every one). */
static void
blocks_expire(struct cohort_client *c, bool all)
{
	struct spares *sp = &c->spares;
	double now = now_monotonic();

	for (size_t i = 0; i < sp->n;) {
		if (all || now - sp->b[i].freed > SPARE_TTL) {
			free(sp->b[i].p);
			sp->bytes -= sp->b[i].cap;
			sp->b[i] = sp->b[--sp->n];
		} else {
			i++;
		}
	}
}

static void
stream_free(struct cohort_client *c, struct stream *st)
{
	msgpack_sbuffer_destroy(&st->header);
	block_put(c, st->data, st->cap);
	free(st);
}

static struct stream **
stream_find(struct cohort_client *c, int64_t engine)
{
	struct stream **pp;

	for (pp = &c->streams; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->engine == engine)
			return pp;
	return pp;
}

/* A reply announced a chunked value: keep it until the value is whole. */
static void
stream_begin(struct cohort_client *c, struct msg *m)
{
	struct stream *st = xcalloc(1, sizeof(*st));

	st->engine = m->engine;
	st->total = (size_t)m->chunked;
	st->data = block_get(c, st->total, &st->cap);
	msgpack_sbuffer_init(&st->header);
	if (st->data == NULL || msg_encode(m, &st->header) < 0) {
		/* Deliver the reply without its value, as an error. */
		stream_free(c, st);
		msg_set_str(m, F_STATUS, "error");
		msg_set_str(m, F_ENAME, "MemoryError");
		msg_set_str(m, F_EVALUE, "the client cannot hold the value");
		deliver_reply(c, m, NULL, 0);
		return;
	}
	st->next = c->streams;
	c->streams = st;
}

static void
stream_chunk(struct cohort_client *c, struct msg *m, struct evbuffer *payload)
{
	struct stream **pp = stream_find(c, m->engine), *st = *pp;
	size_t n = payload ? evbuffer_get_length(payload) : 0;
	struct cohort_error err;
	struct msg r;

	if (st == NULL)
		return;
	if (str_eq(m->status, "abort") || st->len + n > st->total) {
		*pp = st->next;
		stream_free(c, st);
		return;
	}
	if (n > 0)
		evbuffer_remove(payload, st->data + st->len, n);
	st->len += n;
	if (st->len < st->total)
		return;
	*pp = st->next;
	if (msg_decode(&r, st->header.data, st->header.size, &err) == 0) {
		c->reply_block = st->data;
		c->reply_cap = st->cap;
		deliver_reply(c, &r, st->data, st->len);
		if (c->reply_block == NULL)
			st->data = NULL; /* taken */
		c->reply_block = NULL;
		msg_clear(&r);
	}
	stream_free(c, st);
}

static void
on_ready(struct conn *conn, void *arg)
{
	struct cohort_client *c = arg;
	struct msg m;

	c->tls_done = true;
	msg_init(&m, MSG_HELLO);
	msg_set_int(&m, F_VERSION, PROTO_VERSION);
	msg_set_str(&m, F_ROLE, "client");
	msg_set_int(&m, F_PID, getpid());
	conn_send(conn, &m, NULL);
}

static void
deliver_reply(struct cohort_client *c, struct msg *m, const void *bytes,
	      size_t nbytes)
{
	struct cohort_reply r = { 0 };
	char *status = str_dup(m->status), *out = str_dup(m->out);
	char *err = str_dup(m->err), *result = NULL, *ename = NULL;
	char *evalue = NULL, *tb = NULL, *esc = NULL;

	if (msg_has(m, F_ESCALATION))
		esc = str_dup(m->escalation);
	if (msg_has(m, F_RESULT))
		result = str_dup(m->result);
	if (msg_has(m, F_ENAME))
		ename = str_dup(m->ename);
	if (msg_has(m, F_EVALUE))
		evalue = str_dup(m->evalue);
	if (msg_has(m, F_TRACEBACK))
		tb = str_dup(m->traceback);
	r.data = nbytes > 0 ? bytes : NULL;
	r.len = nbytes;
	r.engine = m->engine;
	r.rank = m->rank;
	r.status = status;
	r.escalation = esc;
	r.out = out;
	r.err = err;
	r.result = result;
	r.ename = ename;
	r.evalue = evalue;
	r.traceback = tb;
	r.execution_count = m->count;
	r.elapsed = m->elapsed;
	if (strcmp(status, "ok") != 0)
		c->nfailed++;
	c->nreplies++;
	if (c->fn != NULL)
		c->fn(&r, c->arg);
	free(status);
	free(out);
	free(err);
	free(result);
	free(ename);
	free(evalue);
	free(tb);
	free(esc);
}

static void
copy_field(char *dst, size_t size, struct str s)
{
	size_t n = s.n < size - 1 ? s.n : size - 1;

	if (n > 0)
		memcpy(dst, s.p, n);
	dst[n] = '\0';
}

static void
on_message(struct conn *conn, struct msg *m, struct evbuffer *payload,
	   void *arg)
{
	struct cohort_client *c = arg;

	(void)conn;
	switch (m->type) {
	case MSG_WELCOME:
		c->state = CS_READY;
		break;
	case MSG_ERROR:
		/* The first error ends the request and says why: the chunks
		 * of a refused value that were already on their way draw
		 * more ("chunk without a chunked request"), not the cause. */
		if (c->failed && c->done)
			break;
		if (c->state == CS_CONNECTING || !msg_has(m, F_ID) ||
		    (uint64_t)m->id == c->cur_id) {
			snprintf(c->reason, sizeof(c->reason), "%.*s",
				 (int)m->message.n, m->message.p);
			c->failed = true;
			c->done = true;
			if (c->state == CS_CONNECTING)
				c->state = CS_LOST;
		}
		break;
	case MSG_REPLY:
		if ((uint64_t)m->id != c->cur_id)
			break;
		if (msg_has(m, F_CHUNKED) && m->chunked > 0)
			stream_begin(c, m);
		else
			deliver_reply(c, m,
				      payload ? evbuffer_pullup(payload, -1)
					      : NULL,
				      payload ? evbuffer_get_length(payload)
					      : 0);
		break;
	case MSG_CHUNK:
		if ((uint64_t)m->id == c->cur_id)
			stream_chunk(c, m, payload);
		break;
	case MSG_ACCEPTED:
		if ((uint64_t)m->id == c->cur_id)
			c->ntargets = (size_t)m->ntargets;
		break;
	case MSG_STREAM:
		if ((uint64_t)m->id == c->cur_id && c->stream_fn != NULL)
			c->stream_fn(m->engine,
				     str_eq(m->name, "stderr") ? "stderr"
							       : "stdout",
				     m->text.p, m->text.n, c->stream_arg);
		break;
	case MSG_DONE:
		if ((uint64_t)m->id != c->cur_id)
			break;
		if (msg_has(m, F_JOBID))
			c->last_job = m->jobid;
		c->job_running = str_eq(m->state, "running");
		c->done = true;
		break;
	case MSG_ENGINES:
		if ((uint64_t)m->id != c->cur_id)
			break;
		free(c->jobs);
		c->jobs = xcalloc(m->njobs ? m->njobs : 1, sizeof(*c->jobs));
		c->njobs = m->njobs;
		for (size_t i = 0; i < m->njobs; i++) {
			struct cohort_job *jb = &c->jobs[i];
			const struct msg_job *w = &m->jobs[i];

			jb->id = w->jobid;
			jb->ntargets = w->ntargets;
			jb->ndone = w->ndone;
			jb->nfailed = w->nfailed;
			jb->age = w->age;
			jb->elapsed = w->elapsed;
			copy_field(jb->op, sizeof(jb->op), w->op);
			copy_field(jb->state, sizeof(jb->state), w->state);
			copy_field(jb->targets, sizeof(jb->targets), w->targets);
			copy_field(jb->code, sizeof(jb->code), w->code);
		}
		free(c->engines);
		c->engines = xcalloc(m->nengines, sizeof(*c->engines));
		c->nengines = m->nengines;
		for (size_t i = 0; i < m->nengines; i++) {
			struct cohort_engine *e = &c->engines[i];
			const struct msg_engine *w = &m->engines[i];

			e->id = w->id;
			e->rank = w->rank;
			e->size = w->size;
			e->pid = w->pid;
			e->uptime = w->uptime;
			copy_field(e->host, sizeof(e->host), w->host);
			copy_field(e->kernel, sizeof(e->kernel), w->kernel);
			copy_field(e->job, sizeof(e->job), w->job);
			copy_field(e->state, sizeof(e->state), w->state);
		}
		c->done = true;
		break;
	case MSG_PING: {
		struct msg pong;

		msg_init(&pong, MSG_PONG);
		conn_send(conn, &pong, NULL);
		break;
	}
	default:
		break;
	}
}

static void
on_lost(struct conn *conn, const char *reason, void *arg)
{
	struct cohort_client *c = arg;

	(void)conn;
	c->conn = NULL;
	if (c->state == CS_CONNECTING && c->tls_done)
		/* TLS 1.3 servers judge the client certificate after the
		 * client considers the handshake done: a refusal shows up
		 * as the connection closing before the welcome. */
		snprintf(c->reason, sizeof(c->reason),
			 "the controller at %s refused this client (%s); is "
			 "the client certificate from this profile's CA?",
			 c->addr, reason);
	else if (c->state == CS_CONNECTING)
		snprintf(c->reason, sizeof(c->reason),
			 "controller unreachable at %s: %s", c->addr, reason);
	else
		snprintf(c->reason, sizeof(c->reason),
			 "lost the controller at %s: %s", c->addr, reason);
	c->state = CS_LOST;
	c->failed = true;
	c->done = true;
}

static const struct conn_handlers client_handlers = {
	.ready = on_ready,
	.message = on_message,
	.lost = on_lost,
};

static void
connect_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cohort_client *c = arg;

	(void)fd;
	(void)what;
	if (c->state == CS_CONNECTING) {
		snprintf(c->reason, sizeof(c->reason),
			 "controller unreachable at %s: no answer within %.0f s",
			 c->addr, CONNECT_TIMEOUT);
		c->state = CS_LOST;
	}
}

/* Connect to the controller named by a profile's client connection file. */
struct cohort_client *
cohort_connect(const char *profile, struct cohort_error *err)
{
	struct cohort_client *c = xcalloc(1, sizeof(*c));
	struct cohort_conninfo ci;
	char dir[4096], path[4200];
	struct event *timer = NULL;
	struct timeval tv = { (time_t)CONNECT_TIMEOUT, 0 };

	if (cohort_profile_path(profile, dir, sizeof(dir), err) < 0 ||
	    cohort_conninfo_path(dir, COHORT_ROLE_CLIENT, path, sizeof(path),
				 err) < 0 ||
	    cohort_conninfo_read(path, &ci, err) < 0)
		goto error;
	snprintf(c->addr, sizeof(c->addr), "%s:%d", ci.ip, ci.port);
	c->base = event_base_new();
	if (c->base == NULL) {
		errprintf(err, "cannot create an event loop");
		goto error;
	}
	c->tls = tls_ctx_new(false, ci.ca, ci.cert, ci.key, err);
	if (c->tls == NULL)
		goto error;
	c->conn = conn_connect(c->base, c->tls, ci.ip, ci.port, ci.socket,
			       &client_handlers, c, err);
	if (c->conn == NULL)
		goto error;
	timer = evtimer_new(c->base, connect_timeout_cb, c);
	if (timer == NULL || evtimer_add(timer, &tv) < 0) {
		errprintf(err, "cannot arm the connect timer");
		goto error;
	}
	while (c->state == CS_CONNECTING)
		event_base_loop(c->base, EVLOOP_ONCE);
	event_free(timer);
	timer = NULL;
	if (c->state != CS_READY) {
		errprintf(err, "%s", c->reason);
		goto error;
	}
	if (strcmp(conn_peer_cn(c->conn), cohort_role_cn(COHORT_ROLE_CONTROLLER))
	    != 0) {
		errprintf(err, "peer at %s is not a Cohort controller "
			  "(certificate name '%s')", c->addr,
			  conn_peer_cn(c->conn));
		goto error;
	}
	return c;
error:
	if (timer != NULL)
		event_free(timer);
	cohort_disconnect(c);
	return NULL;
}

/* Route live output to fn. */
void
cohort_set_stream(struct cohort_client *c, cohort_stream_fn fn, void *arg)
{
	c->stream_fn = fn;
	c->stream_arg = arg;
}

/* Report progress of streaming requests. */
void
cohort_set_progress(struct cohort_client *c, cohort_progress_fn fn, void *arg)
{
	c->progress_fn = fn;
	c->progress_arg = arg;
}

/* Let Ctrl-C interrupt requests. */
void
cohort_set_interruptible(struct cohort_client *c, int on)
{
	c->interruptible = on != 0;
}

/* Send an interrupt request for the running request's targets; its
 * replies have another id and are ignored. */
static void
send_interrupt_request(struct cohort_client *c)
{
	struct cohort_error err;
	struct targets t;
	struct msg m;

	if (c->conn == NULL ||
	    targets_parse(c->cur_targets, &t, &err) < 0)
		return;
	msg_init(&m, MSG_REQUEST);
	msg_set_int(&m, F_ID, (int64_t)++c->next_id);
	msg_set_str(&m, F_OP, "interrupt");
	if (!t.all)
		msg_set_targets(&m, t.ids, t.n);
	conn_send(c->conn, &m, NULL);
	targets_clear(&t);
}

/* Interrupt the targets' running code. */
int
cohort_interrupt(struct cohort_client *c, const char *targets,
		 cohort_reply_fn fn, void *arg, struct cohort_error *err)
{
	struct cohort_request rq = { .op = "interrupt", .targets = targets };

	return cohort_request(c, &rq, fn, arg, err);
}

/* Close and free a client. */
void
cohort_disconnect(struct cohort_client *c)
{
	if (c == NULL)
		return;
	if (c->sigint_ev != NULL)
		event_free(c->sigint_ev);
	if (c->progress_ev != NULL)
		event_free(c->progress_ev);
	free(c->cur_targets);
	if (c->conn != NULL)
		conn_close(c->conn);
	tls_ctx_free(c->tls);
	if (c->base != NULL)
		event_base_free(c->base);
	free(c->engines);
	free(c->jobs);
	while (c->streams != NULL) {
		struct stream *st = c->streams;

		c->streams = st->next;
		stream_free(c, st);
	}
	blocks_expire(c, true);
	free(c);
}

static void send_interrupt_request(struct cohort_client *c);

static void
sigint_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cohort_client *c = arg;
	double now = now_monotonic();

	(void)fd;
	(void)what;
	if (now - c->last_sigint < 1.0) {
		/* Second Ctrl-C: stop waiting, leave the request running. */
		c->abandoned = true;
		c->done = true;
		return;
	}
	c->last_sigint = now;
	send_interrupt_request(c);
}

static void
progress_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cohort_client *c = arg;

	(void)fd;
	(void)what;
	if (c->progress_fn != NULL && c->ntargets > 0 && !c->done)
		c->progress_fn(c->nreplies, c->ntargets,
			       now_monotonic() - c->started, c->progress_arg);
}

static int
run_until_done(struct cohort_client *c, struct cohort_error *err)
{
	struct timeval quarter = { 0, 250000 };
	bool armed = false;

	c->started = now_monotonic();
	if (c->progress_fn != NULL && c->progress_ev == NULL)
		c->progress_ev = event_new(c->base, -1, EV_PERSIST,
					   progress_cb, c);
	if (c->progress_fn != NULL && c->progress_ev != NULL)
		event_add(c->progress_ev, &quarter);

	c->abandoned = false;
	c->last_sigint = -10;
	if (c->interruptible && c->sigint_ev == NULL)
		c->sigint_ev = evsignal_new(c->base, SIGINT, sigint_cb, c);
	if (c->interruptible && c->sigint_ev != NULL)
		armed = evsignal_add(c->sigint_ev, NULL) == 0;
	while (!c->done)
		event_base_loop(c->base, EVLOOP_ONCE);
	blocks_expire(c, false);
	if (armed)
		evsignal_del(c->sigint_ev);
	if (c->progress_ev != NULL)
		event_del(c->progress_ev);
	if (c->abandoned)
		return errprintf(err, "interrupted: stopped waiting; the "
				 "request goes on running on the engines");
	if (c->failed)
		return errprintf(err, "%s", c->reason);
	return 0;
}

static void
start_request(struct cohort_client *c, cohort_reply_fn fn, void *arg)
{
	c->cur_id = ++c->next_id;
	c->fn = fn;
	c->arg = arg;
	c->nfailed = 0;
	c->nreplies = 0;
	c->ntargets = 0;
	c->done = false;
	c->failed = false;
}

/* One piece of a request's value: the bytes, and the engine they are for
 * (-1: every target). */
struct piece {
	const char *data;
	size_t len;
	int64_t engine;
};

/* A chunk referencing the caller's value was written (or dropped with
 * the connection). */
static void
piece_sent(const void *data, size_t len, void *arg)
{
	struct cohort_client *c = arg;

	(void)data;
	(void)len;
	c->refs_out--;
}

/* Send a prepared request with its value (the pieces, in order) and wait
 * for its completion. A value over PROTO_CHUNK goes as chunk messages
 * after the request, each referencing the caller's memory, so neither
 * side holds more than a chunk per stream. */
static int
send_and_wait(struct cohort_client *c, struct msg *m,
	      const struct piece *pieces, size_t npieces,
	      struct cohort_error *err)
{
	uint64_t total = 0;
	int rc = 0;

	for (size_t i = 0; i < npieces; i++)
		total += pieces[i].len;
	msg_set_int(m, F_ID, (int64_t)c->cur_id);
	if (total <= PROTO_CHUNK) {
		struct evbuffer *payload = evbuffer_new();

		if (payload == NULL)
			return errprintf(err, "out of memory");
		for (size_t i = 0; i < npieces && rc == 0; i++)
			if (pieces[i].len > 0)
				rc = evbuffer_add_reference(payload,
							    pieces[i].data,
							    pieces[i].len,
							    NULL, NULL);
		if (rc == 0)
			rc = conn_send(c->conn, m, payload);
		evbuffer_free(payload);
	} else {
		struct msg ch;

		msg_set_int(m, F_CHUNKED, (int64_t)total);
		rc = conn_send(c->conn, m, NULL);
		for (size_t i = 0; i < npieces && rc == 0; i++) {
			size_t off = 0, n;

			if (pieces[i].len == 0 && i + 1 < npieces)
				continue;
			do {
				n = pieces[i].len - off < PROTO_CHUNK
					    ? pieces[i].len - off
					    : PROTO_CHUNK;
				msg_init(&ch, MSG_CHUNK);
				msg_set_int(&ch, F_ID, (int64_t)c->cur_id);
				if (pieces[i].engine >= 0)
					msg_set_int(&ch, F_ENGINE,
						    pieces[i].engine);
				if (i + 1 == npieces && off + n == pieces[i].len)
					msg_set_int(&ch, F_LAST, 1);
				c->refs_out++;
				rc = conn_send_ref(c->conn, &ch,
						   pieces[i].data + off, n,
						   piece_sent, c);
				if (rc < 0)
					c->refs_out--; /* not queued */
				off += n;
			} while (rc == 0 && off < pieces[i].len);
		}
	}
	if (rc == 0)
		rc = run_until_done(c, err);
	else
		errprintf(err, "cannot send the request");
	/* The caller may free its value once we return: a request answered
	 * before all of it went out (refused, say) must not leave chunks
	 * pointing into it. They go out (the controller drops them), or
	 * go with the connection: closed here if the user stopped waiting
	 * (a second Ctrl-C) while the value was still being sent, since
	 * that means not waiting for the rest of it either. */
	if (c->abandoned && c->refs_out > 0 && c->conn != NULL) {
		conn_close(c->conn);
		c->conn = NULL;
		c->state = CS_LOST;
		snprintf(c->reason, sizeof(c->reason), "the connection was "
			 "closed: a request was interrupted while its value "
			 "was being sent");
		errprintf(err, "interrupted: stopped sending the value; the "
			  "engines drop the part they received");
	}
	while (c->refs_out > 0 && c->conn != NULL)
		event_base_loop(c->base, EVLOOP_ONCE);
	return rc < 0 ? -1 : c->nfailed;
}

/* Send one request and deliver each engine's reply to fn. */
int
cohort_request(struct cohort_client *c, const struct cohort_request *rq,
	       cohort_reply_fn fn, void *arg, struct cohort_error *err)
{
	struct targets t;
	struct msg m;
	int rc;

	if (c->conn == NULL)
		return errprintf(err, "%s", c->reason);
	if (rq->op == NULL)
		return errprintf(err, "request without an operation");
	if (targets_parse(rq->targets, &t, err) < 0)
		return -1;
	start_request(c, fn, arg);
	msg_init(&m, MSG_REQUEST);
	msg_set_str(&m, F_OP, rq->op);
	if (!t.all)
		msg_set_targets(&m, t.ids, t.n);
	if (rq->code != NULL)
		msg_set_str(&m, F_CODE, rq->code);
	if (rq->name != NULL)
		msg_set_str(&m, F_NAME, rq->name);
	if (rq->timeout > 0)
		msg_set_double(&m, F_TIMEOUT, rq->timeout);
	if (rq->on_timeout != NULL && rq->on_timeout[0] != '\0')
		msg_set_str(&m, F_ONTIMEOUT, rq->on_timeout);
	else if (rq->interrupt_on_timeout)
		msg_set_str(&m, F_ONTIMEOUT, "interrupt");
	if (rq->grace > 0)
		msg_set_double(&m, F_GRACE, rq->grace);
	if (strcmp(rq->op, "bcast") == 0 || strcmp(rq->op, "move") == 0)
		msg_set_int(&m, F_ROOT, rq->root);
	if (rq->as != NULL)
		msg_set_str(&m, F_AS, rq->as);
	if (rq->nonblock)
		msg_set_int(&m, F_NONBLOCK, 1);
	if (rq->allow_partial_collectives)
		msg_set_int(&m, F_PARTIAL, 1);
	if (c->stream_fn != NULL && strcmp(rq->op, "execute") == 0)
		msg_set_int(&m, F_STREAM, 1);
	free(c->cur_targets);
	c->cur_targets = rq->targets ? xstrdup(rq->targets) : NULL;
	{
		struct piece p = { rq->data, rq->data ? rq->len : 0, -1 };

		rc = send_and_wait(c, &m, &p, rq->data ? 1 : 0, err);
	}
	targets_clear(&t);
	return rc;
}

/* Run code on targets. */
int
cohort_execute(struct cohort_client *c, const char *targets, const char *code,
	       double timeout, cohort_reply_fn fn, void *arg,
	       struct cohort_error *err)
{
	struct cohort_request rq = { .op = "execute", .targets = targets,
				     .code = code, .timeout = timeout };

	return cohort_request(c, &rq, fn, arg, err);
}

/* Push one value to targets. */
int
cohort_push(struct cohort_client *c, const char *targets, const char *name,
	    const void *data, size_t len, cohort_reply_fn fn, void *arg,
	    struct cohort_error *err)
{
	struct cohort_request rq = { .op = "push", .targets = targets,
				     .name = name, .data = data, .len = len };

	if (value_check_name(name, err) < 0)
		return -1;
	return cohort_request(c, &rq, fn, arg, err);
}

/* Pull a value from targets. */
int
cohort_pull(struct cohort_client *c, const char *targets, const char *name,
	    cohort_reply_fn fn, void *arg, struct cohort_error *err)
{
	struct cohort_request rq = { .op = "pull", .targets = targets,
				     .name = name };

	if (value_check_name(name, err) < 0)
		return -1;
	return cohort_request(c, &rq, fn, arg, err);
}

/* Resolve a target spec to explicit ids: "all" means the live engines. */
static int
resolve_targets(struct cohort_client *c, const char *spec, struct targets *t,
		struct cohort_error *err)
{
	struct cohort_engine *list;
	size_t n;

	if (targets_parse(spec, t, err) < 0)
		return -1;
	if (!t->all)
		return 0;
	if (cohort_engines(c, &list, &n, err) < 0)
		return -1;
	t->all = false;
	t->ids = xcalloc(n ? n : 1, sizeof(int64_t));
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i].state, "dead") != 0)
			t->ids[t->n++] = list[i].id;
	free(list);
	if (t->n == 0)
		return errprintf(err, "no engines are registered with the "
				 "controller");
	return 0;
}

/* Split a value across targets and push one part to each: each part's
 * head, then its slice of the caller's value, sent by reference. */
int
cohort_scatter(struct cohort_client *c, const char *targets, const char *name,
	       const void *data, size_t len, cohort_reply_fn fn, void *arg,
	       struct cohort_error *err)
{
	msgpack_sbuffer *heads = NULL;
	struct value_slice *bodies = NULL;
	struct piece *pieces = NULL;
	int64_t *sizes = NULL;
	struct targets t = { 0 };
	struct msg m;
	int rc = -1;

	if (c->conn == NULL)
		return errprintf(err, "%s", c->reason);
	if (value_check_name(name, err) < 0)
		return -1;
	if (resolve_targets(c, targets, &t, err) < 0)
		goto out;
	heads = xcalloc(t.n, sizeof(*heads));
	bodies = xcalloc(t.n, sizeof(*bodies));
	sizes = xcalloc(t.n, sizeof(*sizes));
	for (size_t i = 0; i < t.n; i++)
		msgpack_sbuffer_init(&heads[i]);
	if (value_split_ref(data, len, t.n, heads, bodies, err) < 0)
		goto out;
	pieces = xcalloc(2 * t.n, sizeof(*pieces));
	for (size_t i = 0; i < t.n; i++) {
		sizes[i] = (int64_t)(heads[i].size + bodies[i].n);
		pieces[2 * i] = (struct piece){ heads[i].data, heads[i].size,
						t.ids[i] };
		pieces[2 * i + 1] = (struct piece){ (const char *)bodies[i].p,
						    bodies[i].n, t.ids[i] };
	}
	start_request(c, fn, arg);
	msg_init(&m, MSG_REQUEST);
	msg_set_str(&m, F_OP, "scatter");
	msg_set_str(&m, F_NAME, name);
	msg_set_targets(&m, t.ids, t.n);
	msg_set_parts(&m, sizes, t.n);
	rc = send_and_wait(c, &m, pieces, 2 * t.n, err);
out:
	free(pieces);
	for (size_t i = 0; heads != NULL && i < t.n; i++)
		msgpack_sbuffer_destroy(&heads[i]);
	free(heads);
	free(bodies);
	free(sizes);
	targets_clear(&t);
	return rc;
}

/* Inside a reply callback: the reply's value as a block the caller now
 * owns (its size in *cap; back with block_put()), if it came in chunks
 * (a large value, not copied again); NULL otherwise. */
static char *
take_reply_block(struct cohort_client *c, size_t *cap)
{
	char *b = c->reply_block;

	c->reply_block = NULL;
	*cap = c->reply_cap;
	return b;
}

struct gather_state {
	struct cohort_client *c;
	cohort_reply_fn fn;
	void *arg;
	int64_t *ids;
	size_t n;
	void **data;
	size_t *len, *cap;
};

static void
gather_reply(const struct cohort_reply *r, void *arg)
{
	struct gather_state *g = arg;

	if (g->fn != NULL)
		g->fn(r, g->arg);
	for (size_t i = 0; i < g->n; i++) {
		if (g->ids[i] != r->engine || r->data == NULL ||
		    g->data[i] != NULL)
			continue;
		g->data[i] = take_reply_block(g->c, &g->cap[i]);
		if (g->data[i] == NULL) {
			g->data[i] = xmalloc(r->len);
			g->cap[i] = r->len;
			memcpy(g->data[i], r->data, r->len);
		}
		g->len[i] = r->len;
	}
}

/* Pull parts from targets and concatenate them in engine order. */
int
cohort_gather(struct cohort_client *c, const char *targets, const char *name,
	      void **out, size_t *outlen, cohort_reply_fn fn, void *arg,
	      struct cohort_error *err)
{
	struct gather_state g = { .c = c, .fn = fn, .arg = arg };
	struct targets t = { 0 };
	msgpack_sbuffer sb;
	int rc = -1;

	*out = NULL;
	*outlen = 0;
	msgpack_sbuffer_init(&sb);
	if (value_check_name(name, err) < 0)
		return -1;
	if (resolve_targets(c, targets, &t, err) < 0)
		goto out;
	g.ids = t.ids;
	g.n = t.n;
	g.data = xcalloc(t.n, sizeof(void *));
	g.len = xcalloc(t.n, sizeof(size_t));
	g.cap = xcalloc(t.n, sizeof(size_t));
	{
		/* The explicit list, so "all" cannot change under us. */
		struct cohort_request rq = { .op = "pull", .name = name };
		char *list = xcalloc(t.n, 24);
		size_t off = 0;

		for (size_t i = 0; i < t.n; i++)
			off += (size_t)sprintf(list + off, "%s%lld",
					       i ? "," : "",
					       (long long)t.ids[i]);
		rq.targets = list;
		rc = cohort_request(c, &rq, gather_reply, &g, err);
		free(list);
	}
	if (rc != 0) {
		if (rc > 0)
			errprintf(err, "%d of %zu engines could not give "
				  "'%s'", rc, t.n, name);
		rc = -1;
		goto out;
	}
	if (value_concat((const void *const *)g.data, g.len, t.n, &sb,
			 err) < 0) {
		rc = -1;
		goto out;
	}
	*out = sb.data;
	*outlen = sb.size;
	sb.data = NULL;
	rc = 0;
out:
	msgpack_sbuffer_destroy(&sb);
	for (size_t i = 0; g.data != NULL && i < t.n; i++)
		block_put(c, g.data[i], g.cap[i]);
	free(g.data);
	free(g.len);
	free(g.cap);
	targets_clear(&t);
	return rc;
}

/* The job id of the last request. */
int64_t
cohort_last_job(struct cohort_client *c)
{
	return c->last_job;
}

static int
simple_request(struct cohort_client *c, const char *op, int64_t jobid,
	       cohort_reply_fn fn, void *arg, struct cohort_error *err)
{
	struct msg m;

	if (c->conn == NULL)
		return errprintf(err, "%s", c->reason);
	start_request(c, fn, arg);
	msg_init(&m, MSG_REQUEST);
	msg_set_int(&m, F_ID, (int64_t)c->cur_id);
	msg_set_str(&m, F_OP, op);
	if (jobid > 0)
		msg_set_int(&m, F_JOBID, jobid);
	if (conn_send(c->conn, &m, NULL) < 0)
		return errprintf(err, "cannot send the request");
	return run_until_done(c, err);
}

/* Fetch a job's replies from the controller's table. */
int
cohort_result(struct cohort_client *c, int64_t id, cohort_reply_fn fn,
	      void *arg, int *running, struct cohort_error *err)
{
	if (id <= 0)
		return errprintf(err, "bad job id %lld", (long long)id);
	if (simple_request(c, "result", id, fn, arg, err) < 0)
		return -1;
	*running = c->job_running;
	return c->nfailed;
}

/* List jobs. */
int
cohort_jobs(struct cohort_client *c, struct cohort_job **list, size_t *n,
	    struct cohort_error *err)
{
	if (simple_request(c, "jobs", 0, NULL, NULL, err) < 0)
		return -1;
	*list = c->jobs;
	*n = c->njobs;
	c->jobs = NULL;
	c->njobs = 0;
	return 0;
}

/* Fetch the engine registry. */
int
cohort_engines(struct cohort_client *c, struct cohort_engine **list,
	       size_t *n, struct cohort_error *err)
{
	struct msg m;

	if (c->conn == NULL)
		return errprintf(err, "%s", c->reason);
	start_request(c, NULL, NULL);
	msg_init(&m, MSG_REQUEST);
	msg_set_int(&m, F_ID, (int64_t)c->cur_id);
	msg_set_str(&m, F_OP, "engines");
	if (conn_send(c->conn, &m, NULL) < 0)
		return errprintf(err, "cannot send the request");
	if (run_until_done(c, err) < 0)
		return -1;
	*list = c->engines;
	*n = c->nengines;
	c->engines = NULL;
	c->nengines = 0;
	return 0;
}

/* Asynchronous submission: cohort_submit() and cohort_collect().
 *
 * A submission is cohort_request() with nonblock set, encoded exactly as a
 * blocking request, that returns once the request is queued: while it
 * runs, a hook on the connection marks the request done as soon as its
 * header is queued. The controller's acknowledgements (a done message
 * with the job id, or an error) are picked up by a message handler put in
 * front of on_message() at the first submission, whichever call happens
 * to be running the loop when they arrive; cohort_collect() waits for the
 * missing ones and hands them out. The bookkeeping hangs off the
 * connection and goes with it. */

/* Unacknowledged submissions at most; cohort_submit() waits beyond. */
#define SUBMIT_WINDOW 4096

struct submission {
	uint64_t id; /* the request id: the ticket */
	int64_t job; /* the controller's job id, once acknowledged */
	char *error; /* the controller's refusal, or NULL */
	bool acked;
};

struct submit_state {
	struct submission *v; /* in increasing id order */
	size_t n, cap, nacked;
	uint64_t hooked; /* the id cohort_submit() just queued, or 0 */
};

static void
submit_state_free(void *p)
{
	struct submit_state *s = p;

	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].error);
	free(s->v);
	free(s);
}

static struct submission *
submission_find(struct submit_state *s, uint64_t id)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->v[mid].id == id)
			return &s->v[mid];
		if (s->v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void
submit_message(struct conn *conn, struct msg *m, struct evbuffer *payload,
	       void *arg)
{
	struct submit_state *s = conn_user(conn);
	struct submission *sub;

	if (s == NULL || !msg_has(m, F_ID) ||
	    (sub = submission_find(s, (uint64_t)m->id)) == NULL) {
		on_message(conn, m, payload, arg);
		return;
	}
	/* A done message acknowledges (the job may even have ended at once,
	 * its replies before it); nothing follows it. */
	if (sub->acked || (m->type != MSG_DONE && m->type != MSG_ERROR))
		return;
	if (m->type == MSG_ERROR)
		sub->error = xstrndup(m->message.p, m->message.n);
	else if (msg_has(m, F_JOBID))
		sub->job = m->jobid;
	sub->acked = true;
	s->nacked++;
}

/* The sent hook: the request cohort_submit() is sending is queued. */
static void
submit_sent(struct conn *conn, const struct msg *m, void *arg)
{
	struct cohort_client *c = arg;
	struct submit_state *s = conn_user(conn);
	struct submission *sub;

	if (s == NULL || s->hooked != 0 || m->type != MSG_REQUEST ||
	    !msg_has(m, F_ID) || (uint64_t)m->id != c->cur_id ||
	    !msg_has(m, F_NONBLOCK) || !m->nonblock)
		return;
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	sub = &s->v[s->n++];
	memset(sub, 0, sizeof(*sub));
	sub->id = c->cur_id;
	s->hooked = c->cur_id;
	/* cohort_request() returns without waiting for the answer. */
	c->done = true;
}

static struct submit_state *
submit_state(struct cohort_client *c)
{
	struct submit_state *s = conn_user(c->conn);
	struct conn_handlers h = client_handlers;

	if (s != NULL)
		return s;
	s = xcalloc(1, sizeof(*s));
	conn_set_user(c->conn, s, submit_state_free);
	h.message = submit_message;
	conn_set_handlers(c->conn, &h);
	return s;
}

/* Send a request without waiting for the controller's answer. */
int64_t
cohort_submit(struct cohort_client *c, const struct cohort_request *rq,
	      struct cohort_error *err)
{
	struct cohort_request nb;
	struct submit_state *s;
	uint64_t id;
	int rc;

	if (c->conn == NULL)
		return errprintf(err, "%s", c->reason);
	/* Keep the window, and do not queue without bound. */
	for (;;) {
		s = submit_state(c);
		if (s->n - s->nacked < SUBMIT_WINDOW &&
		    !conn_congested(c->conn))
			break;
		event_base_loop(c->base, EVLOOP_ONCE);
		if (c->conn == NULL)
			return errprintf(err, "%s", c->reason);
	}
	nb = *rq;
	nb.nonblock = 1;
	s->hooked = 0;
	conn_set_sent_hook(c->conn, submit_sent, c);
	rc = cohort_request(c, &nb, NULL, NULL, err);
	if (c->conn == NULL)
		return rc < 0 ? -1 : errprintf(err, "%s", c->reason);
	conn_set_sent_hook(c->conn, NULL, NULL);
	id = s->hooked;
	s->hooked = 0;
	if (id == 0)
		return rc < 0 ? -1
			      : errprintf(err, "the request was not sent");
	if (rc < 0) {
		/* Queued in part: forget it (its answer is then ignored). */
		s->n--;
		return -1;
	}
	/* Let the bytes out and the acknowledgements in, without waiting. */
	event_base_loop(c->base, EVLOOP_NONBLOCK);
	return (int64_t)id;
}

/* Wait for the answers to every submission not yet collected. */
int
cohort_collect(struct cohort_client *c, cohort_ack_fn fn, void *arg,
	       struct cohort_error *err)
{
	struct submit_state *s;
	struct submission *v;
	size_t n;
	int nrefused = 0;

	for (;;) {
		if (c->conn == NULL)
			return errprintf(err, "%s", c->reason);
		s = conn_user(c->conn);
		if (s == NULL || s->nacked == s->n)
			break;
		event_base_loop(c->base, EVLOOP_ONCE);
	}
	if (s == NULL)
		return 0;
	/* Take the list out: fn may submit again. */
	v = s->v;
	n = s->n;
	s->v = NULL;
	s->n = s->cap = s->nacked = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i].error != NULL)
			nrefused++;
		if (fn != NULL)
			fn((int64_t)v[i].id, v[i].job, v[i].error, arg);
		free(v[i].error);
	}
	free(v);
	return nrefused;
}
