/* SPDX-License-Identifier: BSD-3-Clause */
/* conn.h - one framed, TLS-protected connection on a libevent loop.
 *
 * A conn reads frames (frame.h), decodes their headers (proto.h) and hands
 * each message with its payload to a dispatch callback. A malformed frame
 * closes only that connection, logging why and a sample of the bytes.
 */
#ifndef COHORT_CONN_H
#define COHORT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "cohort/error.h"
#include "proto.h"
#include "tls.h"

struct conn;

struct conn_handlers {
	/* The TLS handshake finished and the peer's certificate verified. */
	void (*ready)(struct conn *c, void *arg);
	/* A message arrived. m and payload (NULL when empty) belong to the
	 * conn and are freed after the call: move the payload out with
	 * evbuffer_add_buffer() to keep it. The callback may close c. */
	void (*message)(struct conn *c, struct msg *m, struct evbuffer *payload,
			void *arg);
	/* The connection is gone (EOF, error, bad frame); reason says why.
	 * c is freed right after this returns. */
	void (*lost)(struct conn *c, const char *reason, void *arg);
	/* Optional: queued output fell below CONN_LOW_WATER (for resuming a
	 * stream paused by backpressure). */
	void (*drained)(struct conn *c, void *arg);
};

/* Output queued beyond CONN_HIGH_WATER means "stop feeding this peer";
 * below CONN_LOW_WATER, drained() says it may be fed again. */
#define CONN_HIGH_WATER (32u << 20)
#define CONN_LOW_WATER (8u << 20)

/* Wrap an accepted socket (server side of the handshake). */
struct conn *conn_accept(struct event_base *base, struct tls_ctx *tls, int fd,
			 const char *peer, const struct conn_handlers *h,
			 void *arg);
/* Connect (client side of the handshake) through the Unix-domain socket
 * local if it is neither NULL nor "" and accepts the connection (the
 * controller is on this machine), else to ip:port over TCP. */
struct conn *conn_connect(struct event_base *base, struct tls_ctx *tls,
			  const char *ip, int port, const char *local,
			  const struct conn_handlers *h, void *arg,
			  struct cohort_error *err);

/* Queue a message and, if payload is non-NULL, its payload. The payload's
 * bytes are referenced, not copied, and payload itself is left unchanged,
 * so one payload can go to many conns. -1 if the conn is closing. */
int conn_send(struct conn *c, const struct msg *m, struct evbuffer *payload);
/* Like conn_send with the payload given as bytes (copied). */
int conn_send_bytes(struct conn *c, const struct msg *m, const void *data,
		    size_t len);

/* Queue a header announcing payload_len bytes, then the payload pieces
 * with conn_send_more() (referenced like conn_send's). */
int conn_send_header(struct conn *c, const struct msg *m,
		     uint64_t payload_len);
int conn_send_more(struct conn *c, struct evbuffer *piece);

/* Queue a message whose payload is memory referenced, not copied;
 * cleanup(data, len, arg) runs once the bytes are sent (may be NULL). */
int conn_send_ref(struct conn *c, const struct msg *m, const void *data,
		  size_t len, void (*cleanup)(const void *, size_t, void *),
		  void *arg);

/* Stop (or resume) reading from the peer; messages already received stay
 * queued and are dispatched on resume. */
void conn_pause(struct conn *c, bool pause);
/* True if more than CONN_HIGH_WATER bytes wait to be sent. */
bool conn_congested(const struct conn *c);

/* Close now, without calling lost(). Safe inside a callback. */
void conn_close(struct conn *c);
/* Stop reading, send what is queued, then close (lost() is not called). */
void conn_close_after_flush(struct conn *c);

/* "ip:port" of the peer. */
const char *conn_peer(const struct conn *c);
/* The peer certificate's common name once ready(), else "". */
const char *conn_peer_cn(const struct conn *c);
/* Bytes queued for sending and not yet written. */
size_t conn_output_pending(const struct conn *c);
/* Limit the payload size accepted from this peer. */
void conn_set_max_payload(struct conn *c, uint64_t max);
/* Close the connection if no complete message arrives within secs (0 = off);
 * used to bound the handshake and hello of new peers. */
void conn_set_idle_timeout(struct conn *c, double secs);
/* Change the callback argument. */
void conn_set_arg(struct conn *c, void *arg);
/* Replace the callbacks; the argument stays. */
void conn_set_handlers(struct conn *c, const struct conn_handlers *h);
/* Call fn(c, m, arg) right after each message header is queued on c, from
 * inside conn_send() and its kin (NULL: stop). */
void conn_set_sent_hook(struct conn *c,
			void (*fn)(struct conn *c, const struct msg *m,
				   void *arg),
			void *arg);
/* Attach data to c; free_fn(user) runs when c is freed (may be NULL). */
void conn_set_user(struct conn *c, void *user, void (*free_fn)(void *user));
void *conn_user(const struct conn *c);

/* Return freed heap to the kernel (malloc_trim) once no payload of 64 KiB
 * or more, and no new connection, has been seen for delay seconds, and
 * from then on whenever the free heap has grown by 4 MiB (checked every
 * delay seconds); 0 (the default) never does. Process-wide, on the loop
 * of the first connection that sees bulk traffic; for long-lived daemons
 * (the controller, engines), whose payload buffers are freed in the
 * middle of the heap, where glibc does not give them back by itself. */
void conn_trim_when_idle(double delay);

#endif
