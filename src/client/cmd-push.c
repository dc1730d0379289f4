/* SPDX-License-Identifier: BSD-3-Clause */
/* cmd-push.c - cohort push: bind names to values on engines. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"
#include "value.h"

static int cmd_push_exec(struct cli_ctx *ctx, int argc, char **argv);

const struct cmd_entry cmd_push_entry = {
	.name = "push",
	.alias = NULL,
	.usage = "[--targets T] NAME=VALUE...",
	.summary = "bind names to values on engines",
	.help =
	"  -t, --targets T   engines (default all)\n"
	"  --profile P       profile name or directory\n"
	"\n"
	"VALUE is a JSON literal (3, 2.5, \"text\", [1, 2], {\"k\": 1}, null,\n"
	"true), or @file.npy (a numpy array), @file.json (a JSON document) or\n"
	"@file.bin (bytes). Every value is checked before anything is sent.\n"
	"Example: cohort push a=@data.npy n=100 opts='{\"tol\": 1e-6}'\n",
	.exec = cmd_push_exec,
};

static int
cmd_push_exec(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "targets", required_argument, NULL, 't' },
		{ "profile", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *targets = NULL;
	msgpack_sbuffer *vals = NULL;
	char **names = NULL;
	struct cohort_client *c = NULL;
	struct cohort_error err;
	int ch, nvals, rc = 1;

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
			cmd_help(&cmd_push_entry, stdout);
			return 0;
		default:
			return cli_usage_error(&cmd_push_entry, "bad option");
		}
	}
	nvals = argc - optind;
	if (nvals < 1)
		return cli_usage_error(&cmd_push_entry, "expected NAME=VALUE");
	vals = xcalloc((size_t)nvals, sizeof(*vals));
	names = xcalloc((size_t)nvals, sizeof(*names));
	for (int i = 0; i < nvals; i++)
		msgpack_sbuffer_init(&vals[i]);
	/* Everything is parsed before the first byte is sent. */
	for (int i = 0; i < nvals; i++) {
		const char *arg = argv[optind + i], *eq = strchr(arg, '=');

		if (eq == NULL) {
			rc = cli_usage_error(&cmd_push_entry,
					     "'%s' is not NAME=VALUE", arg);
			goto out;
		}
		names[i] = xstrndup(arg, (size_t)(eq - arg));
		if (value_check_name(names[i], &err) < 0) {
			rc = cli_error("%s", err.text);
			goto out;
		}
		if (value_from_arg(eq + 1, &vals[i], &err) < 0) {
			rc = cli_error("%s: %s", names[i], err.text);
			goto out;
		}
	}
	c = cli_connect(ctx);
	if (c == NULL)
		goto out;
	rc = 0;
	for (int i = 0; i < nvals; i++) {
		struct px_collect col = { 0 };
		int r = cohort_push(c, targets, names[i], vals[i].data,
				    vals[i].size, collect_reply, &col, &err);

		if (r < 0) {
			collect_clear(&col);
			rc = cli_error("%s", err.text);
			goto out;
		}
		px_replies_sort(col.r, col.n);
		if (output_failures(col.r, col.n) > 0)
			rc = 1;
		collect_clear(&col);
	}
out:
	cohort_disconnect(c);
	for (int i = 0; i < nvals; i++) {
		msgpack_sbuffer_destroy(&vals[i]);
		free(names[i]);
	}
	free(vals);
	free(names);
	return rc;
}
