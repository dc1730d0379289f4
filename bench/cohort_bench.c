/* SPDX-License-Identifier: BSD-3-Clause */
/* cohort_bench.c - the Cohort side of bench/run, on the libcohort C API.
 *
 * One client connection is opened and reused for every request of a run,
 * as ipyparallel's Client does. Each mode prints result lines
 *
 *	cohort METRIC VALUE
 *
 * on stdout (bench/run collects them) and progress on stderr.
 *
 *	cohort_bench PROFILE latency TARGETS N ROUNDS TAG
 *	    N blocking executes of "pass" per round (after 20 warm-ups);
 *	    per round the median and the p99 (nearest rank), in ms;
 *	    prints lat_TAG_median / lat_TAG_p99 = the median over rounds.
 *	cohort_bench PROFILE throughput N ROUNDS
 *	    N non-blocking executes of "pass" on all engines per round,
 *	    sent with cohort_submit() (no wait for each acknowledgement,
 *	    as ipyparallel's execute(block=False)), acknowledgements
 *	    collected after the last (cohort_collect), then poll until the
 *	    last job (and so every job) is done; prints tput = requests per
 *	    second, median over rounds.
 *	cohort_bench PROFILE throughput-ack N ROUNDS
 *	    the same with cohort_request(nonblock = 1), which waits for
 *	    each acknowledgement (one client-controller round trip per
 *	    request); prints tput_ack.
 *	cohort_bench PROFILE transfer MIB ROUNDS
 *	    push a float64 ndarray of MIB MiB to all engines, pull it back,
 *	    ROUNDS times each; prints push_MIB / pull_MIB in MiB/s, counting
 *	    the bytes delivered to (or from) every engine.
 *	cohort_bench PROFILE scatter MIB ROUNDS
 *	    scatter a float64 ndarray of MIB MiB across all engines and
 *	    gather it back; prints scatter_MIB / gather_MIB in MiB/s of the
 *	    array's size (every byte moves once).
 *	cohort_bench PROFILE pids
 *	    prints "engine_pid ID PID" for every engine.
 *	cohort_bench PROFILE tls ROUNDS
 *	    the machine's TLS limit: one TLS 1.3 stream over 127.0.0.1
 *	    between two processes (this one and a forked child), 1 GiB in
 *	    1 MiB SSL_write calls, with the profile's controller certificate
 *	    and OpenSSL's default TLS 1.3 suite, as Cohort negotiates;
 *	    prints "machine tls_loopback MiB/s" (median over rounds); then
 *	    the same over a Unix-domain socket pair, as local peers connect
 *	    ("machine tls_local MiB/s"). No cluster is needed, only the
 *	    profile's certificate files.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "cohort/client.h"
#include "cohort/kernel.h"

#define REQ_TIMEOUT 300.0
/* Untimed rounds before the timed ones of each transfer mode (both
 * systems alike): rates in the steady state, not the first touch. */
