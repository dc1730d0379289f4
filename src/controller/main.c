/* SPDX-License-Identifier: BSD-3-Clause */
/* main.c - cohort-controller: the broker between clients and engines.
 *
 * One libevent loop and one TLS port serve engines and clients alike; the
 * first message of each peer (hello) says which it is, and its certificate
 * must say the same.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/listener.h>

#include "cohort/profile.h"
#include "controller.h"
#include "frame.h"
#include "log.h"
#include "tls.h"
#include "util.h"

#define HELLO_TIMEOUT 10.0

static struct {
	struct event_base *base;
	struct evconnlistener *listener;
	struct evconnlistener *local; /* the local socket's, or NULL */
	char local_path[108];
	struct tls_ctx *tls;
	char dir[4096];
	char engine_file[4200], client_file[4200];
	TAILQ_HEAD(peer_head_s, peer) peers;
	uint64_t next_serial;
	uint64_t max_payload;
	double heartbeat;
	int tolerance;
	struct event *heartbeat_ev;
	struct event *hello_ev;
} ctl;

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: cohort-controller [--profile P] [--ip ADDR] [--port N]\n"
		"                         [--log-level L] [--max-payload BYTES]\n"
		"\n"
		"Run the Cohort controller: the broker that engines and clients\n"
		"connect to over mutually authenticated TLS 1.3.\n"
		"\n"
		"  --profile P      profile name or directory (default: default;\n"
		"                   $COHORT_DIR/profile_P, COHORT_DIR=~/.cohort)\n"
		"  --ip ADDR        address to listen on (default 127.0.0.1)\n"
		"  --port N         port to listen on (default: chosen by the kernel)\n"
		"  --log-level L    error, warn, info (default) or debug\n"
		"  --max-payload B  largest value a request may carry (default 4 GiB)\n"
		"  --jobs N         finished jobs whose results are kept (default 1000;\n"
		"                   also at most 64 MiB of their output)\n"
		"  --heartbeat S    seconds between heartbeats to engines (default 1)\n"
		"  --heartbeat-tolerance N\n"
		"                   heartbeats an engine may miss before it is\n"
		"                   declared dead (default 10)\n"
		"  -h, --help       show this help\n"
		"\n"
		"On start it creates the profile's CA and certificates if absent and\n"
		"writes the connection files engine.json and client.json; it also\n"
		"listens on the local socket controller.sock in the profile, which\n"
		"peers on this machine use instead of TCP (the same TLS). SIGINT or\n"
		"SIGTERM stops it and removes them.\n");
}

/* Send an error for a request to a peer. */
void
peer_send_error(struct peer *p, int64_t id, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	struct msg m;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	msg_init(&m, MSG_ERROR);
	if (id > 0)
		msg_set_int(&m, F_ID, id);
	msg_set_str(&m, F_MESSAGE, text);
	conn_send(p->conn, &m, NULL);
}

/* Iterate over peers. */
struct peer *
peer_first(void)
{
	return TAILQ_FIRST(&ctl.peers);
}

/* The peer after p. */
struct peer *
peer_next(struct peer *p)
{
	return TAILQ_NEXT(p, entry);
}

static void
peer_free(struct peer *p)
{
	TAILQ_REMOVE(&ctl.peers, p, entry);
	free(p);
}

static const char *
peer_label(struct peer *p, char *buf, size_t size)
{
	switch (p->kind) {
	case PEER_ENGINE:
		snprintf(buf, size, "engine %lld (%s)",
			 (long long)p->engine->id, conn_peer(p->conn));
		break;
	case PEER_CLIENT:
		snprintf(buf, size, "client %s", conn_peer(p->conn));
		break;
	default:
		snprintf(buf, size, "peer %s", conn_peer(p->conn));
		break;
	}
	return buf;
}

/* Refuse a peer: tell it why, log it, and close after the message goes. */
static void
peer_refuse(struct peer *p, const char *why)
{
	char label[128];

	log_warnx("refusing %s: %s", peer_label(p, label, sizeof(label)), why);
	peer_send_error(p, 0, "%s", why);
	conn_close_after_flush(p->conn);
	if (p->kind == PEER_CLIENT)
		jobs_client_gone(p);
	peer_free(p);
}

