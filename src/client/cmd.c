/* SPDX-License-Identifier: BSD-3-Clause */
/* cmd.c - the table of subcommands and their lookup. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

extern const struct cmd_entry cmd_allgather_entry;
extern const struct cmd_entry cmd_bcast_entry;
extern const struct cmd_entry cmd_cluster_entry;
extern const struct cmd_entry cmd_gather_entry;
extern const struct cmd_entry cmd_interrupt_entry;
extern const struct cmd_entry cmd_jobs_entry;
extern const struct cmd_entry cmd_move_entry;
extern const struct cmd_entry cmd_pull_entry;
extern const struct cmd_entry cmd_push_entry;
extern const struct cmd_entry cmd_px_entry;
extern const struct cmd_entry cmd_redistribute_entry;
extern const struct cmd_entry cmd_result_entry;
extern const struct cmd_entry cmd_scatter_entry;
extern const struct cmd_entry cmd_shell_entry;
extern const struct cmd_entry cmd_engines_entry;
extern const struct cmd_entry cmd_where_entry;

static const struct cmd_entry *const cmd_table[] = {
	&cmd_allgather_entry,
	&cmd_bcast_entry,
	&cmd_cluster_entry,
	&cmd_engines_entry,
	&cmd_gather_entry,
	&cmd_interrupt_entry,
	&cmd_jobs_entry,
	&cmd_move_entry,
	&cmd_pull_entry,
	&cmd_push_entry,
	&cmd_px_entry,
	&cmd_redistribute_entry,
	&cmd_result_entry,
	&cmd_scatter_entry,
	&cmd_shell_entry,
	&cmd_where_entry,
	NULL,
};

/* Look up a command by exact name, alias, then unique prefix. */
const struct cmd_entry *
cmd_find(const char *name)
{
	const struct cmd_entry *found = NULL;
	char ambiguous[512] = "";
	size_t len = strlen(name);

	for (size_t i = 0; cmd_table[i] != NULL; i++) {
		const struct cmd_entry *e = cmd_table[i];

		if (strcmp(e->name, name) == 0 ||
		    (e->alias != NULL && strcmp(e->alias, name) == 0))
			return e;
	}
	for (size_t i = 0; len > 0 && cmd_table[i] != NULL; i++) {
		const struct cmd_entry *e = cmd_table[i];

		if (strncmp(e->name, name, len) != 0)
			continue;
		if (found != NULL) {
			if (ambiguous[0] == '\0')
				snprintf(ambiguous, sizeof(ambiguous), "%s",
					 found->name);
			strncat(ambiguous, ", ",
				sizeof(ambiguous) - strlen(ambiguous) - 1);
			strncat(ambiguous, e->name,
				sizeof(ambiguous) - strlen(ambiguous) - 1);
		}
		found = e;
	}
	if (ambiguous[0] != '\0') {
		fprintf(stderr, "cohort: ambiguous command: %s, could be: %s\n",
			name, ambiguous);
		return NULL;
	}
	if (found == NULL)
		fprintf(stderr, "cohort: unknown command: %s (see 'cohort "
			"--help')\n", name);
	return found;
}

/* Print one command's help. */
void
cmd_help(const struct cmd_entry *e, FILE *f)
{
	fprintf(f, "usage: cohort %s %s\n\n%s\n", e->name, e->usage,
		e->summary);
	if (e->help != NULL)
		fprintf(f, "\n%s", e->help);
}

/* Print every command with its summary. */
void
cmd_list(FILE *f)
{
	for (size_t i = 0; cmd_table[i] != NULL; i++)
		fprintf(f, "  %-12s %s\n", cmd_table[i]->name,
			cmd_table[i]->summary);
}

/* Report an error; exit code 1. */
int
cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("cohort: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* Report a usage error; exit code 2. */
int
cli_usage_error(const struct cmd_entry *e, const char *fmt, ...)
{
	va_list ap;

	fputs("cohort: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: cohort %s %s\n", e->name, e->usage);
	return 2;
}

/* Connect to the profile's controller. */
struct cohort_client *
cli_connect(struct cli_ctx *ctx)
{
	struct cohort_error err;
	struct cohort_client *c = cohort_connect(ctx->profile, &err);

	if (c == NULL)
		cli_error("%s", err.text);
	return c;
}

/* Connect, send one request and collect its replies, sorted by engine:
 * the number of failed engines, or -1 after printing why the request as
 * a whole failed. */
int
cli_request(struct cli_ctx *ctx, const struct cohort_request *rq,
	    struct px_collect *col)
{
	struct cohort_client *c = cli_connect(ctx);
	struct cohort_error err;
	int rc;

	if (c == NULL)
		return -1;
	rc = cohort_request(c, rq, collect_reply, col, &err);
	cohort_disconnect(c);
	if (rc < 0) {
		collect_clear(col);
		cli_error("%s", err.text);
		return -1;
	}
	px_replies_sort(col->r, col->n);
	return rc;
}
