/* SPDX-License-Identifier: BSD-3-Clause */
/* cmd-cluster.c - cohort cluster start|stop|status: the ipcluster of Cohort.
 *
 * start runs a supervisor: it starts the controller, waits for its
 * connection files, launches mpiexec with N engines and waits for all of
 * them to register. In the foreground the supervisor is the command
 * itself; with --daemon it is a detached child that reports progress to
 * the command through a pipe until the cluster is ready. The supervisor
 * records itself in the profile's cluster.json, and on SIGINT or SIGTERM
 * stops mpiexec (and so the engines) and the controller.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <wordexp.h>

#include <jansson.h>

#include "cli.h"
#include "cohort/profile.h"
#include "targets.h"
#include "util.h"

static int cmd_cluster_exec(struct cli_ctx *ctx, int argc, char **argv);

const struct cmd_entry cmd_cluster_entry = {
	.name = "cluster",
	.alias = NULL,
	.usage = "start|stop|status [OPTIONS]",
	.summary = "start, stop or inspect a controller with N MPI engines",
	.help =
	"cohort cluster start [-n N] [--daemon] [--ip ADDR] [--timeout S]\n"
	"                     [--mpiexec PATH] [--mpiexec-args \"...\"]\n"
	"                     [--hostfile FILE] [--controller-args \"...\"]\n"
	"                     [--engine-args \"...\"] [--profile P]\n"
	"  Start a controller, then 'mpiexec -n N cohort-engine --mpi', and\n"
	"  wait until the N engines have registered (engine id = MPI rank).\n"
	"  -n N               number of engines (default 4)\n"
	"  --daemon           detach once the cluster is ready (default: stay\n"
	"                     in the foreground; Ctrl-C stops the cluster)\n"
	"  --ip ADDR          address the controller listens on (127.0.0.1)\n"
	"  --timeout S        seconds to wait for the engines (default 60)\n"
	"  --mpiexec PATH     the mpiexec to use (default: mpiexec on PATH)\n"
	"  --mpiexec-args A   more arguments for mpiexec, split like a shell\n"
	"  --hostfile FILE    passed to mpiexec as --hostfile FILE\n"
	"  --controller-args A  more cohort-controller options, e.g.\n"
	"                     \"--heartbeat-tolerance 30 --jobs 5000\"\n"
	"  --engine-args A    more cohort-engine options, e.g. \"--kernel native\"\n"
	"  As root, Open MPI is allowed to run as root; with more engines than\n"
	"  cores, --oversubscribe is passed. Each is said in one line.\n"
	"\n"
	"cohort cluster status [--json] [--profile P]\n"
	"  Show the controller's address, engines up/expected and uptime.\n"
	"  Exit status 0 if a cluster runs, 1 if not.\n"
	"\n"
	"cohort cluster stop [--profile P]\n"
	"  Stop the engines, mpiexec and the controller of a cluster.\n"
	"\n"
	"Logs: controller.log, engines.log (mpiexec's output) and, with\n"
	"--daemon, cluster.log in the profile directory.\n",
	.exec = cmd_cluster_exec,
};

struct cluster_opts {
	int n;
	bool daemon;
	const char *ip;
	double timeout;
	const char *mpiexec;
	const char *mpiexec_args;
	const char *hostfile;
	const char *controller_args;
	const char *engine_args;
};



static char profile_dir[4096];
static int report_fd = STDOUT_FILENO;
static volatile sig_atomic_t got_signal;

/* Tell the user (or the waiting parent of a daemon) something. */
static void __attribute__((format(printf, 1, 2)))
say(const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(report_fd, line, (size_t)n) < 0) {
		/* The parent of a daemon may be gone; nothing to do. */
	}
}

/* Append the shell-like words of extra (if any) to argv at *argc, at most
 * room of them. -1 with a message if extra does not split. */
static int
append_words(const char *what, const char *extra, char **argv, int *argc,
	     int room)
{
	wordexp_t we = { 0 };

	if (extra == NULL || extra[0] == '\0')
		return 0;
	if (wordexp(extra, &we, WRDE_NOCMD | WRDE_UNDEF) != 0) {
		say("cohort: cannot split %s '%s'", what, extra);
		return -1;
	}
	if ((int)we.we_wordc > room) {
		say("cohort: too many words in %s", what);
		wordfree(&we);
		return -1;
	}
	for (size_t i = 0; i < we.we_wordc; i++)
		argv[(*argc)++] = xstrdup(we.we_wordv[i]);
	wordfree(&we);
	return 0;
}

