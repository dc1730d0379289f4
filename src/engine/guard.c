/* SPDX-License-Identifier: BSD-3-Clause */
/* guard.c - the partial-collective guard: PMPI interposition in the engine.
 *
 * When a request runs on only some ranks of an MPI job, a collective on a
 * communicator that includes the other ranks would wait for them for ever.
 * The engine defines the MPI communication calls itself (it is linked with
 * exported symbols, so mpi4py and C extensions reach these definitions
 * before libmpi's) and, while such a request runs, refuses any call on a
 * communicator whose group holds an untargeted rank: it returns
 * MPI_ERR_OTHER at once, before any message moves, and records why so the
 * engine reports a clear error. Point-to-point calls are covered too,
 * because mpi4py's lowercase collectives (comm.allreduce(obj)) are built
 * from them. A request may opt out (--allow-partial-collectives).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "guard.h"
#include "targets.h"
#include "util.h"

static struct {
	bool active;
	bool *targeted; /* by MPI_COMM_WORLD rank */
	int size;
	char message[512];
	bool tripped;
	/* Attributes set while armed: mpi4py caches its private duplicate
	 * communicator as an attribute set *before* the MPI_Comm_dup we
	 * refuse, so a refused request must not leave them behind. */
	struct {
		MPI_Comm comm;
		int keyval;
	} attrs[16];
	int nattrs;
	int keyvals[16]; /* every keyval created in this process */
	int nkeyvals;
	MPI_Comm refused; /* the communicator of the first refused call */
} g;

/* Arm the guard for a request on the given world ranks (n < size). */
void
guard_begin(const int64_t *ranks, size_t n, bool allow)
{
	int initialized = 0, size = 0;

	g.active = false;
	g.tripped = false;
	g.nattrs = 0;
	g.message[0] = '\0';
	if (allow || ranks == NULL || MPI_Initialized(&initialized) !=
	    MPI_SUCCESS || !initialized)
		return;
	if (PMPI_Comm_size(MPI_COMM_WORLD, &size) != MPI_SUCCESS || size < 1)
		return;
	free(g.targeted);
	g.targeted = xcalloc((size_t)size, sizeof(bool));
	g.size = size;
	for (size_t i = 0; i < n; i++)
		if (ranks[i] >= 0 && ranks[i] < size)
			g.targeted[ranks[i]] = true;
	g.active = true;
}

static void undo_mpi4py_tag(void);

/* Disarm the guard; returns its message if a call was refused, else NULL.
 * After a refusal, attributes set during the request are deleted so that
 * libraries retry their set-up (with every rank) next time. */
const char *
guard_end(void)
{
	g.active = false;
	if (g.tripped && g.nattrs == 0)
		undo_mpi4py_tag();
	for (int i = 0; g.tripped && i < g.nattrs; i++)
		(void)PMPI_Comm_delete_attr(g.attrs[i].comm, g.attrs[i].keyval);
	g.nattrs = 0;
	return g.tripped ? g.message : NULL;
}

/* mpi4py's pickle-based collectives (comm.allreduce(obj)) run on a private
 * duplicate of comm with a message counter, both kept in a context struct
 * attached to comm as an attribute; the counter is bumped before the first
 * MPI call of the operation. When we refuse that call, the refused ranks
 * are one step ahead of the others and every later such collective would
 * hang, so the bump is undone here. The struct starts with the duplicate
 * communicator; mpi4py 3.x lays out the counter either right after it
 * ({dupcomm, tag, tag_ub, ...}) or after a second communicator
 * ({dupcomm, localcomm, tag, ...}), which is told apart by whether that
 * second word is a communicator handle. */
