/* SPDX-License-Identifier: BSD-3-Clause */
/* io.c - the engine's I/O thread: controller connection, tasks, output.
 *
 * Tasks arrive on this thread and are queued for the main thread; replies
 * come back through a second queue and an event made active from the
 * main thread (libevent is set up for threads). Captured output is read
 * from the pipes as it is written and attached to the reply of the task
 * that was running; the pipes are drained when the reply is sent, after
 * the main thread has flushed, so nothing a task printed is missed.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <execinfo.h>
#include <fcntl.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "conn.h"
#include "engine.h"
#include "log.h"
#include "util.h"
#include "value.h"

/* Most output kept per stream and task; the rest is counted and dropped. */
#define OUTPUT_CAP (8u << 20)
/* Alignment of the elements of a large pushed array. */
#define ALIGN 64
/* After the controller is lost, how long a busy main thread may take. */
#define EXIT_GRACE 5

struct reply_item {
	struct task *task;
	struct kernel_reply r;
	double elapsed;
	struct reply_item *next;
};

struct stream {
	const char *name; /* "stdout" or "stderr" */
	int fd;
	struct event *ev;
	struct evbuffer *buf;
	size_t dropped;
	size_t streamed; /* bytes of buf already sent as live output */
};

static struct {
	struct event_base *base;
	struct tls_ctx *tls;
	struct conn *conn;
	struct engine_identity who;
	const struct kernel_ops *kernel;
	pthread_t thread;
	struct event *reply_ev;
	struct event *stop_ev;
	struct event *grace_ev;
	struct stream out, err;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct task *tasks, **tasks_tail;
	struct task *streams; /* tasks whose value is still arriving */
	struct reply_item *replies, **replies_tail;
	bool registered, failed, stopping;
	int64_t id;
	uint64_t current;   /* task the main thread runs (atomic), 0 if none */
	pthread_t main_thread;
	int where_rd;       /* the main thread's stack dumps arrive here */
	struct event *where_ev;
	struct evbuffer *where_buf;
	uint64_t where_ids[16]; /* 'where' requests waiting for the dump */
	int nwhere;
	double heartbeat;   /* the controller's ping period */
	int tolerance;      /* pings missed before it counts as gone */
	double last_heard;  /* monotonic time of its last message */
	bool lent_out;      /* a reply's lent bytes are still being sent */
	struct event *watch_ev;
	char reason[600];
} io;

/* Free a task and what it holds. */
void
task_free(struct task *t)
{
	if (t == NULL)
		return;
	free(t->code);
	free(t->name);
	free(t->as);
	free(t->ranks);
	free(t->block ? t->block : t->data);
	free(t);
}

/* Wake the main thread with a terminal state. */
static void
io_shutdown(const char *reason)
{
	pthread_mutex_lock(&io.lock);
	if (!io.registered && !io.failed) {
		io.failed = true;
		snprintf(io.reason, sizeof(io.reason), "%.*s",
			 (int)sizeof(io.reason) - 1, reason);
	}
	io.stopping = true;
	pthread_cond_broadcast(&io.cond);
	pthread_mutex_unlock(&io.lock);
}

/* Send s->buf's bytes not yet streamed as live output of task. */
static void
stream_send(struct stream *s, uint64_t task)
{
	size_t len = evbuffer_get_length(s->buf), n;
	struct evbuffer_ptr at;
	struct msg m;
	char *text;

	if (task == 0 || io.conn == NULL || s->streamed >= len ||
	    evbuffer_ptr_set(s->buf, &at, s->streamed, EVBUFFER_PTR_SET) < 0)
		return;
	n = len - s->streamed;
	text = xmalloc(n);
	if (evbuffer_copyout_from(s->buf, &at, text, n) == (ssize_t)n) {
		msg_init(&m, MSG_STREAM);
		msg_set_int(&m, F_ID, (int64_t)task);
		msg_set_str(&m, F_NAME, s->name);
		msg_set_strn(&m, F_TEXT, text, n);
		conn_send(io.conn, &m, NULL);
	}
	free(text);
	s->streamed = len;
}

