/* SPDX-License-Identifier: BSD-3-Clause */
/* cmd-shell.c - cohort shell: an interactive px prompt with line editing. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <histedit.h>
#include <langinfo.h>
#include <limits.h>
#include <locale.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wchar.h>

#include "cli.h"
#include "cohort/profile.h"
#include "targets.h"
#include "util.h"

#define SHELL_HISTORY_SIZE 1000
/* Completion asks the engines for their names; it must not stall TAB. */
#define SHELL_COMPLETE_TIMEOUT 1.0
#define SHELL_COMPLETE_CACHE 2.0

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

/* %px runs the px command itself: one code path with 'cohort px'. */
extern const struct cmd_entry cmd_px_entry;

static int cmd_shell_exec(struct cli_ctx *ctx, int argc, char **argv);

const struct cmd_entry cmd_shell_entry = {
	.name = "shell",
	.alias = NULL,
	.usage = "[--targets T]",
	.summary = "interactive prompt: %px, %autopx and every command",
	.help =
	"  -t, --targets T   the target engines to start with (default all)\n"
	"  --profile P       profile name or directory\n"
	"\n"
	"Lines starting with % are shell commands: %px CODE, %%px (a cell of\n"
	"several lines, ended by a blank line), %autopx (every line is code),\n"
	"%targets T, %help, %quit, and %NAME ARGS for any cohort command\n"
	"(%push a=1, %pull a, %engines). Other lines run as cohort commands\n"
	"(engines, pull a), or as code while %autopx is on. The prompt shows\n"
	"the target set: [all] cohort>. TAB completes commands and the names\n"
	"defined on the engines. Ctrl-C interrupts the engines' code as in\n"
	"'cohort px'; at the prompt it clears the line. History is kept in\n"
	"the profile directory (file 'history', 1000 lines). Without a\n"
	"terminal the lines are read from standard input, without prompts:\n"
	"  printf '%%px 1+1\\n' | cohort shell\n"
	"The exit status is that of the last command. See docs/shell.md.\n",
	.exec = cmd_shell_exec,
};

/* The shell's own commands; every other %NAME is a cohort command. */
static const struct {
	const char *name, *args, *help;
} shell_builtins[] = {
	{ "%px", "CODE", "run one line of code on the target engines" },
	{ "%%px", "[OPTIONS]", "run a cell: the lines that follow, up to a "
			       "blank line or %%" },
	{ "%autopx", "", "toggle: send every line to the engines as code" },
	{ "%targets", "[T]", "show or set the target engines: all, 2, 0,2, "
			     "1-3" },
	{ "%help", "[COMMAND]", "this list, or the help of one command" },
	{ "%quit", "", "leave the shell (also %exit and Ctrl-D)" },
};

/* Options of px that a %px or %%px line may start with, before the code;
 * no Python statement starts with one of them. */
static const struct {
	const char *name;
	bool arg;
} px_opts[] = {
	{ "--targets", true },
	{ "-t", true },
	{ "--timeout", true },
	{ "--json", false },
	{ "--no-stream", false },
	{ "--no-collapse", false },
	{ "--nonblock", false },
	{ "--interrupt-on-timeout", false },
};

static const char complete_code[] =
	"sorted(k for k in globals() if not k.startswith('_'))";

struct name_list {
	char **v;
	size_t n, cap;
};

struct shell {
	struct cli_ctx *ctx;
	char *targets; /* normalised spec, NULL for all */
	bool autopx;
	bool quit;
	int status; /* exit status of the last command */

	bool tty; /* line editing on a terminal */
	EditLine *el;
	History *hist;
	Tokenizer *tok;
	char *histfile; /* NULL: history is not kept */
	bool hist_warned;
	char prompt[512];

	/* A cell being read: %%px, or an autopx block opened by ':'. */
	bool in_cell;
	char *cell_opts;
	char *cell;
	size_t cell_len;

	/* cohort commands, from cmd_list(): names and summaries */
	struct name_list subs, sub_help;

	/* names defined on the engines, for completion */
	struct name_list names;
	char *names_targets;
	double names_at;
	bool names_fetched;
};

/* An argv under construction; every string is owned. */
struct argv_buf {
	char **v;
	size_t n, cap;
};

static volatile sig_atomic_t shell_sigint;

static void
shell_on_sigint(int sig)
{
	(void)sig;
	shell_sigint = 1;
}

