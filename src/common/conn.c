/* SPDX-License-Identifier: BSD-3-Clause */
/* conn.c - one framed, TLS-protected connection on a libevent loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "conn.h"
#include "frame.h"
#include "log.h"
#include "util.h"

struct conn {
	struct bufferevent *bev;
	struct conn_handlers h;
	void *arg;
	char peer[64];
	char cn[128];
	uint64_t max_payload;
	bool ready;
	bool paused;   /* reading stopped by conn_pause() */
	bool closing;  /* close_after_flush in progress */
	bool dead;     /* closed while inside a callback */
	int in_cb;     /* callback nesting depth */
	/* Frame being read. */
	bool have_prefix;
	uint32_t hlen;
	uint64_t plen;
};

static void conn_free(struct conn *c);

static void
conn_release(struct conn *c)
{
	if (c->in_cb > 0)
		c->dead = true;
	else
		conn_free(c);
}

static void
conn_fail(struct conn *c, const char *reason)
{
	if (c->dead)
		return;
	if (c->h.lost != NULL && !c->closing) {
		c->in_cb++;
		c->h.lost(c, reason, c->arg);
		c->in_cb--;
	}
	conn_release(c);
}

static void
set_nodelay(struct bufferevent *bev)
{
	int one = 1, fd = bufferevent_getfd(bev);

	/* Requests are small and latency-bound: never wait to coalesce. */
	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				 sizeof(one));
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

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct cohort_error err;

	c->in_cb++;
	while (!c->dead && !c->closing && !c->paused) {
		uint8_t prefix[FRAME_PREFIX_LEN];
		struct evbuffer *payload = NULL;
		struct msg m;
		char *header;

		if (!c->have_prefix) {
			if (evbuffer_get_length(in) < FRAME_PREFIX_LEN)
				break;
			evbuffer_remove(in, prefix, sizeof(prefix));
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
		evbuffer_remove(in, header, c->hlen);
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
		if (c->h.message != NULL)
			c->h.message(c, &m, payload, c->arg);
		msg_clear(&m);
		if (payload != NULL)
			evbuffer_free(payload);
	}
	c->in_cb--;
	if (c->dead && c->in_cb == 0)
		conn_free(c);
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->closing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			conn_release(c);
		return;
	}
	if (c->h.drained != NULL) {
		c->in_cb++;
		c->h.drained(c, c->arg);
		c->in_cb--;
		if (c->dead && c->in_cb == 0)
			conn_free(c);
	}
}

static void
tls_error_text(struct bufferevent *bev, char *buf, size_t size)
{
	unsigned long e;
	size_t n = 0;

	buf[0] = '\0';
	while ((e = bufferevent_get_openssl_error(bev)) != 0 && n + 2 < size) {
		char one[256];

		/* libevent also queues its own SSL_get_error() codes (library
		 * 0); they say nothing a reader can use. */
		if (ERR_GET_LIB(e) == 0)
			continue;
		ERR_error_string_n(e, one, sizeof(one));
		n += snprintf(buf + n, size - n, "%s%s", n ? "; " : "", one);
	}
}

static void
read_peer_cn(struct conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	X509 *cert = ssl ? SSL_get0_peer_certificate(ssl) : NULL;

	c->cn[0] = '\0';
	if (cert != NULL &&
	    X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
				      NID_commonName, c->cn,
				      sizeof(c->cn)) < 0)
		c->cn[0] = '\0';
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	char reason[600], tls[512];
	int sockerr = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED) {
		set_nodelay(bev);
		read_peer_cn(c);
		c->ready = true;
		if (c->h.ready != NULL) {
			c->in_cb++;
			c->h.ready(c, c->arg);
			c->in_cb--;
			if (c->dead && c->in_cb == 0)
				conn_free(c);
		}
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		conn_fail(c, "timed out waiting for the peer");
		return;
	}
	tls_error_text(bev, tls, sizeof(tls));
	if (!c->ready && (sockerr == ECONNREFUSED || sockerr == ETIMEDOUT ||
			  sockerr == EHOSTUNREACH || sockerr == ENETUNREACH))
		/* The TCP connect itself failed: say so, not "TLS". */
		snprintf(reason, sizeof(reason), "%s", strerror(sockerr));
	else if (tls[0] != '\0')
		snprintf(reason, sizeof(reason), "TLS error%s: %s",
			 c->ready ? "" : " during handshake", tls);
	else if (what & BEV_EVENT_EOF)
		snprintf(reason, sizeof(reason), "connection closed by peer%s",
			 c->ready ? "" : " during TLS handshake");
	else
		snprintf(reason, sizeof(reason), "connection error: %s",
			 errno ? strerror(errno) : "unknown");
	conn_fail(c, reason);
}

static struct conn *
conn_new(struct bufferevent *bev, const struct conn_handlers *h, void *arg)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	c->bev = bev;
	c->h = *h;
	c->arg = arg;
	c->max_payload = FRAME_DEFAULT_MAX_PAYLOAD;
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	bufferevent_setcb(bev, read_cb, write_cb, event_cb, c);
	/* write_cb runs whenever queued output is below the low mark. */
	bufferevent_setwatermark(bev, EV_WRITE, CONN_LOW_WATER, 0);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	return c;
}