/* Read what the pipe holds into s->buf (up to the cap). */
static void
stream_drain(struct stream *s)
{
	char buf[65536];

	for (;;) {
		ssize_t n = read(s->fd, buf, sizeof(buf));

		if (n <= 0)
			break;
		if (evbuffer_get_length(s->buf) + (size_t)n > OUTPUT_CAP) {
			size_t room = OUTPUT_CAP - evbuffer_get_length(s->buf);

			evbuffer_add(s->buf, buf, room);
			s->dropped += (size_t)n - room;
		} else {
			evbuffer_add(s->buf, buf, (size_t)n);
		}
	}
}

static void
stream_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	stream_drain(arg);
	/* Live output of the running task; between tasks (current 0) it
	 * waits and goes out with the next reply's final stream. */
	stream_send(arg, __atomic_load_n(&io.current, __ATOMIC_ACQUIRE));
}

/* Move a stream's text into a malloc'd string for the reply of task,
 * streaming first whatever live output of it has not gone yet. */
static char *
stream_take(struct stream *s, uint64_t task, size_t *len)
{
	char *text;
	size_t n;

	stream_drain(s);
	stream_send(s, task);
	if (s->dropped > 0) {
		evbuffer_add_printf(s->buf, "\n[cohort: %zu more bytes of "
				    "output dropped]\n", s->dropped);
		s->dropped = 0;
	}
	n = evbuffer_get_length(s->buf);
	text = xmalloc(n + 1);
	evbuffer_remove(s->buf, text, n);
	text[n] = '\0';
	s->streamed = 0;
	*len = n;
	return text;
}

static void
free_data(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	free(arg);
}

/* The last lent chunk was written (or dropped with the connection). */
static void
lent_sent(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	(void)arg;
	pthread_mutex_lock(&io.lock);
	io.lent_out = false;
	pthread_cond_broadcast(&io.cond);
	pthread_mutex_unlock(&io.lock);
}

/* Send len bytes at data as chunks of task id, each referencing data;
 * cleanup(arg) runs once the last has been written. On failure cleanup
 * runs at once: nothing more of data will be read. */
static void
send_chunks(uint64_t id, const char *data, size_t len,
	    void (*cleanup)(const void *, size_t, void *), void *arg)
{
	size_t off = 0, n;
	struct msg c;

	msg_init(&c, MSG_CHUNK);
	msg_set_int(&c, F_ID, (int64_t)id);
	for (; off < len; off += n) {
		n = len - off < PROTO_CHUNK ? len - off : PROTO_CHUNK;
		if (conn_send_ref(io.conn, &c, data + off, n,
				  off + n == len ? cleanup : NULL,
				  arg) < 0) {
			cleanup(data, len, arg);
			return;
		}
	}
}

static void
send_reply(struct reply_item *it)
{
	struct kernel_reply *r = &it->r;
	size_t out_len, err_len;
	char *out = stream_take(&io.out, it->task->id, &out_len);
	char *err = stream_take(&io.err, it->task->id, &err_len);
	struct msg m;

	msg_init(&m, MSG_REPLY);
	msg_set_int(&m, F_ID, (int64_t)it->task->id);
	msg_set_str(&m, F_STATUS, r->ok ? "ok" : "error");
	msg_set_strn(&m, F_STDOUT, out, out_len);
	msg_set_strn(&m, F_STDERR, err, err_len);
	msg_set_double(&m, F_ELAPSED, it->elapsed);
	if (it->task->op == TASK_EXECUTE)
		msg_set_int(&m, F_COUNT, r->execution_count);
	if (r->result != NULL)
		msg_set_str(&m, F_RESULT, r->result);
	if (!r->ok) {
		msg_set_str(&m, F_ENAME, r->ename ? r->ename : "Error");
		msg_set_str(&m, F_EVALUE, r->evalue ? r->evalue : "");
		if (r->traceback != NULL)
			msg_set_str(&m, F_TRACEBACK, r->traceback);
	}
	if (io.conn != NULL && r->ok &&
	    (r->len > PROTO_CHUNK || r->lender != NULL)) {
		/* A large value goes as chunks referencing the kernel's
		 * buffer, which is freed after the last one is sent, then
		 * the bytes the kernel lent, if any, handed back after
		 * theirs (io_wait_lent). */
		char *data = r->data;

		msg_set_int(&m, F_CHUNKED, (int64_t)(r->len + r->lent_len));
		conn_send_bytes(io.conn, &m, NULL, 0);
		r->data = NULL;
		send_chunks(it->task->id, data, r->len, free_data, data);
		if (r->lender != NULL)
			send_chunks(it->task->id, r->lent, r->lent_len,
				    lent_sent, NULL);
	} else {
		if (io.conn != NULL)
			conn_send_bytes(io.conn, &m, r->data,
					r->ok ? r->len : 0);
		if (r->lender != NULL)
			lent_sent(NULL, 0, NULL); /* not sent: nothing to wait for */
	}
	free(out);
	free(err);
}