static void
names_add(struct name_list *l, const char *s, size_t len)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 32;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = xstrndup(s, len);
}

static void
names_clear(struct name_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int
names_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort and drop duplicates. */
static void
names_sort(struct name_list *l)
{
	size_t k = 0;

	if (l->n == 0)
		return;
	qsort(l->v, l->n, sizeof(*l->v), names_cmp);
	for (size_t i = 1; i < l->n; i++) {
		if (strcmp(l->v[i], l->v[k]) == 0)
			free(l->v[i]);
		else
			l->v[++k] = l->v[i];
	}
	l->n = k + 1;
}

static void
argv_add_n(struct argv_buf *a, const char *s, size_t len)
{
	if (a->n + 2 > a->cap) {
		a->cap = a->cap ? 2 * a->cap : 8;
		a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
	}
	a->v[a->n++] = xstrndup(s, len);
	a->v[a->n] = NULL;
}

static void
argv_add(struct argv_buf *a, const char *s)
{
	argv_add_n(a, s, strlen(s));
}

static void
argv_free(struct argv_buf *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

static bool
blank(const char *s)
{
	return s[strspn(s, " \t\r\n")] == '\0';
}

/* GNU getopt keeps state between scans (a half-read option cluster, the
 * bounds of its permutation) that only optind = 0 resets, while the
 * commands set optind = 1. One empty scan makes each command start
 * clean, whatever the previous one left. */
static void
getopt_reset(void)
{
	char *argv[] = { (char *)"cohort", NULL };

	optind = 0;
	opterr = 0;
	(void)getopt(1, argv, "");
	opterr = 1;
	optind = 1;
}

/* The names and summaries of the cohort commands, read from the one
 * table through cmd_list(), so that help and completion follow it. */
static void
shell_load_commands(struct shell *sh)
{
	char *buf = NULL, *line, *save = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return;
	cmd_list(f);
	if (fclose(f) != 0) {
		free(buf);
		return;
	}
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char *name = line + strspn(line, " ");
		size_t n = strcspn(name, " ");
		const char *summary = name + n + strspn(name + n, " ");

		if (n == 0 || (n == 5 && strncmp(name, "shell", 5) == 0))
			continue;
		names_add(&sh->subs, name, n);
		names_add(&sh->sub_help, summary, strlen(summary));
	}
	free(buf);
}

/* Run a command's exec with a copy of the context: options such as
 * --profile point into argv, which is freed after the call. */
static void
shell_exec(struct shell *sh, const struct cmd_entry *e, struct argv_buf *a)
{
	struct cli_ctx ctx = *sh->ctx;

	fflush(stdout);
	getopt_reset();
	sh->status = e->exec(&ctx, (int)a->n, a->v);
	fflush(stdout);
	fflush(stderr);
}

/* Move the px options at the start of s into a. Returns where the code
 * starts, or NULL if an option lacks its value. */
static const char *
px_take_opts(const char *s, struct argv_buf *a, bool *has_targets)
{
	for (;;) {
		const char *w = s + strspn(s, " \t");
		size_t wl = strcspn(w, " \t"), i;
		bool eq = false;

		for (i = 0; wl > 0 && i < NITEMS(px_opts); i++) {
			const char *name = px_opts[i].name;
			size_t nl = strlen(name);

			if (wl < nl || strncmp(w, name, nl) != 0)
				continue;
			if (wl == nl)
				break;
			if (px_opts[i].arg && name[1] == '-' && w[nl] == '=') {
				eq = true;
				break;
			}
		}
		if (wl == 0 || i == NITEMS(px_opts))
			return w;
		argv_add_n(a, w, wl);
		if (strcmp(px_opts[i].name, "--targets") == 0 ||
		    strcmp(px_opts[i].name, "-t") == 0)
			*has_targets = true;
		s = w + wl;
		if (px_opts[i].arg && !eq) {
			const char *v = s + strspn(s, " \t");
			size_t vl = strcspn(v, " \t");

			if (vl == 0)
				return NULL;
			argv_add_n(a, v, vl);
			s = v + vl;
		}
	}
}

/* Run code through the px command, exactly as 'cohort px' does: the
 * same streaming, collapse and Ctrl-C handling. opts are px options
 * (for %px, followed by the code when code is NULL). */
static void
shell_px(struct shell *sh, const char *opts, const char *code)
{
	struct argv_buf a = { 0 };
	bool has_targets = false;
	const char *rest = "";

	argv_add(&a, "px");
	if (opts != NULL) {
		rest = px_take_opts(opts, &a, &has_targets);
		if (rest == NULL) {
			fprintf(stderr, "cohort: px option without its "
				"value\n");
			sh->status = 2;
			goto out;
		}
	}
	if (code == NULL) {
		code = rest;
	} else if (!blank(rest)) {
		fprintf(stderr, "cohort: %%%%px takes options only; the code "
			"follows on the next lines\n");
		sh->status = 2;
		goto out;
	}
	if (blank(code)) {
		fprintf(stderr, "usage: %%px [OPTIONS] CODE\n");
		sh->status = 2;
		goto out;
	}
	if (!has_targets && sh->targets != NULL) {
		argv_add(&a, "--targets");
		argv_add(&a, sh->targets);
	}
	argv_add(&a, "--");
	/* px reads "-" as "code from stdin"; as code it is a SyntaxError,
	 * which it stays with a newline. */
	argv_add(&a, strcmp(code, "-") == 0 ? "-\n" : code);
	shell_exec(sh, &cmd_px_entry, &a);
out:
	argv_free(&a);
}

/* Does argv give --targets (or -t, or an abbreviation) itself? */
static bool
argv_has_targets(int argc, const char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		size_t n = strcspn(s, "=");

		if (strcmp(s, "--") == 0)
			break;
		if (strncmp(s, "-t", 2) == 0)
			return true;
		if (n >= 3 && n <= 9 && strncmp(s, "--targets", n) == 0)
			return true;
	}
	return false;
}