#define WARMUP 1

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
die(const char *what, const struct cohort_error *err)
{
	fprintf(stderr, "cohort_bench: %s: %s\n", what, err ? err->text : "");
	exit(1);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median of v[0..n) (sorts v). */
static double
median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double
percentile(const double *v, size_t n, double p)
{
	size_t k = (size_t)ceil(p / 100.0 * (double)n);

	if (k < 1)
		k = 1;
	return v[k - 1];
}

struct tally {
	size_t replies, failed;
	uint64_t bytes;
	char why[256];
};

static void
on_reply(const struct cohort_reply *r, void *arg)
{
	struct tally *t = arg;

	t->replies++;
	t->bytes += r->len;
	if (strcmp(r->status, "ok") != 0) {
		t->failed++;
		snprintf(t->why, sizeof(t->why), "engine %" PRId64 ": %s %s",
			 r->engine, r->ename ? r->ename : r->status,
			 r->evalue ? r->evalue : "");
	}
}

/* rc of a request: -1 failed as a whole, >0 some engines failed. */
static void
check(int rc, const char *what, const struct tally *t,
      const struct cohort_error *err)
{
	if (rc < 0)
		die(what, err);
	if (rc > 0 || t->failed) {
		fprintf(stderr, "cohort_bench: %s: %s\n", what, t->why);
		exit(1);
	}
}

static void
execute(struct cohort_client *c, const char *targets, const char *code,
	struct tally *t)
{
	struct cohort_error err;
	struct cohort_request rq = { .op = "execute", .targets = targets,
				     .code = code, .timeout = REQ_TIMEOUT };

	memset(t, 0, sizeof(*t));
	check(cohort_request(c, &rq, on_reply, t, &err), code, t, &err);
}

static void
mode_latency(struct cohort_client *c, const char *targets, int n, int rounds,
	     const char *tag)
{
	double *lat = calloc((size_t)n, sizeof(double));
	double *med = calloc((size_t)rounds, sizeof(double));
	double *p99 = calloc((size_t)rounds, sizeof(double));
	struct tally t;

	for (int i = 0; i < 20; i++)
		execute(c, targets, "pass", &t);
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < n; i++) {
			double t0 = now();

			execute(c, targets, "pass", &t);
			lat[i] = (now() - t0) * 1e3;
		}
		qsort(lat, (size_t)n, sizeof(double), cmp_double);
		med[r] = n % 2 ? lat[n / 2] : (lat[n / 2 - 1] + lat[n / 2]) / 2;
		p99[r] = percentile(lat, (size_t)n, 99);
		fprintf(stderr, "  cohort latency %s round %d: median %.3f ms, "
			"p99 %.3f ms (%zu replies/request)\n", tag, r + 1,
			med[r], p99[r], t.replies);
	}
	printf("cohort lat_%s_median %.6f\n", tag, median(med, (size_t)rounds));
	printf("cohort lat_%s_p99 %.6f\n", tag, median(p99, (size_t)rounds));
	free(lat);
	free(med);
	free(p99);
}

struct acks {
	int64_t last_job;
	size_t njobs, refused;
	char why[256];
};

static void
on_ack(int64_t ticket, int64_t job, const char *error, void *arg)
{
	struct acks *a = arg;

	(void)ticket;
	if (error != NULL) {
		a->refused++;
		snprintf(a->why, sizeof(a->why), "%s", error);
		return;
	}
	a->njobs++;
	if (job > a->last_job)
		a->last_job = job;
}

/* N non-blocking executes of "pass" on all engines, then poll until the
 * last job (and so every job) is done. With ack_each, each request waits
 * for the controller's acknowledgement (cohort_request with nonblock: one
 * round trip each); else they are sent with cohort_submit() and the
 * acknowledgements collected once, after the last. */
static void
mode_throughput(struct cohort_client *c, int n, int rounds, int ack_each)
{
	double *rate = calloc((size_t)rounds, sizeof(double));
	struct cohort_error err;
	struct tally t;

	for (int i = 0; i < 20; i++)
		execute(c, "all", "pass", &t);
	for (int r = 0; r < rounds; r++) {
		struct cohort_request rq = { .op = "execute", .targets = "all",
					     .code = "pass", .nonblock = 1,
					     .timeout = REQ_TIMEOUT };
		struct acks a = { 0 };
		int64_t last = 0;
		int running = 1;
		size_t polls = 0;
		double t0 = now(), el;

		for (int i = 0; i < n; i++) {
			if (ack_each) {
				memset(&t, 0, sizeof(t));
				if (cohort_request(c, &rq, on_reply, &t,
						   &err) < 0)
					die("nonblock execute", &err);
				last = cohort_last_job(c);
			} else if (cohort_submit(c, &rq, &err) < 0) {
				die("submit", &err);
			}
		}
		if (!ack_each) {
			if (cohort_collect(c, on_ack, &a, &err) < 0)
				die("collect", &err);
			if (a.refused > 0 || a.njobs != (size_t)n) {
				fprintf(stderr, "cohort_bench: %zu of %d "
					"submissions refused: %s\n",
					a.refused, n, a.why);
				exit(1);
			}
			last = a.last_job;
		}
		/* Engines run their tasks in arrival order, so the last job
		 * done means all are; cohort_jobs double-checks below. */
		while (running) {
			memset(&t, 0, sizeof(t));
			if (cohort_result(c, last, on_reply, &t, &running,
					  &err) < 0)
				die("result", &err);
			polls++;
			if (running)
				usleep(200);
		}
		el = now() - t0;
		{
			struct cohort_job *jobs;
			size_t nj, nrun = 0;

			if (cohort_jobs(c, &jobs, &nj, &err) < 0)
				die("jobs", &err);
			for (size_t i = 0; i < nj; i++)
				if (strcmp(jobs[i].state, "running") == 0)
					nrun++;
			free(jobs);
			if (nrun > 0)
				fprintf(stderr, "  cohort throughput: %zu jobs "
					"still running after the last one\n",
					nrun);
		}
		if (t.failed)
			fprintf(stderr, "  cohort throughput: last job "
				"failed: %s\n", t.why);
		rate[r] = n / el;
		fprintf(stderr, "  cohort throughput%s round %d: %d requests "
			"in %.3f s = %.0f/s (%zu polls)\n",
			ack_each ? " (ack each)" : "", r + 1, n, el, rate[r],
			polls);
	}
	printf("cohort %s %.3f\n", ack_each ? "tput_ack" : "tput",
	       median(rate, (size_t)rounds));
	free(rate);
}