static void
reply_cb(evutil_socket_t fd, short what, void *arg)
{
	struct reply_item *list, *next;

	(void)fd;
	(void)what;
	(void)arg;
	pthread_mutex_lock(&io.lock);
	list = io.replies;
	io.replies = NULL;
	io.replies_tail = &io.replies;
	pthread_mutex_unlock(&io.lock);
	for (; list != NULL; list = next) {
		next = list->next;
		send_reply(list);
		kernel_reply_clear(&list->r);
		task_free(list->task);
		free(list);
	}
}

static void
stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	event_base_loopbreak(io.base);
}

static void
grace_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	log_error("the main thread is still busy %d s after the controller "
		  "went away; exiting", EXIT_GRACE);
	_exit(1);
}

static void on_lost(struct conn *c, const char *reason, void *arg);
static void watch_start(double period, int tolerance);

/* 'cohort where': the I/O thread signals the main thread (SIGUSR2), whose
 * handler writes its C backtrace and the kernel's stack (async-signal-
 * safe: backtrace_symbols_fd, CPython's faulthandler dump) into a pipe,
 * ended by a NUL; this thread reads it and answers with a one-line
 * summary. It works wherever the main thread is, MPI calls included. */
static int where_wr = -1;
static const struct kernel_ops *where_kernel;

static void
where_handler(int sig)
{
	void *frames[64];
	int saved = errno, n = backtrace(frames, 64);

	(void)sig;
	backtrace_symbols_fd(frames, n, where_wr);
	if (write(where_wr, "\x1e", 1) < 0) {
		/* nothing to do in a handler */
	}
	if (where_kernel != NULL && where_kernel->where != NULL)
		where_kernel->where(where_wr);
	if (write(where_wr, "", 1) < 0) {
		/* nothing to do in a handler */
	}
	errno = saved;
}

/* The symbol of a backtrace_symbols line ("lib.so(NAME+0x1f)[0x..]"). */
static size_t
frame_name(const char *line, size_t len, const char **name)
{
	const char *open = memchr(line, '(', len), *end;

	if (open == NULL)
		return 0;
	for (end = open + 1; end < line + len && *end != '+' && *end != ')';
	     end++)
		;
	*name = open + 1;
	return (size_t)(end - open - 1);
}