static void
undo_mpi4py_tag(void)
{
	MPI_Comm parents[2] = { MPI_COMM_WORLD, MPI_COMM_SELF };

	for (int k = 0; k < g.nkeyvals; k++) {
		for (int p = 0; p < 2; p++) {
			void *val = NULL;
			int found = 0, *tag;
			MPI_Comm second;

			if (PMPI_Comm_get_attr(parents[p], g.keyvals[k], &val,
					       &found) != MPI_SUCCESS ||
			    !found || val == NULL ||
			    *(MPI_Comm *)val != g.refused)
				continue;
			memcpy(&second, (char *)val + sizeof(MPI_Comm),
			       sizeof(second));
			if (second == MPI_COMM_NULL || second == MPI_COMM_WORLD ||
			    second == MPI_COMM_SELF)
				tag = (int *)((char *)val + 2 * sizeof(MPI_Comm));
			else
				tag = (int *)((char *)val + sizeof(MPI_Comm));
			if (*tag > 0)
				(*tag)--;
			return;
		}
	}
}

/* Remember keyvals so undo_mpi4py_tag can find mpi4py's context. */
int
MPI_Comm_create_keyval(MPI_Comm_copy_attr_function *copy_fn,
		       MPI_Comm_delete_attr_function *delete_fn, int *keyval,
		       void *extra_state)
{
	int rc = PMPI_Comm_create_keyval(copy_fn, delete_fn, keyval,
					 extra_state);

	if (rc == MPI_SUCCESS &&
	    g.nkeyvals < (int)(sizeof(g.keyvals) / sizeof(g.keyvals[0])))
		g.keyvals[g.nkeyvals++] = *keyval;
	return rc;
}

/* Record attributes set while armed (see guard_end). */
int
MPI_Comm_set_attr(MPI_Comm comm, int comm_keyval, void *attribute_val)
{
	int rc = PMPI_Comm_set_attr(comm, comm_keyval, attribute_val);

	if (g.active && rc == MPI_SUCCESS &&
	    g.nattrs < (int)(sizeof(g.attrs) / sizeof(g.attrs[0]))) {
		g.attrs[g.nattrs].comm = comm;
		g.attrs[g.nattrs].keyval = comm_keyval;
		g.nattrs++;
	}
	return rc;
}

/* Check that every rank of comm's group(s) is targeted. */
static int
guard_check(const char *call, MPI_Comm comm)
{
	MPI_Group world, groups[2];
	int ngroups = 1, inter = 0, total = 0;
	int64_t *missing = NULL, *running = NULL;
	size_t nmissing = 0, nrunning = 0;
	char miss[128], run[128];

	if (!g.active || comm == MPI_COMM_NULL)
		return MPI_SUCCESS;
	if (PMPI_Comm_group(MPI_COMM_WORLD, &world) != MPI_SUCCESS)
		return MPI_SUCCESS;
	if (PMPI_Comm_group(comm, &groups[0]) != MPI_SUCCESS) {
		PMPI_Group_free(&world);
		return MPI_SUCCESS;
	}
	if (PMPI_Comm_test_inter(comm, &inter) == MPI_SUCCESS && inter &&
	    PMPI_Comm_remote_group(comm, &groups[1]) == MPI_SUCCESS)
		ngroups = 2;
	missing = xcalloc((size_t)g.size, sizeof(int64_t));
	for (int k = 0; k < ngroups; k++) {
		int n = 0, *in, *out;

		if (PMPI_Group_size(groups[k], &n) != MPI_SUCCESS || n <= 0)
			continue;
		total += n;
		in = xcalloc((size_t)n, sizeof(int));
		out = xcalloc((size_t)n, sizeof(int));
		for (int i = 0; i < n; i++)
			in[i] = i;
		if (PMPI_Group_translate_ranks(groups[k], n, in, world, out) ==
		    MPI_SUCCESS)
			for (int i = 0; i < n; i++)
				if (out[i] >= 0 && out[i] < g.size &&
				    !g.targeted[out[i]])
					missing[nmissing++] = out[i];
		free(in);
		free(out);
		PMPI_Group_free(&groups[k]);
	}
	PMPI_Group_free(&world);
	if (nmissing == 0) {
		free(missing);
		return MPI_SUCCESS;
	}
	running = xcalloc((size_t)g.size, sizeof(int64_t));
	for (int r = 0; r < g.size; r++)
		if (g.targeted[r])
			running[nrunning++] = r;
	/* Ascending already for world-ordered groups; sort is not needed
	 * for the message to be right, only tidy. */
	targets_format(missing, nmissing, miss, sizeof(miss));
	targets_format(running, nrunning, run, sizeof(run));
	if (!g.tripped)
		snprintf(g.message, sizeof(g.message),
			 "%s on a communicator of %d ranks needs rank%s %s, "
			 "which this request does not run on (it runs on "
			 "ranks %s): it would wait for ever. Target those "
			 "ranks too, or pass --allow-partial-collectives if "
			 "the communicator is one you built for these ranks",
			 call, total, nmissing > 1 ? "s" : "", miss, run);
	if (!g.tripped)
		g.refused = comm;
	g.tripped = true;
	free(missing);
	free(running);
	return MPI_ERR_OTHER;
}

