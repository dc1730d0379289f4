/* SPDX-License-Identifier: BSD-3-Clause */
/* conn.c - one framed, TLS-protected connection on a libevent loop.
 *
 * The TLS I/O is done here, on plain libevent events, rather than by
 * libevent's OpenSSL bufferevents, to spend fewer system calls per
 * message and per byte:
 *
 * - reading: OpenSSL reads ahead (up to CONN_READ_AHEAD bytes per read(2),
 *   many records at once, instead of two read(2)s per record), and the
 *   loop below decrypts everything it got before waiting again (records
 *   already read from the socket but not yet decrypted would otherwise
 *   wait for the socket to become readable again, which it may never);
 *   records are decrypted into blocks that the input buffer references,
 *   so a payload forwarded to other peers is not copied again;
 * - writing: messages queued while the loop runs one turn go out together
 *   at the end of it, coalesced into one TLS record (one write(2)) of up
 *   to 16 KiB, written at once without first waiting for the socket to
 *   be writable; write interest is registered only when the socket is
 *   full.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "conn.h"
#include "frame.h"
#include "log.h"
#include "util.h"

/* Ciphertext OpenSSL reads per read(2) (its read-ahead buffer). */
#define CONN_READ_AHEAD (64u << 10)
/* Plaintext decrypted per turn of the loop before other peers get theirs. */
#define CONN_READ_BUDGET (4u << 20)
/* The largest TLS record's plaintext: small messages are coalesced up to
 * this into one SSL_write, one record, one write(2). */
#define CONN_RECORD (16u << 10)
/* Input is decrypted into blocks of this many bytes (a multiple of the
 * record size), which the input buffer references: bulk data then lies in
 * whole records, which a forwarding peer writes on without copying. */
#define CONN_BLOCK (64u << 10)

struct block {
	size_t refs; /* the conn's hold, and one per reference */
	size_t used;
	unsigned char data[CONN_BLOCK];
};

/* Blocks freed are kept for reuse, up to a 4 MiB chunk frame's worth:
 * the blocks of a whole frame are freed at once when it has been
 * consumed, and handing them back to malloc would trim the top of the
 * heap only to fault the same pages in again for the next frame.
 * conn_trim_when_idle() empties the cache. */
#define BLOCK_CACHE 64
static struct {
	pthread_mutex_t lock;
	struct block *v[BLOCK_CACHE];
	size_t n;
} blocks = { .lock = PTHREAD_MUTEX_INITIALIZER };

static struct block *
block_new(void)
{
	struct block *b = NULL;

	pthread_mutex_lock(&blocks.lock);
	if (blocks.n > 0)
		b = blocks.v[--blocks.n];
	pthread_mutex_unlock(&blocks.lock);
	if (b == NULL)
		b = xmalloc(sizeof(*b));
	b->refs = 1;
	b->used = 0;
	return b;
}

