/* SPDX-License-Identifier: BSD-3-Clause */
/* profile.c - profile directories, certificates and connection files. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* flock, O_DIRECTORY, getpwuid_r under -std=c11 too */
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cohort/profile.h"
#include "util.h"

/* Ten years, for the CA and the role certificates alike. */
#define CERT_DAYS (10 * 365 + 2)
/* Start validity an hour early so a node whose clock lags the one that
 * created the profile still accepts freshly made certificates. */
#define CERT_BACKDATE_SECONDS 3600

static const enum cohort_role all_roles[] = {
	COHORT_ROLE_CONTROLLER,
	COHORT_ROLE_ENGINE,
	COHORT_ROLE_CLIENT,
};

/* The files check_perms looks at, keys first. */
static const char *const profile_files[] = {
	"ca-key.pem", "controller-key.pem", "engine-key.pem", "client-key.pem",
	"ca.pem",     "controller.pem",     "engine.pem",     "client.pem",
};

/* "controller", "engine", "client". */
const char *
cohort_role_name(enum cohort_role role)
{
	switch (role) {
	case COHORT_ROLE_CONTROLLER:
		return "controller";
	case COHORT_ROLE_ENGINE:
		return "engine";
	case COHORT_ROLE_CLIENT:
		return "client";
	}
	return "unknown";
}

/* The certificate subject CN for a role: "cohort-controller", ... */
const char *
cohort_role_cn(enum cohort_role role)
{
	switch (role) {
	case COHORT_ROLE_CONTROLLER:
		return "cohort-controller";
	case COHORT_ROLE_ENGINE:
		return "cohort-engine";
	case COHORT_ROLE_CLIENT:
		return "cohort-client";
	}
	return "cohort-unknown";
}

/* errprintf() with the text of OpenSSL's last error appended; clears the
 * OpenSSL error queue so a later failure does not report a stale reason. */
static int __attribute__((format(printf, 2, 3)))
ssl_errprintf(struct cohort_error *err, const char *fmt, ...)
{
	char msg[256];
	char ssl[256];
	unsigned long code = ERR_peek_last_error();
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (code != 0)
		ERR_error_string_n(code, ssl, sizeof(ssl));
	else
		snprintf(ssl, sizeof(ssl), "unknown OpenSSL error");
	ERR_clear_error();
	return errprintf(err, "%s: %s", msg, ssl);
}

static int
profile_join(char *buf, size_t size, const char *dir, const char *name,
	  struct cohort_error *err)
{
	int n = snprintf(buf, size, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= size)
		return errprintf(err, "path too long: %s/%s", dir, name);
	return 0;
}

static int
role_paths(const char *dir, enum cohort_role role, char *cert, char *key,
	   size_t size, struct cohort_error *err)
{
	char name[64];

	snprintf(name, sizeof(name), "%s.pem", cohort_role_name(role));
	if (profile_join(cert, size, dir, name, err) < 0)
		return -1;
	snprintf(name, sizeof(name), "%s-key.pem", cohort_role_name(role));
	return profile_join(key, size, dir, name, err);
}

/* Resolve a profile directory into buf. */
int
cohort_profile_path(const char *name, char *buf, size_t size,
		    struct cohort_error *err)
{
	const char *base = getenv("COHORT_DIR");
	const char *home = NULL;
	struct passwd pw;
	struct passwd *pwp = NULL;
	char *pwbuf = NULL;
	size_t pwlen = 16384;
	int n;
	int rc = -1;

	if (name == NULL)
		name = "default";
	if (*name == '\0') {
		errprintf(err, "empty profile name");
		goto error;
	}
	if (strchr(name, '/') != NULL) {
		n = snprintf(buf, size, "%s", name);
	} else if (base != NULL && *base != '\0') {
		n = snprintf(buf, size, "%s/profile_%s", base, name);
	} else {
		home = getenv("HOME");
		if (home == NULL || *home == '\0') {
			pwbuf = malloc(pwlen);
			if (pwbuf == NULL) {
				errprintf(err, "out of memory");
				goto error;
			}
			if (getpwuid_r(getuid(), &pw, pwbuf, pwlen, &pwp) != 0 ||
			    pwp == NULL || pwp->pw_dir == NULL ||
			    *pwp->pw_dir == '\0') {
				errprintf(err,
					  "cannot find a home directory for "
					  "uid %ld (set HOME or COHORT_DIR)",
					  (long)getuid());
				goto error;
			}
			home = pwp->pw_dir;
		}
		n = snprintf(buf, size, "%s/.cohort/profile_%s", home, name);
	}
	if (n < 0 || (size_t)n >= size) {
		errprintf(err, "profile path for \"%s\" is too long", name);
		goto error;
	}
	rc = 0;
error:
	free(pwbuf);
	return rc;
}