/* "in MPI_Barrier <- psum (psum.py:6) <- <cell>" from a raw dump. */
static char *
where_summary(const char *dump, size_t len)
{
	const char *sep = memchr(dump, '\x1e', len), *p, *end, *name;
	const char *cname = NULL, *mpiname = NULL;
	size_t clen = 0, mpilen = 0, n;
	int frame = 0;
	struct evbuffer *out = evbuffer_new();
	char *text;

	if (sep == NULL)
		sep = dump + len;
	for (p = dump; p < sep; p = end + 1) {
		end = memchr(p, '\n', (size_t)(sep - p));
		if (end == NULL)
			end = sep;
		n = frame_name(p, (size_t)(end - p), &name);
		/* Frame 0 is the handler, 1 the kernel's signal trampoline. */
		if (frame++ < 2 || n == 0)
			continue;
		if (cname == NULL) {
			cname = name;
			clen = n;
		}
		/* The outermost MPI frame names the call the user made. */
		if ((n > 4 && memcmp(name, "MPI_", 4) == 0) ||
		    (n > 5 && memcmp(name, "PMPI_", 5) == 0)) {
			mpiname = name;
			mpilen = n;
		}
	}
	if (mpiname != NULL)
		evbuffer_add_printf(out, "in %.*s", (int)mpilen, mpiname);
	else if (cname != NULL)
		evbuffer_add_printf(out, "in %.*s", (int)clen, cname);
	else
		evbuffer_add_printf(out, "in ?");
	/* faulthandler lines: '  File "psum.py", line 6 in psum' */
	for (p = sep + (sep < dump + len); p < dump + len; p = end + 1) {
		const char *q, *file, *fend, *func;
		int line = 0;

		end = memchr(p, '\n', (size_t)(dump + len - p));
		if (end == NULL)
			end = dump + len;
		q = memmem(p, (size_t)(end - p), "File \"", 6);
		if (q == NULL)
			continue;
		file = q + 6;
		fend = memchr(file, '"', (size_t)(end - file));
		if (fend == NULL)
			continue;
		q = memmem(fend, (size_t)(end - fend), ", line ", 7);
		if (q != NULL)
			line = atoi(q + 7);
		func = memmem(fend, (size_t)(end - fend), " in ", 4);
		func = func ? func + 4 : "?";
		for (q = fend; q > file && q[-1] != '/'; q--)
			;
		if (fend - q >= 14 && memcmp(q, "<cohort-kernel", 14) == 0)
			continue; /* the kernel's own helper */
		if (fend - q >= 5 && memcmp(q, "<cell", 5) == 0) {
			if (end - func == 8 && memcmp(func, "<module>", 8) == 0)
				evbuffer_add_printf(out, " <- <cell>");
			else
				evbuffer_add_printf(out, " <- %.*s (<cell>:%d)",
						    (int)(end - func), func,
						    line);
		} else {
			evbuffer_add_printf(out, " <- %.*s (%.*s:%d)",
					    (int)(end - func), func,
					    (int)(fend - q), q, line);
		}
	}
	n = evbuffer_get_length(out);
	text = xmalloc(n + 1);
	evbuffer_remove(out, text, n);
	text[n] = '\0';
	evbuffer_free(out);
	/* Waiting for the next task, no Python frame: say so plainly. */
	if (strcmp(text, "in pthread_cond_wait") == 0) {
		free(text);
		text = xstrdup("idle");
	}
	return text;
}

static void
where_read_cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[8192];
	ssize_t n;

	(void)what;
	(void)arg;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		evbuffer_add(io.where_buf, buf, (size_t)n);
	for (;;) {
		struct evbuffer_ptr at = evbuffer_search(io.where_buf, "", 1,
							 NULL);
		size_t len;
		char *dump, *summary;

		if (at.pos < 0)
			break;
		len = (size_t)at.pos;
		dump = xmalloc(len + 1);
		evbuffer_remove(io.where_buf, dump, len);
		evbuffer_drain(io.where_buf, 1);
		dump[len] = '\0';
		summary = where_summary(dump, len);
		for (int i = 0; i < io.nwhere && io.conn != NULL; i++) {
			struct msg m;

			msg_init(&m, MSG_REPLY);
			msg_set_int(&m, F_ID, (int64_t)io.where_ids[i]);
			msg_set_str(&m, F_STATUS, "ok");
			msg_set_str(&m, F_RESULT, summary);
			msg_set_str(&m, F_STDOUT, dump);
			conn_send(io.conn, &m, NULL);
		}
		io.nwhere = 0;
		free(summary);
		free(dump);
	}
}

static void
where_request(uint64_t id)
{
	if (io.nwhere == (int)(sizeof(io.where_ids) / sizeof(io.where_ids[0])))
		return;
	io.where_ids[io.nwhere++] = id;
	if (io.nwhere == 1)
		pthread_kill(io.main_thread, SIGUSR2);
}

/* Set up the pipe and handler for 'where' (on the main thread). */
static int
where_setup(const struct kernel_ops *kernel, struct cohort_error *err)
{
	struct sigaction sa;
	void *warm[4];
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) < 0)
		return errprintf(err, "cannot create the where pipe: %m");
	(void)fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
	if (fd_set_nonblock(fds[0]) < 0)
		return errprintf(err, "cannot set up the where pipe");
	io.where_rd = fds[0];
	where_wr = fds[1];
	where_kernel = kernel;
	/* backtrace() loads libgcc on first use: not in a handler. */
	(void)backtrace(warm, 4);
	io.main_thread = pthread_self();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = where_handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR2, &sa, NULL) < 0)
		return errprintf(err, "cannot install the where handler: %m");
	return 0;
}

