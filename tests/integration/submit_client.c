/* SPDX-License-Identifier: BSD-3-Clause */
/* submit_client.c - drives cohort_submit() and cohort_collect() for
 * t2006-client-submit: many requests in flight on one connection, every
 * job completes, each with its own correct result.
 *
 *	submit_client PROFILE N
 *
 * Prints "ok ..." lines and "all ok" at the end; on the first failure a
 * "FAIL ..." line and exit status 1.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <msgpack.h>

#include "cohort/client.h"
#include "cohort/kernel.h"

static struct cohort_client *c;
static struct cohort_error err;

static void
fail(const char *what, const char *detail)
{
	printf("FAIL %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	exit(1);
}

struct acks {
	size_t n, refused;
	int64_t *ticket, *job;
	char error[256];
};

static void
on_ack(int64_t ticket, int64_t job, const char *error, void *arg)
{
	struct acks *a = arg;

	a->ticket[a->n] = ticket;
	a->job[a->n] = error == NULL ? job : 0;
	a->n++;
	if (error != NULL) {
		a->refused++;
		snprintf(a->error, sizeof(a->error), "%s", error);
	}
}

struct results {
	size_t n, bad;
	char want[64], got[256];
};

static void
on_result(const struct cohort_reply *r, void *arg)
{
	struct results *res = arg;
	const char *got = r->result ? r->result : "";

	res->n++;
	if (strcmp(r->status, "ok") != 0 || strcmp(got, res->want) != 0) {
		res->bad++;
		snprintf(res->got, sizeof(res->got), "engine %" PRId64
			 ": %s '%s' %s", r->engine, r->status, got,
			 r->evalue ? r->evalue : "");
	}
}

/* Wait for job id to finish; every engine's result must be want ("": no
 * result). */
static void
expect_job(int64_t id, const char *want, size_t nengines)
{
	struct results res;
	int running = 1;

	for (int polls = 0; running; polls++) {
		memset(&res, 0, sizeof(res));
		snprintf(res.want, sizeof(res.want), "%s", want);
		if (cohort_result(c, id, on_result, &res, &running, &err) < 0)
			fail("result of a job", err.text);
		if (running) {
			if (polls > 60000)
				fail("a job never finished", NULL);
			usleep(2000);
		}
	}
	if (res.n != nengines || res.bad != 0) {
		char why[400];

		snprintf(why, sizeof(why), "job %" PRId64 ": %zu replies, %zu "
			 "wrong (want '%s'; %s)", id, res.n, res.bad, want,
			 res.got);
		fail("wrong results", why);
	}
}

