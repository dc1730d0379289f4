/* SPDX-License-Identifier: BSD-3-Clause */
/* cmd-jobs.c - cohort jobs: list running and recent jobs. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "cli.h"

static int cmd_jobs_exec(struct cli_ctx *ctx, int argc, char **argv);

const struct cmd_entry cmd_jobs_entry = {
	.name = "jobs",
	.alias = NULL,
	.usage = "[--json]",
	.summary = "list running and recent jobs with state and timing",
	.help =
	"  --json        print a JSON document instead of a table\n"
	"  --profile P   profile name or directory\n"
	"\n"
	"Every request is a job. States: running, done (every engine\n"
	"succeeded), failed (some did not). AGE is the time since it started,\n"
	"TIME how long it ran. 'cohort result ID' prints a job's results.\n",
	.exec = cmd_jobs_exec,
};

static int
cmd_jobs_exec(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "profile", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cohort_job *list = NULL;
	struct cohort_client *c;
	struct cohort_error err;
	int ch, json = 0;
	size_t n = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = 1;
			break;
		case 'p':
			ctx->profile = optarg;
			break;
		case 'h':
			cmd_help(&cmd_jobs_entry, stdout);
			return 0;
		default:
			return cli_usage_error(&cmd_jobs_entry, "bad option");
		}
	}
	if (optind != argc)
		return cli_usage_error(&cmd_jobs_entry, "unexpected argument");
	c = cli_connect(ctx);
	if (c == NULL)
		return 1;
	if (cohort_jobs(c, &list, &n, &err) < 0) {
		cohort_disconnect(c);
		return cli_error("%s", err.text);
	}
	cohort_disconnect(c);
	if (json) {
		json_t *arr = json_array(), *doc;

		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, json_pack(
				"{s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:f, s:f}",
				"id", (json_int_t)list[i].id,
				"state", list[i].state, "op", list[i].op,
				"targets", list[i].targets,
				"code", list[i].code,
				"ntargets", (json_int_t)list[i].ntargets,
				"ndone", (json_int_t)list[i].ndone,
				"nfailed", (json_int_t)list[i].nfailed,
				"age", list[i].age,
				"elapsed", list[i].elapsed));
		doc = json_pack("{s:o}", "jobs", arr);
		json_dumpf(doc, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(doc);
	} else {
		printf("%-6s %-8s %-8s %-10s %-7s %-7s %-9s %s\n", "ID",
		       "STATE", "OP", "TARGETS", "DONE", "AGE", "TIME", "CODE");
		for (size_t i = 0; i < n; i++) {
			char done[32];

			snprintf(done, sizeof(done), "%lld/%lld",
				 (long long)list[i].ndone,
				 (long long)list[i].ntargets);
			printf("%-6lld %-8s %-8s %-10s %-7s %-7.0f %-9.3f %s\n",
			       (long long)list[i].id, list[i].state,
			       list[i].op, list[i].targets, done, list[i].age,
			       list[i].elapsed, list[i].code);
		}
		if (n == 0)
			printf("(no jobs yet)\n");
	}
	free(list);
	return 0;
}