/* Run a cohort command with argv split from a line; commands that take
 * --targets get the shell's target set unless the line gives one. */
static void
shell_run(struct shell *sh, const struct cmd_entry *e, int argc,
	  const char **argv)
{
	struct argv_buf a = { 0 };

	argv_add(&a, e->name);
	if (sh->targets != NULL && strstr(e->usage, "--targets") != NULL &&
	    !argv_has_targets(argc, argv)) {
		argv_add(&a, "--targets");
		argv_add(&a, sh->targets);
	}
	for (int i = 1; i < argc; i++)
		argv_add(&a, argv[i]);
	shell_exec(sh, e, &a);
	argv_free(&a);
}

static void
shell_help(struct shell *sh, const char *topic)
{
	const struct cmd_entry *e;

	sh->status = 0;
	if (!blank(topic)) {
		char *t = xstrndup(topic, strcspn(topic, " \t\r\n"));
		const char *name = t + strspn(t, "%");

		for (size_t i = 0; i < NITEMS(shell_builtins); i++) {
			const char *b = shell_builtins[i].name;

			if (strcmp(b + strspn(b, "%"), name) != 0)
				continue;
			printf("%s %s\n    %s\n", shell_builtins[i].name,
			       shell_builtins[i].args, shell_builtins[i].help);
			if (strcmp(name, "px") == 0) {
				printf("\n%%px and %%%%px take the options of "
				       "px:\n\n");
				cmd_help(&cmd_px_entry, stdout);
			}
			free(t);
			return;
		}
		e = cmd_find(name);
		if (e != NULL)
			cmd_help(e, stdout);
		else
			sh->status = 2;
		free(t);
		return;
	}
	printf("Shell commands:\n");
	for (size_t i = 0; i < NITEMS(shell_builtins); i++) {
		char head[64];

		snprintf(head, sizeof(head), "%s %s", shell_builtins[i].name,
			 shell_builtins[i].args);
		printf("  %-18s %s\n", head, shell_builtins[i].help);
	}
	printf("Cohort commands, as %%NAME [ARGS] (%%help NAME for their "
	       "options):\n");
	for (size_t i = 0; i < sh->subs.n; i++) {
		char head[64];

		if (strcmp(sh->subs.v[i], "px") == 0)
			continue; /* a shell command above */
		snprintf(head, sizeof(head), "%%%s", sh->subs.v[i]);
		printf("  %-18s %s\n", head, sh->sub_help.v[i]);
	}
	printf(
	"Lines without a %% run as cohort commands (engines, pull a), their\n"
	"arguments split and quoted as in a shell; while %%autopx is on they\n"
	"run as code instead. Commands that take --targets get the shell's\n"
	"target set unless the line gives one. TAB completes commands and\n"
	"the names defined on the engines. Ctrl-C interrupts running code.\n");
}

