/* SPDX-License-Identifier: BSD-3-Clause */
/* cli.h - the cohort command line: one table of subcommands. */
#ifndef COHORT_CLI_H
#define COHORT_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
	int64_t count;
	double elapsed;
};

/* Copy a libcohort reply into an owned px_reply. */
void px_reply_copy(struct px_reply *dst, const struct cohort_reply *src);
void px_reply_clear(struct px_reply *r);
/* Sort replies by engine id. */
void px_replies_sort(struct px_reply *r, size_t n);
/* Render replies as text to stdout. */
void output_px_text(const struct px_reply *r, size_t n);
/* Render replies as one JSON document to stdout. */
void output_px_json(const struct px_reply *r, size_t n);

#endif