/* A msgpack-encoded float64 ndarray of n elements (COHORT_EXT_NDARRAY). */
static void
make_array(size_t n, msgpack_sbuffer *out)
{
	msgpack_sbuffer hdr;
	msgpack_packer pk;
	size_t raw = n * sizeof(double);
	double *d;

	msgpack_sbuffer_init(&hdr);
	msgpack_packer_init(&pk, &hdr, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_str_with_body(&pk, "<f8", 3);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_uint64(&pk, n);

	msgpack_sbuffer_init(out);
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	msgpack_pack_ext(&pk, hdr.size + raw, COHORT_EXT_NDARRAY);
	msgpack_sbuffer_write(out, hdr.data, hdr.size);
	/* Reserve the raw bytes, then fill them in place. */
	d = malloc(raw);
	if (d == NULL) {
		fprintf(stderr, "cohort_bench: out of memory\n");
		exit(1);
	}
	for (size_t i = 0; i < n; i++)
		d[i] = (double)i;
	msgpack_sbuffer_write(out, (const char *)d, raw);
	free(d);
	msgpack_sbuffer_destroy(&hdr);
}

static size_t
count_engines(struct cohort_client *c)
{
	struct cohort_engine *list;
	struct cohort_error err;
	size_t n, live = 0;

	if (cohort_engines(c, &list, &n, &err) < 0)
		die("engines", &err);
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i].state, "dead") != 0)
			live++;
	free(list);
	return live;
}

static void
mode_transfer(struct cohort_client *c, int mib, int rounds)
{
	size_t n = (size_t)mib * (1u << 20) / sizeof(double);
	size_t neng = count_engines(c);
	double *push = calloc((size_t)rounds, sizeof(double));
	double *pull = calloc((size_t)rounds, sizeof(double));
	double moved = (double)mib * (double)neng;
	msgpack_sbuffer v;
	struct cohort_error err;
	struct tally t;

	make_array(n, &v);
	for (int r = -WARMUP; r < rounds; r++) {
		double t0 = now(), el;

		memset(&t, 0, sizeof(t));
		check(cohort_push(c, "all", "a", v.data, v.size, on_reply, &t,
				  &err), "push", &t, &err);
		el = now() - t0;
		t0 = now();
		memset(&t, 0, sizeof(t));
		check(cohort_pull(c, "all", "a", on_reply, &t, &err), "pull",
		      &t, &err);
		if (r < 0) {
			fprintf(stderr, "  cohort %d MiB x %zu engines warm-up: "
				"push %.0f MiB/s, pull %.0f MiB/s\n", mib, neng,
				moved / el, moved / (now() - t0));
			continue;
		}
		push[r] = moved / el;
		pull[r] = moved / (now() - t0);
		if (t.bytes < (uint64_t)neng * n * sizeof(double))
			fprintf(stderr, "cohort_bench: pulled only %" PRIu64
				" bytes\n", t.bytes);
		fprintf(stderr, "  cohort %d MiB x %zu engines round %d: push "
			"%.0f MiB/s, pull %.0f MiB/s\n", mib, neng, r + 1,
			push[r], pull[r]);
	}
	execute(c, "all", "del a", &t);
	printf("cohort push_%d %.3f\n", mib, median(push, (size_t)rounds));
	printf("cohort pull_%d %.3f\n", mib, median(pull, (size_t)rounds));
	msgpack_sbuffer_destroy(&v);
	free(push);
	free(pull);
}

