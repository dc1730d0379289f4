/* SPDX-License-Identifier: BSD-3-Clause */
/* cmd-result.c - cohort result: the per-engine results of a job. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

static int cmd_result_exec(struct cli_ctx *ctx, int argc, char **argv);

const struct cmd_entry cmd_result_entry = {
	.name = "result",
	.alias = NULL,
	.usage = "[--json] [--no-collapse] ID",
	.summary = "print a job's per-engine results (or what is pending)",
	.help =
	"  --json          print the results as px --json does\n"
	"  --no-collapse   print every engine separately\n"
	"  --profile P     profile name or directory\n"
	"\n"
	"ID is a job id, as printed by 'cohort px --nonblock' or listed by\n"
	"'cohort jobs'. Engines still running show as '[N] pending'. The\n"
	"controller keeps the results of its last 1000 jobs (cohort-controller\n"
	"--jobs); an older job's result says it was evicted. Values of pull\n"
	"jobs are not kept, only their status. Exit status: 0 if the job is\n"
	"done and every engine succeeded, 1 otherwise, 3 if still running.\n",
	.exec = cmd_result_exec,
};

static int
cmd_result_exec(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "no-collapse", no_argument, NULL, 'C' },
		{ "profile", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct px_collect col = { 0 };
	struct cohort_client *c;
	struct cohort_error err;
	int ch, rc, json = 0, collapse = 1, running = 0;
	long long id;
	char *end;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = 1;
			break;
		case 'C':
			collapse = 0;
			break;
		case 'p':
			ctx->profile = optarg;
			break;
		case 'h':
			cmd_help(&cmd_result_entry, stdout);
			return 0;
		default:
			return cli_usage_error(&cmd_result_entry, "bad option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error(&cmd_result_entry, "expected a job ID");
	id = strtoll(argv[optind], &end, 10);
	if (*end != '\0' || id <= 0)
		return cli_usage_error(&cmd_result_entry, "bad job id '%s'",
				       argv[optind]);
	c = cli_connect(ctx);
	if (c == NULL)
		return 1;
	rc = cohort_result(c, id, collect_reply, &col, &running, &err);
	cohort_disconnect(c);
	if (rc < 0) {
		collect_clear(&col);
		return cli_error("%s", err.text);
	}
	px_replies_sort(col.r, col.n);
	if (json)
		output_px_json(col.r, col.n);
	else
		output_px_text(col.r, col.n, true, collapse);
	collect_clear(&col);
	if (running)
		return 3;
	return rc == 0 ? 0 : 1;
}