static void
state_path(char *buf, size_t size)
{
	if (path_join(buf, size, profile_dir, "cluster.json") < 0)
		buf[0] = '\0';
}

struct cluster_state {
	pid_t supervisor, controller, mpiexec;
	int n;
	double started;
	char ip[96];
};

static int
state_read(struct cluster_state *st)
{
	char path[4200];
	json_error_t jerr;
	json_t *doc;
	json_int_t sup = 0, ctl = 0, mpi = 0, n = 0;
	double started = 0;
	const char *ip = "";

	state_path(path, sizeof(path));
	doc = json_load_file(path, 0, &jerr);
	if (doc == NULL)
		return -1;
	if (json_unpack(doc, "{s:I, s:I, s:I, s:I, s:F, s:s}", "supervisor",
			&sup, "controller", &ctl, "mpiexec", &mpi, "n", &n,
			"started", &started, "ip", &ip) < 0) {
		json_decref(doc);
		return -1;
	}
	st->supervisor = (pid_t)sup;
	st->controller = (pid_t)ctl;
	st->mpiexec = (pid_t)mpi;
	st->n = (int)n;
	st->started = started;
	snprintf(st->ip, sizeof(st->ip), "%s", ip);
	json_decref(doc);
	return 0;
}

static void
state_write(const struct cluster_state *st)
{
	char path[4200], tmp[4300];
	json_t *doc = json_pack("{s:I, s:I, s:I, s:I, s:f, s:s}",
				"supervisor", (json_int_t)st->supervisor,
				"controller", (json_int_t)st->controller,
				"mpiexec", (json_int_t)st->mpiexec,
				"n", (json_int_t)st->n, "started", st->started,
				"ip", st->ip);

	state_path(path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (doc == NULL || json_dump_file(doc, tmp, JSON_INDENT(2)) < 0 ||
	    chmod(tmp, 0600) < 0 || rename(tmp, path) < 0)
		say("cohort: warning: cannot write %s: %s", path,
		    strerror(errno));
	json_decref(doc);
}

static bool
alive(pid_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* The path of a sibling program (next to this executable), else its name
 * for a PATH search. */
static void
sibling(const char *name, char *buf, size_t size)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		self[n] = '\0';
		if (path_join(buf, size, dirname(self), name) == 0 &&
		    access(buf, X_OK) == 0)
			return;
	}
	snprintf(buf, size, "%s", name);
}

static int
open_log(const char *name)
{
	char path[4200];
	int fd;

	if (path_join(path, sizeof(path), profile_dir, name) < 0)
		return -1;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	return fd;
}

