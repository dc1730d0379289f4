/* SPDX-License-Identifier: BSD-3-Clause */
/* cmd-scatter.c - cohort scatter: split an array across engines. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"
#include "value.h"

static int cmd_scatter_exec(struct cli_ctx *ctx, int argc, char **argv);

const struct cmd_entry cmd_scatter_entry = {
	.name = "scatter",
	.alias = NULL,
	.usage = "[--targets T] NAME VALUE",
	.summary = "split an array along its first axis across engines",
	.help =
	"  -t, --targets T   engines (default all live engines)\n"
	"  --profile P       profile name or directory\n"
	"\n"
	"VALUE is as for push (a JSON list, @file.npy, @file.json). It is\n"
	"split along its first axis into contiguous parts, one per target in\n"
	"engine order, whose lengths differ by at most one (the first engines\n"
	"get the extra rows); each engine binds its part to NAME.\n",
	.exec = cmd_scatter_exec,
};

static int
cmd_scatter_exec(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "targets", required_argument, NULL, 't' },
		{ "profile", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *targets = NULL, *name;
	struct px_collect col = { 0 };
	struct cohort_client *c;
	struct cohort_error err;
	msgpack_sbuffer val;
	int ch, rc;

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
			cmd_help(&cmd_scatter_entry, stdout);
			return 0;
		default:
			return cli_usage_error(&cmd_scatter_entry,
					       "bad option");
		}
	}
	if (argc - optind != 2)
		return cli_usage_error(&cmd_scatter_entry,
				       "expected NAME and VALUE");
	name = argv[optind];
	if (value_check_name(name, &err) < 0)
		return cli_error("%s", err.text);
	msgpack_sbuffer_init(&val);
	if (value_from_arg(argv[optind + 1], &val, &err) < 0) {
		msgpack_sbuffer_destroy(&val);
		return cli_error("%s", err.text);
	}
	c = cli_connect(ctx);
	if (c == NULL) {
		msgpack_sbuffer_destroy(&val);
		return 1;
	}
	rc = cohort_scatter(c, targets, name, val.data, val.size,
			    collect_reply, &col, &err);
	cohort_disconnect(c);
	msgpack_sbuffer_destroy(&val);
	if (rc < 0) {
		collect_clear(&col);
		return cli_error("%s", err.text);
	}
	px_replies_sort(col.r, col.n);
	rc = output_failures(col.r, col.n) > 0;
	collect_clear(&col);
	return rc;
}