static void
mode_scatter(struct cohort_client *c, int mib, int rounds)
{
	size_t n = (size_t)mib * (1u << 20) / sizeof(double);
	double *sc = calloc((size_t)rounds, sizeof(double));
	double *ga = calloc((size_t)rounds, sizeof(double));
	msgpack_sbuffer v;
	struct cohort_error err;
	struct tally t;

	make_array(n, &v);
	for (int r = -WARMUP; r < rounds; r++) {
		double t0 = now(), el, eg;
		void *out = NULL;
		size_t outlen = 0;

		memset(&t, 0, sizeof(t));
		check(cohort_scatter(c, "all", "a", v.data, v.size, on_reply,
				     &t, &err), "scatter", &t, &err);
		el = now() - t0;
		t0 = now();
		memset(&t, 0, sizeof(t));
		check(cohort_gather(c, "all", "a", &out, &outlen, on_reply, &t,
				    &err), "gather", &t, &err);
		eg = now() - t0;
		if (outlen != v.size)
			fprintf(stderr, "cohort_bench: gathered %zu bytes, "
				"scattered %zu\n", outlen, v.size);
		free(out);
		if (r < 0) {
			fprintf(stderr, "  cohort %d MiB warm-up: scatter %.0f "
				"MiB/s, gather %.0f MiB/s\n", mib, mib / el,
				mib / eg);
			continue;
		}
		sc[r] = mib / el;
		ga[r] = mib / eg;
		fprintf(stderr, "  cohort %d MiB round %d: scatter %.0f MiB/s, "
			"gather %.0f MiB/s\n", mib, r + 1, sc[r], ga[r]);
	}
	execute(c, "all", "del a", &t);
	printf("cohort scatter_%d %.3f\n", mib, median(sc, (size_t)rounds));
	printf("cohort gather_%d %.3f\n", mib, median(ga, (size_t)rounds));
	msgpack_sbuffer_destroy(&v);
	free(sc);
	free(ga);
}

static void
mode_pids(struct cohort_client *c)
{
	struct cohort_engine *list;
	struct cohort_error err;
	size_t n;

	if (cohort_engines(c, &list, &n, &err) < 0)
		die("engines", &err);
	for (size_t i = 0; i < n; i++)
		printf("engine_pid %" PRId64 " %" PRId64 "\n", list[i].id,
		       list[i].pid);
	free(list);
}

#define TLS_TOTAL (1ull << 30)
#define TLS_CHUNK (1u << 20)

static void
ssl_die(const char *what)
{
	fprintf(stderr, "cohort_bench: tls: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

/* The receiving side, on connected socket fd: read TLS_TOTAL bytes, ack. */
static void
tls_server(int fd, const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char *buf = malloc(TLS_CHUNK);
	uint64_t got = 0;
	SSL *ssl;
	int n;

	if (ctx == NULL || buf == NULL ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		ssl_die("server context");
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1)
		ssl_die("handshake (server)");
	while (got < TLS_TOTAL && (n = SSL_read(ssl, buf, TLS_CHUNK)) > 0)
		got += (uint64_t)n;
	if (got != TLS_TOTAL || SSL_write(ssl, "k", 1) != 1)
		ssl_die("short read");
	SSL_shutdown(ssl);
	_exit(0);
}

/* One TLS stream of TLS_TOTAL bytes to a forked receiver, over TCP on
 * 127.0.0.1 or (local) a Unix-domain socket pair; MiB/s. */
static double
tls_once(const char *cert, const char *key, char *suite, size_t size,
	 bool local)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t salen = sizeof(sa);
	SSL_CTX *ctx;
	SSL *ssl;
	char *buf, ack;
	int lfd = -1, fd, status, sv[2];
	pid_t pid;
	double t0, el;

	if (local) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
			ssl_die("socketpair");
	} else {
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		lfd = socket(AF_INET, SOCK_STREAM, 0);
		if (lfd < 0 ||
		    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    listen(lfd, 1) < 0 ||
		    getsockname(lfd, (struct sockaddr *)&sa, &salen) < 0)
			ssl_die("listen");
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		ssl_die("fork");
	if (pid == 0) {
		if (local) {
			close(sv[0]);
			tls_server(sv[1], cert, key);
		}
		fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			ssl_die("accept");
		tls_server(fd, cert, key);
	}
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION))
		ssl_die("client context");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (local) {
		close(sv[1]);
		fd = sv[0];
	} else {
		close(lfd);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 ||
		    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			ssl_die("connect");
	}
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1)
		ssl_die("handshake (client)");
	snprintf(suite, size, "%s %s", SSL_get_version(ssl),
		 SSL_get_cipher_name(ssl));
	buf = calloc(1, TLS_CHUNK);
	t0 = now();
	for (uint64_t sent = 0; sent < TLS_TOTAL; sent += TLS_CHUNK)
		if (SSL_write(ssl, buf, TLS_CHUNK) != (int)TLS_CHUNK)
			ssl_die("write");
	if (SSL_read(ssl, &ack, 1) != 1)
		ssl_die("no ack");
	el = now() - t0;
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	free(buf);
	if (waitpid(pid, &status, 0) != pid || status != 0)
		ssl_die("receiver failed");
	return (double)TLS_TOTAL / (1u << 20) / el;
}