static pid_t
spawn(char *const argv[], int log_fd)
{
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		if (null >= 0)
			dup2(null, STDIN_FILENO);
		dup2(log_fd, STDOUT_FILENO);
		dup2(log_fd, STDERR_FILENO);
		/* Own process group: Ctrl-C reaches the supervisor, which
		 * stops the children in order. */
		setpgid(0, 0);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		execvp(argv[0], argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Send sig to a process group (or the process), wait up to secs. */
static void
stop_child(pid_t pid, int secs)
{
	int status;

	if (pid <= 0)
		return;
	kill(-pid, SIGTERM);
	kill(pid, SIGTERM);
	for (int i = 0; i < secs * 20; i++) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			goto reap_group;
		if (w < 0 && errno == ECHILD)
			return; /* already reaped: the pid is not ours now */
		usleep(50000);
	}
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
reap_group:
	/* Whatever is left of the group (ranks that ignored SIGTERM). */
	kill(-pid, SIGKILL);
}

static void
tail_file(const char *name, int lines)
{
	char path[4200], buf[65536];
	ssize_t n;
	int fd, count = 0;
	char *p;

	if (path_join(path, sizeof(path), profile_dir, name) < 0 ||
	    (fd = open(path, O_RDONLY)) < 0)
		return;
	n = pread(fd, buf, sizeof(buf) - 1,
		  lseek(fd, 0, SEEK_END) > (off_t)sizeof(buf) - 1
			  ? lseek(fd, 0, SEEK_END) - (off_t)sizeof(buf) + 1
			  : 0);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (p = buf + n - 1; p > buf; p--)
		if (*p == '\n' && ++count > lines) {
			p++;
			break;
		}
	say("---- %s (last lines) ----\n%s----", path, p);
}

static void
on_signal(int sig)
{
	got_signal = sig;
}

/* Count registered live engines and note which ranks 0..n-1 are up. */
static int
count_engines(struct cli_ctx *ctx, int n, bool *up)
{
	struct cohort_engine *list = NULL;
	struct cohort_client *c;
	struct cohort_error err;
	size_t len = 0;
	int live = 0;

	memset(up, 0, (size_t)n * sizeof(bool));
	c = cohort_connect(profile_dir, &err);
	if (c == NULL)
		return -1;
	if (cohort_engines(c, &list, &len, &err) == 0) {
		for (size_t i = 0; i < len; i++) {
			if (strcmp(list[i].state, "dead") == 0)
				continue;
			live++;
			if (list[i].id >= 0 && list[i].id < n)
				up[list[i].id] = true;
		}
	}
	free(list);
	cohort_disconnect(c);
	(void)ctx;
	return live;
}

static int
wait_controller(pid_t pid, double timeout, struct cohort_conninfo *ci)
{
	struct cohort_error err;
	char path[4200];
	double end = now_monotonic() + timeout;
	int status;

	if (cohort_conninfo_path(profile_dir, COHORT_ROLE_CLIENT, path,
				 sizeof(path), &err) < 0)
		return -1;
	while (now_monotonic() < end && !got_signal) {
		if (cohort_conninfo_read(path, ci, &err) == 0 &&
		    ci->controller_pid == pid)
			return 0;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			say("cohort: the controller exited before it was "
			    "ready (status %d)", WIFEXITED(status) ?
			    WEXITSTATUS(status) : 128 + WTERMSIG(status));
			tail_file("controller.log", 10);
			return -1;
		}
		usleep(20000);
	}
	if (!got_signal) {
		say("cohort: the controller did not write %s within %.0f s",
		    path, timeout);
		tail_file("controller.log", 10);
	}
	return -1;
}

static int
build_mpiexec_argv(const struct cluster_opts *o, char ***argvp)
{
	static char engine[4200], nbuf[16];
	char **argv = xcalloc(64, sizeof(char *));
	int argc = 0;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	sibling("cohort-engine", engine, sizeof(engine));
	argv[argc++] = (char *)o->mpiexec;
	if (cores > 0 && o->n > cores && o->hostfile == NULL) {
		say("cohort: %d engines on %ld cores: passing --oversubscribe "
		    "to mpiexec", o->n, cores);
		argv[argc++] = "--oversubscribe";
	}
	if (o->hostfile != NULL) {
		argv[argc++] = "--hostfile";
		argv[argc++] = (char *)o->hostfile;
	}
	if (append_words("--mpiexec-args", o->mpiexec_args, argv, &argc,
			 24) < 0) {
		free(argv);
		return -1;
	}
	snprintf(nbuf, sizeof(nbuf), "%d", o->n);
	argv[argc++] = "-n";
	argv[argc++] = nbuf;
	argv[argc++] = engine;
	argv[argc++] = "--mpi";
	argv[argc++] = "--profile";
	argv[argc++] = profile_dir;
	if (append_words("--engine-args", o->engine_args, argv, &argc,
			 20) < 0) {
		free(argv);
		return -1;
	}
	argv[argc] = NULL;
	*argvp = argv;
	return 0;
}

static void
remove_state(void)
{
	char path[4200];
	struct cohort_error err;

	state_path(path, sizeof(path));
	unlink(path);
	/* The controller removes these itself; a killed one cannot. */
	if (cohort_conninfo_path(profile_dir, COHORT_ROLE_CLIENT, path,
				 sizeof(path), &err) == 0)
		unlink(path);
	if (cohort_conninfo_path(profile_dir, COHORT_ROLE_ENGINE, path,
				 sizeof(path), &err) == 0)
		unlink(path);
}

/* Run the cluster until a signal; report progress on report_fd. The
 * return value is the exit status of 'cluster start'. */
