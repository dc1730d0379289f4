/* SPDX-License-Identifier: BSD-3-Clause */
/* cmd-interrupt.c - cohort interrupt: stop the code engines are running. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"

static int cmd_interrupt_exec(struct cli_ctx *ctx, int argc, char **argv);

const struct cmd_entry cmd_interrupt_entry = {
	.name = "interrupt",
	.alias = NULL,
	.usage = "[--targets T]",
	.summary = "interrupt the code running on engines (KeyboardInterrupt)",
	.help =
	"  -t, --targets T   engines (default all)\n"
	"  --profile P       profile name or directory\n"
	"\n"
	"The running code of each target gets a KeyboardInterrupt, as with\n"
	"Ctrl-C in a local Python; the request that ran it reports it as that\n"
	"engine's error. Code blocked in a system call (sleep, read) is woken.\n"
	"An idle engine ignores the interrupt.\n",
	.exec = cmd_interrupt_exec,
};

static int
cmd_interrupt_exec(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "targets", required_argument, NULL, 't' },
		{ "profile", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cohort_request rq = { .op = "interrupt" };
	struct px_collect col = { 0 };
	int ch, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
		switch (ch) {
		case 't':
			rq.targets = optarg;
			break;
		case 'p':
			ctx->profile = optarg;
			break;
		case 'h':
			cmd_help(&cmd_interrupt_entry, stdout);
			return 0;
		default:
			return cli_usage_error(&cmd_interrupt_entry,
					       "bad option");
		}
	}
	if (optind != argc)
		return cli_usage_error(&cmd_interrupt_entry,
				       "unexpected argument");
	rc = cli_request(ctx, &rq, &col);
	if (rc < 0)
		return 1;
	output_grouped(col.r, col.n);
	collect_clear(&col);
	return rc == 0 ? 0 : 1;
}