#define GUARD(call, comm)                                                    \
	do {                                                                 \
		int guard_rc_ = guard_check(call, comm);                     \
		if (guard_rc_ != MPI_SUCCESS)                                \
			return guard_rc_;                                    \
	} while (0)

/* The interposed calls: check, then hand over to the MPI library. */

int
MPI_Barrier(MPI_Comm comm)
{
	GUARD("MPI_Barrier", comm);
	return PMPI_Barrier(comm);
}

int
MPI_Ibarrier(MPI_Comm comm, MPI_Request *request)
{
	GUARD("MPI_Ibarrier", comm);
	return PMPI_Ibarrier(comm, request);
}

int
MPI_Bcast(void *buffer, int count, MPI_Datatype datatype, int root,
	  MPI_Comm comm)
{
	GUARD("MPI_Bcast", comm);
	return PMPI_Bcast(buffer, count, datatype, root, comm);
}

int
MPI_Ibcast(void *buffer, int count, MPI_Datatype datatype, int root,
	   MPI_Comm comm, MPI_Request *request)
{
	GUARD("MPI_Ibcast", comm);
	return PMPI_Ibcast(buffer, count, datatype, root, comm, request);
}

int
MPI_Reduce(const void *sendbuf, void *recvbuf, int count,
	   MPI_Datatype datatype, MPI_Op op, int root, MPI_Comm comm)
{
	GUARD("MPI_Reduce", comm);
	return PMPI_Reduce(sendbuf, recvbuf, count, datatype, op, root, comm);
}

int
MPI_Allreduce(const void *sendbuf, void *recvbuf, int count,
	      MPI_Datatype datatype, MPI_Op op, MPI_Comm comm)
{
	GUARD("MPI_Allreduce", comm);
	return PMPI_Allreduce(sendbuf, recvbuf, count, datatype, op, comm);
}

int
MPI_Iallreduce(const void *sendbuf, void *recvbuf, int count,
	       MPI_Datatype datatype, MPI_Op op, MPI_Comm comm,
	       MPI_Request *request)
{
	GUARD("MPI_Iallreduce", comm);
	return PMPI_Iallreduce(sendbuf, recvbuf, count, datatype, op, comm,
			       request);
}

int
MPI_Gather(const void *sendbuf, int sendcount, MPI_Datatype sendtype,
	   void *recvbuf, int recvcount, MPI_Datatype recvtype, int root,
	   MPI_Comm comm)
{
	GUARD("MPI_Gather", comm);
	return PMPI_Gather(sendbuf, sendcount, sendtype, recvbuf, recvcount,
			   recvtype, root, comm);
}

int
MPI_Gatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype,
	    void *recvbuf, const int recvcounts[], const int displs[],
	    MPI_Datatype recvtype, int root, MPI_Comm comm)
{
	GUARD("MPI_Gatherv", comm);
	return PMPI_Gatherv(sendbuf, sendcount, sendtype, recvbuf, recvcounts,
			    displs, recvtype, root, comm);
}

int
MPI_Scatter(const void *sendbuf, int sendcount, MPI_Datatype sendtype,
	    void *recvbuf, int recvcount, MPI_Datatype recvtype, int root,
	    MPI_Comm comm)
{
	GUARD("MPI_Scatter", comm);
	return PMPI_Scatter(sendbuf, sendcount, sendtype, recvbuf, recvcount,
			    recvtype, root, comm);
}