static void
on_ready(struct conn *c, void *arg)
{
	struct msg m;

	(void)arg;
	/* Only the controller's certificate may send this engine code. */
	if (strcmp(conn_peer_cn(c), cohort_role_cn(COHORT_ROLE_CONTROLLER)) !=
	    0) {
		char why[300];

		snprintf(why, sizeof(why), "the peer at %s is not a Cohort "
			 "controller (certificate name '%s')", conn_peer(c),
			 conn_peer_cn(c));
		log_error("%s", why);
		conn_close(c);
		on_lost(NULL, why, NULL);
		return;
	}
	msg_init(&m, MSG_HELLO);
	msg_set_int(&m, F_VERSION, PROTO_VERSION);
	msg_set_str(&m, F_ROLE, "engine");
	msg_set_int(&m, F_RANK, io.who.rank);
	msg_set_int(&m, F_SIZE, io.who.size);
	msg_set_int(&m, F_PID, io.who.pid);
	msg_set_str(&m, F_HOST, io.who.host);
	msg_set_str(&m, F_KERNEL, io.who.kernel);
	msg_set_str(&m, F_JOB, io.who.job);
	conn_send(c, &m, NULL);
}

/* The task of a data-movement op name. */
static bool
move_op(struct str op, enum task_op *out)
{
	static const struct {
		const char *name;
		enum task_op op;
	} ops[] = {
		{ "bcast", TASK_BCAST },
		{ "move", TASK_MOVE },
		{ "allgather", TASK_ALLGATHER },
		{ "redistribute", TASK_REDISTRIBUTE },
	};

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (str_eq(op, ops[i].name)) {
			*out = ops[i].op;
			return true;
		}
	return false;
}

static int
task_from_msg(struct msg *m, struct evbuffer *payload, struct task **out)
{
	struct task *t = xcalloc(1, sizeof(*t));

	t->id = (uint64_t)m->id;
	if (str_eq(m->op, "execute") && msg_has(m, F_CODE)) {
		t->op = TASK_EXECUTE;
		t->code = str_dup(m->code);
		t->code_len = m->code.n;
		t->partial = msg_has(m, F_PARTIAL) && m->partial;
		if (msg_has(m, F_RANKS)) {
			t->ranks = xcalloc(m->nranks ? m->nranks : 1,
					   sizeof(int64_t));
			memcpy(t->ranks, m->ranks, m->nranks * sizeof(int64_t));
			t->nranks = m->nranks;
		}
	} else if (str_eq(m->op, "push") && msg_has(m, F_NAME)) {
		t->op = TASK_PUSH;
		t->name = str_dup(m->name);
		if (msg_has(m, F_CHUNKED)) {
			/* The controller bounds this (--max-payload). The
			 * value is placed at the first chunk (see
			 * stream_chunk). */
			t->chunked = (size_t)m->chunked;
			/* malloc, not posix_memalign: a block of the same size
			 * then fits where the last one was freed (memalign asks
			 * for more), so repeated pushes reuse warm memory. */
			if ((t->block = malloc(t->chunked + ALIGN)) == NULL) {
				task_free(t);
				return -1;
			}
			t->data = t->block;
		} else {
			t->len = payload ? evbuffer_get_length(payload) : 0;
			t->data = xmalloc(t->len);
			if (t->len > 0)
				evbuffer_remove(payload, t->data, t->len);
		}
	} else if (str_eq(m->op, "pull") && msg_has(m, F_NAME)) {
		t->op = TASK_PULL;
		t->name = str_dup(m->name);
	} else if (msg_has(m, F_NAME) && msg_has(m, F_RANKS) &&
		   m->nranks > 0 && move_op(m->op, &t->op)) {
		t->name = str_dup(m->name);
		t->as = msg_has(m, F_AS) ? str_dup(m->as) : NULL;
		t->root = msg_has(m, F_ROOT) ? m->root : 0;
		t->ranks = xcalloc(m->nranks, sizeof(int64_t));
		memcpy(t->ranks, m->ranks, m->nranks * sizeof(int64_t));
		t->nranks = m->nranks;
	} else {
		task_free(t);
		return -1;
	}
	*out = t;
	return 0;
}