static void
shell_targets(struct shell *sh, const char *spec)
{
	struct cohort_error err;
	struct targets t;
	char buf[4096], *s;

	sh->status = 0;
	if (blank(spec)) {
		printf("%s\n", sh->targets ? sh->targets : "all");
		return;
	}
	s = xstrdup(spec + strspn(spec, " \t"));
	s[strcspn(s, " \t\r\n")] = '\0';
	if (targets_parse(s, &t, &err) < 0) {
		cli_error("%s", err.text);
		sh->status = 2;
		free(s);
		return;
	}
	free(sh->targets);
	sh->targets = NULL;
	if (!t.all) {
		targets_format(t.ids, t.n, buf, sizeof(buf));
		/* A set too long to format is kept as it was given. */
		sh->targets = xstrdup(strstr(buf, "...") ? s : buf);
	}
	targets_clear(&t);
	free(s);
}

static void
cell_start(struct shell *sh, const char *opts, const char *first)
{
	sh->in_cell = true;
	free(sh->cell_opts);
	sh->cell_opts = opts ? xstrdup(opts) : NULL;
	free(sh->cell);
	sh->cell = NULL;
	sh->cell_len = 0;
	if (first != NULL) {
		sh->cell = xstrdup(first);
		sh->cell_len = strlen(first);
	}
}

static void
cell_drop(struct shell *sh)
{
	sh->in_cell = false;
	free(sh->cell_opts);
	free(sh->cell);
	sh->cell_opts = sh->cell = NULL;
	sh->cell_len = 0;
}

/* Run the cell read so far (nothing if it is empty). */
static void
cell_run(struct shell *sh)
{
	char *opts = sh->cell_opts, *code = sh->cell;

	sh->cell_opts = sh->cell = NULL;
	cell_drop(sh);
	if (code != NULL && !blank(code))
		shell_px(sh, opts, code);
	free(opts);
	free(code);
}

static void
cell_line(struct shell *sh, const char *line)
{
	size_t len = strlen(line);

	if (blank(line) || strcmp(line, "%%") == 0) {
		cell_run(sh);
		return;
	}
	sh->cell = xrealloc(sh->cell, sh->cell_len + len + 2);
	if (sh->cell_len > 0)
		sh->cell[sh->cell_len++] = '\n';
	memcpy(sh->cell + sh->cell_len, line, len + 1);
	sh->cell_len += len;
}

/* A %NAME line (s is after the %). */
static void
shell_magic(struct shell *sh, const char *s)
{
	size_t wl = strcspn(s, " \t");
	char *name = xstrndup(s, wl);
	const char *rest = s + wl + strspn(s + wl, " \t");
	const struct cmd_entry *e = NULL;
	const char **argv;
	int argc, r;

	if (strcmp(name, "px") == 0) {
		shell_px(sh, rest, NULL);
	} else if (strcmp(name, "autopx") == 0) {
		sh->autopx = !sh->autopx;
		printf("%%autopx %s\n", sh->autopx ? "enabled" : "disabled");
		sh->status = 0;
	} else if (strcmp(name, "targets") == 0) {
		shell_targets(sh, rest);
	} else if (strcmp(name, "help") == 0) {
		shell_help(sh, rest);
	} else if (strcmp(name, "quit") == 0 || strcmp(name, "exit") == 0) {
		sh->quit = true;
	} else if (wl == 0) {
		fprintf(stderr, "cohort: a command name must follow %% (see "
			"%%help)\n");
		sh->status = 2;
	} else if ((e = cmd_find(name)) == NULL) {
		sh->status = 2;
	} else if (e == &cmd_shell_entry) {
		fprintf(stderr, "cohort: already in the shell\n");
		sh->status = 2;
	} else if (e == &cmd_px_entry) {
		shell_px(sh, rest, NULL);
	} else if ((r = tok_str(sh->tok, s, &argc, &argv)) != 0) {
		fprintf(stderr, "cohort: %s\n", r > 0 ? "unmatched quote" :
			"cannot split the line");
		sh->status = 2;
	} else {
		shell_run(sh, e, argc, argv);
	}
	tok_reset(sh->tok);
	free(name);
}