static int
supervise(struct cli_ctx *ctx, const struct cluster_opts *o, int ready_fd)
{
	char controller[4200], **margv = NULL;
	struct cluster_state st = { 0 };
	struct cohort_conninfo ci;
	pid_t cpid, mpid = 0;
	int clog, elog, slog = -1, status, rc = 1, live = 0;
	bool *up = xcalloc((size_t)o->n, sizeof(bool));
	double end;
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	if (geteuid() == 0 && getenv("OMPI_ALLOW_RUN_AS_ROOT") == NULL) {
		say("cohort: running as root: allowing Open MPI to run as root "
		    "(OMPI_ALLOW_RUN_AS_ROOT=1)");
		setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
		setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
	}
	clog = open_log("controller.log");
	elog = open_log("engines.log");
	if (clog < 0 || elog < 0) {
		say("cohort: cannot write logs in %s: %s", profile_dir,
		    strerror(errno));
		goto out;
	}
	sibling("cohort-controller", controller, sizeof(controller));
	{
		char *cargv[40] = { controller, "--profile", profile_dir,
				    "--ip", (char *)o->ip };
		int cargc = 5;

		if (append_words("--controller-args", o->controller_args,
				 cargv, &cargc, 30) < 0)
			goto out;
		cargv[cargc] = NULL;
		cpid = spawn(cargv, clog);
	}
	if (cpid < 0) {
		say("cohort: cannot fork: %s", strerror(errno));
		goto out;
	}
	if (wait_controller(cpid, o->timeout, &ci) < 0) {
		/* wait_controller may have reaped it already. */
		if (waitpid(cpid, &status, WNOHANG) != 0)
			cpid = 0;
		goto stop;
	}
	say("cohort: controller listening on %s:%d (pid %d)", ci.ip, ci.port,
	    (int)cpid);
	if (build_mpiexec_argv(o, &margv) < 0)
		goto stop;
	mpid = spawn(margv, elog);
	st.supervisor = getpid();
	st.controller = cpid;
	st.mpiexec = mpid;
	st.n = o->n;
	st.started = (double)time(NULL);
	snprintf(st.ip, sizeof(st.ip), "%s:%d", ci.ip, ci.port);
	state_write(&st);

	end = now_monotonic() + o->timeout;
	while (!got_signal) {
		live = count_engines(ctx, o->n, up);
		if (live >= o->n)
			break;
		if (waitpid(mpid, &status, WNOHANG) == mpid) {
			say("cohort: mpiexec exited (status %d) before the "
			    "engines registered", WIFEXITED(status) ?
			    WEXITSTATUS(status) : 128 + WTERMSIG(status));
			mpid = 0;
			tail_file("engines.log", 15);
			goto stop;
		}
		if (now_monotonic() > end) {
			char missing[256];
			int64_t *ids = xcalloc((size_t)o->n, sizeof(int64_t));
			size_t k = 0;

			for (int i = 0; i < o->n; i++)
				if (!up[i])
					ids[k++] = i;
			say("cohort: only %d of %d engines registered within "
			    "%.0f s; missing ranks %s", live < 0 ? 0 : live,
			    o->n, o->timeout,
			    targets_format(ids, k, missing, sizeof(missing)));
			free(ids);
			tail_file("engines.log", 15);
			goto stop;
		}
		usleep(50000);
	}
	if (got_signal)
		goto stop;
	say("Cluster ready: %d engines (ranks 0-%d) on %s:%d, profile %s",
	    o->n, o->n - 1, ci.ip, ci.port, profile_dir);
	say("  run code:  cohort px 'from mpi4py import MPI; "
	    "MPI.COMM_WORLD.rank'");
	say("  list:      cohort engines");
	say("  stop:      %s", o->daemon ? "cohort cluster stop"
					 : "Ctrl-C, or cohort cluster stop");
	if (ready_fd >= 0) {
		/* The waiting parent exits 0; we are on our own now. */
		if (write(ready_fd, "R", 1) < 0) {
			/* Parent gone; keep running. */
		}
		close(ready_fd);
		/* A detached supervisor reports to cluster.log from now on. */
		slog = open_log("cluster.log");
		report_fd = slog >= 0 ? slog : clog;
	}
	rc = 0;
	while (!got_signal) {
		pid_t w = waitpid(-1, &status, 0);

		if (w == cpid) {
			say("cohort: the controller exited; stopping the "
			    "cluster");
			cpid = 0;
			rc = 1;
			break;
		}
		if (w == mpid) {
			say("cohort: mpiexec exited (status %d); the engines "
			    "are gone, the controller stays up",
			    WIFEXITED(status) ? WEXITSTATUS(status) : 128 +
			    WTERMSIG(status));
			mpid = 0;
		}
		if (w < 0 && errno == ECHILD)
			break;
	}
stop:
	if (got_signal)
		say("cohort: %s: stopping the cluster", strsignal(got_signal));
	stop_child(mpid, 5);
	stop_child(cpid, 5);
	remove_state();
	if (got_signal)
		say("cohort: cluster stopped");
out:
	if (margv != NULL)
		free(margv);
	free(up);
	if (clog >= 0)
		close(clog);
	if (elog >= 0)
		close(elog);
	if (slog >= 0)
		close(slog);
	return rc;
}