/* mkdir(path, 0700), accepting an existing directory. Returns 1 if the
 * directory was created, 0 if it was there, -1 on error. */
static int
mkdir_private(const char *path, struct cohort_error *err)
{
	struct stat st;

	if (mkdir(path, 0700) == 0) {
		/* The umask may have taken bits we want to keep. */
		if (chmod(path, 0700) < 0)
			return errprintf(err, "cannot chmod 700 %s: %s", path,
					 strerror(errno));
		return 1;
	}
	if (errno != EEXIST) {
		/* Some file systems say EACCES or EROFS for a directory that
		 * exists but that we may not write to; that is fine. */
		int saved = errno;

		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			return 0;
		return errprintf(err, "cannot create directory %s: %s", path,
				 strerror(saved));
	}
	if (stat(path, &st) < 0)
		return errprintf(err, "cannot stat %s: %s", path,
				 strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return errprintf(err, "%s exists and is not a directory", path);
	return 0;
}

/* Create dir and its missing parents, each mode 0700. */
static int
mkdir_parents(const char *dir, struct cohort_error *err)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);

	if (len == 0)
		return errprintf(err, "empty profile directory name");
	if (len >= sizeof(path))
		return errprintf(err, "profile directory name too long: %s",
				 dir);
	memcpy(path, dir, len + 1);
	for (size_t i = 1; i < len; i++) {
		if (path[i] != '/' || path[i - 1] == '/')
			continue;
		path[i] = '\0';
		if (mkdir_private(path, err) < 0)
			return -1;
		path[i] = '/';
	}
	return mkdir_private(path, err) < 0 ? -1 : 0;
}

static int
write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Write path atomically: a fresh 0600 temp file beside it, fsync, rename.
 * A crash leaves either the old file or the new one, never half of one. */
static int
write_file_atomic(const char *path, const void *data, size_t len,
		  struct cohort_error *err)
{
	char tmp[PATH_MAX];
	unsigned int nonce;
	int fd = -1;
	int n;

	for (int tries = 0; fd < 0; tries++) {
		if (RAND_bytes((unsigned char *)&nonce, sizeof(nonce)) != 1)
			return ssl_errprintf(err, "cannot make a temp name");
		n = snprintf(tmp, sizeof(tmp), "%s.%ld.%08x.tmp", path,
			     (long)getpid(), nonce);
		if (n < 0 || (size_t)n >= sizeof(tmp))
			return errprintf(err, "path too long: %s", path);
		fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0 && (errno != EEXIST || tries >= 8))
			return errprintf(err, "cannot create %s: %s", tmp,
					 strerror(errno));
	}
	if (fchmod(fd, 0600) < 0) {
		errprintf(err, "cannot chmod 600 %s: %s", tmp, strerror(errno));
		goto error;
	}
	if (write_all(fd, data, len) < 0) {
		errprintf(err, "cannot write %s: %s", tmp, strerror(errno));
		goto error;
	}
	if (fsync(fd) < 0) {
		errprintf(err, "cannot sync %s: %s", tmp, strerror(errno));
		goto error;
	}
	n = close(fd);
	fd = -1;
	if (n < 0) {
		errprintf(err, "cannot write %s: %s", tmp, strerror(errno));
		goto error;
	}
	if (rename(tmp, path) < 0) {
		errprintf(err, "cannot rename %s to %s: %s", tmp, path,
			  strerror(errno));
		goto error;
	}
	return 0;
error:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return -1;
}

/* Write a certificate (key == NULL) or a private key (cert == NULL) as PEM.
 * Keys go through a secure-memory BIO, which is cleansed when freed. */