/* A line without %: a cohort command, its arguments split as in sh. */
static void
shell_plain(struct shell *sh, const char *s)
{
	const struct cmd_entry *e;
	const char **argv;
	int argc, r;

	r = tok_str(sh->tok, s, &argc, &argv);
	if (r != 0) {
		fprintf(stderr, "cohort: %s\n", r > 0 ? "unmatched quote" :
			"cannot split the line");
		sh->status = 2;
	} else if (argc == 0) {
		/* nothing */
	} else if (strcmp(argv[0], "help") == 0) {
		shell_help(sh, argc > 1 ? argv[1] : "");
	} else if (strcmp(argv[0], "quit") == 0 ||
		   strcmp(argv[0], "exit") == 0) {
		sh->quit = true;
	} else if ((e = cmd_find(argv[0])) == NULL) {
		sh->status = 2;
	} else if (e == &cmd_shell_entry) {
		fprintf(stderr, "cohort: already in the shell\n");
		sh->status = 2;
	} else {
		shell_run(sh, e, argc, argv);
	}
	tok_reset(sh->tok);
}

/* Does an autopx line open a block (a compound statement's header or an
 * explicit line continuation)? */
static bool
opens_block(const char *line)
{
	size_t n = strlen(line);

	while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
		n--;
	return n > 0 && (line[n - 1] == ':' || line[n - 1] == '\\');
}

/* Act on one line of input (without its newline). */
static void
shell_line(struct shell *sh, const char *line)
{
	const char *p = line + strspn(line, " \t");

	if (sh->in_cell) {
		cell_line(sh, line);
		return;
	}
	if (*p == '\0')
		return;
	if (sh->autopx && *p != '%') {
		if (opens_block(line))
			cell_start(sh, NULL, line);
		else
			shell_px(sh, NULL, line);
		return;
	}
	if (p[0] == '%' && p[1] == '%') {
		size_t wl = strcspn(p, " \t");

		if (wl == 4 && strncmp(p, "%%px", 4) == 0) {
			cell_start(sh, p + 4, NULL);
		} else {
			fprintf(stderr, "cohort: unknown cell command %.*s "
				"(only %%%%px)\n", (int)wl, p);
			sh->status = 2;
		}
		return;
	}
	if (*p == '%')
		shell_magic(sh, p + 1);
	else
		shell_plain(sh, p);
}

static void
shell_update_prompt(struct shell *sh)
{
	if (sh->in_cell)
		snprintf(sh->prompt, sizeof(sh->prompt), "... ");
	else
		snprintf(sh->prompt, sizeof(sh->prompt), "[%s] %s> ",
			 sh->targets ? sh->targets : "all",
			 sh->autopx ? "px" : "cohort");
}

static char *
shell_prompt(EditLine *el)
{
	struct shell *sh = NULL;

	if (el_get(el, EL_CLIENTDATA, &sh) != 0 || sh == NULL)
		return (char *)"> ";
	return sh->prompt;
}

/* Keep the history file bounded and private: it holds code. */
static void
history_open(struct shell *sh)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct cohort_error err;
	struct stat st;
	HistEvent ev;
	int fd;

	sh->hist = history_init();
	if (sh->hist == NULL) {
		fprintf(stderr, "cohort: warning: no history: out of "
			"memory\n");
		return;
	}
	history(sh->hist, &ev, H_SETSIZE, SHELL_HISTORY_SIZE);
	history(sh->hist, &ev, H_SETUNIQUE, 1);
	if (cohort_profile_path(sh->ctx->profile, dir, sizeof(dir), &err) < 0) {
		fprintf(stderr, "cohort: warning: history not kept: %s\n",
			err.text);
		return;
	}
	if (path_join(path, sizeof(path), dir, "history") < 0) {
		fprintf(stderr, "cohort: warning: history not kept: path too "
			"long\n");
		return;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "cohort: warning: history not kept: %s: %s\n",
			path, strerror(errno));
		return;
	}
	if (fchmod(fd, 0600) < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "cohort: warning: history not kept: %s: %s\n",
			path, strerror(errno));
		close(fd);
		return;
	}
	close(fd);
	if (st.st_size > 0 && history(sh->hist, &ev, H_LOAD, path) < 0)
		fprintf(stderr, "cohort: warning: cannot read the history in "
			"%s\n", path);
	sh->histfile = xstrdup(path);
}

/* Enter a line into the history and rewrite the file (at most 1000
 * lines, so rewriting is cheap and keeps it bounded). */
