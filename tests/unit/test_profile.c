/* SPDX-License-Identifier: BSD-3-Clause */
/* test_profile.c - unit tests for profile directories, certificates and
 * connection files. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkdtemp, nftw */
#endif
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "cohort/profile.h"
#include "tap.h"

static const char *const pem_files[] = {
	"ca.pem",     "ca-key.pem",     "controller.pem", "controller-key.pem",
	"engine.pem", "engine-key.pem", "client.pem",     "client-key.pem",
};

/* Clear stale text so a success message does not show an old error. */
static struct cohort_error *
fresh(struct cohort_error *err)
{
	err->text[0] = '\0';
	return err;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "r");
	char *buf = NULL;
	long n;

	*len = 0;
	if (fp == NULL)
		return NULL;
	if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 &&
	    fseek(fp, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf != NULL && fread(buf, 1, (size_t)n, fp) == (size_t)n) {
			buf[n] = '\0';
			*len = (size_t)n;
		} else {
			free(buf);
			buf = NULL;
		}
	}
	fclose(fp);
	return buf;
}

static int
same_bytes(const char *path, const char *old, size_t old_len)
{
	size_t len;
	char *now = slurp(path, &len);
	int same = now != NULL && old != NULL && len == old_len &&
		   memcmp(now, old, len) == 0;

	free(now);
	return same;
}

static int
spew(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL)
		return -1;
	fputs(text, fp);
	return fclose(fp);
}

static int
file_mode(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -1;
	return (int)(st.st_mode & 07777);
}

static X509 *
read_cert(const char *dir, const char *name)
{
	char path[PATH_MAX];
	X509 *cert = NULL;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "r");
	if (fp == NULL)
		return NULL;
	cert = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	return cert;
}

static EVP_PKEY *
read_key(const char *dir, const char *name)
{
	char path[PATH_MAX];
	EVP_PKEY *key = NULL;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "r");
	if (fp == NULL)
		return NULL;
	key = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	return key;
}

/* 1 if cert chains to ca for TLS client use, 0 if not. */
static int
verifies(X509 *cert, X509 *ca)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int rc = 0;

	if (store != NULL && ctx != NULL && X509_STORE_add_cert(store, ca) &&
	    X509_STORE_CTX_init(ctx, store, cert, NULL) == 1 &&
	    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) == 1)
		rc = X509_verify_cert(ctx) == 1;
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rc;
}

static void
cert_cn(X509 *cert, char *buf, int size)
{
	buf[0] = '\0';
	if (cert != NULL)
		X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
					  NID_commonName, buf, size);
}

static int
count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		chmod(path, 0700);
	return remove(path) < 0 ? -1 : 0;
}

