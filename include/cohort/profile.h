/* SPDX-License-Identifier: BSD-3-Clause */
/* cohort/profile.h - profile directories, certificates and connection files.
 *
 * A profile is a directory (default ~/.cohort/profile_default, mode 0700)
 * holding a private CA and one certificate per role, all mode 0600:
 *
 *   ca.pem ca-key.pem                  the profile's CA (EC P-256, self-signed)
 *   controller.pem controller-key.pem  CN=cohort-controller
 *   engine.pem engine-key.pem          CN=cohort-engine
 *   client.pem client-key.pem          CN=cohort-client
 *
 * and, while a controller runs, two connection files, engine.json and
 * client.json, naming the controller's address and the files to use.
 */
#ifndef COHORT_PROFILE_H
#define COHORT_PROFILE_H

#include <stddef.h>
#include <sys/types.h>

#include "cohort/error.h"

enum cohort_role {
	COHORT_ROLE_CONTROLLER,
	COHORT_ROLE_ENGINE,
	COHORT_ROLE_CLIENT,
};

/* "controller", "engine", "client". */
const char *cohort_role_name(enum cohort_role role);
/* The certificate subject CN for a role: "cohort-controller", ... */
const char *cohort_role_cn(enum cohort_role role);

/* Resolve a profile directory into buf: an argument that contains a '/' is
 * a path; otherwise NAME means $COHORT_DIR/profile_NAME, where COHORT_DIR
 * defaults to ~/.cohort. NULL name means "default". -1 on overflow. */
int cohort_profile_path(const char *name, char *buf, size_t size,
			struct cohort_error *err);

/* Create the profile directory (0700, parents as needed) and, if absent,
 * the CA and the three role certificates, with the OpenSSL API.
 * Existing files are kept. -1 with err on failure. */
int cohort_profile_ensure(const char *dir, struct cohort_error *err);

/* Refuse a profile whose directory is readable/writable by group or others,
 * or whose key and certificate files are (mode & 077 != 0). The message
 * names the file and the chmod that fixes it. */
int cohort_profile_check_perms(const char *dir, struct cohort_error *err);

/* What a connection file says. Paths are absolute. */
struct cohort_conninfo {
	char ip[64];
	int port;
	char ca[4096];
	char cert[4096];
	char key[4096];
	pid_t controller_pid;
	int version; /* protocol version of the controller */
	/* The controller's local (Unix-domain) socket, "" if none: on the
	 * controller's machine, the same TLS over it instead of TCP. */
	char socket[108];
};

/* Path of the connection file of a role (engine or client) in dir. */
int cohort_conninfo_path(const char *dir, enum cohort_role role, char *buf,
			 size_t size, struct cohort_error *err);
/* Write a connection file atomically (temp file + rename), mode 0600. */
int cohort_conninfo_write(const char *path, const struct cohort_conninfo *ci,
			  struct cohort_error *err);
/* Read and validate a connection file; a missing file says "no controller
 * running for profile ... (no connection file ...)". */
int cohort_conninfo_read(const char *path, struct cohort_conninfo *ci,
			 struct cohort_error *err);

#endif