/* A float64 ndarray of n elements 0, 1, ..., n-1 (COHORT_EXT_NDARRAY). */
static void
make_array(size_t n, msgpack_sbuffer *out)
{
	msgpack_sbuffer hdr;
	msgpack_packer pk;

	msgpack_sbuffer_init(&hdr);
	msgpack_packer_init(&pk, &hdr, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_str_with_body(&pk, "<f8", 3);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_uint64(&pk, n);
	msgpack_sbuffer_init(out);
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	msgpack_pack_ext(&pk, hdr.size + n * sizeof(double),
			 COHORT_EXT_NDARRAY);
	msgpack_sbuffer_write(out, hdr.data, hdr.size);
	for (size_t i = 0; i < n; i++) {
		double d = (double)i;

		msgpack_sbuffer_write(out, (const char *)&d, sizeof(d));
	}
	msgpack_sbuffer_destroy(&hdr);
}

/* A pulled array's elements are sent from where they are (the engine
 * lends them): an execute queued behind the pull must not run, and
 * change them, before they are all sent, however slowly the client
 * reads. The engine is kept busy for 1 s so that the pull waits in its
 * queue; a second client (a child process, told through a pipe) queues
 * an execute that overwrites the array behind it, then stops this client
 * (SIGSTOP) for 2 s, so the pull's value starts to flow to a client that
 * does not read. Every pulled element must still be its index. */
#define LEND_N (8u << 20) /* 64 MiB of float64 */

static int lend_pipe[2];

static void
lend_child(const char *profile)
{
	struct cohort_request rq = { .op = "execute", .targets = "0",
				     .code = "lend[:] = -1.0" };
	struct cohort_client *c2;
	struct acks a = { 0 };
	int64_t ticket, job;
	int running = 1;
	char go;

	close(lend_pipe[1]); /* a parent that fails first ends the read */
	if (read(lend_pipe[0], &go, 1) != 1)
		_exit(2);
	usleep(200000); /* the pull is queued first */
	c2 = cohort_connect(profile, &err);
	a.ticket = &ticket;
	a.job = &job;
	if (c2 == NULL || cohort_submit(c2, &rq, &err) < 0 ||
	    cohort_collect(c2, on_ack, &a, &err) != 0 || a.n != 1)
		_exit(1);
	kill(getppid(), SIGSTOP);
	sleep(2);
	kill(getppid(), SIGCONT);
	for (int polls = 0; running; polls++) {
		struct results res = { .want = "" };

		if (cohort_result(c2, job, on_result, &res, &running,
				  &err) < 0 || polls > 30000)
			_exit(1);
		if (!running && (res.n != 1 || res.bad != 0))
			_exit(1);
		usleep(2000);
	}
	cohort_disconnect(c2);
	_exit(0);
}

struct pulled {
	size_t n, bad;
};

static void
on_pulled(const struct cohort_reply *r, void *arg)
{
	struct pulled *p = arg;
	size_t off = r->len - (size_t)LEND_N * sizeof(double);
	double d;

	p->n++;
	if (strcmp(r->status, "ok") != 0 ||
	    r->len < (size_t)LEND_N * sizeof(double)) {
		p->bad = LEND_N;
		return;
	}
	for (size_t i = 0; i < LEND_N; i++) {
		memcpy(&d, (const char *)r->data + off + i * sizeof(d),
		       sizeof(d));
		if (d != (double)i)
			p->bad++;
	}
}

static void
lend_check(pid_t child)
{
	struct cohort_request rq = { .op = "execute", .targets = "0",
				     .code = "import time; time.sleep(1.0)" };
	struct results res = { .want = "-8388608.0" };
	struct pulled p = { 0 };
	msgpack_sbuffer v;
	int status;
	char why[200];

	make_array(LEND_N, &v);
	if (cohort_push(c, "0", "lend", v.data, v.size, NULL, NULL, &err) != 0)
		fail("push the array to lend", err.text);
	msgpack_sbuffer_destroy(&v);
	if (cohort_submit(c, &rq, &err) < 0 ||
	    cohort_collect(c, NULL, NULL, &err) != 0)
		fail("submit the engine's sleep", err.text);
	if (write(lend_pipe[1], "g", 1) != 1)
		fail("signal the second client", NULL);
	if (cohort_pull(c, "0", "lend", on_pulled, &p, &err) != 0)
		fail("pull the lent array", err.text);
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		fail("the second client's execute", NULL);
	if (p.n != 1 || p.bad != 0) {
		snprintf(why, sizeof(why), "%zu replies, %zu of %u elements "
			 "changed", p.n, p.bad, LEND_N);
		fail("the pulled array was changed while being sent", why);
	}
	if (cohort_execute(c, "0", "float(lend.sum())", 60, on_result, &res,
			   &err) != 0 || res.bad != 0)
		fail("the second client's execute ran after the pull",
		     res.got);
	printf("ok a pulled array is sent whole before the next task "
	       "changes it\n");
}

/* A large push the controller refuses at once (an unknown engine) is
 * answered before its chunks are out: the call must not return while
 * chunks still point into the caller's value, which is freed right after
 * (AddressSanitizer builds catch a use after free; others would send
 * freed memory). The connection keeps working. */
static void
refused_push_check(void)
{
	struct results res = { .want = "2" };
	msgpack_sbuffer v;
	char *copy;
	int rc;

	make_array(8u << 20, &v); /* 64 MiB */
	copy = malloc(v.size);
	if (copy == NULL)
		fail("out of memory", NULL);
	memcpy(copy, v.data, v.size);
	msgpack_sbuffer_destroy(&v);
	rc = cohort_push(c, "99", "refused", copy, v.size, NULL, NULL, &err);
	if (rc != -1 || strstr(err.text, "99") == NULL)
		fail("a push to an unknown engine is refused", err.text);
	memset(copy, 0xee, v.size);
	free(copy);
	if (cohort_execute(c, "0", "1 + 1", 60, on_result, &res, &err) != 0 ||
	    res.bad != 0 || res.n != 1)
		fail("the connection works after a refused push", res.got);
	printf("ok a refused 64 MiB push returns with nothing left pointing "
	       "into it (%s)\n", err.text);
}

int
main(int argc, char **argv)
{
	struct cohort_request rq = { .op = "execute", .targets = "all" };
	struct cohort_engine *engines;
	struct acks a = { 0 };
	msgpack_sbuffer big;
	size_t nengines, n, total;
	pid_t lend_pid;
	int64_t prev;
	int rc;

	if (argc != 3)
		fail("usage: submit_client PROFILE N", NULL);
	/* The second client of lend_check(), forked before any connection. */
	if (pipe(lend_pipe) < 0 || (lend_pid = fork()) < 0)
		fail("fork the second client", NULL);
	if (lend_pid == 0)
		lend_child(argv[1]);
	close(lend_pipe[0]);
	n = (size_t)atoi(argv[2]);
	c = cohort_connect(argv[1], &err);
	if (c == NULL)
		fail("connect", err.text);
	if (cohort_engines(c, &engines, &nengines, &err) < 0)
		fail("engines", err.text);
	free(engines);
	total = n + 4;
	a.ticket = calloc(total, sizeof(int64_t));
	a.job = calloc(total, sizeof(int64_t));
	if (a.ticket == NULL || a.job == NULL)
		fail("out of memory", NULL);

	/* A counter every engine steps once per job: job k must see k. */
	rq.code = "k = 0";
	if (cohort_submit(c, &rq, &err) < 0)
		fail("submit", err.text);
	rq.code = "k += 1; k";
	for (size_t i = 0; i < n; i++) {
		if (cohort_submit(c, &rq, &err) < 0)
			fail("submit", err.text);
		if (i == n / 2) {
			/* A blocking request in the middle: acknowledgements
			 * that arrive while it waits are kept. */
			struct results res = { .want = "'mid'" };

			rc = cohort_execute(c, "0", "'mid'", 60, on_result,
					    &res, &err);
			if (rc != 0 || res.bad != 0 || res.n != 1)
				fail("blocking execute among submissions",
				     rc < 0 ? err.text : res.got);
		}
	}
	printf("ok %zu executes submitted on one connection\n", n + 1);

	/* One the controller refuses: the others are not affected. */
	rq.targets = "999";
	if (cohort_submit(c, &rq, &err) < 0)
		fail("submit to an unknown engine", err.text);
	rq.targets = "all";

	/* A push of 8 MiB (sent in chunks after the request itself), and
	 * the execute after it sees the whole of it. */
	make_array(1u << 20, &big);
	rq.op = "push";
	rq.code = NULL;
	rq.name = "big";
	rq.data = big.data;
	rq.len = big.size;
	if (cohort_submit(c, &rq, &err) < 0)
		fail("submit push", err.text);
	rq = (struct cohort_request){ .op = "execute", .targets = "all",
				      .code = "float(big.sum())" };
	if (cohort_submit(c, &rq, &err) < 0)
		fail("submit", err.text);

	rc = cohort_collect(c, on_ack, &a, &err);
	if (rc < 0)
		fail("collect", err.text);
	msgpack_sbuffer_destroy(&big);
	if (a.n != total)
		fail("collect did not report every submission", NULL);
	if (rc != 1 || a.refused != 1 || a.job[n + 1] != 0 ||
	    strstr(a.error, "999") == NULL)
		fail("the unknown engine was not the one refusal", a.error);
	printf("ok collect: %zu acknowledged, 1 refused (%s)\n", total - 1,
	       a.error);
	prev = 0;
	for (size_t i = 0; i < total; i++) {
		if (a.ticket[i] <= prev)
			fail("tickets are not in submission order", NULL);
		prev = a.ticket[i];
	}
	prev = 0;
	for (size_t i = 0; i < total; i++) {
		if (i == n + 1)
			continue;
		if (a.job[i] <= prev)
			fail("job ids are not increasing", NULL);
		prev = a.job[i];
	}
	printf("ok tickets and job ids in submission order\n");

	/* Every job finished, each with its own result on every engine. */
	expect_job(a.job[0], "", nengines);
	for (size_t i = 1; i <= n; i++) {
		char want[32];

		snprintf(want, sizeof(want), "%zu", i);
		expect_job(a.job[i], want, nengines);
	}
	printf("ok all %zu counter jobs done, job k saw k on all %zu "
	       "engines\n", n, nengines);
	expect_job(a.job[n + 2], "", nengines);
	expect_job(a.job[n + 3], "549755289600.0", nengines);
	printf("ok the pushed value arrived whole\n");

	/* Nothing left to collect. */
	a.n = 0;
	if (cohort_collect(c, on_ack, &a, &err) != 0 || a.n != 0)
		fail("a second collect found submissions", NULL);
	printf("ok a second collect is empty\n");
	lend_check(lend_pid);
	refused_push_check();
	cohort_disconnect(c);
	free(a.ticket);
	free(a.job);
	printf("all ok\n");
	return 0;
}