static void
history_add(struct shell *sh, const char *line)
{
	HistEvent ev;

	if (sh->hist == NULL || blank(line))
		return;
	history(sh->hist, &ev, H_ENTER, line);
	if (sh->histfile != NULL &&
	    history(sh->hist, &ev, H_SAVE, sh->histfile) < 0 &&
	    !sh->hist_warned) {
		fprintf(stderr, "cohort: warning: cannot write the history "
			"to %s\n", sh->histfile);
		sh->hist_warned = true;
	}
}

static void
names_reply(const struct cohort_reply *r, void *arg)
{
	struct name_list *l = arg;
	const char *s;

	if (strcmp(r->status, "ok") != 0 || r->result == NULL)
		return;
	/* A list repr: every identifier is a quoted string. */
	for (s = r->result; *s != '\0'; s++) {
		const char *end;
		bool ident = true;

		if (*s != '\'' && *s != '"')
			continue;
		end = strchr(s + 1, *s);
		if (end == NULL)
			break;
		for (const char *q = s + 1; q < end; q++)
			if (!(*q == '_' || (*q >= 'a' && *q <= 'z') ||
			      (*q >= 'A' && *q <= 'Z') ||
			      (q > s + 1 && *q >= '0' && *q <= '9')))
				ident = false;
		if (ident && end > s + 1)
			names_add(l, s + 1, (size_t)(end - s - 1));
		s = end;
	}
}

/* Ask the target engines for their global names, at most once per
 * SHELL_COMPLETE_CACHE seconds. All targets run it, not one, so that
 * their execution counters (Out[N]) stay in step and results keep
 * collapsing. Failure leaves the list empty. */
static void
fetch_names(struct shell *sh)
{
	struct cohort_request rq = { .op = "execute" };
	struct cohort_client *c;
	struct cohort_error err;
	double now = now_monotonic();
	const char *t = sh->targets ? sh->targets : "all";

	if (sh->names_fetched && now - sh->names_at < SHELL_COMPLETE_CACHE &&
	    strcmp(sh->names_targets, t) == 0)
		return;
	names_clear(&sh->names);
	free(sh->names_targets);
	sh->names_targets = xstrdup(t);
	sh->names_at = now;
	sh->names_fetched = true;
	c = cohort_connect(sh->ctx->profile, &err);
	if (c == NULL)
		return;
	rq.targets = sh->targets;
	rq.code = complete_code;
	rq.timeout = SHELL_COMPLETE_TIMEOUT;
	(void)cohort_request(c, &rq, names_reply, &sh->names, &err);
	cohort_disconnect(c);
	names_sort(&sh->names);
	/* The time spent asking counts toward the cache's age. */
	sh->names_at = now_monotonic();
}

static void
list_matches(const char *const *m, size_t n)
{
	struct winsize ws;
	size_t width = 80, colw = 0, per_line;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		width = ws.ws_col;
	for (size_t i = 0; i < n; i++)
		if (strlen(m[i]) + 2 > colw)
			colw = strlen(m[i]) + 2;
	per_line = width / colw ? width / colw : 1;
	fputc('\n', stdout);
	for (size_t i = 0; i < n; i++)
		printf("%-*s%s", (int)colw, m[i],
		       (i + 1) % per_line == 0 || i + 1 == n ? "\n" : "");
	fflush(stdout);
}

/* Complete word (of length len, just before the cursor) from cands:
 * insert a unique match (and suffix), or the longest common prefix,
 * or list the matches when there is nothing more to insert. */
static unsigned char
complete_from(EditLine *el, const char *word, size_t len,
	      char *const *cands, size_t ncands, const char *suffix)
{
	const char **m = xcalloc(ncands ? ncands : 1, sizeof(*m));
	size_t n = 0, common;
	unsigned char rc = CC_REFRESH;

	for (size_t i = 0; i < ncands; i++)
		if (strncmp(cands[i], word, len) == 0)
			m[n++] = cands[i];
	if (n == 0) {
		free(m);
		return CC_ERROR;
	}
	common = strlen(m[0]);
	for (size_t i = 1; i < n; i++) {
		size_t k = 0;

		while (k < common && m[i][k] == m[0][k])
			k++;
		common = k;
	}
	if (n == 1) {
		char *ins = xasprintf("%s%s", m[0] + len, suffix);

		if (el_insertstr(el, ins) < 0)
			rc = CC_ERROR;
		free(ins);
	} else if (common > len) {
		char *ins = xstrndup(m[0] + len, common - len);

		if (el_insertstr(el, ins) < 0)
			rc = CC_ERROR;
		free(ins);
	} else {
		list_matches(m, n);
		rc = CC_REDISPLAY;
	}
	free(m);
	return rc;
}