static void
mode_tls(const char *profile, int rounds)
{
	char cert[4200], key[4200], suite[128];
	double *rate = calloc((size_t)rounds, sizeof(double));

	snprintf(cert, sizeof(cert), "%s/controller.pem", profile);
	snprintf(key, sizeof(key), "%s/controller-key.pem", profile);
	for (int local = 0; local < 2; local++) {
		for (int r = 0; r < rounds; r++) {
			rate[r] = tls_once(cert, key, suite, sizeof(suite),
					   local);
			fprintf(stderr, "  TLS %s (C, OpenSSL) round %d: %.0f "
				"MiB/s (%s)\n", local ? "Unix socket" :
				"loopback TCP", r + 1, rate[r], suite);
		}
		printf("machine %s %.3f\n", local ? "tls_local" :
		       "tls_loopback", median(rate, (size_t)rounds));
	}
	free(rate);
}

static void
usage(void)
{
	fprintf(stderr,
		"usage: cohort_bench PROFILE latency TARGETS N ROUNDS TAG\n"
		"       cohort_bench PROFILE throughput N ROUNDS\n"
		"       cohort_bench PROFILE throughput-ack N ROUNDS\n"
		"       cohort_bench PROFILE transfer MIB ROUNDS\n"
		"       cohort_bench PROFILE scatter MIB ROUNDS\n"
		"       cohort_bench PROFILE pids\n"
		"       cohort_bench PROFILE tls ROUNDS\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct cohort_client *c;
	struct cohort_error err;
	const char *mode;

	if (argc < 3)
		usage();
	mode = argv[2];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(mode, "tls") == 0 && argc == 4) {
		mode_tls(argv[1], atoi(argv[3]));
		return 0;
	}
	c = cohort_connect(argv[1], &err);
	if (c == NULL)
		die("connect", &err);
	if (strcmp(mode, "latency") == 0 && argc == 7)
		mode_latency(c, argv[3], atoi(argv[4]), atoi(argv[5]), argv[6]);
	else if (strcmp(mode, "throughput") == 0 && argc == 5)
		mode_throughput(c, atoi(argv[3]), atoi(argv[4]), 0);
	else if (strcmp(mode, "throughput-ack") == 0 && argc == 5)
		mode_throughput(c, atoi(argv[3]), atoi(argv[4]), 1);
	else if (strcmp(mode, "transfer") == 0 && argc == 5)
		mode_transfer(c, atoi(argv[3]), atoi(argv[4]));
	else if (strcmp(mode, "scatter") == 0 && argc == 5)
		mode_scatter(c, atoi(argv[3]), atoi(argv[4]));
	else if (strcmp(mode, "pids") == 0 && argc == 3)
		mode_pids(c);
	else
		usage();
	cohort_disconnect(c);
	return 0;
}
