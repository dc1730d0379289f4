/* SPDX-License-Identifier: BSD-3-Clause */
/* engine.h - the engine's two threads: main (kernel, MPI) and I/O.
 *
 * The I/O thread owns the connection to the controller and the read ends
 * of the captured stdout/stderr pipes; it never touches the kernel. The
 * main thread takes tasks from a queue, runs them in the kernel and posts
 * each result back to the I/O thread.
 */
#ifndef COHORT_ENGINE_H
#define COHORT_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cohort/error.h"
#include "cohort/kernel.h"
#include "cohort/profile.h"

/* Who this engine is, as told to the controller in its hello. */
struct engine_identity {
	int64_t rank, size, pid;
	char host[256];
	char job[64];
	const char *kernel;
};

enum task_op {
	TASK_EXECUTE,
	TASK_PUSH,
	TASK_PULL,
	/* Data movement among the engines of one MPI job (move.c). */
	TASK_BCAST,
	TASK_MOVE,
	TASK_ALLGATHER,
	TASK_REDISTRIBUTE,
};

/* One task taken from the controller. */
struct task {
	uint64_t id;
	enum task_op op;
	char *code; /* execute */
	size_t code_len;
	char *name; /* push, pull, data movement */
	char *as;   /* move, allgather: the name to bind (NULL: name) */
	int64_t root; /* bcast: the source rank */
	void *data; /* push: the value */
	void *block; /* chunked push: the allocation data lies in (aligned
			so that an array's elements start on 64 bytes) */
	size_t len;
	size_t chunked; /* push: size of a value arriving in chunks */
	int64_t *ranks; /* execute: the targeted ranks of our MPI job;
			   data movement: its ranks, sorted (move: from, to) */
	size_t nranks;
	bool partial;   /* execute: --allow-partial-collectives */
	struct task *next;
};

void task_free(struct task *t);

/* capture.c: point fds 1 and 2 at pipes whose read ends are returned.
 * The engine's log keeps a duplicate of the original stderr. */
int capture_start(int *out_rd, int *err_rd, int *log_fd,
		  struct cohort_error *err);

/* move.c: data movement over MPI (a private duplicate of the world). */
int move_init(void);
void move_finalize(void);
void move_run(const struct kernel_ops *k, struct task *t,
	      struct kernel_reply *r);

/* io.c */
/* Start the I/O thread, connect and register; returns once the controller
 * has welcomed the engine (engine id in *id) or with -1 and err. */
int io_start(const struct cohort_conninfo *ci,
	     const struct engine_identity *who, int out_rd, int err_rd,
	     const struct kernel_ops *kernel, int64_t *id,
	     struct cohort_error *err);
/* Block until the next task; NULL means shut down. */
struct task *io_next_task(void);
/* Hand a finished task's reply to the I/O thread (which frees both). */
void io_post_reply(struct task *t, struct kernel_reply *r, double elapsed);
/* True once the connection to the controller is gone. */
bool io_controller_lost(void);
bool io_wait_lent(void);
/* Stop the I/O thread and close the connection. */
void io_stop(void);

#endif