/* Wrap an accepted socket and start the server side of the handshake. */
struct conn *
conn_accept(struct event_base *base, struct tls_ctx *tls, int fd,
	    const char *peer, const struct conn_handlers *h, void *arg)
{
	SSL *ssl = SSL_new(tls_ctx_ssl_ctx(tls));
	struct bufferevent *bev;
	struct conn *c;

	if (ssl == NULL) {
		log_warnx("cannot create TLS session for %s", peer);
		evutil_closesocket(fd);
		return NULL;
	}
	bev = bufferevent_openssl_socket_new(base, fd, ssl,
					     BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		log_warnx("cannot create TLS bufferevent for %s", peer);
		SSL_free(ssl);
		evutil_closesocket(fd);
		return NULL;
	}
	c = conn_new(bev, h, arg);
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	return c;
}

/* Connect to ip:port and start the client side of the handshake. */
struct conn *
conn_connect(struct event_base *base, struct tls_ctx *tls, const char *ip,
	     int port, const struct conn_handlers *h, void *arg,
	     struct cohort_error *err)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	struct bufferevent *bev;
	struct conn *c;
	SSL *ssl;

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
	bev = bufferevent_openssl_socket_new(base, -1, ssl,
					     BUFFEREVENT_SSL_CONNECTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		errprintf(err, "cannot create TLS bufferevent");
		return NULL;
	}
	c = conn_new(bev, h, arg);
	snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);
	if (bufferevent_socket_connect(bev, (struct sockaddr *)&ss, len) < 0) {
		errprintf(err, "cannot connect to controller at %s:%d: %s", ip,
			  port, strerror(errno));
		conn_free(c);
		return NULL;
	}
	return c;
}

static int
send_prefix_header(struct conn *c, const struct msg *m, uint64_t plen)
{
	msgpack_sbuffer sb;
	uint8_t prefix[FRAME_PREFIX_LEN];
	struct evbuffer *out = bufferevent_get_output(c->bev);
	int rc = -1;

	msgpack_sbuffer_init(&sb);
	if (msg_encode(m, &sb) < 0 || sb.size > FRAME_MAX_HEADER) {
		log_warnx("cannot encode a %s message of %zu bytes for %s",
			  msg_type_name(m->type), sb.size, c->peer);
		goto out;
	}
	frame_prefix_encode(prefix, (uint32_t)sb.size, plen);
	if (evbuffer_add(out, prefix, sizeof(prefix)) < 0 ||
	    evbuffer_add(out, sb.data, sb.size) < 0)
		goto out;
	rc = 0;
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
	return send_prefix_header(c, m, payload_len);
}

/* Queue one more piece of a payload (referenced, not copied). */
int
conn_send_more(struct conn *c, struct evbuffer *piece)
{
	if (c->dead || c->closing)
		return -1;
	if (evbuffer_get_length(piece) == 0)
		return 0;
	return evbuffer_add_buffer_reference(bufferevent_get_output(c->bev),
					     piece);
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
	return evbuffer_add_reference(bufferevent_get_output(c->bev), data,
				      len, cleanup, arg);
}

/* Stop or resume reading. */
void
conn_pause(struct conn *c, bool pause)
{
	if (c->dead || c->closing || c->paused == pause)
		return;
	c->paused = pause;
	if (pause) {
		bufferevent_disable(c->bev, EV_READ);
	} else {
		bufferevent_enable(c->bev, EV_READ);
		/* Frames that arrived before the pause are already in the
		 * input buffer: dispatch them without waiting for more. */
		if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
			bufferevent_trigger(c->bev, EV_READ,
					    BEV_TRIG_IGNORE_WATERMARKS |
						    BEV_TRIG_DEFER_CALLBACKS);
	}
}

/* More than the high-water mark is queued. */
bool
conn_congested(const struct conn *c)
{
	return !c->dead &&
	       evbuffer_get_length(bufferevent_get_output(c->bev)) >
		       CONN_HIGH_WATER;
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
	if (plen > 0 &&
	    evbuffer_add_buffer_reference(bufferevent_get_output(c->bev),
					  payload) < 0)
		return -1;
	return 0;
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
	if (len > 0 && evbuffer_add(bufferevent_get_output(c->bev), data,
				    len) < 0)
		return -1;
	return 0;
}

static void
conn_free(struct conn *c)
{
	SSL *ssl;

	if (c->bev != NULL) {
		/* Say goodbye (close_notify) if the socket takes it now. */
		ssl = bufferevent_openssl_get_ssl(c->bev);
		if (c->ready && ssl != NULL) {
			bufferevent_flush(c->bev, EV_WRITE, BEV_FLUSH);
			SSL_shutdown(ssl);
		}
		bufferevent_free(c->bev);
	}
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
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_release(c);
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
	return evbuffer_get_length(bufferevent_get_output(c->bev));
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
	struct timeval tv;

	if (secs <= 0) {
		bufferevent_set_timeouts(c->bev, NULL, NULL);
		return;
	}
	tv.tv_sec = (time_t)secs;
	tv.tv_usec = (suseconds_t)((secs - (double)tv.tv_sec) * 1e6);
	bufferevent_set_timeouts(c->bev, &tv, NULL);
}

/* Change the callback argument. */
void
conn_set_arg(struct conn *c, void *arg)
{
	c->arg = arg;
}
