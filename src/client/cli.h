/* SPDX-License-Identifier: BSD-3-Clause */
/* cli.h - the cohort command line: one table of subcommands. */
#ifndef COHORT_CLI_H
#define COHORT_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cohort/client.h"

/* Options that every subcommand shares. */
struct cli_ctx {
	const char *profile; /* --profile, or NULL for the default */
	const char *prog;    /* "cohort" */
};

/* One subcommand, exported by cmd-<name>.c as cmd_<name>_entry. */
struct cmd_entry {
	const char *name;
	const char *alias;
	const char *usage;   /* one line: arguments after the name */
	const char *summary; /* one line for the command list */
	const char *help;    /* the rest of --help */
	int (*exec)(struct cli_ctx *ctx, int argc, char **argv);
};

/* Find a command by name, alias or unique prefix; NULL with a message on
 * stderr when unknown or ambiguous. */
const struct cmd_entry *cmd_find(const char *name);
/* Print a command's --help to f. */
void cmd_help(const struct cmd_entry *e, FILE *f);
/* Print the list of commands. */
void cmd_list(FILE *f);
/* Print "cohort: error: ..." to stderr; returns exit code 1. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print a usage error for e to stderr; returns exit code 2. */
int cli_usage_error(const struct cmd_entry *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Connect to the controller of ctx->profile, printing errors. */
struct cohort_client *cli_connect(struct cli_ctx *ctx);

/* output.c: one engine's reply kept for rendering. */
struct px_reply {
	int64_t engine, rank;
	char *status, *out, *err, *result, *ename, *evalue, *traceback;
	char *escalation; /* a late engine's last timeout step, or NULL */
	int64_t count;
	double elapsed;
	void *data; /* pull: the encoded value, or NULL */
	size_t len;
};

/* Replies gathered by collect_reply(). */
struct px_collect {
	struct px_reply *r;
	size_t n, cap;
};

/* Connect, send rq and collect its replies sorted by engine (cmd.c):
 * the count of failed engines, or -1 once the error is printed. */
int cli_request(struct cli_ctx *ctx, const struct cohort_request *rq,
		struct px_collect *col);

/* A cohort_reply_fn that appends to a struct px_collect. */
void collect_reply(const struct cohort_reply *r, void *arg);
/* Sort and free collected replies. */
void collect_clear(struct px_collect *c);

/* Copy a libcohort reply into an owned px_reply. */
void px_reply_copy(struct px_reply *dst, const struct cohort_reply *src);
void px_reply_clear(struct px_reply *r);
/* Sort replies by engine id. */
void px_replies_sort(struct px_reply *r, size_t n);
/* Render replies as text to stdout, in engine order. with_output also
 * prints stdout/stderr (not when they were streamed live); collapse
 * prints replies that show the same thing once, with their engine set. */
void output_px_text(const struct px_reply *r, size_t n, bool with_output,
		    bool collapse);
/* Print plain-text results once per distinct value ("[0-3] idle"), then
 * the failures. */
void output_grouped(const struct px_reply *r, size_t n);
/* A cohort_stream_fn printing live output line by line. */
void stream_print(int64_t engine, const char *name, const char *text,
		  size_t len, void *arg);
/* Print partial lines left by stream_print. */
void stream_flush(void);
/* A cohort_progress_fn showing "3/4 engines done" on a terminal. */
void progress_print(size_t done, size_t total, double elapsed, void *arg);
/* Erase the progress line. */
void progress_clear(void);
/* Render replies as one JSON document to stdout. */
void output_px_json(const struct px_reply *r, size_t n);
/* Print the error (or dead/timeout) line of each failed reply; returns the
 * number of failed replies. */
size_t output_failures(const struct px_reply *r, size_t n);
/* The per-engine reply as a JSON object (without value). */
json_t *output_reply_json(const struct px_reply *r);
/* Insert the engine id before the suffix: "out.npy", 2 -> "out.2.npy". */
char *output_engine_path(const char *path, int64_t engine);

#endif