static void
test_ensure(const char *top)
{
	char dir[512];
	char parent[256];
	char path[PATH_MAX];
	char *ca_bytes = NULL;
	char *engine_bytes = NULL;
	size_t ca_len;
	size_t engine_len;
	struct cohort_error err = { "" };
	int rc;

	snprintf(parent, sizeof(parent), "%s/home", top);
	snprintf(dir, sizeof(dir), "%s/profile_a", parent);
	rc = cohort_profile_ensure(dir, fresh(&err));
	ok(rc == 0, "ensure creates a profile (%s)", err.text);
	is_int(file_mode(dir), 0700, "profile directory is mode 0700");
	is_int(file_mode(parent), 0700, "created parent is mode 0700");
	for (size_t i = 0; i < sizeof(pem_files) / sizeof(pem_files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, pem_files[i]);
		ok(file_mode(path) == 0600, "%s exists with mode 0600",
		   pem_files[i]);
	}
	is_int(count_entries(dir), 8, "no temp files are left behind");
	rc = cohort_profile_check_perms(dir, fresh(&err));
	ok(rc == 0, "check_perms accepts a fresh profile (%s)", err.text);

	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	ca_bytes = slurp(path, &ca_len);
	snprintf(path, sizeof(path), "%s/engine.pem", dir);
	engine_bytes = slurp(path, &engine_len);
	ok(ca_bytes != NULL && engine_bytes != NULL, "read ca.pem, engine.pem");

	rc = cohort_profile_ensure(dir, fresh(&err));
	ok(rc == 0, "second ensure succeeds (%s)", err.text);
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	ok(same_bytes(path, ca_bytes, ca_len), "second ensure keeps the CA");
	snprintf(path, sizeof(path), "%s/engine.pem", dir);
	ok(same_bytes(path, engine_bytes, engine_len),
	   "second ensure keeps engine.pem");

	ok(unlink(path) == 0, "remove engine.pem");
	rc = cohort_profile_ensure(dir, fresh(&err));
	ok(rc == 0, "ensure after losing engine.pem succeeds (%s)", err.text);
	ok(file_mode(path) == 0600, "engine.pem is back with mode 0600");
	ok(!same_bytes(path, engine_bytes, engine_len),
	   "engine.pem is a new certificate");
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	ok(same_bytes(path, ca_bytes, ca_len), "the CA is still the same");

	snprintf(path, sizeof(path), "%s/ca-key.pem", dir);
	ok(unlink(path) == 0, "remove ca-key.pem");
	rc = cohort_profile_ensure(dir, fresh(&err));
	ok(rc == 0, "ensure after losing the CA key succeeds (%s)", err.text);
	ok(file_mode(path) == 0600, "ca-key.pem is back with mode 0600");
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	ok(file_mode(path) == 0600 && !same_bytes(path, ca_bytes, ca_len),
	   "a new CA is made");
	snprintf(path, sizeof(path), "%s/engine.pem", dir);
	ok(file_mode(path) == 0600 &&
		   !same_bytes(path, engine_bytes, engine_len),
	   "and new role certificates with it");
	is_int(count_entries(dir), 8, "still exactly the 8 files");

	rc = cohort_profile_ensure("", fresh(&err));
	ok(rc == -1 && err.text[0] != '\0', "ensure rejects an empty path");
	snprintf(path, sizeof(path), "%s/ca.pem/sub", dir);
	rc = cohort_profile_ensure(path, fresh(&err));
	ok(rc == -1 && strstr(err.text, "not a directory") != NULL,
	   "ensure under a regular file fails: %s", err.text);

	free(ca_bytes);
	free(engine_bytes);
}

static void
test_certs(const char *top)
{
	static const struct {
		const char *file;
		const char *key;
		const char *cn;
	} roles[] = {
		{ "controller.pem", "controller-key.pem", "cohort-controller" },
		{ "engine.pem", "engine-key.pem", "cohort-engine" },
		{ "client.pem", "client-key.pem", "cohort-client" },
	};
	char dir[512];
	char other[512];
	struct cohort_error err = { "" };
	X509 *ca = NULL;
	X509 *other_ca = NULL;
	X509 *other_engine = NULL;
	EVP_PKEY *ca_pub;
	char cn[256];
	int rc;

	snprintf(dir, sizeof(dir), "%s/home/profile_a", top);
	snprintf(other, sizeof(other), "%s/home/profile_b", top);
	ca = read_cert(dir, "ca.pem");
	ok(ca != NULL, "ca.pem parses");
	cert_cn(ca, cn, sizeof(cn));
	ok(strstr(cn, "cohort-ca-") == cn && strlen(cn) == 10 + 16,
	   "CA CN is cohort-ca-<id> (%s)", cn);
	ok(ca != NULL && X509_check_ca(ca) >= 1, "CA is a CA");
	ca_pub = ca != NULL ? X509_get0_pubkey(ca) : NULL;
	ok(ca_pub != NULL && X509_verify(ca, ca_pub) == 1,
	   "CA is self-signed");

	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		X509 *cert = read_cert(dir, roles[i].file);
		EVP_PKEY *key = read_key(dir, roles[i].key);

		ok(cert != NULL && key != NULL, "%s and %s parse",
		   roles[i].file, roles[i].key);
		cert_cn(cert, cn, sizeof(cn));
		is_str(cn, roles[i].cn, "role certificate has the role CN");
		ok(cert != NULL && ca_pub != NULL &&
			   X509_verify(cert, ca_pub) == 1,
		   "%s is signed by the CA key", roles[i].file);
		ok(cert != NULL && ca != NULL && verifies(cert, ca),
		   "%s verifies against the CA", roles[i].file);
		ok(cert != NULL && key != NULL &&
			   X509_check_private_key(cert, key) == 1,
		   "%s matches its key", roles[i].file);
		ok(cert != NULL && X509_check_ca(cert) == 0,
		   "%s is not a CA", roles[i].file);
		ok(cert != NULL &&
			   X509_check_host(cert, "localhost", 0, 0, NULL) ==
				   1 &&
			   X509_check_ip_asc(cert, "127.0.0.1", 0) == 1,
		   "%s names localhost and 127.0.0.1", roles[i].file);
		X509_free(cert);
		EVP_PKEY_free(key);
	}

	rc = cohort_profile_ensure(other, fresh(&err));
	ok(rc == 0, "a second profile is created (%s)", err.text);
	other_ca = read_cert(other, "ca.pem");
	other_engine = read_cert(other, "engine.pem");
	ok(other_ca != NULL && other_engine != NULL,
	   "second profile certs parse");
	ok(other_engine != NULL && ca_pub != NULL &&
		   X509_verify(other_engine, ca_pub) != 1,
	   "another profile's engine cert is not signed by our CA");
	ok(other_engine != NULL && ca != NULL && !verifies(other_engine, ca),
	   "another profile's engine cert does not verify against our CA");
	ok(other_engine != NULL && other_ca != NULL &&
		   verifies(other_engine, other_ca),
	   "but it verifies against its own CA");

	X509_free(other_engine);
	X509_free(other_ca);
	X509_free(ca);
}

