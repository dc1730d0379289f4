/* SPDX-License-Identifier: BSD-3-Clause */
/* loadgen.c - cohort-loadgen: load and endurance driver for a controller.
 *
 *   cohort-loadgen [--profile P] --clients N --requests M
 *                  [--code CODE] [--expect TEXT] [--targets T]
 *                  [--timeout SECS]
 *	Fork N client processes. Each connects once (libcohort), waits until
 *	all N are connected, then runs M execute requests one after the
 *	other and checks every engine's reply: status "ok" and, by default
 *	(no --code), the code "K + 1" with K unique per request and the
 *	result str(K + 1). With --code every request runs CODE; with
 *	--expect the result must equal TEXT. The parent prints one line:
 *
 *	  requests=R replies=P errors=E mismatches=X elapsed=S rate=R/s ...
 *
 *	and exits 1 if any error or mismatch, or replies != R x engines (the
 *	number of live engines, asked of the controller before the start,
 *	or of the --targets list).
 *
 *   cohort-loadgen [--profile P] --idle N --hold SECS
 *	Open N client connections in this one process (the soft limit of
 *	open files is raised to the hard one first), print "held N" once
 *	all are connected, keep them open and idle for SECS seconds, close
 *	them and exit 0. Exits 1 at the first connection that fails.
 *
 * Exit status 2 is a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cohort/client.h"

/* What one client process reports to the parent (one write, atomic). */
struct stats {
	int64_t requests;   /* requests attempted */
	int64_t replies;    /* engine replies received */
	int64_t errors;     /* failed requests + replies whose status is not ok */
	int64_t mismatches; /* ok replies with the wrong result */
	int64_t short_reqs; /* requests with fewer/more replies than engines */
	double max_latency; /* slowest request, seconds */
	double sum_latency;
};

struct opts {
	const char *profile;
	const char *code;
	const char *expect;
	const char *targets;
	long clients, requests, idle;
	double hold, timeout;
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(int rc, const char *fmt, ...)
{
	va_list ap;

	fputs("cohort-loadgen: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(rc);
}

static void
usage(void)
{
	fputs("usage: cohort-loadgen [--profile P] --clients N --requests M "
	      "[--code CODE] [--expect TEXT]\n"
	      "                      [--targets T] [--timeout SECS]\n"
	      "       cohort-loadgen [--profile P] --idle N --hold SECS\n",
	      stderr);
	exit(2);
}

static long
parse_long(const char *s, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0)
		die(2, "bad %s '%s'", what, s);
	return v;
}

static double
parse_double(const char *s, const char *what)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || v < 0)
		die(2, "bad %s '%s'", what, s);
	return v;
}

static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Bytes read, short only at EOF; -1 on error. */
static ssize_t
read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* ---- the number of engines a request will be answered by ---------------- */

static long
count_engines(const struct opts *o)
{
	struct cohort_error err;
	struct cohort_client *c;
	struct cohort_engine *list = NULL;
	size_t n = 0;
	long live = 0;

	c = cohort_connect(o->profile, &err);
	if (c == NULL)
		die(1, "%s", err.text);
	if (cohort_engines(c, &list, &n, &err) < 0)
		die(1, "engines: %s", err.text);
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i].state, "dead") != 0)
			live++;
	free(list);
	cohort_disconnect(c);
	return live;
}

/* Ids in a target spec such as "0,2" or "1-3" (no "all"). */
static long
count_targets(const char *spec)
{
	long n = 0;
	const char *p = spec;

	while (*p != '\0') {
		char *end;
		long a = strtol(p, &end, 10), b = a;

		if (end == p)
			die(2, "bad --targets '%s' (use ids: 0,2 or 1-3)", spec);
		p = end;
		if (*p == '-') {
			b = strtol(p + 1, &end, 10);
			if (end == p + 1 || b < a)
				die(2, "bad --targets '%s'", spec);
			p = end;
		}
		n += b - a + 1;
		if (*p == ',')
			p++;
		else if (*p != '\0')
			die(2, "bad --targets '%s'", spec);
	}
	return n;
}

/* ---- one client process ----------------------------------------------- */

struct call {
	struct stats *st;
	const char *want; /* expected result text, or NULL: any */
	long nreplies;
	long client;
	int noted; /* messages printed by this client so far */
};

static void
note(struct call *k, const char *fmt, ...)
{
	char line[1024];
	size_t n;
	va_list ap;

	if (k->noted++ >= 3)
		return;
	/* One write per line, so that the clients' lines do not mix. */
	n = (size_t)snprintf(line, sizeof(line), "cohort-loadgen: client %ld: ",
			     k->client);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	n = strlen(line);
	line[n++] = '\n';
	(void)write_all(STDERR_FILENO, line, n);
}