static void
block_unref(struct block *b)
{
	if (b == NULL || __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	pthread_mutex_lock(&blocks.lock);
	if (blocks.n < BLOCK_CACHE) {
		blocks.v[blocks.n++] = b;
		b = NULL;
	}
	pthread_mutex_unlock(&blocks.lock);
	free(b);
}

static void
blocks_release(void)
{
	size_t n;
	struct block *v[BLOCK_CACHE];

	pthread_mutex_lock(&blocks.lock);
	n = blocks.n;
	memcpy(v, blocks.v, n * sizeof(*v));
	blocks.n = 0;
	pthread_mutex_unlock(&blocks.lock);
	for (size_t i = 0; i < n; i++)
		free(v[i]);
}

/* At exit (or unload), so leak checkers see every block freed. */
__attribute__((destructor)) static void
blocks_fini(void)
{
	blocks_release();
}

static void
block_cleanup(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	block_unref(arg);
}

enum conn_state {
	CS_TCP,  /* connecting */
	CS_TLS,  /* handshake */
	CS_OPEN, /* application data */
};

struct conn {
	struct event_base *base;
	evutil_socket_t fd;
	SSL *ssl;
	struct event *rev;   /* readable (persistent while reading) */
	struct event *wev;   /* writable (only while the socket is full) */
	struct event *kick;  /* work for the end of this turn of the loop */
	struct event *timer; /* idle timeout */
	struct event *later; /* more to read, after the other peers' turn */
	struct evbuffer *in, *out;
	struct block *blk;   /* the block being filled, or NULL */
	enum conn_state state;
	struct conn_handlers h;
	void *arg;
	char peer[64];
	char cn[128];
	uint64_t max_payload;
	double idle_timeout;
	bool ready;
	bool paused;   /* reading stopped by conn_pause() */
	bool closing;  /* close_after_flush in progress */
	bool dead;     /* closed while inside a callback */
	bool broken;   /* the TLS session or the socket failed */
	bool reading;  /* rev is added */
	bool writing;  /* wev is added */
	bool kicked;   /* kick is active */
	bool read_wants_write;
	bool write_wants_read;
	bool out_bulk;  /* a big payload was queued since output was empty */
	int connect_errno; /* a connect() that failed at once */
	size_t wlen;   /* an SSL_write to retry with exactly this length */
	int in_cb;     /* callback nesting depth */
	/* Frame being read. */
	bool have_prefix;
	uint32_t hlen;
	uint64_t plen;
	/* conn_set_sent_hook(), conn_set_user(). */
	void (*sent)(struct conn *c, const struct msg *m, void *arg);
	void *sent_arg;
	void *user;
	void (*user_free)(void *user);
};

/* Returning freed heap to the kernel once bulk traffic stops
 * (conn_trim_when_idle). */
#define TRIM_MIN_PAYLOAD (64u << 10)
/* Free heap that grew by this much since the last trim is trimmed even
 * without traffic: a value deleted after the transfer that carried it. */
#define TRIM_GROWTH (4u << 20)
static struct {
	double delay;  /* seconds without bulk traffic before trimming; 0: off */
	double last;   /* when the last big payload or connection was seen */
	bool armed;    /* a trim_cb is scheduled */
	bool pending;  /* bulk traffic since the last trim */
	size_t free_after; /* free heap bytes right after the last trim */
} trim;

static void trim_arm(struct event_base *base, double after);

static size_t
heap_free_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.fordblks;
}

static void
trim_cb(evutil_socket_t fd, short what, void *arg)
{
	struct event_base *base = arg;
	double idle = now_monotonic() - trim.last;

	(void)fd;
	(void)what;
	trim.armed = false;
	if (idle < trim.delay) {
		trim_arm(base, trim.delay - idle);
		return;
	}
	if (trim.pending || heap_free_bytes() > trim.free_after + TRIM_GROWTH) {
		/* Payload chains are small blocks in the middle of the heap;
		 * only malloc_trim() gives their pages back (glibc trims the
		 * top only). */
		blocks_release();
		(void)malloc_trim(0);
		trim.pending = false;
		trim.free_after = heap_free_bytes();
	}
	/* Keep looking, once per delay: memory can be freed after the
	 * traffic that brought it has ended. */
	trim_arm(base, trim.delay);
}

static void
trim_arm(struct event_base *base, double after)
{
	struct timeval tv;

	tv.tv_sec = (time_t)after;
	tv.tv_usec = (suseconds_t)((after - (double)tv.tv_sec) * 1e6) + 1;
	if (event_base_once(base, -1, EV_TIMEOUT, trim_cb, base, &tv) == 0)
		trim.armed = true;
}

/* Bulk traffic (or a new connection) went through c: trim later. */
static void
trim_note(struct conn *c)
{
	if (trim.delay <= 0)
		return;
	trim.last = now_monotonic();
	trim.pending = true;
	if (!trim.armed)
		trim_arm(c->base, trim.delay);
}

/* Give freed heap back to the kernel once no big payload has passed for
 * delay seconds (0: never, the default). For long-lived brokers. */
void
conn_trim_when_idle(double delay)
{
	trim.delay = delay > 0 ? delay : 0;
}

static void conn_free(struct conn *c);
static void flush_output(struct conn *c);

static void
conn_release(struct conn *c)
{
	if (c->in_cb > 0)
		c->dead = true;
	else
		conn_free(c);
}

/* Enter and leave a callback from the loop: c is freed on the way out if
 * it was closed inside. */
static void
enter(struct conn *c)
{
	c->in_cb++;
}

static void
leave(struct conn *c)
{
	c->in_cb--;
	if (c->dead && c->in_cb == 0)
		conn_free(c);
}

static void
conn_fail(struct conn *c, const char *reason)
{
	if (c->dead)
		return;
	c->broken = true;
	if (c->h.lost != NULL && !c->closing) {
		c->in_cb++;
		c->h.lost(c, reason, c->arg);
		c->in_cb--;
	}
	conn_release(c);
}

/* Run the deferred work (flush, resume reading) at the end of this turn. */
static void
kick(struct conn *c)
{
	if (c->kicked || c->dead)
		return;
	c->kicked = true;
	event_active(c->kick, EV_WRITE, 1);
}