static int
running_cluster(struct cluster_state *st)
{
	return state_read(st) == 0 && alive(st->supervisor) ? 0 : -1;
}

static int
cluster_start(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "n", required_argument, NULL, 'n' },
		{ "daemon", no_argument, NULL, 'd' },
		{ "ip", required_argument, NULL, 'i' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "mpiexec", required_argument, NULL, 'm' },
		{ "mpiexec-args", required_argument, NULL, 'a' },
		{ "hostfile", required_argument, NULL, 'f' },
		{ "controller-args", required_argument, NULL, 'c' },
		{ "engine-args", required_argument, NULL, 'e' },
		{ "profile", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cluster_opts o = { .n = 4, .ip = "127.0.0.1", .timeout = 60,
				  .mpiexec = "mpiexec" };
	struct cluster_state st;
	struct cohort_conninfo ci;
	struct cohort_error err;
	char path[4200], *end;
	int ch, fds[2];
	pid_t pid;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "n:dh", opts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			o.n = (int)strtol(optarg, &end, 10);
			if (*end != '\0' || o.n < 1 || o.n > 100000)
				return cli_usage_error(&cmd_cluster_entry,
						       "bad -n '%s'", optarg);
			break;
		case 'd':
			o.daemon = true;
			break;
		case 'i':
			o.ip = optarg;
			break;
		case 'T':
			o.timeout = strtod(optarg, &end);
			if (*end != '\0' || !(o.timeout > 0))
				return cli_usage_error(&cmd_cluster_entry,
						       "bad --timeout '%s'",
						       optarg);
			break;
		case 'm':
			o.mpiexec = optarg;
			break;
		case 'a':
			o.mpiexec_args = optarg;
			break;
		case 'f':
			o.hostfile = optarg;
			break;
		case 'c':
			o.controller_args = optarg;
			break;
		case 'e':
			o.engine_args = optarg;
			break;
		case 'p':
			ctx->profile = optarg;
			break;
		case 'h':
			cmd_help(&cmd_cluster_entry, stdout);
			return 0;
		default:
			return cli_usage_error(&cmd_cluster_entry,
					       "bad option");
		}
	}
	if (optind != argc)
		return cli_usage_error(&cmd_cluster_entry,
				       "unexpected argument '%s'", argv[optind]);
	if (cohort_profile_path(ctx->profile, profile_dir, sizeof(profile_dir),
				&err) < 0 ||
	    cohort_profile_ensure(profile_dir, &err) < 0)
		return cli_error("%s", err.text);
	if (running_cluster(&st) == 0)
		return cli_error("a cluster is already running for profile %s "
				 "(supervisor pid %d, controller %s); stop it "
				 "with 'cohort cluster stop'", profile_dir,
				 (int)st.supervisor, st.ip);
	if (cohort_conninfo_path(profile_dir, COHORT_ROLE_CLIENT, path,
				 sizeof(path), &err) == 0 &&
	    cohort_conninfo_read(path, &ci, &err) == 0 &&
	    alive(ci.controller_pid))
		return cli_error("a controller (pid %d) is already running for "
				 "profile %s; stop it first",
				 (int)ci.controller_pid, profile_dir);
	if (!o.daemon)
		return supervise(ctx, &o, -1);

	/* Close-on-exec: only the supervisor may hold the write end, so the
	 * waiting command sees EOF if the supervisor dies. */
	if (pipe2(fds, O_CLOEXEC) < 0)
		return cli_error("pipe: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return cli_error("fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		close(fds[0]);
		setsid();
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDERR_FILENO);
		}
		/* Progress goes to the parent until the cluster is ready. */
		report_fd = fds[1];
		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		_exit(supervise(ctx, &o, fds[1]));
	}
	close(fds[1]);
	{
		char buf[4096];
		ssize_t n;
		bool ready = false;

		/* Relay progress lines; a lone 'R' byte means ready. */
		while ((n = read(fds[0], buf, sizeof(buf))) > 0) {
			if (buf[n - 1] == 'R' && (n == 1 || buf[n - 2] == '\n')) {
				ready = true;
				n--;
			}
			fwrite(buf, 1, (size_t)n, stdout);
			fflush(stdout);
			if (ready)
				break;
		}
		close(fds[0]);
		if (!ready) {
			int status;

			waitpid(pid, &status, 0);
			return 1;
		}
	}
	return 0;
}