static void
test_perms(const char *top)
{
	char dir[512];
	char path[PATH_MAX];
	struct cohort_error err = { "" };
	int rc;

	snprintf(dir, sizeof(dir), "%s/home/profile_a", top);
	snprintf(path, sizeof(path), "%s/engine-key.pem", dir);
	ok(chmod(path, 0644) == 0, "chmod 0644 engine-key.pem");
	rc = cohort_profile_check_perms(dir, fresh(&err));
	ok(rc == -1, "check_perms refuses a readable key");
	ok(strstr(err.text, "chmod 600") != NULL &&
		   strstr(err.text, path) != NULL &&
		   strstr(err.text, "0644") != NULL,
	   "message names the file and the fix: %s", err.text);
	ok(chmod(path, 0600) == 0, "chmod 0600 engine-key.pem");

	ok(chmod(dir, 0755) == 0, "chmod 0755 the profile directory");
	rc = cohort_profile_check_perms(dir, fresh(&err));
	ok(rc == -1 && strstr(err.text, "chmod 700") != NULL &&
		   strstr(err.text, "0755") != NULL,
	   "check_perms refuses an open directory: %s", err.text);
	ok(chmod(dir, 0700) == 0, "chmod 0700 the profile directory");

	snprintf(path, sizeof(path), "%s/client.pem", dir);
	ok(unlink(path) == 0, "remove client.pem");
	rc = cohort_profile_check_perms(dir, fresh(&err));
	ok(rc == 0, "a missing file is not a permission error (%s)", err.text);

	snprintf(path, sizeof(path), "%s/nonexistent", top);
	rc = cohort_profile_check_perms(path, fresh(&err));
	ok(rc == -1, "check_perms on a missing directory fails: %s", err.text);
}