static void
want_write(struct conn *c, bool on)
{
	if (on == c->writing)
		return;
	if (on ? event_add(c->wev, NULL) : event_del(c->wev)) {
		log_warnx("cannot %s write events for %s", on ? "add" : "drop",
			  c->peer);
		return;
	}
	c->writing = on;
}

static void
want_read(struct conn *c, bool on)
{
	if (on == c->reading)
		return;
	if (on ? event_add(c->rev, NULL) : event_del(c->rev)) {
		log_warnx("cannot %s read events for %s", on ? "add" : "drop",
			  c->peer);
		return;
	}
	c->reading = on;
}

static void
set_nodelay(struct conn *c)
{
	int one = 1, domain = 0;
	socklen_t len = sizeof(domain);

	if (getsockopt(c->fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
	    domain == AF_UNIX)
		return; /* a local socket: nothing to coalesce */
	/* Requests are small and latency-bound: never wait to coalesce. */
	if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		log_debug("TCP_NODELAY on %s: %s", c->peer, strerror(errno));
}

/* OpenSSL's queued errors as text (the queue is emptied). */
static void
tls_error_text(char *buf, size_t size)
{
	unsigned long e;
	size_t n = 0;

	buf[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		char one[256];

		if (ERR_GET_LIB(e) == 0 || n + 2 >= size)
			continue;
		ERR_error_string_n(e, one, sizeof(one));
		n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? "; " : "",
				      one);
		if (n >= size)
			n = size - 1;
	}
}

/* The session or socket failed: say why, as the peer will read it. */
static void
io_fail(struct conn *c, bool eof, int sockerr)
{
	char reason[600], tls[512];

	tls_error_text(tls, sizeof(tls));
	if (c->state == CS_TCP)
		/* The TCP connect itself failed: say so, not "TLS". */
		snprintf(reason, sizeof(reason), "%s",
			 strerror(sockerr ? sockerr : ECONNREFUSED));
	else if (tls[0] != '\0')
		snprintf(reason, sizeof(reason), "TLS error%s: %s",
			 c->ready ? "" : " during handshake", tls);
	else if (eof)
		snprintf(reason, sizeof(reason), "connection closed by peer%s",
			 c->ready ? "" : " during TLS handshake");
	else
		snprintf(reason, sizeof(reason), "connection error: %s",
			 sockerr ? strerror(sockerr) : "unknown");
	conn_fail(c, reason);
}

/* Handle a failed SSL call: true if the connection failed. */
static bool
ssl_failed(struct conn *c, int rc, bool *want_read_, bool *want_write_)
{
	int saved = errno;
	int e = SSL_get_error(c->ssl, rc);

	*want_read_ = *want_write_ = false;
	switch (e) {
	case SSL_ERROR_WANT_READ:
		*want_read_ = true;
		return false;
	case SSL_ERROR_WANT_WRITE:
		*want_write_ = true;
		return false;
	case SSL_ERROR_ZERO_RETURN:
		io_fail(c, true, 0);
		return true;
	case SSL_ERROR_SYSCALL:
		/* No TLS error queued and errno 0: the peer just went. */
		if (ERR_peek_error() == 0 && saved == 0)
			io_fail(c, true, 0);
		else
			io_fail(c, false, saved);
		return true;
	default:
		io_fail(c, false, saved);
		return true;
	}
}

static void
protocol_error(struct conn *c, const char *why, const void *sample, size_t n)
{
	char text[64], reason[640];

	frame_sample(sample, n, text, sizeof(text));
	snprintf(reason, sizeof(reason), "protocol error: %s (bytes: \"%s\")",
		 why, text);
	conn_fail(c, reason);
}