static void
queue_task(struct task *t)
{
	pthread_mutex_lock(&io.lock);
	*io.tasks_tail = t;
	io.tasks_tail = &t->next;
	pthread_cond_signal(&io.cond);
	pthread_mutex_unlock(&io.lock);
}

/* Append a chunk to the task whose value it carries; queue the task when
 * its value is complete, drop it if the sender aborted. */
static void
stream_chunk(struct msg *m, struct evbuffer *payload)
{
	struct task **pp, *t;
	size_t n = payload ? evbuffer_get_length(payload) : 0;

	for (pp = &io.streams; (t = *pp) != NULL; pp = &t->next)
		if (t->id == (uint64_t)m->id)
			break;
	if (t == NULL)
		return;
	if (str_eq(m->status, "abort") || t->len + n > t->chunked) {
		if (!str_eq(m->status, "abort"))
			log_warnx("chunk overruns the value of task %llu; "
				  "dropped", (unsigned long long)t->id);
		*pp = t->next;
		task_free(t);
		return;
	}
	if (t->len == 0 && n > 0 && t->block != NULL) {
		/* An array's elements go on an aligned address, so the kernel
		 * can use them in place (push_owned). */
		size_t want = n < 4096 ? n : 4096, off;
		unsigned char *head = evbuffer_pullup(payload, (ssize_t)want);

		off = head ? value_array_offset(head, want) : 0;
		if (off > 0)
			t->data = (char *)t->block +
				  (ALIGN - ((uintptr_t)t->block + off) % ALIGN) %
					  ALIGN;
	}
	if (n > 0)
		evbuffer_remove(payload, (char *)t->data + t->len, n);
	t->len += n;
	if (t->len == t->chunked) {
		*pp = t->next;
		t->next = NULL;
		queue_task(t);
	}
}

static void
on_message(struct conn *c, struct msg *m, struct evbuffer *payload, void *arg)
{
	struct task *t;

	(void)arg;
	io.last_heard = now_monotonic();
	switch (m->type) {
	case MSG_WELCOME:
		if (msg_has(m, F_HEARTBEAT) && m->heartbeat > 0 &&
		    msg_has(m, F_TOLERANCE) && m->tolerance > 0)
			watch_start(m->heartbeat, (int)m->tolerance);
		pthread_mutex_lock(&io.lock);
		io.registered = true;
		io.id = m->engine;
		pthread_cond_broadcast(&io.cond);
		pthread_mutex_unlock(&io.lock);
		break;
	case MSG_ERROR: {
		char reason[600];

		snprintf(reason, sizeof(reason), "controller refused: %.*s",
			 (int)m->message.n, m->message.p);
		log_error("%s", reason);
		io_shutdown(reason);
		break;
	}
	case MSG_TASK:
		if (task_from_msg(m, payload, &t) < 0) {
			struct msg r;

			msg_init(&r, MSG_REPLY);
			msg_set_int(&r, F_ID, m->id);
			msg_set_str(&r, F_STATUS, "error");
			msg_set_str(&r, F_ENAME, "ProtocolError");
			msg_set_str(&r, F_EVALUE, "unsupported task");
			conn_send(c, &r, NULL);
			break;
		}
		if (t->chunked > 0) {
			t->next = io.streams;
			io.streams = t;
			break;
		}
		queue_task(t);
		break;
	case MSG_CHUNK:
		stream_chunk(m, payload);
		break;
	case MSG_INTERRUPT:
		log_info("interrupt requested");
		io.kernel->interrupt();
		break;
	case MSG_WHERE:
		where_request((uint64_t)m->id);
		break;
	case MSG_SIGNAL:
		/* An escalating timeout: the process ends itself (the main
		 * thread may be anywhere, so only a signal reaches it). */
		if (str_eq(m->name, "term")) {
			log_warnx("the controller escalates a timeout: SIGTERM");
			kill(getpid(), SIGTERM);
		} else if (str_eq(m->name, "kill")) {
			log_warnx("the controller escalates a timeout: SIGKILL");
			kill(getpid(), SIGKILL);
		} else {
			log_warnx("unknown signal request '%.*s'",
				  (int)m->name.n, m->name.p);
		}
		break;
	case MSG_PING: {
		struct msg pong;

		msg_init(&pong, MSG_PONG);
		conn_send(c, &pong, NULL);
		break;
	}
	default:
		log_warnx("unexpected %s message from the controller",
			  msg_type_name(m->type));
		break;
	}
}