static void
on_reply(const struct cohort_reply *r, void *arg)
{
	struct call *k = arg;

	k->st->replies++;
	k->nreplies++;
	if (strcmp(r->status, "ok") != 0) {
		k->st->errors++;
		note(k, "engine %lld: %s: %s: %s", (long long)r->engine,
		     r->status, r->ename ? r->ename : "",
		     r->evalue ? r->evalue : "");
		return;
	}
	if (k->want != NULL &&
	    (r->result == NULL || strcmp(r->result, k->want) != 0)) {
		k->st->mismatches++;
		note(k, "engine %lld: result %s, want %s",
		     (long long)r->engine, r->result ? r->result : "(none)",
		     k->want);
	}
}

static void
run_client(const struct opts *o, long id, long nengines, int report_fd,
	   int go_fd)
{
	struct stats st = { 0 };
	struct call k = { .st = &st, .client = id };
	struct cohort_error err;
	struct cohort_client *c;
	char code[64], want[32], token, dummy;

	c = cohort_connect(o->profile, &err);
	token = c != NULL ? 'c' : 'f';
	if (c == NULL)
		note(&k, "connect: %s", err.text);
	if (write_all(report_fd, &token, 1) < 0)
		_exit(3);
	/* Wait for the start: the parent closes the pipe. */
	while (read(go_fd, &dummy, 1) < 0 && errno == EINTR)
		;
	close(go_fd);
	for (long i = 0; i < o->requests; i++) {
		const char *run = o->code;
		double t0;
		int rc;

		st.requests++;
		if (c == NULL) {
			st.errors++;
			continue;
		}
		k.want = o->expect;
		if (o->code == NULL) {
			long long key = (long long)id * 10000000LL + i;

			snprintf(code, sizeof(code), "%lld + 1", key);
			snprintf(want, sizeof(want), "%lld", key + 1);
			run = code;
			k.want = want;
		}
		k.nreplies = 0;
		t0 = now();
		rc = cohort_execute(c, o->targets, run, o->timeout, on_reply,
				    &k, &err);
		t0 = now() - t0;
		st.sum_latency += t0;
		if (t0 > st.max_latency)
			st.max_latency = t0;
		if (rc < 0) {
			st.errors++;
			note(&k, "request %ld: %s", i, err.text);
			if (strstr(err.text, "lost the controller") != NULL) {
				/* No connection left: the rest fail too. */
				st.errors += o->requests - i - 1;
				st.requests = o->requests;
				break;
			}
		} else if (k.nreplies != nengines) {
			st.short_reqs++;
			note(&k, "request %ld: %ld replies, want %ld", i,
			     k.nreplies, nengines);
		}
	}
	cohort_disconnect(c);
	if (write_all(report_fd, &st, sizeof(st)) < 0)
		_exit(3);
	_exit(0);
}

static int
run_load(const struct opts *o)
{
	long n = o->clients, nengines, connected = 0, failed = 0;
	int *fds = calloc((size_t)n, sizeof(int));
	pid_t *pids = calloc((size_t)n, sizeof(pid_t));
	struct stats total = { 0 };
	int go[2], bad = 0;
	double t0, t1, elapsed;

	if (fds == NULL || pids == NULL)
		die(1, "out of memory");
	nengines = o->targets != NULL ? count_targets(o->targets)
				      : count_engines(o);
	if (nengines == 0)
		die(1, "no live engines");
	if (pipe(go) < 0)
		die(1, "pipe: %s", strerror(errno));
	fflush(NULL);
	t0 = now();
	for (long i = 0; i < n; i++) {
		int p[2];

		if (pipe(p) < 0)
			die(1, "pipe: %s", strerror(errno));
		pids[i] = fork();
		if (pids[i] < 0)
			die(1, "fork: %s", strerror(errno));
		if (pids[i] == 0) {
			close(p[0]);
			close(go[1]);
			/* Pipes of earlier siblings are not ours. */
			for (long j = 0; j < i; j++)
				close(fds[j]);
			run_client(o, i, nengines, p[1], go[0]);
		}
		close(p[1]);
		fds[i] = p[0];
	}
	close(go[0]);
	/* Every client reports its connection, then all start together. */
	for (long i = 0; i < n; i++) {
		char token = 'f';

		if (read_all(fds[i], &token, 1) != 1 || token != 'c')
			failed++;
		else
			connected++;
	}
	t1 = now();
	close(go[1]);
	for (long i = 0; i < n; i++) {
		struct stats st;
		int status;

		if (read_all(fds[i], &st, sizeof(st)) != (ssize_t)sizeof(st)) {
			fprintf(stderr, "cohort-loadgen: client %ld sent no "
				"report\n", i);
			bad = 1;
			memset(&st, 0, sizeof(st));
			st.requests = o->requests;
			st.errors = o->requests;
		}
		close(fds[i]);
		total.requests += st.requests;
		total.replies += st.replies;
		total.errors += st.errors;
		total.mismatches += st.mismatches;
		total.short_reqs += st.short_reqs;
		total.sum_latency += st.sum_latency;
		if (st.max_latency > total.max_latency)
			total.max_latency = st.max_latency;
		if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			bad = 1;
	}
	elapsed = now() - t1;
	printf("requests=%lld replies=%lld errors=%lld mismatches=%lld "
	       "elapsed=%.2f rate=%.0f/s engines=%ld clients=%ld "
	       "connect=%.2f avg_latency_ms=%.2f max_latency_ms=%.1f\n",
	       (long long)total.requests, (long long)total.replies,
	       (long long)total.errors, (long long)total.mismatches, elapsed,
	       elapsed > 0 ? (double)total.requests / elapsed : 0.0, nengines,
	       connected, t1 - t0,
	       total.requests > 0
		       ? 1e3 * total.sum_latency / (double)total.requests
		       : 0.0,
	       1e3 * total.max_latency);
	fflush(stdout);
	free(fds);
	free(pids);
	if (failed > 0)
		fprintf(stderr, "cohort-loadgen: %ld clients could not connect\n",
			failed);
	if (total.short_reqs > 0)
		fprintf(stderr, "cohort-loadgen: %lld requests had a wrong "
			"number of replies\n", (long long)total.short_reqs);
	if (bad || failed > 0 || total.errors > 0 || total.mismatches > 0 ||
	    total.short_reqs > 0 ||
	    total.requests != (int64_t)o->clients * o->requests ||
	    total.replies != total.requests * nengines)
		return 1;
	return 0;
}

