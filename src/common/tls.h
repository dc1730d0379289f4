/* SPDX-License-Identifier: BSD-3-Clause */
/* tls.h - TLS 1.3 contexts with mutual authentication against a profile CA.
 * Only tls.c and conn.c include OpenSSL headers. */
#ifndef COHORT_TLS_H
#define COHORT_TLS_H

#include <stdbool.h>

#include "cohort/error.h"

struct tls_ctx;

/* A context that presents cert/key and accepts only peers whose certificate
 * the CA in ca signed. server selects the accepting side. */
struct tls_ctx *tls_ctx_new(bool server, const char *ca, const char *cert,
			    const char *key, struct cohort_error *err);
void tls_ctx_free(struct tls_ctx *t);
/* The underlying SSL_CTX (for conn.c). */
void *tls_ctx_ssl_ctx(struct tls_ctx *t);

#endif