static void
test_conninfo(const char *top)
{
	char dir[512];
	char path[PATH_MAX];
	char bad[PATH_MAX];
	char expect[PATH_MAX * 2];
	struct cohort_conninfo ci;
	struct cohort_conninfo got;
	struct cohort_error err = { "" };
	int rc;

	snprintf(dir, sizeof(dir), "%s/home/profile_a", top);
	rc = cohort_conninfo_path(dir, COHORT_ROLE_ENGINE, path, sizeof(path),
				  &err);
	snprintf(expect, sizeof(expect), "%s/engine.json", dir);
	ok(rc == 0 && strcmp(path, expect) == 0, "engine connection file path");
	rc = cohort_conninfo_path(dir, COHORT_ROLE_CLIENT, bad, sizeof(bad),
				  &err);
	snprintf(expect, sizeof(expect), "%s/client.json", dir);
	ok(rc == 0 && strcmp(bad, expect) == 0, "client connection file path");
	rc = cohort_conninfo_path(dir, COHORT_ROLE_CONTROLLER, bad,
				  sizeof(bad), fresh(&err));
	ok(rc == -1, "controller has no connection file: %s", err.text);
	rc = cohort_conninfo_path(dir, COHORT_ROLE_ENGINE, bad, 8, fresh(&err));
	ok(rc == -1, "conninfo_path reports overflow: %s", err.text);

	rc = cohort_conninfo_read(path, &got, fresh(&err));
	snprintf(expect, sizeof(expect),
		 "no controller running for profile %s (no connection file %s)",
		 dir, path);
	ok(rc == -1, "reading a missing connection file fails");
	is_str(err.text, expect, "missing file says no controller is running");

	memset(&ci, 0, sizeof(ci));
	snprintf(ci.ip, sizeof(ci.ip), "10.1.2.3");
	ci.port = 54321;
	snprintf(ci.ca, sizeof(ci.ca), "%s/ca.pem", dir);
	snprintf(ci.cert, sizeof(ci.cert), "%s/engine.pem", dir);
	snprintf(ci.key, sizeof(ci.key), "%s/engine-key.pem", dir);
	ci.controller_pid = 4242;
	ci.version = 3;
	rc = cohort_conninfo_write(path, &ci, fresh(&err));
	ok(rc == 0, "conninfo_write succeeds (%s)", err.text);
	is_int(file_mode(path), 0600, "connection file is mode 0600");
	memset(&got, 0x55, sizeof(got));
	rc = cohort_conninfo_read(path, &got, fresh(&err));
	ok(rc == 0, "conninfo_read succeeds (%s)", err.text);
	is_str(got.ip, ci.ip, "ip round-trips");
	is_int(got.port, ci.port, "port round-trips");
	is_str(got.ca, ci.ca, "ca round-trips");
	is_str(got.cert, ci.cert, "cert round-trips");
	is_str(got.key, ci.key, "key round-trips");
	is_int(got.controller_pid, ci.controller_pid, "pid round-trips");
	is_int(got.version, ci.version, "version round-trips");

	ci.port = 1234;
	rc = cohort_conninfo_write(path, &ci, fresh(&err));
	ok(rc == 0, "conninfo_write replaces an existing file (%s)", err.text);
	rc = cohort_conninfo_read(path, &got, fresh(&err));
	ok(rc == 0 && got.port == 1234, "the new contents are read back");
	is_int(count_entries(dir), 8, "no temp files are left behind");

	ci.ip[0] = '\0';
	rc = cohort_conninfo_write(path, &ci, fresh(&err));
	ok(rc == -1 && strstr(err.text, "\"ip\"") != NULL,
	   "conninfo_write refuses an empty ip: %s", err.text);

	snprintf(bad, sizeof(bad), "%s/bad.json", dir);
	ok(spew(bad, "{\"version\": 1, \"ip\": ") == 0, "write truncated JSON");
	rc = cohort_conninfo_read(bad, &got, fresh(&err));
	ok(rc == -1 && strstr(err.text, bad) != NULL &&
		   strstr(err.text, "malformed") != NULL,
	   "malformed JSON is an error naming the file: %s", err.text);

	ok(spew(bad, "[1, 2]") == 0, "write a JSON array");
	rc = cohort_conninfo_read(bad, &got, fresh(&err));
	ok(rc == -1, "a non-object is an error: %s", err.text);

	ok(spew(bad, "{\"version\": 1, \"ip\": \"127.0.0.1\", \"ca\": \"/a\", "
		     "\"cert\": \"/b\", \"key\": \"/c\", "
		     "\"controller_pid\": 7}") == 0,
	   "write JSON without a port");
	rc = cohort_conninfo_read(bad, &got, fresh(&err));
	ok(rc == -1 && strstr(err.text, "\"port\"") != NULL &&
		   strstr(err.text, bad) != NULL,
	   "a missing field is named: %s", err.text);

	ok(spew(bad, "{\"version\": 1, \"ip\": \"127.0.0.1\", "
		     "\"port\": \"80\", "
		     "\"ca\": \"/a\", \"cert\": \"/b\", \"key\": \"/c\", "
		     "\"controller_pid\": 7}") == 0,
	   "write JSON with a string port");
	rc = cohort_conninfo_read(bad, &got, fresh(&err));
	ok(rc == -1 && strstr(err.text, "\"port\"") != NULL,
	   "a wrong-typed field is named: %s", err.text);

	ok(spew(bad, "{\"version\": 1, \"ip\": \"127.0.0.1\", \"port\": 70000, "
		     "\"ca\": \"/a\", \"cert\": \"/b\", \"key\": \"/c\", "
		     "\"controller_pid\": 7}") == 0,
	   "write JSON with port 70000");
	rc = cohort_conninfo_read(bad, &got, fresh(&err));
	ok(rc == -1 && strstr(err.text, "\"port\"") != NULL,
	   "an out-of-range port is refused: %s", err.text);

	ok(spew(bad, "{\"version\": 1, \"ip\": \""
		     "0123456789012345678901234567890123456789"
		     "01234567890123456789012345678901234567890\", "
		     "\"port\": 80, \"ca\": \"/a\", \"cert\": \"/b\", "
		     "\"key\": \"/c\", \"controller_pid\": 7}") == 0,
	   "write JSON with an 81-byte ip");
	rc = cohort_conninfo_read(bad, &got, fresh(&err));
	ok(rc == -1 && strstr(err.text, "\"ip\"") != NULL &&
		   strstr(err.text, "too long") != NULL,
	   "a too-long string is refused: %s", err.text);
	ok(got.port == 1234, "a failed read leaves the struct alone");

	ok(unlink(bad) == 0 && unlink(path) == 0, "remove connection files");
}

