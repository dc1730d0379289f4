/* SPDX-License-Identifier: BSD-3-Clause */
/* tls.c - TLS 1.3 contexts with mutual authentication against a profile CA. */
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls.h"
#include "util.h"

struct tls_ctx {
	SSL_CTX *ctx;
};

static int
ssl_errprintf(struct cohort_error *err, const char *what, const char *path)
{
	char buf[256];
	unsigned long e = ERR_peek_last_error();

	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return errprintf(err, "%s %s: %s", what, path ? path : "",
			 e ? buf : "unknown TLS error");
}

/* Build a context for one side of a mutually authenticated connection. */
struct tls_ctx *
tls_ctx_new(bool server, const char *ca, const char *cert, const char *key,
	    struct cohort_error *err)
{
	struct tls_ctx *t = xcalloc(1, sizeof(*t));

	t->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (t->ctx == NULL) {
		ssl_errprintf(err, "cannot create TLS context", NULL);
		goto error;
	}
	/* TLS 1.3 only: nothing older is ever negotiated. */
	if (!SSL_CTX_set_min_proto_version(t->ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(t->ctx, TLS1_3_VERSION)) {
		ssl_errprintf(err, "cannot restrict TLS to version 1.3", NULL);
		goto error;
	}
	if (SSL_CTX_load_verify_locations(t->ctx, ca, NULL) != 1) {
		ssl_errprintf(err, "cannot load CA certificate", ca);
		goto error;
	}
	if (SSL_CTX_use_certificate_chain_file(t->ctx, cert) != 1) {
		ssl_errprintf(err, "cannot load certificate", cert);
		goto error;
	}
	if (SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM) != 1) {
		ssl_errprintf(err, "cannot load private key", key);
		goto error;
	}
	if (SSL_CTX_check_private_key(t->ctx) != 1) {
		ssl_errprintf(err, "private key does not match certificate",
			      cert);
		goto error;
	}
	/* Both sides must present a certificate the profile's CA signed. */
	SSL_CTX_set_verify(t->ctx,
			   SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
			   NULL);
	SSL_CTX_set_verify_depth(t->ctx, 2);
	SSL_CTX_set_mode(t->ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				 SSL_MODE_ENABLE_PARTIAL_WRITE |
				 SSL_MODE_RELEASE_BUFFERS);
	/* A peer that closes without close_notify has simply gone away. */
	SSL_CTX_set_options(t->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (server) {
		/* Connections are long-lived; resumption buys nothing. */
		SSL_CTX_set_num_tickets(t->ctx, 0);
		SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
	}
	return t;
error:
	tls_ctx_free(t);
	return NULL;
}

/* Free a context; NULL is fine. */
void
tls_ctx_free(struct tls_ctx *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

/* The OpenSSL context inside. */
void *
tls_ctx_ssl_ctx(struct tls_ctx *t)
{
	return t->ctx;
}
