/* SPDX-License-Identifier: BSD-3-Clause */
/* cmd-engines.c - cohort engines: list the engines the controller knows. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "cli.h"

static int cmd_engines_exec(struct cli_ctx *ctx, int argc, char **argv);

const struct cmd_entry cmd_engines_entry = {
	.name = "engines",
	.alias = NULL,
	.usage = "[--json]",
	.summary = "list engines: id, MPI rank, host, pid, state",
	.help =
	"  --json        print a JSON document instead of a table\n"
	"  --profile P   profile name or directory\n"
	"\n"
	"Dead engines stay listed, with state 'dead'.\n",
	.exec = cmd_engines_exec,
};

static int
cmd_engines_exec(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "profile", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cohort_engine *list = NULL;
	struct cohort_client *c;
	struct cohort_error err;
	int json = 0, ch;
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
			cmd_help(&cmd_engines_entry, stdout);
			return 0;
		default:
			return cli_usage_error(&cmd_engines_entry,
					       "bad option");
		}
	}
	if (optind != argc)
		return cli_usage_error(&cmd_engines_entry,
				       "unexpected argument");
	c = cli_connect(ctx);
	if (c == NULL)
		return 1;
	if (cohort_engines(c, &list, &n, &err) < 0) {
		cohort_disconnect(c);
		return cli_error("%s", err.text);
	}
	cohort_disconnect(c);
	if (json) {
		json_t *arr = json_array(), *doc;

		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, json_pack(
				"{s:I, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:f}",
				"id", (json_int_t)list[i].id,
				"rank", (json_int_t)list[i].rank,
				"size", (json_int_t)list[i].size,
				"pid", (json_int_t)list[i].pid,
				"host", list[i].host,
				"kernel", list[i].kernel,
				"job", list[i].job,
				"state", list[i].state,
				"uptime", list[i].uptime));
		doc = json_pack("{s:o}", "engines", arr);
		json_dumpf(doc, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(doc);
	} else {
		printf("%-4s %-6s %-18s %-16s %-8s %-6s %s\n", "ID", "RANK",
		       "MPI JOB", "HOST", "PID", "STATE", "UPTIME");
		for (size_t i = 0; i < n; i++) {
			char rank[48];

			snprintf(rank, sizeof(rank), "%lld/%lld",
				 (long long)list[i].rank,
				 (long long)list[i].size);
			printf("%-4lld %-6s %-18s %-16s %-8lld %-6s %.0fs\n",
			       (long long)list[i].id, rank, list[i].job,
			       list[i].host, (long long)list[i].pid,
			       list[i].state, list[i].uptime);
		}
		if (n == 0)
			printf("(no engines registered)\n");
	}
	free(list);
	return 0;
}