static void
test_path(const char *top)
{
	char buf[PATH_MAX];
	char expect[PATH_MAX * 2];
	char small[16];
	struct cohort_error err = { "" };
	int rc;

	setenv("COHORT_DIR", "/some/where", 1);
	rc = cohort_profile_path("foo", buf, sizeof(buf), fresh(&err));
	ok(rc == 0, "profile_path with COHORT_DIR (%s)", err.text);
	is_str(buf, "/some/where/profile_foo", "COHORT_DIR is honoured");
	rc = cohort_profile_path(NULL, buf, sizeof(buf), fresh(&err));
	ok(rc == 0, "profile_path of NULL (%s)", err.text);
	is_str(buf, "/some/where/profile_default", "NULL means default");
	rc = cohort_profile_path("./rel/dir", buf, sizeof(buf), fresh(&err));
	ok(rc == 0, "profile_path of a path (%s)", err.text);
	is_str(buf, "./rel/dir", "a name with a slash is a path");
	rc = cohort_profile_path("/abs/p", buf, sizeof(buf), fresh(&err));
	ok(rc == 0, "profile_path of an absolute path (%s)", err.text);
	is_str(buf, "/abs/p", "an absolute path is kept as-is");
	rc = cohort_profile_path("", buf, sizeof(buf), fresh(&err));
	ok(rc == -1, "an empty name is refused: %s", err.text);
	rc = cohort_profile_path("foo", small, sizeof(small), fresh(&err));
	ok(rc == -1, "overflow is reported: %s", err.text);

	unsetenv("COHORT_DIR");
	setenv("HOME", top, 1);
	rc = cohort_profile_path("bar", buf, sizeof(buf), fresh(&err));
	snprintf(expect, sizeof(expect), "%s/.cohort/profile_bar", top);
	ok(rc == 0, "profile_path under HOME (%s)", err.text);
	is_str(buf, expect, "COHORT_DIR defaults to $HOME/.cohort");

	setenv("COHORT_DIR", "", 1);
	rc = cohort_profile_path("bar", buf, sizeof(buf), fresh(&err));
	ok(rc == 0 && strcmp(buf, expect) == 0,
	   "an empty COHORT_DIR is ignored");

	unsetenv("COHORT_DIR");
	unsetenv("HOME");
	rc = cohort_profile_path("baz", buf, sizeof(buf), fresh(&err));
	ok(rc == 0 && strstr(buf, "/.cohort/profile_baz") != NULL,
	   "without HOME the password entry is used (%s%s)", buf, err.text);
}

int
main(void)
{
	char top[] = "/tmp/test_profile.XXXXXX";
	const char *home = getenv("HOME");
	const char *cohort_dir = getenv("COHORT_DIR");
	char *saved_home = home != NULL ? strdup(home) : NULL;
	char *saved_dir = cohort_dir != NULL ? strdup(cohort_dir) : NULL;

	if (mkdtemp(top) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_ensure(top);
	test_certs(top);
	test_perms(top);
	test_conninfo(top);
	test_path(top);

	if (saved_home != NULL)
		setenv("HOME", saved_home, 1);
	if (saved_dir != NULL)
		setenv("COHORT_DIR", saved_dir, 1);
	free(saved_home);
	free(saved_dir);
	if (nftw(top, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
		diag("cannot remove %s: %s", top, strerror(errno));
	return done_testing();
}