/* Hand every whole frame in the input to the message callback. */
static void
dispatch(struct conn *c)
{
	struct evbuffer *in = c->in;
	struct cohort_error err;

	while (!c->dead && !c->closing && !c->paused) {
		uint8_t prefix[FRAME_PREFIX_LEN];
		struct evbuffer *payload = NULL;
		struct msg m;
		char *header;

		if (!c->have_prefix) {
			if (evbuffer_get_length(in) < FRAME_PREFIX_LEN)
				break;
			if (evbuffer_remove(in, prefix, sizeof(prefix)) !=
			    (int)sizeof(prefix))
				break;
			if (frame_prefix_decode(prefix, c->max_payload,
						&c->hlen, &c->plen,
						&err) < 0) {
				protocol_error(c, err.text, prefix,
					       sizeof(prefix));
				break;
			}
			c->have_prefix = true;
		}
		if (evbuffer_get_length(in) < c->hlen + c->plen)
			break;
		header = xmalloc(c->hlen);
		if (evbuffer_remove(in, header, c->hlen) != (int)c->hlen) {
			free(header);
			break;
		}
		if (c->plen > 0) {
			payload = evbuffer_new();
			if (payload == NULL)
				fatalx("out of memory for a payload");
			/* remove_buffer takes and returns an int: move large
			 * payloads in chunks. Chains move, bytes are not
			 * copied. */
			while (evbuffer_get_length(payload) < c->plen) {
				size_t want = c->plen -
					      evbuffer_get_length(payload);

				if (want > (1u << 30))
					want = 1u << 30;
				if (evbuffer_remove_buffer(in, payload, want) <= 0)
					break;
			}
		}
		c->have_prefix = false;
		if (msg_decode(&m, header, c->hlen, &err) < 0) {
			protocol_error(c, err.text, header, c->hlen);
			free(header);
			if (payload != NULL)
				evbuffer_free(payload);
			break;
		}
		free(header);
		if (payload != NULL &&
		    evbuffer_get_length(payload) >= TRIM_MIN_PAYLOAD)
			trim_note(c);
		if (c->h.message != NULL)
			c->h.message(c, &m, payload, c->arg);
		msg_clear(&m);
		if (payload != NULL)
			evbuffer_free(payload);
	}
}

static void
rearm_timer(struct conn *c)
{
	struct timeval tv;

	if (c->idle_timeout <= 0 || c->timer == NULL)
		return;
	tv.tv_sec = (time_t)c->idle_timeout;
	tv.tv_usec = (suseconds_t)((c->idle_timeout - (double)tv.tv_sec) *
				   1e6);
	if (evtimer_add(c->timer, &tv) < 0)
		log_warnx("cannot arm the idle timer of %s", c->peer);
}

static void later_cb(evutil_socket_t fd, short what, void *arg);

/* Decrypt what the socket (and OpenSSL's read-ahead) holds, then hand out
 * the whole frames. */
static void
read_input(struct conn *c)
{
	size_t got = 0;
	bool wr, ww;

	c->read_wants_write = false;
	while (!c->dead && !c->paused && !c->closing) {
		struct block *b;
		size_t n = 0, space;
		int rc;

		if (got >= CONN_READ_BUDGET) {
			/* Let the other peers have a turn. What is left may
			 * be inside OpenSSL already, where readability would
			 * not say so: come back after one poll. */
			static const struct timeval zero = { 0, 0 };

			if (c->later == NULL)
				c->later = evtimer_new(c->base, later_cb, c);
			if (c->later == NULL || evtimer_add(c->later, &zero) < 0)
				kick(c);
			break;
		}
		if (c->blk == NULL || CONN_BLOCK - c->blk->used < 1024) {
			block_unref(c->blk);
			c->blk = block_new();
		}
		b = c->blk;
		space = CONN_BLOCK - b->used;
		ERR_clear_error();
		errno = 0;
		rc = SSL_read_ex(c->ssl, b->data + b->used, space, &n);
		if (rc == 1) {
			__atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
			if (evbuffer_add_reference(c->in, b->data + b->used, n,
						   block_cleanup, b) < 0)
				fatalx("out of memory for input from %s",
				       c->peer);
			b->used += n;
			got += n;
			/* Nothing left inside OpenSSL after a short record:
			 * most likely the socket is empty too, and a read(2)
			 * to hear EAGAIN would be wasted. If more did arrive,
			 * the socket is still readable (level-triggered), so
			 * nothing waits. A full record means bulk: go on. */
			if (n < CONN_RECORD && n < space &&
			    !SSL_has_pending(c->ssl))
				break;
			continue;
		}
		if (ssl_failed(c, rc, &wr, &ww))
			return;
		if (ww) {
			/* A TLS message to answer first (key update). */
			c->read_wants_write = true;
			want_write(c, true);
		}
		break;
	}
	if (got > 0)
		rearm_timer(c);
	dispatch(c);
	/* Nothing waits for more: let the block go with its last bytes. */
	if (!c->dead && c->blk != NULL && evbuffer_get_length(c->in) == 0) {
		block_unref(c->blk);
		c->blk = NULL;
	}
}

/* Write queued output until it is gone or the socket is full. Returns
 * false if the connection failed. Calls no callback. */