int
MPI_Scatterv(const void *sendbuf, const int sendcounts[], const int displs[],
	     MPI_Datatype sendtype, void *recvbuf, int recvcount,
	     MPI_Datatype recvtype, int root, MPI_Comm comm)
{
	GUARD("MPI_Scatterv", comm);
	return PMPI_Scatterv(sendbuf, sendcounts, displs, sendtype, recvbuf,
			     recvcount, recvtype, root, comm);
}

int
MPI_Allgather(const void *sendbuf, int sendcount, MPI_Datatype sendtype,
	      void *recvbuf, int recvcount, MPI_Datatype recvtype,
	      MPI_Comm comm)
{
	GUARD("MPI_Allgather", comm);
	return PMPI_Allgather(sendbuf, sendcount, sendtype, recvbuf,
			      recvcount, recvtype, comm);
}

int
MPI_Allgatherv(const void *sendbuf, int sendcount, MPI_Datatype sendtype,
	       void *recvbuf, const int recvcounts[], const int displs[],
	       MPI_Datatype recvtype, MPI_Comm comm)
{
	GUARD("MPI_Allgatherv", comm);
	return PMPI_Allgatherv(sendbuf, sendcount, sendtype, recvbuf,
			       recvcounts, displs, recvtype, comm);
}

int
MPI_Alltoall(const void *sendbuf, int sendcount, MPI_Datatype sendtype,
	     void *recvbuf, int recvcount, MPI_Datatype recvtype,
	     MPI_Comm comm)
{
	GUARD("MPI_Alltoall", comm);
	return PMPI_Alltoall(sendbuf, sendcount, sendtype, recvbuf, recvcount,
			     recvtype, comm);
}

int
MPI_Alltoallv(const void *sendbuf, const int sendcounts[],
	      const int sdispls[], MPI_Datatype sendtype, void *recvbuf,
	      const int recvcounts[], const int rdispls[],
	      MPI_Datatype recvtype, MPI_Comm comm)
{
	GUARD("MPI_Alltoallv", comm);
	return PMPI_Alltoallv(sendbuf, sendcounts, sdispls, sendtype, recvbuf,
			      recvcounts, rdispls, recvtype, comm);
}

int
MPI_Reduce_scatter_block(const void *sendbuf, void *recvbuf, int recvcount,
			 MPI_Datatype datatype, MPI_Op op, MPI_Comm comm)
{
	GUARD("MPI_Reduce_scatter_block", comm);
	return PMPI_Reduce_scatter_block(sendbuf, recvbuf, recvcount, datatype,
					 op, comm);
}

int
MPI_Scan(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype,
	 MPI_Op op, MPI_Comm comm)
{
	GUARD("MPI_Scan", comm);
	return PMPI_Scan(sendbuf, recvbuf, count, datatype, op, comm);
}

int
MPI_Exscan(const void *sendbuf, void *recvbuf, int count,
	   MPI_Datatype datatype, MPI_Op op, MPI_Comm comm)
{
	GUARD("MPI_Exscan", comm);
	return PMPI_Exscan(sendbuf, recvbuf, count, datatype, op, comm);
}

int
MPI_Send(const void *buf, int count, MPI_Datatype datatype, int dest, int tag,
	 MPI_Comm comm)
{
	GUARD("MPI_Send", comm);
	return PMPI_Send(buf, count, datatype, dest, tag, comm);
}

int
MPI_Ssend(const void *buf, int count, MPI_Datatype datatype, int dest,
	  int tag, MPI_Comm comm)
{
	GUARD("MPI_Ssend", comm);
	return PMPI_Ssend(buf, count, datatype, dest, tag, comm);
}

int
MPI_Isend(const void *buf, int count, MPI_Datatype datatype, int dest,
	  int tag, MPI_Comm comm, MPI_Request *request)
{
	GUARD("MPI_Isend", comm);
	return PMPI_Isend(buf, count, datatype, dest, tag, comm, request);
}

int
MPI_Recv(void *buf, int count, MPI_Datatype datatype, int source, int tag,
	 MPI_Comm comm, MPI_Status *status)
{
	GUARD("MPI_Recv", comm);
	return PMPI_Recv(buf, count, datatype, source, tag, comm, status);
}