static int
write_pem(const char *path, X509 *cert, EVP_PKEY *key,
	  struct cohort_error *err)
{
	BIO *bio = BIO_new(cert != NULL ? BIO_s_mem() : BIO_s_secmem());
	char *data = NULL;
	long len;
	int rc = -1;

	if (bio == NULL) {
		ssl_errprintf(err, "cannot allocate a BIO for %s", path);
		goto error;
	}
	if (cert != NULL ? PEM_write_bio_X509(bio, cert) != 1
			 : PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0,
						    NULL, NULL) != 1) {
		ssl_errprintf(err, "cannot encode %s", path);
		goto error;
	}
	len = BIO_get_mem_data(bio, &data);
	if (len <= 0 || data == NULL) {
		ssl_errprintf(err, "cannot encode %s", path);
		goto error;
	}
	rc = write_file_atomic(path, data, (size_t)len, err);
error:
	BIO_free(bio);
	return rc;
}

/* Never prompt for a pass phrase: profile keys are not encrypted. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static X509 *
load_cert(const char *path, struct cohort_error *err)
{
	BIO *bio = BIO_new_file(path, "r");
	X509 *cert = NULL;

	if (bio == NULL) {
		ssl_errprintf(err, "cannot open %s", path);
		return NULL;
	}
	cert = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
	if (cert == NULL)
		ssl_errprintf(err, "cannot read a certificate from %s", path);
	BIO_free(bio);
	return cert;
}

static EVP_PKEY *
load_key(const char *path, struct cohort_error *err)
{
	BIO *bio = BIO_new_file(path, "r");
	EVP_PKEY *key = NULL;

	if (bio == NULL) {
		ssl_errprintf(err, "cannot open %s", path);
		return NULL;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	if (key == NULL)
		ssl_errprintf(err, "cannot read a private key from %s", path);
	BIO_free(bio);
	return key;
}

/* 1 if both files exist, 0 if either is missing, -1 on other errors. */
static int
files_exist(const char *a, const char *b, struct cohort_error *err)
{
	const char *paths[] = { a, b };
	struct stat st;
	int missing = 0;

	for (size_t i = 0; i < 2; i++) {
		if (stat(paths[i], &st) == 0)
			continue;
		if (errno != ENOENT)
			return errprintf(err, "cannot stat %s: %s", paths[i],
					 strerror(errno));
		missing = 1;
	}
	return !missing;
}

static int
random_hex(char *buf, size_t nbytes, struct cohort_error *err)
{
	unsigned char raw[32];

	if (nbytes > sizeof(raw))
		return errprintf(err, "random_hex: %zu bytes is too many",
				 nbytes);
	if (RAND_bytes(raw, (int)nbytes) != 1)
		return ssl_errprintf(err, "cannot get random bytes");
	for (size_t i = 0; i < nbytes; i++)
		snprintf(buf + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

/* A random, positive, non-zero 128-bit serial number. */
static int
set_random_serial(X509 *cert, struct cohort_error *err)
{
	unsigned char raw[16];
	BIGNUM *bn = NULL;
	int rc = -1;

	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		ssl_errprintf(err, "cannot get random bytes for a serial");
		goto error;
	}
	/* DER integers are signed: a clear top bit keeps it 16 bytes. */
	raw[0] &= 0x7f;
	raw[sizeof(raw) - 1] |= 0x01;
	bn = BN_bin2bn(raw, sizeof(raw), NULL);
	if (bn == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) == NULL) {
		ssl_errprintf(err, "cannot set a serial number");
		goto error;
	}
	rc = 0;
error:
	BN_free(bn);
	return rc;
}

static int
add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value,
	struct cohort_error *err)
{
	X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
	int rc = -1;

	if (ext == NULL) {
		ssl_errprintf(err, "cannot make extension %s = %s",
			      OBJ_nid2sn(nid), value);
		goto error;
	}
	if (X509_add_ext(cert, ext, -1) != 1) {
		ssl_errprintf(err, "cannot add extension %s", OBJ_nid2sn(nid));
		goto error;
	}
	rc = 0;
error:
	X509_EXTENSION_free(ext);
	return rc;
}