static bool
write_output(struct conn *c, bool *wrote)
{
	bool wr, ww;

	*wrote = false;
	c->write_wants_read = false;
	while (evbuffer_get_length(c->out) > 0) {
		size_t len = evbuffer_get_length(c->out), n, w = 0;
		unsigned char *p;
		int rc;

		if (c->wlen > 0) {
			/* OpenSSL wants the same write again. */
			n = c->wlen;
		} else {
			n = evbuffer_get_contiguous_space(c->out);
			if (n >= CONN_RECORD) {
				n = CONN_RECORD;
			} else if (n < len) {
				/* Coalesce small messages into one record:
				 * whole pieces only, so bulk data is never
				 * copied here. */
				struct evbuffer_iovec v[16];
				int nv = evbuffer_peek(c->out, CONN_RECORD,
						       NULL, v, 16);

				for (int i = 1; i < nv && i < 16 &&
						n + v[i].iov_len <= CONN_RECORD;
				     i++)
					n += v[i].iov_len;
			}
		}
		p = evbuffer_pullup(c->out, (ev_ssize_t)n);
		if (p == NULL)
			fatalx("out of memory for output to %s", c->peer);
		ERR_clear_error();
		errno = 0;
		rc = SSL_write_ex(c->ssl, p, n, &w);
		if (rc == 1) {
			c->wlen = 0;
			if (evbuffer_drain(c->out, w) < 0)
				fatalx("cannot drain output to %s", c->peer);
			*wrote = true;
			continue;
		}
		if (ssl_failed(c, rc, &wr, &ww))
			return false;
		c->wlen = n;
		if (ww)
			want_write(c, true);
		else
			c->write_wants_read = true;
		return true;
	}
	if (!c->read_wants_write)
		want_write(c, false);
	return true;
}

static void
flush_output(struct conn *c)
{
	bool wrote;

	if (c->dead || c->state != CS_OPEN || c->broken)
		return;
	if (!write_output(c, &wrote) || !wrote)
		return;
	if (c->out_bulk) {
		/* Bulk output is traffic too: no trim while it flows (the
		 * memory freed before it would be needed again). Once it is
		 * out, its memory can go back. */
		trim_note(c);
		if (evbuffer_get_length(c->out) == 0)
			c->out_bulk = false;
	}
	if (c->closing) {
		if (evbuffer_get_length(c->out) == 0)
			conn_release(c);
		return;
	}
	/* drained() runs whenever queued output is below the low mark. */
	if (c->h.drained != NULL &&
	    evbuffer_get_length(c->out) <= CONN_LOW_WATER) {
		c->in_cb++;
		c->h.drained(c, c->arg);
		c->in_cb--;
	}
}

static void
read_peer_cn(struct conn *c)
{
	X509 *cert = SSL_get0_peer_certificate(c->ssl);

	c->cn[0] = '\0';
	if (cert != NULL &&
	    X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
				      NID_commonName, c->cn,
				      sizeof(c->cn)) < 0)
		c->cn[0] = '\0';
}

static void
handshake(struct conn *c)
{
	bool wr, ww;
	int rc;

	ERR_clear_error();
	errno = 0;
	rc = SSL_do_handshake(c->ssl);
	if (rc != 1) {
		if (ssl_failed(c, rc, &wr, &ww))
			return;
		want_write(c, ww);
		return;
	}
	c->state = CS_OPEN;
	want_write(c, false);
	if (c->paused || c->closing)
		want_read(c, false);
	set_nodelay(c);
	read_peer_cn(c);
	c->ready = true;
	trim_note(c); /* the handshake's temporaries are freed */
	if (c->h.ready != NULL) {
		c->in_cb++;
		c->h.ready(c, c->arg);
		c->in_cb--;
	}
	/* Send what was queued meanwhile, and read what came with the last
	 * handshake message (it may already be inside OpenSSL). */
	kick(c);
}

static void
start_tls(struct conn *c)
{
	c->state = CS_TLS;
	want_write(c, false);
	want_read(c, true);
	handshake(c);
}

static void
finish_connect(struct conn *c)
{
	int e = 0;
	socklen_t len = sizeof(e);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
		e = errno;
	if (e == EINPROGRESS || e == EINTR)
		return;
	if (e != 0) {
		io_fail(c, false, e);
		return;
	}
	start_tls(c);
}

static void
read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	enter(c);
	if (c->state == CS_TLS)
		handshake(c);
	else if (c->state == CS_OPEN) {
		if (c->write_wants_read)
			flush_output(c);
		if (!c->dead)
			read_input(c);
	}
	leave(c);
}

