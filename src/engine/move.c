/* SPDX-License-Identifier: BSD-3-Clause */
/* move.c - bcast, move, allgather and redistribute among the engines of
 * one MPI job, over MPI rather than through the controller.
 *
 * Each is a task the controller sends to every engine taking part, in the
 * same order on every connection, so the engines enter the same MPI calls
 * in the same order. Values travel as the kernel encodes them for pull
 * (one msgpack value; an array is its raw elements behind a short head),
 * so arrays are never re-encoded, and are bound with the kernel's push.
 *
 * All MPI calls here go to PMPI_ directly, on a private duplicate of
 * MPI_COMM_WORLD made at start-up: the partial-collective guard does not
 * see them, and no message of the user's code can match ours. Every step
 * that may fail on one rank is followed by an exchange that tells the
 * others, so a failure is an error on every rank, never a hang.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "engine.h"
#include "log.h"
#include "util.h"
#include "value.h"

/* Largest piece one MPI call moves (counts are ints). */
#define PIECE (1 << 30)
/* Message tags on the private communicator. */
#define TAG_MOVE 1
#define TAG_GROUP 2

static MPI_Comm world = MPI_COMM_NULL;

int
move_init(void)
{
	return PMPI_Comm_dup(MPI_COMM_WORLD, &world) == MPI_SUCCESS ? 0 : -1;
}

void
move_finalize(void)
{
	if (world != MPI_COMM_NULL)
		PMPI_Comm_free(&world);
}

static const char *
op_name(enum task_op op)
{
	switch (op) {
	case TASK_BCAST:
		return "bcast";
	case TASK_MOVE:
		return "move";
	case TASK_ALLGATHER:
		return "allgather";
	case TASK_REDISTRIBUTE:
		return "redistribute";
	default:
		return "?";
	}
}