/* ---- idle connections ----------------------------------------------------- */

static int
run_idle(const struct opts *o)
{
	struct cohort_client **cs = calloc((size_t)o->idle, sizeof(*cs));
	struct cohort_error err;
	struct rlimit rl;
	double t0 = now(), left;
	long n = 0;
	int rc = 0;

	if (cs == NULL)
		die(1, "out of memory");
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			fprintf(stderr, "cohort-loadgen: cannot raise the "
				"open-file limit: %s\n", strerror(errno));
	}
	for (; n < o->idle; n++) {
		cs[n] = cohort_connect(o->profile, &err);
		if (cs[n] == NULL) {
			fprintf(stderr, "cohort-loadgen: connection %ld: %s\n",
				n + 1, err.text);
			rc = 1;
			break;
		}
	}
	if (rc == 0) {
		printf("held %ld (connected in %.2f s)\n", n, now() - t0);
		fflush(stdout);
		left = o->hold;
		while (left > 0) {
			struct timespec ts = { (time_t)left,
					       (long)((left - (double)(time_t)left) *
						      1e9) };
			double s = now();

			if (nanosleep(&ts, NULL) == 0)
				break;
			left -= now() - s;
		}
	}
	for (long i = 0; i < n; i++)
		cohort_disconnect(cs[i]);
	free(cs);
	if (rc == 0) {
		printf("released %ld\n", n);
		fflush(stdout);
	}
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "profile", required_argument, NULL, 'p' },
		{ "clients", required_argument, NULL, 'c' },
		{ "requests", required_argument, NULL, 'r' },
		{ "code", required_argument, NULL, 'x' },
		{ "expect", required_argument, NULL, 'e' },
		{ "targets", required_argument, NULL, 't' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "idle", required_argument, NULL, 'i' },
		{ "hold", required_argument, NULL, 'h' },
		{ "help", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .timeout = 60.0, .clients = -1, .requests = -1,
			  .idle = -1, .hold = 0 };
	int ch;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p': o.profile = optarg; break;
		case 'c': o.clients = parse_long(optarg, "--clients"); break;
		case 'r': o.requests = parse_long(optarg, "--requests"); break;
		case 'x': o.code = optarg; break;
		case 'e': o.expect = optarg; break;
		case 't': o.targets = optarg; break;
		case 'T': o.timeout = parse_double(optarg, "--timeout"); break;
		case 'i': o.idle = parse_long(optarg, "--idle"); break;
		case 'h': o.hold = parse_double(optarg, "--hold"); break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	if (o.targets != NULL && strcmp(o.targets, "all") == 0)
		o.targets = NULL;
	signal(SIGPIPE, SIG_IGN);
	if (o.idle >= 0) {
		if (o.clients >= 0 || o.requests >= 0)
			usage();
		return run_idle(&o);
	}
	if (o.clients <= 0 || o.requests < 0)
		usage();
	if (o.expect != NULL && o.code == NULL)
		die(2, "--expect needs --code");
	return run_load(&o);
}