static bool
ident_char(char c)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/* TAB: a command name at the start of a line, a name defined on the
 * engines inside code. */
static unsigned char
shell_complete(EditLine *el, int ch)
{
	const LineInfo *li = el_line(el);
	struct shell *sh = NULL;
	const char *code = NULL, *p, *w;
	struct name_list cands = { 0 };
	unsigned char rc = CC_ERROR;
	char *text;

	(void)ch;
	if (el_get(el, EL_CLIENTDATA, &sh) != 0 || sh == NULL || li == NULL)
		return CC_ERROR;
	text = xstrndup(li->buffer, (size_t)(li->cursor - li->buffer));
	p = text + strspn(text, " \t");
	if (sh->in_cell || (sh->autopx && *p != '%'))
		code = text;
	else if (strncmp(p, "%px", 3) == 0 && (p[3] == ' ' || p[3] == '\t'))
		code = p + 4;
	if (code != NULL) {
		size_t end = strlen(text), start = end;
		size_t from = (size_t)(code - text);

		while (start > from && ident_char(text[start - 1]))
			start--;
		w = text + start;
		if (sh->in_cell && blank(code)) {
			/* Indentation inside a cell. */
			rc = el_insertstr(el, "    ") < 0 ? CC_ERROR
							     : CC_REFRESH;
		} else if ((start > 0 && text[start - 1] == '.') ||
			   (*w >= '0' && *w <= '9')) {
			rc = CC_ERROR; /* attributes and numbers: not cheap */
		} else {
			fetch_names(sh);
			rc = complete_from(el, w, end - start, sh->names.v,
					   sh->names.n, "");
		}
	} else if (p[strcspn(p, " \t")] == '\0') {
		/* The first word: a command. */
		if (*p == '%') {
			char buf[64];

			for (size_t i = 0; i < NITEMS(shell_builtins); i++)
				names_add(&cands, shell_builtins[i].name,
					  strlen(shell_builtins[i].name));
			names_add(&cands, "%exit", 5);
			for (size_t i = 0; i < sh->subs.n; i++) {
				snprintf(buf, sizeof(buf), "%%%s",
					 sh->subs.v[i]);
				names_add(&cands, buf, strlen(buf));
			}
		} else {
			for (size_t i = 0; i < sh->subs.n; i++)
				names_add(&cands, sh->subs.v[i],
					  strlen(sh->subs.v[i]));
			names_add(&cands, "help", 4);
			names_add(&cands, "quit", 4);
			names_add(&cands, "exit", 4);
		}
		names_sort(&cands);
		rc = complete_from(el, p, strlen(p), cands.v, cands.n, " ");
		names_clear(&cands);
	}
	free(text);
	return rc;
}

/* Line editing needs the terminal's character set; code is UTF-8, so
 * a C locale falls back to C.UTF-8. */
static void
shell_locale(void)
{
	if (setlocale(LC_CTYPE, "") != NULL &&
	    strcmp(nl_langinfo(CODESET), "UTF-8") == 0)
		return;
	(void)setlocale(LC_CTYPE, "C.UTF-8");
}

static int
shell_editline_init(struct shell *sh)
{
	shell_locale();
	history_open(sh);
	sh->el = el_init(sh->ctx->prog ? sh->ctx->prog : "cohort", stdin,
			 stdout, stderr);
	if (sh->el == NULL)
		return -1;
	if (el_set(sh->el, EL_CLIENTDATA, sh) != 0 ||
	    el_set(sh->el, EL_PROMPT, shell_prompt) != 0 ||
	    el_set(sh->el, EL_EDITOR, "emacs") != 0 ||
	    /* libedit restores the terminal on a signal and passes it on
	     * to our handler; on SIGINT el_gets then fails with EINTR. */
	    el_set(sh->el, EL_SIGNAL, 1) != 0 ||
	    /* Wide strings: the narrow el_set copies them and never
	     * frees the copies. */
	    el_wset(sh->el, EL_ADDFN, L"cohort-complete",
		    L"complete a command or an engine name",
		    shell_complete) != 0 ||
	    el_set(sh->el, EL_BIND, "^I", "cohort-complete", NULL) != 0 ||
	    /* As in bash: Ctrl-R searches the history backwards. */
	    el_set(sh->el, EL_BIND, "^R", "em-inc-search-prev", NULL) != 0)
		return -1;
	if (sh->hist != NULL && el_set(sh->el, EL_HIST, history, sh->hist) != 0)
		return -1;
	(void)el_source(sh->el, NULL); /* ~/.editrc, if there is one */
	return 0;
}