static void
handle_hello(struct peer *p, struct msg *m)
{
	const char *cn = conn_peer_cn(p->conn);
	struct cohort_error err;
	enum cohort_role role;
	char why[512];
	struct msg w;

	if (m->type != MSG_HELLO) {
		snprintf(why, sizeof(why), "expected hello, got %s",
			 msg_type_name(m->type));
		peer_refuse(p, why);
		return;
	}
	if (m->version != PROTO_VERSION) {
		snprintf(why, sizeof(why), "protocol version %lld is not "
			 "supported (this controller speaks version %d)",
			 (long long)m->version, PROTO_VERSION);
		peer_refuse(p, why);
		return;
	}
	if (str_eq(m->role, "engine")) {
		role = COHORT_ROLE_ENGINE;
	} else if (str_eq(m->role, "client")) {
		role = COHORT_ROLE_CLIENT;
	} else {
		peer_refuse(p, "unknown role in hello");
		return;
	}
	/* The certificate, not the hello, decides what a peer may be. */
	if (strcmp(cn, cohort_role_cn(role)) != 0) {
		snprintf(why, sizeof(why), "certificate '%s' cannot be used "
			 "by a%s %s (needs '%s')", cn,
			 role == COHORT_ROLE_ENGINE ? "n" : "",
			 cohort_role_name(role), cohort_role_cn(role));
		peer_refuse(p, why);
		return;
	}
	msg_init(&w, MSG_WELCOME);
	msg_set_int(&w, F_VERSION, PROTO_VERSION);
	msg_set_double(&w, F_HEARTBEAT, ctl.heartbeat);
	msg_set_int(&w, F_TOLERANCE, ctl.tolerance);
	if (role == COHORT_ROLE_ENGINE) {
		p->engine = registry_add(p, m, &err);
		if (p->engine == NULL) {
			peer_refuse(p, err.text);
			return;
		}
		p->kind = PEER_ENGINE;
		p->engine->last_seen = now_monotonic();
		msg_set_int(&w, F_ENGINE, p->engine->id);
	} else {
		p->kind = PEER_CLIENT;
		log_debug("client connected from %s", conn_peer(p->conn));
	}
	conn_set_idle_timeout(p->conn, 0);
	conn_send(p->conn, &w, NULL);
}

static void
on_message(struct conn *c, struct msg *m, struct evbuffer *payload, void *arg)
{
	struct peer *p = arg;

	(void)c;
	if (p->kind == PEER_PENDING) {
		handle_hello(p, m);
		return;
	}
	if (p->kind == PEER_ENGINE)
		p->engine->last_seen = now_monotonic();
	switch (m->type) {
	case MSG_PING: {
		struct msg pong;

		msg_init(&pong, MSG_PONG);
		conn_send(p->conn, &pong, NULL);
		return;
	}
	case MSG_PONG:
		return;
	case MSG_REQUEST:
		if (p->kind != PEER_CLIENT)
			break;
		if (str_eq(m->op, "engines"))
			registry_send_list(p, m->id);
		else
			jobs_submit(p, m, payload);
		return;
	case MSG_REPLY:
		if (p->kind != PEER_ENGINE)
			break;
		jobs_engine_reply(p->engine, m, payload);
		return;
	case MSG_STREAM:
		if (p->kind != PEER_ENGINE)
			break;
		jobs_engine_stream(p->engine, m);
		return;
	case MSG_CHUNK:
		if (p->kind == PEER_ENGINE)
			jobs_engine_chunk(p->engine, m, payload);
		else
			jobs_client_chunk(p, m, payload);
		return;
	default:
		break;
	}
	log_warnx("%s message from a%s %s ignored", msg_type_name(m->type),
		  p->kind == PEER_ENGINE ? "n" : "",
		  p->kind == PEER_ENGINE ? "engine" : "client");
	peer_send_error(p, m->id, "unexpected %s message",
			msg_type_name(m->type));
}