static void
write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	enter(c);
	if (c->state == CS_TCP)
		finish_connect(c);
	else if (c->state == CS_TLS)
		handshake(c);
	else {
		if (c->read_wants_write)
			read_input(c);
		if (!c->dead)
			flush_output(c);
	}
	leave(c);
}

static void
kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	enter(c);
	c->kicked = false;
	if (c->connect_errno != 0) {
		c->state = CS_TCP;
		io_fail(c, false, c->connect_errno);
	} else if (c->state == CS_TLS && !c->ready) {
		handshake(c);
	} else if (c->state == CS_OPEN) {
		if (!c->paused && !c->closing &&
		    (SSL_has_pending(c->ssl) || evbuffer_get_length(c->in) > 0))
			read_input(c);
		if (!c->dead)
			flush_output(c);
	}
	leave(c);
}

static void
later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	enter(c);
	if (c->state == CS_OPEN && !c->paused && !c->closing)
		read_input(c);
	leave(c);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	enter(c);
	conn_fail(c, "timed out waiting for the peer");
	leave(c);
}

static struct conn *
conn_new(struct event_base *base, evutil_socket_t fd, SSL *ssl,
	 const struct conn_handlers *h, void *arg)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	c->base = base;
	c->fd = fd;
	c->ssl = ssl;
	c->h = *h;
	c->arg = arg;
	c->max_payload = FRAME_DEFAULT_MAX_PAYLOAD;
	c->rev = event_new(base, fd, EV_READ | EV_PERSIST, read_cb, c);
	c->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, write_cb, c);
	c->kick = event_new(base, -1, 0, kick_cb, c);
	c->in = evbuffer_new();
	c->out = evbuffer_new();
	if (c->rev == NULL || c->wev == NULL || c->kick == NULL ||
	    c->in == NULL || c->out == NULL ||
	    evutil_make_socket_nonblocking(fd) < 0 ||
	    SSL_set_fd(ssl, fd) != 1) {
		/* The caller still owns ssl and fd. */
		c->ssl = NULL;
		c->fd = -1;
		conn_free(c);
		return NULL;
	}
	/* Read many records per read(2); read_input() always decrypts all
	 * of them before waiting for the socket again. */
	SSL_set_read_ahead(ssl, 1);
	SSL_set_default_read_buffer_len(ssl, CONN_READ_AHEAD);
	return c;
}

/* Wrap an accepted socket and start the server side of the handshake. */
struct conn *
conn_accept(struct event_base *base, struct tls_ctx *tls, int fd,
	    const char *peer, const struct conn_handlers *h, void *arg)
{
	SSL *ssl = SSL_new(tls_ctx_ssl_ctx(tls));
	struct conn *c;

	if (ssl == NULL) {
		log_warnx("cannot create TLS session for %s", peer);
		evutil_closesocket(fd);
		return NULL;
	}
	c = conn_new(base, fd, ssl, h, arg);
	if (c == NULL) {
		log_warnx("cannot set up the connection of %s", peer);
		SSL_free(ssl);
		evutil_closesocket(fd);
		return NULL;
	}
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	SSL_set_accept_state(ssl);
	c->state = CS_TLS;
	want_read(c, true);
	/* The client speaks first: wait for its hello. */
	return c;
}

/* A connected Unix-domain socket to path, or -1: a local controller's
 * socket answers at once (no handshake at this level), so a blocking
 * connect is immediate. */