/* The controller pings every period; silence beyond the tolerance means
 * it is gone even if the connection looks open. */
static void
watch_cb(evutil_socket_t fd, short what, void *arg)
{
	double silent = now_monotonic() - io.last_heard;
	char reason[128];

	(void)fd;
	(void)what;
	(void)arg;
	if (io.conn == NULL || silent <= io.heartbeat * io.tolerance)
		return;
	snprintf(reason, sizeof(reason), "no heartbeat from the controller "
		 "for %.1f s", silent);
	conn_close(io.conn);
	on_lost(NULL, reason, NULL);
}

static void
watch_start(double period, int tolerance)
{
	struct timeval tv;

	io.heartbeat = period;
	io.tolerance = tolerance;
	io.last_heard = now_monotonic();
	tv.tv_sec = (time_t)period;
	tv.tv_usec = (suseconds_t)((period - (double)tv.tv_sec) * 1e6);
	io.watch_ev = event_new(io.base, -1, EV_PERSIST, watch_cb, NULL);
	if (io.watch_ev == NULL || event_add(io.watch_ev, &tv) < 0)
		log_warnx("cannot watch the controller's heartbeat");
}

static void
on_lost(struct conn *c, const char *reason, void *arg)
{
	struct timeval tv = { EXIT_GRACE, 0 };
	char text[700];

	(void)c;
	(void)arg;
	io.conn = NULL;
	snprintf(text, sizeof(text), "lost the controller: %s", reason);
	if (io.registered)
		log_warnx("%s; shutting down", text);
	io_shutdown(text);
	io.grace_ev = evtimer_new(io.base, grace_cb, NULL);
	if (io.grace_ev != NULL)
		evtimer_add(io.grace_ev, &tv);
}

static const struct conn_handlers handlers = {
	.ready = on_ready,
	.message = on_message,
	.lost = on_lost,
};

static void *
io_main(void *arg)
{
	(void)arg;
	event_base_dispatch(io.base);
	return NULL;
}

static int
stream_init(struct stream *s, int fd, struct cohort_error *err)
{
	s->fd = fd;
	s->buf = evbuffer_new();
	s->ev = event_new(io.base, fd, EV_READ | EV_PERSIST, stream_cb, s);
	if (s->buf == NULL || s->ev == NULL || event_add(s->ev, NULL) < 0)
		return errprintf(err, "cannot watch the capture pipes");
	return 0;
}

/* Start the I/O thread, connect, and wait for the controller's welcome. */
int
io_start(const struct cohort_conninfo *ci, const struct engine_identity *who,
	 int out_rd, int err_rd, const struct kernel_ops *kernel, int64_t *id,
	 struct cohort_error *err)
{
	sigset_t all, old;
	int rc;