static EVP_PKEY *
make_key(struct cohort_error *err)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	if (key == NULL)
		ssl_errprintf(err, "cannot generate an EC P-256 key");
	return key;
}

/* Make a certificate for key with subject O=Cohort, CN=cn, signed by
 * ca/ca_key, or self-signed as a CA when ca is NULL. */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, X509 *ca, EVP_PKEY *ca_key,
	  struct cohort_error *err)
{
	X509 *cert = X509_new();
	X509_NAME *name;
	X509V3_CTX ctx;
	int self = ca == NULL;

	if (cert == NULL) {
		ssl_errprintf(err, "cannot allocate a certificate");
		goto error;
	}
	if (set_random_serial(cert, err) < 0)
		goto error;
	name = X509_get_subject_name(cert);
	if (X509_set_version(cert, X509_VERSION_3) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(cert),
			    -CERT_BACKDATE_SECONDS) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(cert), CERT_DAYS, 0, NULL) ==
		    NULL ||
	    X509_set_pubkey(cert, key) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
				       (const unsigned char *)"Cohort", -1, -1,
				       0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				       (const unsigned char *)cn, -1, -1,
				       0) != 1 ||
	    X509_set_issuer_name(cert, self ? name
					    : X509_get_subject_name(ca)) != 1) {
		ssl_errprintf(err, "cannot fill certificate %s", cn);
		goto error;
	}
	/* Never outlive the CA that signs us. */
	if (!self && ASN1_TIME_compare(X509_get0_notAfter(cert),
				       X509_get0_notAfter(ca)) > 0 &&
	    X509_set1_notAfter(cert, X509_get0_notAfter(ca)) != 1) {
		ssl_errprintf(err, "cannot set the expiry of %s", cn);
		goto error;
	}

	X509V3_set_ctx(&ctx, self ? cert : ca, cert, NULL, NULL, 0);
	if (self) {
		if (add_ext(cert, &ctx, NID_basic_constraints,
			    "critical,CA:TRUE", err) < 0 ||
		    add_ext(cert, &ctx, NID_key_usage,
			    "critical,keyCertSign,cRLSign", err) < 0 ||
		    add_ext(cert, &ctx, NID_subject_key_identifier, "hash",
			    err) < 0)
			goto error;
	} else {
		if (add_ext(cert, &ctx, NID_basic_constraints,
			    "critical,CA:FALSE", err) < 0 ||
		    add_ext(cert, &ctx, NID_key_usage,
			    "critical,digitalSignature", err) < 0 ||
		    add_ext(cert, &ctx, NID_ext_key_usage,
			    "serverAuth,clientAuth", err) < 0 ||
		    add_ext(cert, &ctx, NID_subject_alt_name,
			    "DNS:localhost,IP:127.0.0.1", err) < 0 ||
		    add_ext(cert, &ctx, NID_subject_key_identifier, "hash",
			    err) < 0 ||
		    add_ext(cert, &ctx, NID_authority_key_identifier,
			    "keyid:always", err) < 0)
			goto error;
	}
	if (X509_sign(cert, self ? key : ca_key, EVP_sha256()) <= 0) {
		ssl_errprintf(err, "cannot sign certificate %s", cn);
		goto error;
	}
	return cert;
error:
	X509_free(cert);
	return NULL;
}

/* Load the CA pair and check that it is usable for signing. */
static int
load_ca(const char *cert_path, const char *key_path, X509 **ca,
	EVP_PKEY **ca_key, struct cohort_error *err)
{
	*ca = load_cert(cert_path, err);
	if (*ca == NULL)
		goto error;
	*ca_key = load_key(key_path, err);
	if (*ca_key == NULL)
		goto error;
	if (X509_check_private_key(*ca, *ca_key) != 1) {
		ssl_errprintf(err,
			      "%s does not match %s (remove %s to make a new "
			      "CA and certificates)",
			      key_path, cert_path, cert_path);
		goto error;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(*ca)) < 0) {
		errprintf(err,
			  "CA certificate %s has expired (remove it to make a "
			  "new CA and certificates)",
			  cert_path);
		goto error;
	}
	return 0;