static int
cluster_status(struct cli_ctx *ctx, bool json)
{
	struct cluster_state st;
	bool *up;
	int live;
	long secs;

	if (running_cluster(&st) < 0) {
		if (json)
			printf("{\"running\": false, \"profile\": \"%s\"}\n",
			       profile_dir);
		else
			printf("no cluster running for profile %s\n",
			       profile_dir);
		return 1;
	}
	up = xcalloc((size_t)st.n, sizeof(bool));
	live = count_engines(ctx, st.n, up);
	free(up);
	secs = (long)((double)time(NULL) - st.started);
	if (json) {
		json_t *doc = json_pack(
			"{s:b, s:s, s:s, s:i, s:i, s:i, s:i, s:I}", "running",
			1, "profile", profile_dir, "controller", st.ip,
			"controller_pid", (int)st.controller, "engines_up",
			live < 0 ? 0 : live, "engines_expected", st.n,
			"supervisor_pid", (int)st.supervisor, "uptime",
			(json_int_t)secs);

		json_dumpf(doc, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(doc);
	} else {
		printf("cluster running for profile %s\n", profile_dir);
		printf("  controller  %s (pid %d)%s\n", st.ip,
		       (int)st.controller, live < 0 ? " - unreachable" : "");
		printf("  engines     %d/%d up\n", live < 0 ? 0 : live, st.n);
		printf("  uptime      %ldh%02ldm%02lds\n", secs / 3600,
		       secs / 60 % 60, secs % 60);
	}
	return live < 0 ? 1 : 0;
}

static int
cluster_stop(void)
{
	struct cluster_state st;

	if (state_read(&st) < 0) {
		printf("no cluster running for profile %s\n", profile_dir);
		return 1;
	}
	if (alive(st.supervisor)) {
		kill(st.supervisor, SIGTERM);
		for (int i = 0; i < 300 && alive(st.supervisor); i++)
			usleep(50000);
	}
	/* A supervisor killed hard leaves its children: stop them here. */
	if (alive(st.mpiexec)) {
		kill(-st.mpiexec, SIGTERM);
		kill(st.mpiexec, SIGTERM);
	}
	if (alive(st.controller))
		kill(st.controller, SIGTERM);
	for (int i = 0; i < 100 && (alive(st.mpiexec) || alive(st.controller));
	     i++)
		usleep(50000);
	if (alive(st.mpiexec))
		kill(-st.mpiexec, SIGKILL);
	if (alive(st.controller))
		kill(st.controller, SIGKILL);
	remove_state();
	printf("cluster stopped (profile %s)\n", profile_dir);
	return 0;
}

static int
cmd_cluster_exec(struct cli_ctx *ctx, int argc, char **argv)
{
	struct cohort_error err;
	const char *sub;
	bool json = false;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		cmd_help(&cmd_cluster_entry, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	sub = argv[1];
	if (strcmp(sub, "start") == 0)
		return cluster_start(ctx, argc - 1, argv + 1);
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--profile") == 0 && i + 1 < argc)
			ctx->profile = argv[++i];
		else if (strcmp(argv[i], "--help") == 0) {
			cmd_help(&cmd_cluster_entry, stdout);
			return 0;
		} else
			return cli_usage_error(&cmd_cluster_entry,
					       "unexpected argument '%s'",
					       argv[i]);
	}
	if (cohort_profile_path(ctx->profile, profile_dir, sizeof(profile_dir),
				&err) < 0)
		return cli_error("%s", err.text);
	if (strcmp(sub, "status") == 0)
		return cluster_status(ctx, json);
	if (strcmp(sub, "stop") == 0)
		return cluster_stop();
	return cli_usage_error(&cmd_cluster_entry,
			       "unknown cluster command '%s'", sub);
}
