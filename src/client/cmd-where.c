/* SPDX-License-Identifier: BSD-3-Clause */
/* cmd-where.c - cohort where: show where each engine's main thread is. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int cmd_where_exec(struct cli_ctx *ctx, int argc, char **argv);

const struct cmd_entry cmd_where_entry = {
	.name = "where",
	.alias = NULL,
	.usage = "[--targets T] [--verbose] [--json]",
	.summary = "show where each engine is: MPI call, Python stack",
	.help =
	"  -t, --targets T   engines (default all)\n"
	"  -v, --verbose     also print each engine's full C and Python stacks\n"
	"  --json            print the per-engine answers as px --json does\n"
	"  --profile P       profile name or directory\n"
	"\n"
	"Each engine's I/O thread signals its main thread, which writes its\n"
	"C backtrace and Python stack wherever it is, blocked in MPI included.\n"
	"One line per group of engines in the same place, innermost first:\n"
	"  [1-3] in MPI_Barrier <- <cell>\n"
	"  [0] in clock_nanosleep <- <cell>\n"
	"'in' names the outermost MPI call if the thread is inside MPI, else\n"
	"the innermost C function; then the Python frames, the cell last.\n",
	.exec = cmd_where_exec,
};

static int
cmd_where_exec(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "targets", required_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "json", no_argument, NULL, 'j' },
		{ "profile", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cohort_request rq = { .op = "where" };
	struct px_collect col = { 0 };
	int ch, rc, verbose = 0, json = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "t:vh", opts, NULL)) != -1) {
		switch (ch) {
		case 't':
			rq.targets = optarg;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'j':
			json = 1;
			break;
		case 'p':
			ctx->profile = optarg;
			break;
		case 'h':
			cmd_help(&cmd_where_entry, stdout);
			return 0;
		default:
			return cli_usage_error(&cmd_where_entry, "bad option");
		}
	}
	if (optind != argc)
		return cli_usage_error(&cmd_where_entry, "unexpected argument");
	rc = cli_request(ctx, &rq, &col);
	if (rc < 0)
		return 1;
	if (json) {
		output_px_json(col.r, col.n);
		collect_clear(&col);
		return rc == 0 ? 0 : 1;
	}
	output_grouped(col.r, col.n);
	if (verbose)
		for (size_t i = 0; i < col.n; i++)
			if (col.r[i].out[0] != '\0')
				printf("---- engine %lld ----\n%s\n",
				       (long long)col.r[i].engine,
				       col.r[i].out);
	collect_clear(&col);
	return rc == 0 ? 0 : 1;
}