/* Read one line into *buf (without its newline). Returns 1 for a line,
 * 0 at end of input, -1 when Ctrl-C cleared the line. */
static int
shell_read(struct shell *sh, char **buf, size_t *cap)
{
	ssize_t n;

	shell_update_prompt(sh);
	fflush(stdout);
	if (sh->tty) {
		const char *s;
		int count = 0;

		shell_sigint = 0;
		errno = 0;
		s = el_gets(sh->el, &count);
		if (s == NULL) {
			if (shell_sigint || (count < 0 && errno == EINTR))
				return -1;
			return 0;
		}
		n = (ssize_t)strlen(s);
		if ((size_t)n + 1 > *cap) {
			*cap = (size_t)n + 1;
			*buf = xrealloc(*buf, *cap);
		}
		memcpy(*buf, s, (size_t)n + 1);
	} else {
		if (isatty(STDIN_FILENO)) {
			fputs(sh->prompt, stderr);
			fflush(stderr);
		}
		n = getline(buf, cap, stdin);
		if (n < 0)
			return 0;
	}
	while (n > 0 && ((*buf)[n - 1] == '\n' || (*buf)[n - 1] == '\r'))
		(*buf)[--n] = '\0';
	return 1;
}

static void
shell_free(struct shell *sh)
{
	if (sh->el != NULL)
		el_end(sh->el);
	if (sh->hist != NULL)
		history_end(sh->hist);
	if (sh->tok != NULL)
		tok_end(sh->tok);
	cell_drop(sh);
	free(sh->targets);
	free(sh->histfile);
	free(sh->names_targets);
	names_clear(&sh->names);
	names_clear(&sh->subs);
	names_clear(&sh->sub_help);
}

static int
cmd_shell_exec(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "targets", required_argument, NULL, 't' },
		{ "profile", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct shell sh = { .ctx = ctx };
	struct sigaction sa, old_sa;
	const char *targets = NULL;
	char *line = NULL;
	size_t cap = 0;
	int ch, r;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
		switch (ch) {
		case 't':
			targets = optarg;
			break;
		case 'p':
			ctx->profile = optarg;
			break;
		case 'h':
			cmd_help(&cmd_shell_entry, stdout);
			return 0;
		default:
			return cli_usage_error(&cmd_shell_entry, "bad option");
		}
	}
	if (optind != argc)
		return cli_usage_error(&cmd_shell_entry, "unexpected argument");
	if (targets != NULL) {
		shell_targets(&sh, targets);
		if (sh.status != 0)
			return 2;
	}
	sh.tok = tok_init(NULL);
	if (sh.tok == NULL) {
		shell_free(&sh);
		return cli_error("out of memory");
	}
	shell_load_commands(&sh);
	sh.tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
	if (sh.tty && shell_editline_init(&sh) < 0) {
		shell_free(&sh);
		return cli_error("cannot set up line editing");
	}
	if (sh.tty) {
		/* The shell must outlive Ctrl-C: px arms its own handler
		 * while a request runs (and puts this one back after), and
		 * Ctrl-C at any other moment is ignored here. */
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = shell_on_sigint;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGINT, &sa, &old_sa) < 0) {
			shell_free(&sh);
			return cli_error("sigaction: %s", strerror(errno));
		}
	}
	while (!sh.quit) {
		r = shell_read(&sh, &line, &cap);
		if (r == 0) {
			if (sh.tty)
				fputc('\n', stdout);
			if (sh.in_cell)
				cell_run(&sh);
			break;
		}
		if (r < 0) {
			/* Ctrl-C: drop the line, and a cell being typed. */
			fputs("^C\n", stdout);
			cell_drop(&sh);
			continue;
		}
		if (sh.tty)
			history_add(&sh, line);
		shell_line(&sh, line);
	}
	fflush(stdout);
	if (sh.tty)
		(void)sigaction(SIGINT, &old_sa, NULL);
	free(line);
	r = sh.status;
	shell_free(&sh);
	return r;
}