static void
fail(struct kernel_reply *r, const char *ename, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
fail(struct kernel_reply *r, const char *ename, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	kernel_reply_clear(r);
	r->ok = 0;
	r->ename = xstrdup(ename);
	r->evalue = xstrdup(text);
}

static void
say(struct kernel_reply *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
say(struct kernel_reply *r, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	free(r->result);
	r->result = xstrdup(text);
}

static void
mpi_fail(struct kernel_reply *r, const char *call, int rc)
{
	char text[MPI_MAX_ERROR_STRING];
	int n = 0;

	if (PMPI_Error_string(rc, text, &n) != MPI_SUCCESS)
		snprintf(text, sizeof(text), "error %d", rc);
	fail(r, "MPIError", "%s failed: %s", call, text);
}

/* "1.5 MiB" */
static void
human(char *buf, size_t n, double bytes)
{
	static const char *unit[] = { "bytes", "KiB", "MiB", "GiB" };
	int u = 0;

	while (bytes >= 1024 && u < 3) {
		bytes /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, n, "%.0f bytes", bytes);
	else
		snprintf(buf, n, "%.1f %s", bytes, unit[u]);
}

/* Broadcast len bytes from root in pieces. */
static int
bcast_bytes(void *buf, size_t len, int root, MPI_Comm comm)
{
	for (size_t off = 0; off < len; off += PIECE) {
		size_t n = len - off < PIECE ? len - off : PIECE;
		int rc = PMPI_Bcast((char *)buf + off, (int)n, MPI_BYTE, root,
				    comm);

		if (rc != MPI_SUCCESS)
			return rc;
	}
	return MPI_SUCCESS;
}

/* Send len bytes to, or receive them from, world rank peer, in pieces. */
static int
p2p_bytes(void *buf, size_t len, int peer, bool send)
{
	for (size_t off = 0; off < len; off += PIECE) {
		int n = (int)(len - off < PIECE ? len - off : PIECE);
		int rc = send ? PMPI_Send((char *)buf + off, n, MPI_BYTE, peer,
					  TAG_MOVE, world)
			      : PMPI_Recv((char *)buf + off, n, MPI_BYTE, peer,
					  TAG_MOVE, world, MPI_STATUS_IGNORE);

		if (rc != MPI_SUCCESS)
			return rc;
	}
	return MPI_SUCCESS;
}

/* What each rank says before data moves: its value's size, or why it has
 * none (then len is -1). */
struct status {
	int64_t len;
	char why[248];
};

/* Pull name into r (data/len) and describe the outcome in st. */
static void
pull_status(const struct kernel_ops *k, const char *name,
	    struct kernel_reply *v, struct status *st)
{
	memset(st, 0, sizeof(*st));
	k->pull(name, v);
	if (v->ok) {
		st->len = (int64_t)v->len;
		return;
	}
	st->len = -1;
	snprintf(st->why, sizeof(st->why), "%s: %s",
		 v->ename ? v->ename : "Error", v->evalue ? v->evalue : "");
}

/* Bind name to the value in data/len; copies the kernel's error to r. */
static int
push_value(const struct kernel_ops *k, const char *name, const void *data,
	   size_t len, struct kernel_reply *r)
{
	struct kernel_reply p = { 0 };

	k->push(name, data, len, &p);
	if (!p.ok) {
		kernel_reply_clear(r);
		*r = p;
		return -1;
	}
	kernel_reply_clear(&p);
	return 0;
}

/* The communicator of the task's ranks (sorted, ours among them); world
 * itself when the task spans the whole job. */
static int
group_comm(const struct task *t, MPI_Comm *comm, struct kernel_reply *r)
{
	MPI_Group all, sub;
	int size, rc, *ranks;

	if (PMPI_Comm_size(world, &size) != MPI_SUCCESS)
		return fail(r, "MPIError", "MPI_Comm_size failed"), -1;
	if (t->nranks == (size_t)size) {
		*comm = world;
		return 0;
	}
	ranks = xcalloc(t->nranks, sizeof(int));
	for (size_t i = 0; i < t->nranks; i++)
		ranks[i] = (int)t->ranks[i];
	rc = PMPI_Comm_group(world, &all);
	if (rc == MPI_SUCCESS) {
		rc = PMPI_Group_incl(all, (int)t->nranks, ranks, &sub);
		if (rc == MPI_SUCCESS) {
			rc = PMPI_Comm_create_group(world, sub, TAG_GROUP,
						    comm);
			PMPI_Group_free(&sub);
		}
		PMPI_Group_free(&all);
	}
	free(ranks);
	if (rc != MPI_SUCCESS)
		return mpi_fail(r, "MPI_Comm_create_group", rc), -1;
	return 0;
}

static void
group_free(MPI_Comm *comm)
{
	if (*comm != world && *comm != MPI_COMM_NULL)
		PMPI_Comm_free(comm);
}

/* The position of world rank w among the task's ranks. */
static int
position(const struct task *t, int64_t w)
{
	for (size_t i = 0; i < t->nranks; i++)
		if (t->ranks[i] == w)
			return (int)i;
	return -1;
}

/* bcast: the root's value of name becomes name on every rank. */
static void
do_bcast(const struct kernel_ops *k, struct task *t, MPI_Comm comm,
	 int me, struct kernel_reply *r)
{
	int root = position(t, t->root), rc;
	struct kernel_reply v = { 0 };
	struct status st = { 0 };
	char size[32];
	void *buf;

	if (me == root)
		pull_status(k, t->name, &v, &st);
	rc = PMPI_Bcast(&st, sizeof(st), MPI_BYTE, root, comm);
	if (rc != MPI_SUCCESS)
		goto mpi;
	if (st.len < 0) {
		if (me == root)
			fail(r, v.ename ? v.ename : "Error", "%s",
			     v.evalue ? v.evalue : "");
		else
			fail(r, "BcastError", "rank %lld has no value to "
			     "broadcast: %s", (long long)t->root, st.why);
		kernel_reply_clear(&v);
		return;
	}
	buf = me == root ? v.data : malloc(st.len ? (size_t)st.len : 1);
	if (buf == NULL) /* the others would wait for ever */
		fatalx("cannot allocate %lld bytes for a bcast",
		       (long long)st.len);
	rc = bcast_bytes(buf, (size_t)st.len, root, comm);
	human(size, sizeof(size), (double)st.len);
	if (rc != MPI_SUCCESS) {
		mpi_fail(r, "MPI_Bcast", rc);
	} else if (me == root) {
		say(r, "sent '%s' (%s) to %zu engine%s", t->name, size,
		    t->nranks - 1, t->nranks == 2 ? "" : "s");
	} else if (push_value(k, t->name, buf, (size_t)st.len, r) == 0) {
		say(r, "received '%s' (%s) from rank %lld", t->name, size,
		    (long long)t->root);
	}
	if (me != root)
		free(buf);
	kernel_reply_clear(&v);
	return;
mpi:
	kernel_reply_clear(&v);
	mpi_fail(r, "MPI_Bcast", rc);
}

/* move: point to point, ranks[0] sends to ranks[1] (or a local copy). */
static void
do_move(const struct kernel_ops *k, struct task *t, int64_t rank,
	struct kernel_reply *r)
{
	const char *dst = t->as ? t->as : t->name;
	int64_t from = t->ranks[0], to = t->nranks > 1 ? t->ranks[1] : from;
	struct kernel_reply v = { 0 };
	struct status st;
	char size[32];
	int rc = MPI_SUCCESS;
	void *buf;

	if (rank == from) {
		pull_status(k, t->name, &v, &st);
		if (to == from) {
			if (st.len < 0)
				fail(r, v.ename, "%s", v.evalue);
			else if (push_value(k, dst, v.data, v.len, r) == 0)
				say(r, "copied '%s' to '%s'", t->name, dst);
			kernel_reply_clear(&v);
			return;
		}
		rc = p2p_bytes(&st, sizeof(st), (int)to, true);
		if (rc == MPI_SUCCESS && st.len > 0)
			rc = p2p_bytes(v.data, v.len, (int)to, true);
		human(size, sizeof(size), (double)v.len);
		if (rc != MPI_SUCCESS)
			mpi_fail(r, "MPI_Send", rc);
		else if (st.len < 0)
			fail(r, v.ename, "%s", v.evalue);
		else
			say(r, "sent '%s' (%s) to rank %lld", t->name, size,
			    (long long)to);
		kernel_reply_clear(&v);
		return;
	}
	rc = p2p_bytes(&st, sizeof(st), (int)from, false);
	if (rc != MPI_SUCCESS)
		{
		mpi_fail(r, "MPI_Recv", rc);
		return;
	}
	if (st.len < 0)
		{
		fail(r, "MoveError", "rank %lld has no value to send: "
			    "%s", (long long)from, st.why);
		return;
	}
	buf = malloc(st.len ? (size_t)st.len : 1);
	if (buf == NULL)
		fatalx("cannot allocate %lld bytes for a move",
		       (long long)st.len); /* the sender would block */
	rc = p2p_bytes(buf, (size_t)st.len, (int)from, false);
	human(size, sizeof(size), (double)st.len);
	if (rc != MPI_SUCCESS)
		mpi_fail(r, "MPI_Recv", rc);
	else if (push_value(k, dst, buf, (size_t)st.len, r) == 0 &&
		 strcmp(dst, t->name) != 0)
		say(r, "received '%s' as '%s' (%s) from rank %lld", t->name,
		    dst, size, (long long)from);
	else if (r->ok)
		say(r, "received '%s' (%s) from rank %lld", t->name, size,
		    (long long)from);
	free(buf);
}

/* Exchange everyone's status; on any failure set r's error and return -1
 * (the same decision on every rank). */
static int
exchange_status(struct task *t, MPI_Comm comm, int me, struct status *mine,
		struct status *all, const struct kernel_reply *v,
		struct kernel_reply *r)
{
	int rc = PMPI_Allgather(mine, sizeof(*mine), MPI_BYTE, all,
				sizeof(*mine), MPI_BYTE, comm);
	int bad = -1;

	if (rc != MPI_SUCCESS)
		return mpi_fail(r, "MPI_Allgather", rc), -1;
	for (size_t i = 0; i < t->nranks; i++)
		if (all[i].len < 0) {
			bad = (int)i;
			break;
		}
	if (bad < 0)
		return 0;
	all[bad].why[sizeof(all[bad].why) - 1] = '\0';
	if (all[me].len < 0 && v != NULL && !v->ok)
		fail(r, v->ename ? v->ename : "Error", "%s",
		     v->evalue ? v->evalue : "");
	else if (all[me].len < 0)
		fail(r, "ValueError", "%s", all[me].why);
	else
		fail(r, "AbortedError", "%s of '%s' not done: rank %lld: %s",
		     op_name(t->op), t->name, (long long)t->ranks[bad],
		     all[bad].why);
	return -1;
}

/* allgather: every rank binds the list of all ranks' values, in rank
 * order; arrays of one dtype and trailing shape are concatenated. */
static void
do_allgather(const struct kernel_ops *k, struct task *t, MPI_Comm comm,
	     int me, struct kernel_reply *r)
{
	const char *dst = t->as ? t->as : t->name;
	size_t p = t->nranks, total = 0;
	struct status *all = xcalloc(p, sizeof(*all)), mine;
	struct kernel_reply v = { 0 };
	void **parts = xcalloc(p, sizeof(*parts));
	size_t *lens = xcalloc(p, sizeof(*lens));
	struct cohort_error err;
	msgpack_sbuffer out;
	msgpack_packer pk;
	bool arrays = true;
	char size[32];
	int rc = MPI_SUCCESS;

	msgpack_sbuffer_init(&out);
	pull_status(k, t->name, &v, &mine);
	if (exchange_status(t, comm, me, &mine, all, &v, r) < 0)
		goto out;
	for (size_t i = 0; i < p; i++) {
		lens[i] = (size_t)all[i].len;
		total += lens[i];
		parts[i] = (int)i == me ? v.data : malloc(lens[i] ? lens[i] : 1);
		if (parts[i] == NULL)
			fatalx("cannot allocate %zu bytes for an allgather",
			       lens[i]);
	}
	for (size_t i = 0; i < p && rc == MPI_SUCCESS; i++)
		rc = bcast_bytes(parts[i], lens[i], (int)i, comm);
	if (rc != MPI_SUCCESS) {
		mpi_fail(r, "MPI_Bcast", rc);
		goto out;
	}
	for (size_t i = 0; i < p && arrays; i++) {
		struct value_array a;

		arrays = value_array_open(parts[i], lens[i], &a, &err) == 1 &&
			 a.ndim >= 1;
	}
	if (arrays && value_concat((const void *const *)parts, lens, p, &out,
				   &err) < 0)
		arrays = false;
	if (!arrays) {
		/* Not arrays that join: the list of the values. */
		out.size = 0;
		msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
		msgpack_pack_array(&pk, p);
		for (size_t i = 0; i < p; i++)
			msgpack_sbuffer_write(&out, parts[i], lens[i]);
	}
	human(size, sizeof(size), (double)total);
	if (push_value(k, dst, out.data, out.size, r) == 0)
		say(r, "'%s' = %s of '%s' from %zu engines (%s)", dst,
		    arrays ? "concatenation" : "list", t->name,
		    p, size);
out:
	for (size_t i = 0; i < p; i++)
		if ((int)i != me)
			free(parts[i]);
	kernel_reply_clear(&v);
	msgpack_sbuffer_destroy(&out);
	free(parts);
	free(lens);
	free(all);
}

/* What redistribute needs from each rank: its array's layout. */
struct layout {
	struct status st;
	char descr[8];
	uint32_t ndim;
	uint64_t shape[VALUE_MAX_NDIM];
};

static uint64_t
overlap(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1)
{
	uint64_t lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;

	return hi > lo ? hi - lo : 0;
}

/* redistribute: rows of an array spread evenly over the ranks in order
 * (earlier ranks get one more when they do not divide), moved with one
 * MPI_Alltoallv of whole rows. */
static void
do_redistribute(const struct kernel_ops *k, struct task *t, MPI_Comm comm,
		int me, struct kernel_reply *r)
{
	size_t p = t->nranks;
	struct layout *all = xcalloc(p, sizeof(*all)), mine = { 0 };
	int *sc = xcalloc(p, sizeof(int)), *sd = xcalloc(p, sizeof(int));
	int *rcn = xcalloc(p, sizeof(int)), *rd = xcalloc(p, sizeof(int));
	uint64_t rows = 0, rowbytes = 1, *first, mstart, mcount;
	struct kernel_reply v = { 0 };
	struct value_array a = { 0 };
	struct cohort_error err;
	msgpack_sbuffer head;
	MPI_Datatype row = MPI_DATATYPE_NULL;
	char size[32], *buf = NULL;
	int rc, kind = 0, ok, head_ok;

	msgpack_sbuffer_init(&head);
	first = xcalloc(p + 1, sizeof(uint64_t));
	pull_status(k, t->name, &v, &mine.st);
	if (v.ok) {
		kind = value_array_open(v.data, v.len, &a, &err);
		if (kind < 0 || (kind == 1 && a.ndim == 0) || kind == 0) {
			mine.st.len = -1;
			snprintf(mine.st.why, sizeof(mine.st.why), "'%s' is %s",
				 t->name, kind < 0 ? "malformed"
				 : kind == 0 ? "not an array"
					     : "a 0-d array");
		} else {
			snprintf(mine.descr, sizeof(mine.descr), "%s",
				 a.descr);
			mine.ndim = a.ndim;
			memcpy(mine.shape, a.shape,
			       a.ndim * sizeof(uint64_t));
		}
	}
	rc = PMPI_Allgather(&mine, sizeof(mine), MPI_BYTE, all, sizeof(mine),
			    MPI_BYTE, comm);
	if (rc != MPI_SUCCESS) {
		mpi_fail(r, "MPI_Allgather", rc);
		goto out;
	}
	for (size_t i = 0; i < p; i++) {
		struct layout *l = &all[i];
		const char *why = NULL;

		l->descr[sizeof(l->descr) - 1] = '\0';
		l->st.why[sizeof(l->st.why) - 1] = '\0';
		if (l->st.len < 0)
			why = l->st.why;
		else if (strcmp(l->descr, all[0].descr) != 0)
			why = "its dtype differs from the first rank's";
		else if (l->ndim != all[0].ndim ||
			 memcmp(l->shape + 1, all[0].shape + 1,
				(l->ndim - 1) * sizeof(uint64_t)) != 0)
			why = "its shape beyond the first axis differs from "
			      "the first rank's";
		if (why == NULL)
			continue;
		if ((int)i == me && !v.ok)
			fail(r, v.ename, "%s", v.evalue);
		else if ((int)i == me)
			fail(r, "ValueError", "%s", why);
		else
			fail(r, "AbortedError", "redistribute of '%s' not "
			     "done: rank %lld: %s", t->name,
			     (long long)t->ranks[i], why);
		goto out;
	}
	for (size_t i = 0; i < p; i++) {
		first[i] = rows;
		rows += all[i].shape[0];
	}
	first[p] = rows;
	for (uint32_t d = 1; d < all[0].ndim; d++)
		rowbytes *= all[0].shape[d];
	rowbytes *= a.itemsize;
	/* Target position q gets rows [mstart(q), mstart(q) + mcount(q)). */
#define MCOUNT(q) (rows / p + ((uint64_t)(q) < rows % p))
#define MSTART(q) ((uint64_t)(q) * (rows / p) + \
		   ((uint64_t)(q) < rows % p ? (uint64_t)(q) : rows % p))
	if (rows > INT_MAX || rowbytes > INT_MAX) {
		/* The same verdict on every rank. */
		fail(r, "ValueError", "redistribute: %llu rows of %llu bytes "
		     "are too many for one MPI_Alltoallv",
		     (unsigned long long)rows, (unsigned long long)rowbytes);
		goto out;
	}
	mstart = MSTART(me);
	mcount = MCOUNT(me);
	for (size_t q = 0; q < p; q++) {
		uint64_t s = overlap(first[me], first[me + 1], MSTART(q),
				     MSTART(q) + MCOUNT(q));
		uint64_t g = overlap(first[q], first[q + 1], mstart,
				     mstart + mcount);
		uint64_t so = s ? (MSTART(q) > first[me] ? MSTART(q) : first[me])
				  - first[me] : 0;
		uint64_t go = g ? (first[q] > mstart ? first[q] : mstart)
				  - mstart : 0;

		sc[q] = (int)s;
		sd[q] = (int)so;
		rcn[q] = (int)g;
		rd[q] = (int)go;
	}
#undef MCOUNT
#undef MSTART
	mine.shape[0] = mcount;
	head_ok = value_array_head(&head, all[0].descr, all[0].ndim,
				   mine.shape, &err) == 0;
	ok = head_ok;
	rc = PMPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, comm);
	if (rc != MPI_SUCCESS) {
		mpi_fail(r, "MPI_Allreduce", rc);
		goto out;
	}
	if (!ok) {
		if (!head_ok)
			fail(r, "ValueError", "%s", err.text);
		else
			fail(r, "AbortedError", "redistribute of '%s' not "
			     "done: another rank's part would be too large",
			     t->name);
		goto out;
	}
	buf = malloc(head.size + mcount * rowbytes + 1);
	if (buf == NULL)
		fatalx("cannot allocate %llu bytes for a redistribute",
		       (unsigned long long)(mcount * rowbytes));
	memcpy(buf, head.data, head.size);
	if (rowbytes > 0) {
		rc = PMPI_Type_contiguous((int)rowbytes, MPI_BYTE, &row);
		if (rc == MPI_SUCCESS)
			rc = PMPI_Type_commit(&row);
		if (rc == MPI_SUCCESS)
			rc = PMPI_Alltoallv(a.data, sc, sd, row,
					    buf + head.size, rcn, rd, row,
					    comm);
		if (row != MPI_DATATYPE_NULL)
			PMPI_Type_free(&row);
		if (rc != MPI_SUCCESS) {
			mpi_fail(r, "MPI_Alltoallv", rc);
			goto out;
		}
	}
	kernel_reply_clear(&v); /* the old value can go before the push */
	human(size, sizeof(size), (double)(mcount * rowbytes));
	if (push_value(k, t->name, buf, head.size + mcount * rowbytes, r) != 0)
		;
	else if (mcount == 0)
		say(r, "'%s' holds none of the %llu rows", t->name,
		    (unsigned long long)rows);
	else
		say(r, "'%s' holds rows %llu-%llu of %llu (%s)", t->name,
		    (unsigned long long)mstart,
		    (unsigned long long)(mstart + mcount - 1),
		    (unsigned long long)rows, size);
out:
	kernel_reply_clear(&v);
	msgpack_sbuffer_destroy(&head);
	free(buf);
	free(first);
	free(all);
	free(sc);
	free(sd);
	free(rcn);
	free(rd);
}

