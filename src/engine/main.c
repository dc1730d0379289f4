/* SPDX-License-Identifier: BSD-3-Clause */
/* main.c - cohort-engine: one MPI rank running a kernel for the controller. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <mpi.h>

#include "cohort/profile.h"
#include "conn.h"
#include "engine.h"
#include "guard.h"
#include "log.h"
#include "util.h"

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: cohort-engine [--mpi] [--kernel K] [--profile P]\n"
		"                     [--file CONNECTION_FILE] [--log-level L]\n"
		"\n"
		"Run one Cohort engine: connect to the controller and run the code\n"
		"it sends in a kernel (embedded Python unless --kernel native).\n"
		"Launch many with\n"
		"  mpiexec -n 4 cohort-engine --mpi\n"
		"\n"
		"  --mpi            initialise MPI first; the engine id is the MPI rank\n"
		"  --kernel K       python (default: embedded CPython) or native\n"
		"                   (C/Fortran plugins, no interpreter: docs/native.md)\n"
		"  --profile P      profile name or directory (default: default)\n"
		"  --file F         connection file (default: the profile's engine.json)\n"
		"  --log-level L    error, warn, info (default) or debug\n"
		"  -h, --help       show this help\n"
		"\n"
		"User code runs in the directory the engine was started in.\n");
}

static void
make_job_id(char *buf, size_t size)
{
	unsigned char r[8];

	if (getrandom(r, sizeof(r), 0) != sizeof(r))
		fatal("getrandom");
	snprintf(buf, size, "%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1],
		 r[2], r[3], r[4], r[5], r[6], r[7]);
}

static void
mpi_identity(struct engine_identity *who)
{
	int provided, rank, size, rc;

	rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
	if (rc != MPI_SUCCESS)
		fatalx("MPI_Init_thread failed (error %d)", rc);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	who->rank = rank;
	who->size = size;
	/* Every rank of one job must tell the controller the same job id:
	 * rank 0 draws it and broadcasts it. */
	if (rank == 0)
		make_job_id(who->job, sizeof(who->job));
	rc = MPI_Bcast(who->job, sizeof(who->job), MPI_CHAR, 0,
		       MPI_COMM_WORLD);
	if (rc != MPI_SUCCESS)
		fatalx("MPI_Bcast of the job id failed (error %d)", rc);
	who->job[sizeof(who->job) - 1] = '\0';
	if (move_init() < 0)
		fatalx("cannot duplicate MPI_COMM_WORLD for data movement");
}

