/* SPDX-License-Identifier: BSD-3-Clause */
/* proto.h - Cohort's wire messages: types, fields, encode and decode.
 *
 * Every frame header (see frame.h) is one msgpack map whose "t" names the
 * message type. Fields are looked up by key; unknown keys are ignored so a
 * newer peer can add optional fields. Encode and decode do no I/O.
 *
 * Bump PROTO_VERSION if the meaning of any message or field changes.
 */
#ifndef COHORT_PROTO_H
#define COHORT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "cohort/error.h"

#define PROTO_VERSION 1
/* Most targets one request may list, and most engines one list carries. */
#define PROTO_MAX_LIST 65536
/* Payloads larger than this travel as chunk messages of at most this
 * size, so no peer ever buffers more than a chunk per stream. */
#define PROTO_CHUNK (4u << 20)

enum msg_type {
	MSG_HELLO = 1, /* peer -> controller: role, version, engine identity */
	MSG_WELCOME,   /* controller -> peer: accepted (engine id for engines) */
	MSG_REQUEST,   /* client -> controller: op on targets */
	MSG_TASK,      /* controller -> engine: one target's share of a request */
	MSG_REPLY,     /* engine -> controller -> client: one engine's result */
	MSG_DONE,      /* controller -> client: every target has replied */
	MSG_ERROR,     /* either way: a request (or the connection) failed */
	MSG_ENGINES,   /* controller -> client: the engine registry */
	MSG_PING,      /* heartbeat */
	MSG_PONG,
	MSG_CHUNK,     /* a piece of a chunked payload (see docs/protocol.md) */
	MSG_INTERRUPT, /* controller -> engine: interrupt the running code */
	MSG_STREAM,    /* engine -> controller -> client: output as written */
	MSG_WHERE,     /* controller -> engine: report where the main thread is */
	MSG_ACCEPTED,  /* controller -> client: a streaming request's job id
			  and target count, sent before any reply */
	MSG_SIGNAL,    /* controller -> engine: end the process (name "term"
			  sends itself SIGTERM, "kill" SIGKILL) */
	MSG_TYPE_MAX
};

/* Field identifiers; each has one key and one type (see proto.c). */
enum msg_field {
	F_VERSION,  /* "v"         int   protocol version (hello, welcome) */
	F_ID,       /* "id"        int   request id (client side) or task id */
	F_ROLE,     /* "role"      str   "engine" or "client" (hello) */
	F_OP,       /* "op"        str   execute, push, pull, engines */
	F_CODE,     /* "code"      str   code to execute */
	F_NAME,     /* "name"      str   value name (push, pull) */
	F_TARGETS,  /* "targets"   [int] engine ids; absent means all */
	F_TIMEOUT,  /* "timeout"   float seconds, 0 = none */
	F_ENGINE,   /* "engine"    int   engine id */
	F_RANK,     /* "rank"      int   MPI rank */
	F_SIZE,     /* "size"      int   MPI size */
	F_PID,      /* "pid"       int */
	F_HOST,     /* "host"      str */
	F_KERNEL,   /* "kernel"    str   "python" */
	F_JOB,      /* "job"       str   MPI job identity shared by its ranks */
	F_STATE,    /* "state"     str   idle, busy, dead */
	F_STATUS,   /* "status"    str   ok, error, dead, timeout */
	F_STDOUT,   /* "stdout"    str */
	F_STDERR,   /* "stderr"    str */
	F_RESULT,   /* "result"    str   repr of a trailing expression */
	F_ENAME,    /* "ename"     str */
	F_EVALUE,   /* "evalue"    str */
	F_TRACEBACK,/* "traceback" str */
	F_COUNT,    /* "count"     int   execution count */
	F_ELAPSED,  /* "elapsed"   float seconds */
	F_MESSAGE,  /* "message"   str   error text */
	F_NTARGETS, /* "ntargets"  int   done: how many engines replied */
	F_NFAILED,  /* "nfailed"   int   done: how many did not succeed */
	F_ENGINES,  /* "engines"   [map] registry listing */
	F_UPTIME,   /* "uptime"    float seconds */
	F_PARTS,    /* "parts"     [int] scatter: payload bytes per target */
	F_CHUNKED,  /* "chunked"   int   the payload follows in chunk messages:
				       its total size */
	F_LAST,     /* "last"      int   1 on the final chunk */
	F_STREAM,   /* "stream"    int   request: 1 to get stream messages */
	F_TEXT,     /* "text"      str   stream: the output */
	F_HEARTBEAT,/* "heartbeat" float welcome: seconds between pings */
	F_TOLERANCE,/* "tolerance" int   welcome: pings missed before a peer
				       counts as dead */
	F_ONTIMEOUT,/* "on_timeout" str  request: "interrupt" the late engines */
	F_JOBID,    /* "jobid"     int   the controller's job id of a request */
	F_NONBLOCK, /* "nonblock"  int   request: answer at once with the job id */
	F_JOBS,     /* "jobs"      [map] job listing */
	F_RANKS,    /* "ranks"     [int] task: the ranks of this engine's MPI
				       job that the request targets (absent:
				       all of them) */
	F_PARTIAL,  /* "partial"   int   request/task: 1 allows collectives on
				       communicators with untargeted ranks */
	F_ROOT,     /* "root"      int   bcast: the source engine; task: its
				       rank; move: the receiving engine/rank */
	F_AS,       /* "as"        str   move, allgather: the name to bind */
	F_GRACE,    /* "grace"     float request: seconds between the steps
				       of an escalating timeout */
	F_ESCALATION,/* "escalation" str reply: what a late engine was sent
				       (interrupt, term, kill) */
	F_FIELD_MAX
};