/* Run a data-movement task; r is filled as the other tasks' replies. */
void
move_run(const struct kernel_ops *k, struct task *t, struct kernel_reply *r)
{
	MPI_Comm comm = MPI_COMM_NULL;
	int me, rank, rc;

	r->ok = 1;
	if (world == MPI_COMM_NULL) {
		if (t->op == TASK_MOVE && (t->nranks == 1 ||
		    (t->nranks == 2 && t->ranks[0] == t->ranks[1]))) {
			do_move(k, t, t->ranks[0], r);
			return;
		}
		{
		fail(r, "MPIError", "%s needs MPI: this engine was not "
			    "started with --mpi", op_name(t->op));
		return;
	}
	}
	rc = PMPI_Comm_rank(world, &rank);
	if (rc != MPI_SUCCESS)
		{
		mpi_fail(r, "MPI_Comm_rank", rc);
		return;
	}
	if (t->op == TASK_MOVE)
		return do_move(k, t, rank, r);
	me = position(t, rank);
	if (me < 0 || (t->op == TASK_BCAST && position(t, t->root) < 0))
		{
		fail(r, "ProtocolError", "%s task without this rank or "
			    "its root among its ranks", op_name(t->op));
		return;
	}
	if (group_comm(t, &comm, r) < 0)
		return;
	switch (t->op) {
	case TASK_BCAST:
		do_bcast(k, t, comm, me, r);
		break;
	case TASK_ALLGATHER:
		do_allgather(k, t, comm, me, r);
		break;
	case TASK_REDISTRIBUTE:
		do_redistribute(k, t, comm, me, r);
		break;
	default:
		break;
	}
	group_free(&comm);
}