static void
on_lost(struct conn *c, const char *reason, void *arg)
{
	struct peer *p = arg;
	char label[128];

	(void)c;
	switch (p->kind) {
	case PEER_ENGINE:
		log_warnx("engine %lld (rank %lld, pid %lld) lost: %s",
			  (long long)p->engine->id, (long long)p->engine->rank,
			  (long long)p->engine->pid, reason);
		registry_engine_lost(p->engine);
		jobs_engine_dead(p->engine, reason);
		break;
	case PEER_CLIENT:
		/* A client leaving is routine; a protocol error is not. */
		if (strncmp(reason, "protocol error", 14) == 0)
			log_warnx("client %s gone: %s", conn_peer(c), reason);
		else
			log_debug("client %s gone: %s", conn_peer(c), reason);
		jobs_client_gone(p);
		break;
	default:
		log_warnx("connection from %s closed before hello: %s",
			  peer_label(p, label, sizeof(label)), reason);
		break;
	}
	peer_free(p);
}

static void
on_drained(struct conn *c, void *arg)
{
	(void)c;
	jobs_drained(arg);
}

static const struct conn_handlers peer_handlers = {
	.message = on_message,
	.lost = on_lost,
	.drained = on_drained,
};

/* Ping every engine; one silent for longer than the tolerance is dead,
 * even if its connection looks open (a hung host, a stopped process). */
static void
heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
	double now = now_monotonic(), limit = ctl.heartbeat * ctl.tolerance;
	struct peer *p, *next;
	struct msg ping;

	(void)fd;
	(void)what;
	(void)arg;
	msg_init(&ping, MSG_PING);
	for (p = TAILQ_FIRST(&ctl.peers); p != NULL; p = next) {
		char reason[128];

		next = TAILQ_NEXT(p, entry);
		if (p->kind != PEER_ENGINE)
			continue;
		/* An engine we stopped reading (backpressure) cannot be heard;
		 * its open connection is the sign of life. */
		if (p->paused)
			p->engine->last_seen = now;
		if (now - p->engine->last_seen <= limit) {
			conn_send(p->conn, &ping, NULL);
			continue;
		}
		snprintf(reason, sizeof(reason), "no heartbeat for %.1f s "
			 "(tolerance %d x %.1f s)", now - p->engine->last_seen,
			 ctl.tolerance, ctl.heartbeat);
		conn_close(p->conn);
		p->engine->silent = true; /* not our signal: see jobs.c */
		on_lost(NULL, reason, p);
	}
}

/* Drop peers that have not said hello HELLO_TIMEOUT seconds after they
 * connected. Like the heartbeat, count sweeps as well as seconds: a
 * controller starved of CPU must not drop peers whose handshake it has
 * not had the time to read (a read timeout on the connection would). */
static void
hello_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	double now = now_monotonic();
	struct peer *p, *next;
	char label[128];

	(void)fd;
	(void)what;
	(void)arg;
	for (p = TAILQ_FIRST(&ctl.peers); p != NULL; p = next) {
		next = TAILQ_NEXT(p, entry);
		if (p->kind != PEER_PENDING || ++p->sweeps <= HELLO_TIMEOUT ||
		    now - p->accepted <= HELLO_TIMEOUT)
			continue;
		log_warnx("connection from %s closed before hello: timed out "
			  "waiting for the peer (no hello %.0f s after it "
			  "connected)", peer_label(p, label, sizeof(label)),
			  now - p->accepted);
		conn_close(p->conn);
		peer_free(p);
	}
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
	  int len, void *arg)
{
	char host[INET6_ADDRSTRLEN] = "?", peer[96];
	struct peer *p;
	int port = 0;

	(void)l;
	(void)len;
	(void)arg;
	if (sa->sa_family == AF_UNIX) {
		snprintf(host, sizeof(host), "local");
		port = (int)(ctl.next_serial + 1);
	} else if (sa->sa_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		port = ntohs(sin->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		port = ntohs(sin6->sin6_port);
	}
	snprintf(peer, sizeof(peer), "%s:%d", host, port);
	p = xcalloc(1, sizeof(*p));
	p->kind = PEER_PENDING;
	p->serial = ++ctl.next_serial;
	TAILQ_INIT(&p->jobs);
	p->conn = conn_accept(ctl.base, ctl.tls, fd, peer, &peer_handlers, p);
	if (p->conn == NULL) {
		free(p);
		return;
	}
	/* Large values come in chunks; one frame never needs more. The
	 * value limit (--max-payload) is checked per request instead. */
	conn_set_max_payload(p->conn, FRAME_MAX_PAYLOAD);
	/* A peer that never completes the handshake and hello is dropped
	 * (hello_sweep_cb). */
	p->accepted = now_monotonic();
	TAILQ_INSERT_TAIL(&ctl.peers, p, entry);
}

static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;
	/* EMFILE and friends: keep serving those already connected. */
	log_warn("accept failed");
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	log_info("received %s, shutting down", strsignal((int)sig));
	event_base_loopbreak(ctl.base);
}