/* A string inside a decoded header; not NUL-terminated. */
struct str {
	const char *p;
	size_t n;
};

/* One entry of an engine listing. */
struct msg_engine {
	int64_t id, rank, size, pid;
	struct str host, kernel, job, state;
	double uptime;
};

/* One entry of a job listing. */
struct msg_job {
	int64_t jobid, ntargets, ndone, nfailed;
	struct str op, code, state, targets;
	double age, elapsed;
};

/* A decoded (or to-be-encoded) message. Strings of a decoded message point
 * into its own copy of the header, so they live as long as the message. */
struct msg {
	enum msg_type type;
	uint64_t has; /* bit (1 << field) set when the field is present */

	int64_t version, id, engine, rank, size, pid, count, ntargets, nfailed;
	int64_t chunked, last, stream, tolerance, jobid, nonblock, partial;
	int64_t root;
	double heartbeat, grace;
	struct str text, on_timeout, as, escalation;
	double timeout, elapsed, uptime;
	struct str role, op, code, name, host, kernel, job, state, status;
	struct str out, err, result, ename, evalue, traceback, message;
	int64_t *targets;
	size_t ntarget_list;
	int64_t *parts;
	size_t nparts;
	int64_t *ranks;
	size_t nranks;
	struct msg_engine *engines;
	size_t nengines;
	struct msg_job *jobs;
	size_t njobs;

	/* Owned storage of a decoded message. */
	char *raw;
	msgpack_unpacked unpacked;
	bool decoded;
};

const char *msg_type_name(enum msg_type type);

/* Start an empty message of a type (for encoding). */
void msg_init(struct msg *m, enum msg_type type);
/* Release what a decoded message owns (targets, engines, raw header). */
void msg_clear(struct msg *m);

static inline bool
msg_has(const struct msg *m, enum msg_field f)
{
	return (m->has >> f) & 1;
}

/* Setters mark the field present. Strings are borrowed, not copied: they
 * must outlive msg_encode(). */
void msg_set_int(struct msg *m, enum msg_field f, int64_t v);
void msg_set_double(struct msg *m, enum msg_field f, double v);
void msg_set_str(struct msg *m, enum msg_field f, const char *s);
void msg_set_strn(struct msg *m, enum msg_field f, const char *s, size_t n);
/* Borrow a list of targets / engines for encoding. */
void msg_set_targets(struct msg *m, int64_t *targets, size_t n);
void msg_set_parts(struct msg *m, int64_t *parts, size_t n);
void msg_set_ranks(struct msg *m, int64_t *ranks, size_t n);
void msg_set_engines(struct msg *m, struct msg_engine *engines, size_t n);
void msg_set_jobs(struct msg *m, struct msg_job *jobs, size_t n);

/* Encode a message into sbuf (appended). -1 only on allocation failure. */
int msg_encode(const struct msg *m, msgpack_sbuffer *sbuf);

/* Decode a header. Takes a copy of data. On error m is cleared and err
 * says what was wrong (unknown type, wrong field type, missing field). */
int msg_decode(struct msg *m, const void *data, size_t len,
	       struct cohort_error *err);

/* Copy a wire string into a NUL-terminated malloc'd string. */
char *str_dup(struct str s);
/* Compare a wire string with a C string. */
bool str_eq(struct str s, const char *c);

#endif