	io.who = *who;
	io.kernel = kernel;
	pthread_mutex_init(&io.lock, NULL);
	pthread_cond_init(&io.cond, NULL);
	io.tasks_tail = &io.tasks;
	io.replies_tail = &io.replies;
	if (evthread_use_pthreads() < 0)
		return errprintf(err, "libevent has no thread support");
	io.base = event_base_new();
	if (io.base == NULL)
		return errprintf(err, "cannot create the event loop");
	io.tls = tls_ctx_new(false, ci->ca, ci->cert, ci->key, err);
	if (io.tls == NULL)
		return -1;
	io.out.name = "stdout";
	io.err.name = "stderr";
	if (where_setup(kernel, err) < 0)
		return -1;
	io.where_buf = evbuffer_new();
	io.where_ev = event_new(io.base, io.where_rd, EV_READ | EV_PERSIST,
				where_read_cb, NULL);
	if (io.where_buf == NULL || io.where_ev == NULL ||
	    event_add(io.where_ev, NULL) < 0)
		return errprintf(err, "cannot watch the where pipe");
	if (stream_init(&io.out, out_rd, err) < 0 ||
	    stream_init(&io.err, err_rd, err) < 0)
		return -1;
	io.reply_ev = event_new(io.base, -1, 0, reply_cb, NULL);
	io.stop_ev = event_new(io.base, -1, 0, stop_cb, NULL);
	if (io.reply_ev == NULL || io.stop_ev == NULL)
		return errprintf(err, "cannot create events");
	io.conn = conn_connect(io.base, io.tls, ci->ip, ci->port, ci->socket,
			       &handlers, NULL, err);
	if (io.conn == NULL)
		return -1;
	/* Signals (SIGINT for interrupts) belong to the main thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&io.thread, NULL, io_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return errprintf(err, "cannot start the I/O thread: %s",
				 strerror(rc));
	pthread_mutex_lock(&io.lock);
	while (!io.registered && !io.failed)
		pthread_cond_wait(&io.cond, &io.lock);
	pthread_mutex_unlock(&io.lock);
	if (!io.registered)
		return errprintf(err, "%s", io.reason);
	*id = io.id;
	return 0;
}

/* Wait for the next task; NULL once the engine must stop. */
struct task *
io_next_task(void)
{
	struct task *t;

	pthread_mutex_lock(&io.lock);
	while (io.tasks == NULL && !io.stopping)
		pthread_cond_wait(&io.cond, &io.lock);
	t = io.tasks;
	if (t != NULL && !io.stopping) {
		io.tasks = t->next;
		if (io.tasks == NULL)
			io.tasks_tail = &io.tasks;
		t->next = NULL;
		__atomic_store_n(&io.current, t->id, __ATOMIC_RELEASE);
	} else {
		t = NULL;
	}
	pthread_mutex_unlock(&io.lock);
	return t;
}

/* Queue a reply for the I/O thread to send. */
void
io_post_reply(struct task *t, struct kernel_reply *r, double elapsed)
{
	struct reply_item *it = xcalloc(1, sizeof(*it));

	it->task = t;
	it->r = *r;
	if (r->lender != NULL) {
		pthread_mutex_lock(&io.lock);
		io.lent_out = true;
		pthread_mutex_unlock(&io.lock);
	}
	it->elapsed = elapsed;
	memset(r, 0, sizeof(*r));
	/* No task runs until the next is taken: output read meanwhile is
	 * this task's tail, streamed under its id when its reply is sent. */
	__atomic_store_n(&io.current, 0, __ATOMIC_RELEASE);
	pthread_mutex_lock(&io.lock);
	*io.replies_tail = it;
	io.replies_tail = &it->next;
	pthread_mutex_unlock(&io.lock);
	event_active(io.reply_ev, EV_TIMEOUT, 1);
}

/* After posting a reply with lent bytes: wait until they are sent. True
 * if the lender may be given back; false if the engine is stopping or
 * has lost the controller first (the bytes may still be referenced: the
 * lender is then kept until exit). */
bool
io_wait_lent(void)
{
	bool done;

	pthread_mutex_lock(&io.lock);
	while (io.lent_out && !io.stopping)
		pthread_cond_wait(&io.cond, &io.lock);
	done = !io.lent_out;
	pthread_mutex_unlock(&io.lock);
	return done;
}

/* True once the controller is gone (not a clean stop). */
bool
io_controller_lost(void)
{
	return io.conn == NULL;
}

/* Stop the I/O thread and free its state. */
void
io_stop(void)
{
	struct task *t;

	event_active(io.stop_ev, EV_TIMEOUT, 1);
	pthread_join(io.thread, NULL);
	if (io.conn != NULL)
		conn_close(io.conn);
	while ((t = io.tasks) != NULL) {
		io.tasks = t->next;
		task_free(t);
	}
	while ((t = io.streams) != NULL) {
		io.streams = t->next;
		task_free(t);
	}
	event_free(io.reply_ev);
	event_free(io.stop_ev);
	if (io.grace_ev != NULL)
		event_free(io.grace_ev);
	if (io.watch_ev != NULL)
		event_free(io.watch_ev);
	if (io.where_ev != NULL)
		event_free(io.where_ev);
	if (io.where_buf != NULL)
		evbuffer_free(io.where_buf);
	event_free(io.out.ev);
	event_free(io.err.ev);
	evbuffer_free(io.out.buf);
	evbuffer_free(io.err.buf);
	event_base_free(io.base);
	tls_ctx_free(io.tls);
}