static int
listen_on(const char *ip, int port, int *bound)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int slen = sizeof(ss);
	char spec[128];

	memset(&ss, 0, sizeof(ss));
	snprintf(spec, sizeof(spec), strchr(ip, ':') ? "[%s]:%d" : "%s:%d", ip,
		 port);
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons(port);
		slen = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, ip,
			     &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
		slen = sizeof(struct sockaddr_in6);
	} else {
		fatalx("bad listen address '%s' (expected an IPv4 or IPv6 "
		       "address)", ip);
	}
	ctl.listener = evconnlistener_new_bind(
		ctl.base, accept_cb, NULL,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
			LEV_OPT_CLOSE_ON_EXEC,
		1024, (struct sockaddr *)&ss, slen);
	if (ctl.listener == NULL)
		fatal("cannot listen on %s", spec);
	evconnlistener_set_error_cb(ctl.listener, accept_error_cb);
	if (getsockname(evconnlistener_get_fd(ctl.listener),
			(struct sockaddr *)&ss, &len) < 0)
		fatal("getsockname");
	*bound = ntohs(ss.ss_family == AF_INET
			       ? ((struct sockaddr_in *)&ss)->sin_port
			       : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

/* Also listen on a Unix-domain socket in the profile directory: peers on
 * this machine speak the same TLS through it, without the TCP stack's
 * cost (a fifth of the controller's CPU in bulk transfers, measured in
 * docs/performance.md). Only
 * the profile's owner can reach it (mode 0600, in the 0700 directory).
 * Without it (a path too long, a file system that has none), everyone
 * uses TCP. */
static void
listen_local(void)
{
	struct sockaddr_un sun;
	mode_t old;

	if (path_join(ctl.local_path, sizeof(ctl.local_path), ctl.dir,
		      "controller.sock") < 0 ||
	    unix_address(&sun, ctl.local_path) < 0) {
		log_info("no local socket: the profile path is too long; "
			 "local peers use TCP");
		ctl.local_path[0] = '\0';
		return;
	}
	/* A stale one from a controller that did not stop cleanly (a live
	 * one was ruled out above). */
	(void)unlink(ctl.local_path);
	old = umask(0177);
	ctl.local = evconnlistener_new_bind(
		ctl.base, accept_cb, NULL,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 1024,
		(struct sockaddr *)&sun, (int)sizeof(sun));
	umask(old);
	if (ctl.local == NULL) {
		log_warn("no local socket %s; local peers use TCP",
			 ctl.local_path);
		ctl.local_path[0] = '\0';
		return;
	}
	evconnlistener_set_error_cb(ctl.local, accept_error_cb);
}

static void
write_conninfo(const char *ip, int port)
{
	static const enum cohort_role roles[] = { COHORT_ROLE_ENGINE,
						  COHORT_ROLE_CLIENT };
	struct cohort_error err;

	for (size_t i = 0; i < 2; i++) {
		struct cohort_conninfo ci = { 0 };
		const char *name = cohort_role_name(roles[i]);
		char *path = i == 0 ? ctl.engine_file : ctl.client_file;

		snprintf(ci.ip, sizeof(ci.ip), "%s", ip);
		ci.port = port;
		snprintf(ci.socket, sizeof(ci.socket), "%s", ctl.local_path);
		char certname[32], keyname[32];

		snprintf(certname, sizeof(certname), "%s.pem", name);
		snprintf(keyname, sizeof(keyname), "%s-key.pem", name);
		if (path_join(ci.ca, sizeof(ci.ca), ctl.dir, "ca.pem") < 0 ||
		    path_join(ci.cert, sizeof(ci.cert), ctl.dir, certname) < 0 ||
		    path_join(ci.key, sizeof(ci.key), ctl.dir, keyname) < 0)
			fatalx("profile path %s is too long", ctl.dir);
		ci.controller_pid = getpid();
		ci.version = PROTO_VERSION;
		if (cohort_conninfo_path(ctl.dir, roles[i], path, 4200,
					 &err) < 0 ||
		    cohort_conninfo_write(path, &ci, &err) < 0)
			fatalx("%s", err.text);
	}
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "profile", required_argument, NULL, 'p' },
		{ "ip", required_argument, NULL, 'i' },
		{ "port", required_argument, NULL, 'P' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "max-payload", required_argument, NULL, 'm' },
		{ "heartbeat", required_argument, NULL, 'b' },
		{ "jobs", required_argument, NULL, 'J' },
		{ "heartbeat-tolerance", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *profile = NULL, *ip = "127.0.0.1";
	struct event *sigint_ev, *sigterm_ev;
	struct cohort_error err;
	enum log_level level;
	char cert[4200], key[4200], ca[4200], *end;
	int port = 0, bound, ch;
	struct peer *p;

	log_init("cohort-controller", STDERR_FILENO);
	/* Payloads pass through in small buffer chains spread over the heap,
	 * which glibc keeps after they are freed: give the pages back once
	 * bulk traffic has stopped for a second. */
	conn_trim_when_idle(1.0);
	ctl.max_payload = 4ull << 30;
	jobs_max_value = ctl.max_payload;
	ctl.heartbeat = 1.0;
	ctl.tolerance = 10; /* 10 s: busy shared hosts stall for seconds */
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			profile = optarg;
			break;
		case 'i':
			ip = optarg;
			break;
		case 'P':
			port = (int)strtol(optarg, &end, 10);
			if (*end != '\0' || port < 0 || port > 65535)
				fatalx("bad --port '%s'", optarg);
			break;
		case 'l':
			if (log_parse_level(optarg, &level) < 0)
				fatalx("bad --log-level '%s' (error, warn, "
				       "info or debug)", optarg);
			log_set_level(level);
			break;
		case 'm':
			ctl.max_payload = strtoull(optarg, &end, 10);
			if (*end != '\0' || ctl.max_payload == 0)
				fatalx("bad --max-payload '%s'", optarg);
			jobs_max_value = ctl.max_payload;
			break;
		case 'J':
			jobs_keep = (size_t)strtoul(optarg, &end, 10);
			if (*end != '\0' || jobs_keep > 1000000)
				fatalx("bad --jobs '%s'", optarg);
			break;
		case 'b':
			ctl.heartbeat = strtod(optarg, &end);
			if (*end != '\0' || !(ctl.heartbeat >= 0.01 &&
					       ctl.heartbeat <= 3600))
				fatalx("bad --heartbeat '%s' (seconds, 0.01 to "
				       "3600)", optarg);
			break;
		case 't':
			ctl.tolerance = (int)strtol(optarg, &end, 10);
			if (*end != '\0' || ctl.tolerance < 1 ||
			    ctl.tolerance > 1000)
				fatalx("bad --heartbeat-tolerance '%s'", optarg);
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
	signal(SIGPIPE, SIG_IGN);
	log_route_libevent();
	{
		/* A descriptor per engine and client: a soft limit of 1024
		 * would refuse the thousandth engine. Take the hard limit. */
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
		    rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			(void)setrlimit(RLIMIT_NOFILE, &rl);
		}
	}

	if (cohort_profile_path(profile, ctl.dir, sizeof(ctl.dir), &err) < 0 ||
	    cohort_profile_ensure(ctl.dir, &err) < 0 ||
	    cohort_profile_check_perms(ctl.dir, &err) < 0)
		fatalx("%s", err.text);
	{
		struct cohort_conninfo old;
		char path[4200];

		/* One controller per profile: a second would overwrite the
		 * connection files of the first. */
		if (cohort_conninfo_path(ctl.dir, COHORT_ROLE_CLIENT, path,
					 sizeof(path), &err) == 0 &&
		    cohort_conninfo_read(path, &old, &err) == 0 &&
		    old.controller_pid > 0 && old.controller_pid != getpid() &&
		    (kill(old.controller_pid, 0) == 0 || errno == EPERM))
			fatalx("a controller (pid %d) is already running for "
			       "profile %s; stop it first, or use another "
			       "--profile", (int)old.controller_pid, ctl.dir);
	}
	if (path_join(ca, sizeof(ca), ctl.dir, "ca.pem") < 0 ||
	    path_join(cert, sizeof(cert), ctl.dir, "controller.pem") < 0 ||
	    path_join(key, sizeof(key), ctl.dir, "controller-key.pem") < 0)
		fatalx("profile path %s is too long", ctl.dir);
	ctl.tls = tls_ctx_new(true, ca, cert, key, &err);
	if (ctl.tls == NULL)
		fatalx("%s", err.text);

	ctl.base = event_base_new();
	if (ctl.base == NULL)
		fatalx("cannot create the event loop");
	TAILQ_INIT(&ctl.peers);
	registry_init();
	jobs_init(ctl.base);
	listen_on(ip, port, &bound);
	listen_local();
	sigint_ev = evsignal_new(ctl.base, SIGINT, signal_cb, NULL);
	sigterm_ev = evsignal_new(ctl.base, SIGTERM, signal_cb, NULL);
	if (sigint_ev == NULL || sigterm_ev == NULL ||
	    evsignal_add(sigint_ev, NULL) < 0 ||
	    evsignal_add(sigterm_ev, NULL) < 0)
		fatalx("cannot install signal handlers");
	{
		struct timeval tv;

		tv.tv_sec = (time_t)ctl.heartbeat;
		tv.tv_usec = (suseconds_t)((ctl.heartbeat -
					    (double)tv.tv_sec) * 1e6);
		ctl.heartbeat_ev = event_new(ctl.base, -1, EV_PERSIST,
					     heartbeat_cb, NULL);
		if (ctl.heartbeat_ev == NULL ||
		    event_add(ctl.heartbeat_ev, &tv) < 0)
			fatalx("cannot start the heartbeat");
		tv.tv_sec = 1;
		tv.tv_usec = 0;
		ctl.hello_ev = event_new(ctl.base, -1, EV_PERSIST,
					 hello_sweep_cb, NULL);
		if (ctl.hello_ev == NULL || event_add(ctl.hello_ev, &tv) < 0)
			fatalx("cannot start the hello timer");
	}
	write_conninfo(ip, bound);
	if (ctl.local != NULL)
		log_info("listening on %s:%d and on the local socket %s "
			 "(profile %s)", ip, bound, ctl.local_path, ctl.dir);
	else
		log_info("listening on %s:%d (profile %s)", ip, bound,
			 ctl.dir);

	event_base_dispatch(ctl.base);

	unlink(ctl.engine_file);
	unlink(ctl.client_file);
	if (ctl.local != NULL) {
		evconnlistener_free(ctl.local);
		unlink(ctl.local_path);
	}
	{
		/* Engines first, in id order: the ranks of one MPI job go
		 * together, so each job can leave MPI_Finalize while the
		 * next is closed (on a crowded host, ranks waiting there for
		 * the rest of their job take the CPU this loop needs). */
		int64_t *ids;
		size_t n = registry_live_ids(&ids);

		for (size_t i = 0; i < n; i++) {
			struct engine *e = registry_get(ids[i]);

			if (e->peer == NULL)
				continue;
			p = e->peer;
			e->peer = NULL;
			conn_close(p->conn);
			peer_free(p);
		}
		free(ids);
	}
	while ((p = TAILQ_FIRST(&ctl.peers)) != NULL) {
		conn_close(p->conn);
		peer_free(p);
	}
	jobs_free();
	registry_free();
	event_free(ctl.heartbeat_ev);
	event_free(ctl.hello_ev);
	evconnlistener_free(ctl.listener);
	event_free(sigint_ev);
	event_free(sigterm_ev);
	event_base_free(ctl.base);
	tls_ctx_free(ctl.tls);
	log_info("stopped");
	return 0;
}
