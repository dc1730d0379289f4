/* SPDX-License-Identifier: BSD-3-Clause */
/* cmd-data.c - cohort bcast, move, allgather, redistribute: data moved
 * among the engines of one MPI job over MPI, not through the controller.
 * The four share one parser: they differ in which options they take. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "value.h"

static int cmd_data_exec(struct cli_ctx *ctx, int argc, char **argv);

#define DATA_OPTS \
	"  --json            print the per-engine answers as px --json does\n" \
	"  --profile P       profile name or directory\n"
#define DATA_HELP_TAIL DATA_OPTS DATA_TEXT
#define DATA_TEXT \
	"\n" \
	"The engines move the value among themselves with MPI (arrays as raw\n" \
	"bytes, other values as their msgpack encoding): all the engines\n" \
	"taking part must belong to one MPI job (one mpiexec run); across jobs\n" \
	"the request is refused, use pull and push. Each engine answers with\n" \
	"what it did; engines that agree are shown once. See docs/mpi.md.\n"

const struct cmd_entry cmd_bcast_entry = {
	.name = "bcast",
	.usage = "NAME --root R [--targets T] [--json]",
	.summary = "copy a value from one engine to others, over MPI",
	.help =
	"  --root R          the engine whose value of NAME is copied\n"
	"  -t, --targets T   engines that receive it (default: every engine\n"
	"                    of R's MPI job); R always takes part\n"
	DATA_HELP_TAIL,
	.exec = cmd_data_exec,
};

const struct cmd_entry cmd_move_entry = {
	.name = "move",
	.usage = "NAME --from R1 --to R2 [--as DST] [--json]",
	.summary = "copy a value from one engine to another, over MPI",
	.help =
	"  --from R1         the engine that sends its value of NAME\n"
	"  --to R2           the engine that receives it\n"
	"  --as DST          the name it is bound to on R2 (default NAME)\n"
	DATA_HELP_TAIL,
	.exec = cmd_data_exec,
};

const struct cmd_entry cmd_allgather_entry = {
	.name = "allgather",
	.usage = "NAME [--as DST] [--targets T] [--json]",
	.summary = "give every engine all engines' values, over MPI",
	.help =
	"  --as DST          the name the result is bound to (default NAME)\n"
	"  -t, --targets T   engines taking part (default all)\n"
	DATA_OPTS
	"\n"
	"Arrays of at least one dimension with one dtype and the same shape\n"
	"beyond the first axis are concatenated along it, in rank order;\n"
	"any other values become the list of each engine's value.\n"
	DATA_TEXT,
	.exec = cmd_data_exec,
};

const struct cmd_entry cmd_redistribute_entry = {
	.name = "redistribute",
	.usage = "NAME [--targets T] [--json]",
	.summary = "rebalance an array's rows evenly across engines, over MPI",
	.help =
	"  -t, --targets T   engines taking part (default all)\n"
	DATA_OPTS
	"\n"
	"NAME must be an array of at least one dimension on every engine,\n"
	"of one dtype and shape beyond the first axis. Its rows, taken in\n"
	"rank order, are spread as scatter would: each engine gets N/P rows,\n"
	"the first N%P engines one more.\n"
	DATA_TEXT,
	.exec = cmd_data_exec,
};

static int
engine_arg(const struct cmd_entry *e, const char *opt, const char *arg,
	   int64_t *out)
{
	char *end;
	long long v = strtoll(arg, &end, 10);

	if (*arg == '\0' || *end != '\0' || v < 0)
		return cli_usage_error(e, "bad %s '%s' (an engine id)", opt,
				       arg);
	*out = v;
	return 0;
}

static int
cmd_data_exec(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "root", required_argument, NULL, 'r' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 'T' },
		{ "as", required_argument, NULL, 'a' },
		{ "targets", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "profile", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct cmd_entry *e = cmd_find(argv[0]);
	struct cohort_request rq = { .op = e->name };
	bool bcast = e == &cmd_bcast_entry, move = e == &cmd_move_entry;
	bool has_root = false, has_to = false;
	struct px_collect col = { 0 };
	struct cohort_error err;
	int64_t to = 0;
	char target[32];
	int ch, rc, json = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			if (!bcast)
				return cli_usage_error(e, "--root is for bcast");
			if (engine_arg(e, "--root", optarg, &rq.root) != 0)
				return 2;
			has_root = true;
			break;
		case 'f':
			if (!move)
				return cli_usage_error(e, "--from is for move");
			if (engine_arg(e, "--from", optarg, &rq.root) != 0)
				return 2;
			has_root = true;
			break;
		case 'T':
			if (!move)
				return cli_usage_error(e, "--to is for move");
			if (engine_arg(e, "--to", optarg, &to) != 0)
				return 2;
			has_to = true;
			break;
		case 'a':
			if (bcast || e == &cmd_redistribute_entry)
				return cli_usage_error(e, "%s takes no --as",
						       e->name);
			if (value_check_name(optarg, &err) < 0)
				return cli_error("%s", err.text);
			rq.as = optarg;
			break;
		case 't':
			if (move)
				return cli_usage_error(e, "move takes --from "
						       "and --to, not "
						       "--targets");
			rq.targets = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'p':
			ctx->profile = optarg;
			break;
		case 'h':
			cmd_help(e, stdout);
			return 0;
		default:
			return cli_usage_error(e, "bad option");
		}
	}
	if (argc - optind != 1)
		return cli_usage_error(e, "expected one NAME");
	rq.name = argv[optind];
	if (value_check_name(rq.name, &err) < 0)
		return cli_error("%s", err.text);
	if (bcast && !has_root)
		return cli_usage_error(e, "bcast needs --root R");
	if (move && !(has_root && has_to))
		return cli_usage_error(e, "move needs --from R1 and --to R2");
	if (move) {
		snprintf(target, sizeof(target), "%lld", (long long)to);
		rq.targets = target;
	}
	rc = cli_request(ctx, &rq, &col);
	if (rc < 0)
		return 1;
	if (json)
		output_px_json(col.r, col.n);
	else
		output_grouped(col.r, col.n);
	collect_clear(&col);
	return rc == 0 ? 0 : 1;
}