static void
run_task(const struct kernel_ops *k, struct task *t)
{
	struct kernel_reply r = { 0 };
	double start = now_monotonic();
	void *lender;

	switch (t->op) {
	case TASK_EXECUTE: {
		const char *why;

		guard_begin(t->ranks, t->nranks, t->partial);
		k->execute(t->code, t->code_len, &r);
		why = guard_end();
		if (why != NULL && !r.ok) {
			/* mpi4py saw only MPI_ERR_OTHER: say what happened. */
			free(r.ename);
			free(r.evalue);
			r.ename = xstrdup("PartialCollectiveError");
			r.evalue = xstrdup(why);
		}
		break;
	}
	case TASK_PUSH:
		if (t->block != NULL && k->push_owned != NULL) {
			k->push_owned(t->name, t->block, t->data, t->len, &r);
			t->block = t->data = NULL; /* the kernel's now */
		} else {
			k->push(t->name, t->data, t->len, &r);
		}
		break;
	case TASK_PULL:
		if (k->pull_lend != NULL)
			k->pull_lend(t->name, &r);
		else
			k->pull(t->name, &r);
		break;
	case TASK_BCAST:
	case TASK_MOVE:
	case TASK_ALLGATHER:
	case TASK_REDISTRIBUTE:
		move_run(k, t, &r);
		break;
	}
	/* Everything the task wrote must be in the pipes before the I/O
	 * thread drains them for this reply. */
	k->flush();
	fflush(NULL);
	lender = r.lender;
	io_post_reply(t, &r, now_monotonic() - start);
	/* Lent bytes are being sent: nothing runs (and could change them)
	 * until they are out. */
	if (lender != NULL && io_wait_lent())
		k->give_back(lender);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mpi", no_argument, NULL, 'M' },
		{ "kernel", required_argument, NULL, 'k' },
		{ "profile", required_argument, NULL, 'p' },
		{ "file", required_argument, NULL, 'f' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct kernel_ops *kernel = &kernel_python;
	const char *profile = NULL, *file = NULL;
	struct engine_identity who = { 0 };
	struct cohort_conninfo ci;
	struct cohort_error err;
	char dir[4096], path[4200], prefix[64];
	int use_mpi = 0, out_rd, err_rd, log_fd, ch;
	enum log_level level;
	struct task *t;
	bool lost;
	int64_t id;

	log_init("cohort-engine", STDERR_FILENO);
	/* Values: a pushed value is assembled in one buffer, then copied
	 * into its array; a pulled one is encoded into another. glibc maps
	 * big blocks fresh each time and unmaps them on free, so each value
	 * cost two page faults (and the zeroing of a page) per 4 KiB: half
	 * an engine's time in a bulk push. Keep freed memory in one heap for
	 * the next value instead (one arena: the I/O thread's blocks too),
	 * and give it back once no bulk data has moved for a second. */
	if (mallopt(M_ARENA_MAX, 1) != 1 || mallopt(M_MMAP_MAX, 0) != 1 ||
	    mallopt(M_TRIM_THRESHOLD, INT_MAX) != 1)
		log_debug("malloc keeps its defaults (mallopt refused)");
	conn_trim_when_idle(1.0);
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'M':
			use_mpi = 1;
			break;
		case 'k':
			if (strcmp(optarg, "python") == 0)
				kernel = &kernel_python;
			else if (strcmp(optarg, "native") == 0)
				kernel = &kernel_native;
			else
				fatalx("unknown --kernel '%s' (python or native)",
				       optarg);
			break;
		case 'p':
			profile = optarg;
			break;
		case 'f':
			file = optarg;
			break;
		case 'l':
			if (log_parse_level(optarg, &level) < 0)
				fatalx("bad --log-level '%s'", optarg);
			log_set_level(level);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	/* MPI first, as the guide's engines do. */
	if (use_mpi) {
		mpi_identity(&who);
	} else {
		who.rank = 0;
		who.size = 1;
		make_job_id(who.job, sizeof(who.job));
	}
	snprintf(prefix, sizeof(prefix), "rank %lld", (long long)who.rank);
	log_set_prefix(prefix);
	who.pid = getpid();
	who.kernel = kernel->name;
	if (gethostname(who.host, sizeof(who.host)) < 0)
		snprintf(who.host, sizeof(who.host), "unknown");
	who.host[sizeof(who.host) - 1] = '\0';
	signal(SIGPIPE, SIG_IGN);

	if (file == NULL) {
		if (cohort_profile_path(profile, dir, sizeof(dir), &err) < 0 ||
		    cohort_conninfo_path(dir, COHORT_ROLE_ENGINE, path,
					 sizeof(path), &err) < 0)
			fatalx("%s", err.text);
		file = path;
	}
	if (cohort_conninfo_read(file, &ci, &err) < 0)
		fatalx("%s", err.text);
	if (capture_start(&out_rd, &err_rd, &log_fd, &err) < 0)
		fatalx("%s", err.text);
	level = log_get_level();
	log_init("cohort-engine", log_fd);
	log_set_level(level); /* --log-level wins over COHORT_LOG_LEVEL */
	log_route_libevent();
	if (kernel->init(argv[0], &err) < 0)
		fatalx("cannot start the %s kernel: %s", kernel->name,
		       err.text);
	if (io_start(&ci, &who, out_rd, err_rd, kernel, &id, &err) < 0)
		fatalx("%s", err.text);
	log_info("registered as engine %lld with the controller at %s:%d",
		 (long long)id, ci.ip, ci.port);

	while ((t = io_next_task()) != NULL)
		run_task(kernel, t);

	lost = io_controller_lost();
	signal(SIGALRM, SIG_DFL);
	/* MPI_Finalize waits for every rank; after losing the controller
	 * (alone, say, declared dead after a stop), others may never come:
	 * give them a few seconds, then let SIGALRM end the process. */
	if (use_mpi && lost)
		alarm(5);
	io_stop();
	kernel->finalize();
	if (use_mpi) {
		move_finalize();
		MPI_Finalize();
	}
	log_info("stopped");
	return 0;
}
