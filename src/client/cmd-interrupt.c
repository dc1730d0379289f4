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
	struct px_collect col = { 0 };
	const char *targets = NULL;
	struct cohort_client *c;
	struct cohort_error err;
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
	c = cli_connect(ctx);
	if (c == NULL)
		return 1;
	rc = cohort_interrupt(c, targets, collect_reply, &col, &err);
	cohort_disconnect(c);
	if (rc < 0) {
		collect_clear(&col);
		return cli_error("%s", err.text);
	}
	px_replies_sort(col.r, col.n);
	output_grouped(col.r, col.n);
	collect_clear(&col);
	return rc == 0 ? 0 : 1;
}