static int
connect_local(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	if (unix_address(&sun, path) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		log_debug("local socket %s: %s; using TCP", path,
			  strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Connect to ip:port (or local) and start the client side of the
 * handshake. */
struct conn *
conn_connect(struct event_base *base, struct tls_ctx *tls, const char *ip,
	     int port, const char *local, const struct conn_handlers *h,
	     void *arg, struct cohort_error *err)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	struct conn *c;
	bool is_local;
	SSL *ssl;
	int fd = -1;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		len = sizeof(*sin6);
	} else {
		errprintf(err, "bad controller address '%s'", ip);
		return NULL;
	}
	ssl = SSL_new(tls_ctx_ssl_ctx(tls));
	if (ssl == NULL) {
		errprintf(err, "cannot create TLS session");
		return NULL;
	}
	is_local = local != NULL && local[0] != '\0' &&
		   (fd = connect_local(local)) >= 0;
	if (!is_local &&
	    (fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		errprintf(err, "cannot create a socket: %s", strerror(errno));
		SSL_free(ssl);
		return NULL;
	}
	c = conn_new(base, fd, ssl, h, arg);
	if (c == NULL) {
		SSL_free(ssl);
		evutil_closesocket(fd);
		errprintf(err, "cannot set up the connection");
		return NULL;
	}
	snprintf(c->peer, sizeof(c->peer), "%s:%d%s", ip, port,
		 is_local ? " (local socket)" : "");
	SSL_set_connect_state(ssl);
	if (is_local) {
		/* Connected already: the handshake starts now. */
		c->state = CS_TLS;
		want_read(c, true);
		kick(c);
		return c;
	}
	c->state = CS_TCP;
	if (connect(fd, (struct sockaddr *)&ss, len) == 0) {
		c->state = CS_TLS;
		want_read(c, true);
		kick(c);
	} else if (errno == EINPROGRESS || errno == EINTR) {
		want_write(c, true);
	} else if (errno == ECONNREFUSED) {
		/* Reported through lost(), like a refusal seen later. */
		c->connect_errno = errno;
		kick(c);
	} else {
		errprintf(err, "cannot connect to controller at %s:%d: %s", ip,
			  port, strerror(errno));
		conn_free(c);
		return NULL;
	}
	return c;
}

/* Queue output and have it written at the end of this turn of the loop
 * (with whatever else is queued by then). */
static int
queue(struct conn *c, int rc)
{
	if (rc == 0 && !c->out_bulk &&
	    evbuffer_get_length(c->out) >= TRIM_MIN_PAYLOAD)
		c->out_bulk = true;
	if (rc == 0 && c->state == CS_OPEN && !c->writing)
		kick(c);
	return rc;
}

static int
send_prefix_header(struct conn *c, const struct msg *m, uint64_t plen)
{
	msgpack_sbuffer sb;
	uint8_t prefix[FRAME_PREFIX_LEN];
	struct evbuffer_iovec v;
	int rc = -1;

	msgpack_sbuffer_init(&sb);
	if (msg_encode(m, &sb) < 0 || sb.size > FRAME_MAX_HEADER) {
		log_warnx("cannot encode a %s message of %zu bytes for %s",
			  msg_type_name(m->type), sb.size, c->peer);
		goto out;
	}
	frame_prefix_encode(prefix, (uint32_t)sb.size, plen);
	/* Prefix and header in one piece of the output. */
	if (evbuffer_reserve_space(c->out, sizeof(prefix) + sb.size, &v, 1) < 1)
		goto out;
	memcpy(v.iov_base, prefix, sizeof(prefix));
	memcpy((char *)v.iov_base + sizeof(prefix), sb.data, sb.size);
	v.iov_len = sizeof(prefix) + sb.size;
	if (evbuffer_commit_space(c->out, &v, 1) < 0)
		goto out;
	rc = 0;
	if (c->sent != NULL)
		c->sent(c, m, c->sent_arg);
out:
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

/* Queue a header for a payload sent piecewise after it. */
int
conn_send_header(struct conn *c, const struct msg *m, uint64_t payload_len)
{
	if (c->dead || c->closing)
		return -1;
	return queue(c, send_prefix_header(c, m, payload_len));
}

/* Queue one more piece of a payload (referenced, not copied). */
int
conn_send_more(struct conn *c, struct evbuffer *piece)
{
	if (c->dead || c->closing)
		return -1;
	if (evbuffer_get_length(piece) == 0)
		return 0;
	return queue(c, evbuffer_add_buffer_reference(c->out, piece));
}

/* Queue a message with a payload referenced in place. */
int
conn_send_ref(struct conn *c, const struct msg *m, const void *data,
	      size_t len, void (*cleanup)(const void *, size_t, void *),
	      void *arg)
{
	if (c->dead || c->closing)
		return -1;
	if (send_prefix_header(c, m, len) < 0)
		return -1;
	return queue(c, evbuffer_add_reference(c->out, data, len, cleanup,
					       arg));
}

/* Stop or resume reading. */
void
conn_pause(struct conn *c, bool pause)
{
	if (c->dead || c->closing || c->paused == pause)
		return;
	c->paused = pause;
	if (c->state != CS_OPEN)
		return;
	want_read(c, !pause);
	/* Frames that arrived before the pause (in the input, or still
	 * inside OpenSSL) are dispatched without waiting for more. */
	if (!pause && (evbuffer_get_length(c->in) > 0 ||
		       SSL_has_pending(c->ssl)))
		kick(c);
}

/* More than the high-water mark is queued. */
bool
conn_congested(const struct conn *c)
{
	return !c->dead && evbuffer_get_length(c->out) > CONN_HIGH_WATER;
}

/* Queue a message with a referenced payload. */
int
conn_send(struct conn *c, const struct msg *m, struct evbuffer *payload)
{
	size_t plen = payload ? evbuffer_get_length(payload) : 0;

	if (c->dead || c->closing)
		return -1;
	if (send_prefix_header(c, m, plen) < 0)
		return -1;
	if (plen > 0 && evbuffer_add_buffer_reference(c->out, payload) < 0)
		return -1;
	return queue(c, 0);
}

/* Queue a message with a copied payload. */
int
conn_send_bytes(struct conn *c, const struct msg *m, const void *data,
		size_t len)
{
	if (c->dead || c->closing)
		return -1;
	if (send_prefix_header(c, m, len) < 0)
		return -1;
	if (len > 0 && evbuffer_add(c->out, data, len) < 0)
		return -1;
	return queue(c, 0);
}

static void
conn_free(struct conn *c)
{
	bool wrote;

	/* A failure while saying goodbye must not free c again. */
	c->dead = true;
	if (c->user_free != NULL)
		c->user_free(c->user);
	if (c->ssl != NULL && c->ready && !c->broken) {
		/* Say goodbye (close_notify) if the socket takes it now. */
		if (write_output(c, &wrote)) {
			ERR_clear_error();
			(void)SSL_shutdown(c->ssl);
		}
	}
	ERR_clear_error();
	if (c->rev != NULL)
		event_free(c->rev);
	if (c->wev != NULL)
		event_free(c->wev);
	if (c->kick != NULL)
		event_free(c->kick);
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->later != NULL)
		event_free(c->later);
	if (c->in != NULL)
		evbuffer_free(c->in);
	block_unref(c->blk);
	if (c->out != NULL)
		evbuffer_free(c->out);
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	if (c->fd >= 0)
		evutil_closesocket(c->fd);
	free(c);
}

/* Close now without calling lost(). */
void
conn_close(struct conn *c)
{
	if (c == NULL || c->dead)
		return;
	c->closing = true;
	conn_release(c);
}

/* Flush queued output, then close. */
void
conn_close_after_flush(struct conn *c)
{
	if (c == NULL || c->dead || c->closing)
		return;
	c->closing = true;
	want_read(c, false);
	if (evbuffer_get_length(c->out) == 0 || c->state != CS_OPEN)
		conn_release(c);
	else
		kick(c);
}

/* The peer's address. */
const char *
conn_peer(const struct conn *c)
{
	return c->peer;
}

/* The peer certificate's CN. */
const char *
conn_peer_cn(const struct conn *c)
{
	return c->cn;
}

/* Bytes waiting to be written. */
size_t
conn_output_pending(const struct conn *c)
{
	return evbuffer_get_length(c->out);
}

/* Limit accepted payload size. */
void
conn_set_max_payload(struct conn *c, uint64_t max)
{
	c->max_payload = max;
}

/* Bound how long the peer may stay silent. */
void
conn_set_idle_timeout(struct conn *c, double secs)
{
	c->idle_timeout = secs > 0 ? secs : 0;
	if (c->idle_timeout <= 0) {
		if (c->timer != NULL)
			evtimer_del(c->timer);
		return;
	}
	if (c->timer == NULL)
		c->timer = evtimer_new(c->base, timer_cb, c);
	if (c->timer == NULL) {
		log_warnx("cannot create the idle timer of %s", c->peer);
		return;
	}
	rearm_timer(c);
}

/* Change the callback argument. */
void
conn_set_arg(struct conn *c, void *arg)
{
	c->arg = arg;
}

/* Replace the callbacks (the argument stays). */
void
conn_set_handlers(struct conn *c, const struct conn_handlers *h)
{
	c->h = *h;
}

/* Call fn after each message is queued on c (NULL: stop). */
void
conn_set_sent_hook(struct conn *c,
		   void (*fn)(struct conn *c, const struct msg *m, void *arg),
		   void *arg)
{
	c->sent = fn;
	c->sent_arg = arg;
}

/* Attach data to the connection, freed with free_fn when it is freed. */
void
conn_set_user(struct conn *c, void *user, void (*free_fn)(void *user))
{
	c->user = user;
	c->user_free = free_fn;
}

/* The data attached by conn_set_user(), or NULL. */
void *
conn_user(const struct conn *c)
{
	return c->user;
}
