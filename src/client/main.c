/* SPDX-License-Identifier: BSD-3-Clause */
/* main.c - cohort: the command-line client. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "log.h"

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: cohort [--profile P] COMMAND [ARGS...]\n"
		"\n"
		"Drive a Cohort cluster: run code on MPI engines and read their\n"
		"results side by side.\n"
		"\n"
		"Commands:\n");
	cmd_list(f);
	fprintf(f,
		"\n"
		"Options:\n"
		"  --profile P   profile name or directory (default: default;\n"
		"                $COHORT_DIR/profile_P with COHORT_DIR=~/.cohort)\n"
		"  -h, --help    show this help; 'cohort COMMAND --help' for one\n"
		"  --version     print the version\n");
}

int
main(int argc, char **argv)
{
	struct cli_ctx ctx = { .prog = "cohort" };
	const struct cmd_entry *e;
	int i = 1;

	log_init("cohort", 2);
	log_set_level(LOG_LEVEL_WARN);
	signal(SIGPIPE, SIG_IGN);
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("cohort 0.1.0\n");
			return 0;
		} else if (strcmp(argv[i], "--profile") == 0 && i + 1 < argc) {
			ctx.profile = argv[++i];
		} else if (strncmp(argv[i], "--profile=", 10) == 0) {
			ctx.profile = argv[i] + 10;
		} else {
			fprintf(stderr, "cohort: unknown option %s\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (i == argc) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[i], "help") == 0) {
		if (i + 1 < argc && (e = cmd_find(argv[i + 1])) != NULL) {
			cmd_help(e, stdout);
			return 0;
		}
		usage(stdout);
		return i + 1 < argc ? 2 : 0;
	}
	e = cmd_find(argv[i]);
	if (e == NULL)
		return 2;
	return e->exec(&ctx, argc - i, argv + i);
}