int
MPI_Irecv(void *buf, int count, MPI_Datatype datatype, int source, int tag,
	  MPI_Comm comm, MPI_Request *request)
{
	GUARD("MPI_Irecv", comm);
	return PMPI_Irecv(buf, count, datatype, source, tag, comm, request);
}

int
MPI_Sendrecv(const void *sendbuf, int sendcount, MPI_Datatype sendtype,
	     int dest, int sendtag, void *recvbuf, int recvcount,
	     MPI_Datatype recvtype, int source, int recvtag, MPI_Comm comm,
	     MPI_Status *status)
{
	GUARD("MPI_Sendrecv", comm);
	return PMPI_Sendrecv(sendbuf, sendcount, sendtype, dest, sendtag,
			     recvbuf, recvcount, recvtype, source, recvtag,
			     comm, status);
}

int
MPI_Probe(int source, int tag, MPI_Comm comm, MPI_Status *status)
{
	GUARD("MPI_Probe", comm);
	return PMPI_Probe(source, tag, comm, status);
}

int
MPI_Mprobe(int source, int tag, MPI_Comm comm, MPI_Message *message,
	   MPI_Status *status)
{
	GUARD("MPI_Mprobe", comm);
	return PMPI_Mprobe(source, tag, comm, message, status);
}

/* Communicator constructors are collective over the parent communicator:
 * mpi4py's lowercase collectives start with a private MPI_Comm_dup. */

int
MPI_Comm_dup(MPI_Comm comm, MPI_Comm *newcomm)
{
	GUARD("MPI_Comm_dup", comm);
	return PMPI_Comm_dup(comm, newcomm);
}

int
MPI_Comm_dup_with_info(MPI_Comm comm, MPI_Info info, MPI_Comm *newcomm)
{
	GUARD("MPI_Comm_dup_with_info", comm);
	return PMPI_Comm_dup_with_info(comm, info, newcomm);
}

int
MPI_Comm_idup(MPI_Comm comm, MPI_Comm *newcomm, MPI_Request *request)
{
	GUARD("MPI_Comm_idup", comm);
	return PMPI_Comm_idup(comm, newcomm, request);
}

int
MPI_Comm_split(MPI_Comm comm, int color, int key, MPI_Comm *newcomm)
{
	GUARD("MPI_Comm_split", comm);
	return PMPI_Comm_split(comm, color, key, newcomm);
}

int
MPI_Comm_split_type(MPI_Comm comm, int split_type, int key, MPI_Info info,
		    MPI_Comm *newcomm)
{
	GUARD("MPI_Comm_split_type", comm);
	return PMPI_Comm_split_type(comm, split_type, key, info, newcomm);
}

int
MPI_Comm_create(MPI_Comm comm, MPI_Group group, MPI_Comm *newcomm)
{
	GUARD("MPI_Comm_create", comm);
	return PMPI_Comm_create(comm, group, newcomm);
}

int
MPI_Intercomm_merge(MPI_Comm intercomm, int high, MPI_Comm *newintercomm)
{
	GUARD("MPI_Intercomm_merge", intercomm);
	return PMPI_Intercomm_merge(intercomm, high, newintercomm);
}

int
MPI_Cart_create(MPI_Comm old_comm, int ndims, const int dims[],
		const int periods[], int reorder, MPI_Comm *comm_cart)
{
	GUARD("MPI_Cart_create", old_comm);
	return PMPI_Cart_create(old_comm, ndims, dims, periods, reorder,
				comm_cart);
}

int
MPI_Win_create(void *base, MPI_Aint size, int disp_unit, MPI_Info info,
	       MPI_Comm comm, MPI_Win *win)
{
	GUARD("MPI_Win_create", comm);
	return PMPI_Win_create(base, size, disp_unit, info, comm, win);
}

int
MPI_Reduce_scatter(const void *sendbuf, void *recvbuf, const int recvcounts[],
		   MPI_Datatype datatype, MPI_Op op, MPI_Comm comm)
{
	GUARD("MPI_Reduce_scatter", comm);
	return PMPI_Reduce_scatter(sendbuf, recvbuf, recvcounts, datatype, op,
				   comm);
}
