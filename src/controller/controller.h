/* SPDX-License-Identifier: BSD-3-Clause */
/* controller.h - the controller's shared state: peers, engines, jobs. */
#ifndef COHORT_CONTROLLER_H
#define COHORT_CONTROLLER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "conn.h"
#include "proto.h"

struct job;
struct engine;

enum peer_kind { PEER_PENDING, PEER_ENGINE, PEER_CLIENT };

/* One connection: an engine, a client, or not yet known (before hello). */
struct peer {
	struct conn *conn;
	enum peer_kind kind;
	uint64_t serial;
	struct engine *engine;       /* PEER_ENGINE */
	uint64_t stream_job;         /* PEER_CLIENT: job whose chunks arrive */
	bool paused;                 /* reading stopped by backpressure */
	double accepted;             /* PEER_PENDING: when it connected */
	int sweeps;                  /* PEER_PENDING: hello sweeps since */
	TAILQ_HEAD(client_jobs_s, job) jobs;/* PEER_CLIENT: its jobs in flight */
	TAILQ_ENTRY(peer) entry;
};

enum engine_state { ENGINE_IDLE, ENGINE_BUSY, ENGINE_DEAD };

/* A registered engine; kept (as dead) after its connection goes. */
struct engine {
	int64_t id, rank, size, pid;
	char *host, *kernel, *job;
	enum engine_state state;
	double registered; /* monotonic time */
	int ntasks;        /* tasks sent and not answered */
	double last_seen;  /* monotonic time of its last message */
	bool silent;       /* declared dead for missed heartbeats */
	struct peer *peer; /* NULL once dead */
};

/* One MPI job (ranks sharing a job identity) and its block of ids. */
struct mpijob {
	char *key;
	int64_t base, size;
};

/* One target engine's share of a job. */
struct job_target {
	int64_t engine;
	bool pending;
	uint64_t stream_total; /* chunked reply from the engine: its size */
	uint64_t stream_seen;  /* and the bytes forwarded so far */
	bool streaming;        /* the reply header went, chunks follow */
	int got;               /* escalating timeout: the last step sent to
				  this late engine (ESCALATE_*) */
};

/* Steps of an escalating timeout (px --on-timeout), in order. */
enum escalate {
	ESCALATE_NONE,      /* the wait ends, the code runs on */
	ESCALATE_INTERRUPT, /* KeyboardInterrupt */
	ESCALATE_TERM,      /* SIGTERM */
	ESCALATE_KILL,      /* SIGKILL */
};

/* A client request fanned out to its target engines. */
struct job {
	uint64_t id;           /* controller-wide task id sent to engines */
	uint64_t client_id;    /* the client's request id */
	struct peer *client;   /* NULL if the client went away */
	struct job_target *targets;
	size_t ntargets, npending, nfailed;
	bool inbound_stream;   /* the client's chunks are still arriving */
	bool stream;           /* the client wants output as it is written */
	enum escalate escalate; /* on timeout, how far to go with late ones */
	enum escalate step;     /* how far it has gone */
	double timeout, grace;  /* seconds: the timeout, between steps */
	bool side;             /* 'where': answered beside any running task */
	bool detach;           /* nonblock: leave the client once its value
				  has arrived */
	char *op, *code;       /* for listings: the operation, code summary */
	char *spec;            /* the targets, compact ("0-3") */
	double started;
	msgpack_sbuffer *records; /* each answered target's reply header */
	size_t nrecords;
	struct event *timer;
	TAILQ_ENTRY(job) entry;        /* all jobs */
	TAILQ_ENTRY(job) client_entry; /* the client's jobs */
};

/* registry.c */
void registry_init(void);
void registry_free(void);
/* Register an engine from its hello; NULL with err if refused. */
struct engine *registry_add(struct peer *p, const struct msg *hello,
			    struct cohort_error *err);
/* Mark an engine dead (its connection is gone). */
void registry_engine_lost(struct engine *e);
/* Look up an engine by id; NULL if unknown. */
struct engine *registry_get(int64_t id);
/* Fill ids of all live engines, ascending; returns the count. */
size_t registry_live_ids(int64_t **ids);
/* Count of registered engines (live and dead) and of live ones. */
size_t registry_count(size_t *live);
/* Describe the known ids for error messages ("0-3,8"). */
const char *registry_describe(char *buf, size_t size);
/* Send the registry to a client as an engines message. */
void registry_send_list(struct peer *client, int64_t request_id);
const char *engine_state_name(enum engine_state s);

/* jobs.c */
void jobs_init(struct event_base *base);
void jobs_free(void);
/* Handle a client's execute/push/pull request. */
void jobs_submit(struct peer *client, struct msg *m, struct evbuffer *payload);
/* An engine answered a task. */
void jobs_engine_reply(struct engine *e, struct msg *m,
		       struct evbuffer *payload);
/* A chunk from a client (its request's payload) or an engine (its reply). */
void jobs_client_chunk(struct peer *client, struct msg *m,
		       struct evbuffer *payload);
void jobs_engine_chunk(struct engine *e, struct msg *m,
		       struct evbuffer *payload);
/* Output an engine wrote while running a job's task. */
void jobs_engine_stream(struct engine *e, struct msg *m);
/* Output of a peer drained: resume sources paused for it. */
void jobs_drained(struct peer *p);
/* The largest value a request may carry (--max-payload). */
extern uint64_t jobs_max_value;
/* How many finished jobs' results are kept (--jobs). */
extern size_t jobs_keep;
/* An engine died: its pending targets are answered "dead". */
void jobs_engine_dead(struct engine *e, const char *reason);
/* A client went away: its jobs finish without it. */
void jobs_client_gone(struct peer *client);

/* main.c */
/* Every connected peer, for backpressure bookkeeping. */
struct peer *peer_first(void);
struct peer *peer_next(struct peer *p);
/* Send an error message for a request id (0: none) to a peer. */
void peer_send_error(struct peer *p, int64_t id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