error:
	X509_free(*ca);
	EVP_PKEY_free(*ca_key);
	*ca = NULL;
	*ca_key = NULL;
	return -1;
}

/* Make a key and certificate for role, signed by the CA; key first, so a
 * crash in between leaves the certificate missing and we redo both. */
static int
issue_role(const char *dir, enum cohort_role role, X509 *ca,
	   EVP_PKEY *ca_key, struct cohort_error *err)
{
	char cert_path[PATH_MAX];
	char key_path[PATH_MAX];
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int rc = -1;

	if (role_paths(dir, role, cert_path, key_path, sizeof(cert_path),
		       err) < 0)
		goto error;
	key = make_key(err);
	if (key == NULL)
		goto error;
	cert = make_cert(key, cohort_role_cn(role), ca, ca_key, err);
	if (cert == NULL)
		goto error;
	if (write_pem(key_path, NULL, key, err) < 0 ||
	    write_pem(cert_path, cert, NULL, err) < 0)
		goto error;
	rc = 0;
error:
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

/* Serialise concurrent ensure calls on the same profile (say, a controller
 * and a client started together) so they do not make two CAs. Best effort:
 * flock on a directory opened read-only fails on some NFS setups, and then
 * we go on unlocked rather than refuse to start. */
static int
lock_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

/* Create the profile directory and any missing CA or role certificates. */
int
cohort_profile_ensure(const char *dir, struct cohort_error *err)
{
	char ca_path[PATH_MAX];
	char ca_key_path[PATH_MAX];
	char cert_path[PATH_MAX];
	char key_path[PATH_MAX];
	EVP_PKEY *ca_key = NULL;
	X509 *ca = NULL;
	char cn[64];
	int lock_fd = -1;
	int fresh;
	int rc = -1;

	if (dir == NULL) {
		errprintf(err, "no profile directory");
		goto error;
	}
	if (mkdir_parents(dir, err) < 0)
		goto error;
	lock_fd = lock_dir(dir);
	if (profile_join(ca_path, sizeof(ca_path), dir, "ca.pem", err) < 0 ||
	    profile_join(ca_key_path, sizeof(ca_key_path), dir, "ca-key.pem",
		      err) < 0)
		goto error;

	switch (files_exist(ca_path, ca_key_path, err)) {
	case 1:
		if (load_ca(ca_path, ca_key_path, &ca, &ca_key, err) < 0)
			goto error;
		fresh = 0;
		break;
	case 0:
		/* ca.pem is written last and serves as the commit mark: until
		 * it exists, a crashed run is simply redone from scratch, and
		 * ca.pem never pairs with a ca-key.pem it does not match. */
		if (unlink(ca_path) < 0 && errno != ENOENT) {
			errprintf(err, "cannot remove %s: %s", ca_path,
				  strerror(errno));
			goto error;
		}
		strcpy(cn, "cohort-ca-");
		if (random_hex(cn + strlen(cn), 8, err) < 0)
			goto error;
		ca_key = make_key(err);
		if (ca_key == NULL)
			goto error;
		ca = make_cert(ca_key, cn, NULL, NULL, err);
		if (ca == NULL)
			goto error;
		if (write_pem(ca_key_path, NULL, ca_key, err) < 0)
			goto error;
		fresh = 1;
		break;
	default:
		goto error;
	}

	for (size_t i = 0; i < sizeof(all_roles) / sizeof(all_roles[0]); i++) {
		if (!fresh) {
			int have;

			if (role_paths(dir, all_roles[i], cert_path, key_path,
				       sizeof(cert_path), err) < 0)
				goto error;
			have = files_exist(cert_path, key_path, err);
			if (have < 0)
				goto error;
			if (have)
				continue;
		}
		if (issue_role(dir, all_roles[i], ca, ca_key, err) < 0)
			goto error;
	}
	if (fresh && write_pem(ca_path, ca, NULL, err) < 0)
		goto error;
	rc = 0;
error:
	if (lock_fd >= 0)
		close(lock_fd);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	return rc;
}

/* Refuse a profile that group or others can read or write. */
int
cohort_profile_check_perms(const char *dir, struct cohort_error *err)
{
	char path[PATH_MAX];
	struct stat st;

	if (stat(dir, &st) < 0)
		return errprintf(err, "cannot stat profile directory %s: %s",
				 dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return errprintf(err, "profile directory %s is not a directory",
				 dir);
	if (st.st_mode & 077)
		return errprintf(err,
				 "profile directory %s is accessible by other "
				 "users (mode %04o); fix with: chmod 700 %s",
				 dir, (unsigned int)(st.st_mode & 07777), dir);
	for (size_t i = 0; i < sizeof(profile_files) / sizeof(profile_files[0]);
	     i++) {
		if (profile_join(path, sizeof(path), dir, profile_files[i], err) <
		    0)
			return -1;
		if (stat(path, &st) < 0) {
			if (errno == ENOENT)
				continue;
			return errprintf(err, "cannot stat %s: %s", path,
					 strerror(errno));
		}
		if (st.st_mode & 077)
			return errprintf(err,
					 "profile file %s is readable by other "
					 "users (mode %04o); fix with: chmod "
					 "600 %s",
					 path,
					 (unsigned int)(st.st_mode & 07777),
					 path);
	}
	return 0;
}

/* Path of the connection file of a role (engine or client) in dir. */
int
cohort_conninfo_path(const char *dir, enum cohort_role role, char *buf,
		     size_t size, struct cohort_error *err)
{
	if (role != COHORT_ROLE_ENGINE && role != COHORT_ROLE_CLIENT)
		return errprintf(err, "the %s role has no connection file",
				 cohort_role_name(role));
	return profile_join(buf, size, dir,
			 role == COHORT_ROLE_ENGINE ? "engine.json"
						    : "client.json",
			 err);
}

static int
check_field_str(const char *path, const char *field, const char *s,
		size_t size, struct cohort_error *err)
{
	size_t len = strnlen(s, size);

	if (len == size)
		return errprintf(err,
				 "connection file %s: field \"%s\" is not "
				 "terminated",
				 path, field);
	if (len == 0)
		return errprintf(err,
				 "connection file %s: field \"%s\" is empty",
				 path, field);
	return 0;
}

/* Write a connection file atomically (temp file + rename), mode 0600. */
int
cohort_conninfo_write(const char *path, const struct cohort_conninfo *ci,
		      struct cohort_error *err)
{
	json_error_t jerr;
	json_t *root = NULL;
	char *text = NULL;
	char *data = NULL;
	size_t len;
	int rc = -1;

	if (check_field_str(path, "ip", ci->ip, sizeof(ci->ip), err) < 0 ||
	    check_field_str(path, "ca", ci->ca, sizeof(ci->ca), err) < 0 ||
	    check_field_str(path, "cert", ci->cert, sizeof(ci->cert), err) <
		    0 ||
	    check_field_str(path, "key", ci->key, sizeof(ci->key), err) < 0)
		goto error;
	root = json_pack_ex(&jerr, 0, "{s:i, s:s, s:i, s:s, s:s, s:s, s:I}",
			    "version", ci->version, "ip", ci->ip, "port",
			    ci->port, "ca", ci->ca, "cert", ci->cert, "key",
			    ci->key, "controller_pid",
			    (json_int_t)ci->controller_pid);
	if (root != NULL && ci->socket[0] != '\0') {
		if (check_field_str(path, "socket", ci->socket,
				    sizeof(ci->socket), err) < 0)
			goto error;
		if (json_object_set_new(root, "socket",
					json_string(ci->socket)) < 0) {
			errprintf(err, "connection file %s: cannot encode",
				  path);
			goto error;
		}
	}
	if (root == NULL) {
		errprintf(err, "connection file %s: cannot encode: %s", path,
			  jerr.text);
		goto error;
	}
	text = json_dumps(root, JSON_INDENT(2));
	if (text == NULL) {
		errprintf(err, "connection file %s: cannot encode", path);
		goto error;
	}
	len = strlen(text);
	data = malloc(len + 1);
	if (data == NULL) {
		errprintf(err, "out of memory");
		goto error;
	}
	memcpy(data, text, len);
	data[len] = '\n';
	rc = write_file_atomic(path, data, len + 1, err);
error:
	free(data);
	free(text);
	json_decref(root);
	return rc;
}

static int
get_int(json_t *root, const char *path, const char *field, long long min,
	long long max, long long *out, struct cohort_error *err)
{
	json_t *v = json_object_get(root, field);

	if (v == NULL)
		return errprintf(err, "connection file %s: field \"%s\" is "
				      "missing",
				 path, field);
	if (!json_is_integer(v))
		return errprintf(err,
				 "connection file %s: field \"%s\" is not an "
				 "integer",
				 path, field);
	*out = json_integer_value(v);
	if (*out < min || *out > max)
		return errprintf(err,
				 "connection file %s: field \"%s\" is out of "
				 "range (%lld)",
				 path, field, *out);
	return 0;
}

static int
get_str(json_t *root, const char *path, const char *field, char *buf,
	size_t size, struct cohort_error *err)
{
	json_t *v = json_object_get(root, field);
	size_t len;

	if (v == NULL)
		return errprintf(err, "connection file %s: field \"%s\" is "
				      "missing",
				 path, field);
	if (!json_is_string(v))
		return errprintf(err,
				 "connection file %s: field \"%s\" is not a "
				 "string",
				 path, field);
	len = json_string_length(v);
	if (len >= size)
		return errprintf(err,
				 "connection file %s: field \"%s\" is too long "
				 "(%zu bytes, at most %zu)",
				 path, field, len, size - 1);
	if (len == 0 || strlen(json_string_value(v)) != len)
		return errprintf(err,
				 "connection file %s: field \"%s\" is empty or "
				 "holds a NUL byte",
				 path, field);
	memcpy(buf, json_string_value(v), len + 1);
	return 0;
}

/* Read and validate a connection file. */
int
cohort_conninfo_read(const char *path, struct cohort_conninfo *ci,
		     struct cohort_error *err)
{
	struct cohort_conninfo tmp;
	char dir[PATH_MAX];
	json_error_t jerr;
	json_t *root = NULL;
	FILE *fp = NULL;
	char *slash;
	long long v = 0;
	int rc = -1;

	memset(&tmp, 0, sizeof(tmp));
	fp = fopen(path, "re");
	if (fp == NULL && errno == ENOENT) {
		snprintf(dir, sizeof(dir), "%s", path);
		slash = strrchr(dir, '/');
		if (slash == NULL)
			snprintf(dir, sizeof(dir), ".");
		else if (slash == dir)
			dir[1] = '\0';
		else
			*slash = '\0';
		errprintf(err,
			  "no controller running for profile %s (no connection "
			  "file %s)",
			  dir, path);
		goto error;
	}
	if (fp == NULL) {
		errprintf(err, "cannot open connection file %s: %s", path,
			  strerror(errno));
		goto error;
	}
	root = json_loadf(fp, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		errprintf(err,
			  "connection file %s: malformed JSON at line %d: %s",
			  path, jerr.line, jerr.text);
		goto error;
	}
	if (!json_is_object(root)) {
		errprintf(err, "connection file %s: not a JSON object", path);
		goto error;
	}
	if (get_int(root, path, "version", 0, INT_MAX, &v, err) < 0)
		goto error;
	tmp.version = (int)v;
	if (get_str(root, path, "ip", tmp.ip, sizeof(tmp.ip), err) < 0)
		goto error;
	if (get_int(root, path, "port", 1, 65535, &v, err) < 0)
		goto error;
	tmp.port = (int)v;
	if (get_str(root, path, "ca", tmp.ca, sizeof(tmp.ca), err) < 0 ||
	    get_str(root, path, "cert", tmp.cert, sizeof(tmp.cert), err) < 0 ||
	    get_str(root, path, "key", tmp.key, sizeof(tmp.key), err) < 0)
		goto error;
	if (get_int(root, path, "controller_pid", 1, INT_MAX, &v, err) < 0)
		goto error;
	tmp.controller_pid = (pid_t)v;
	/* Optional: controllers before the local socket wrote none. */
	if (json_object_get(root, "socket") != NULL &&
	    get_str(root, path, "socket", tmp.socket, sizeof(tmp.socket),
		    err) < 0)
		goto error;
	*ci = tmp;
	rc = 0;
error:
	json_decref(root);
	if (fp != NULL)
		fclose(fp);
	return rc;
}
