/*
 * mdmctl_io: what mdmctl's offline certificate commands (push, dep)
 * share: reading certificate, key and other files, writing new files
 * that never replace anything, printing OpenSSL's error.
 */
#ifndef MDMCTL_IO_H
#define MDMCTL_IO_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/** At most this much is read from one input file. */
#define MDMCTL_MAX_FILE (1024 * 1024)

/** "mdmctl: what: <first OpenSSL error>" on stderr; clears the queue. */
void mdmctl_ossl_error(const char *what);

/* The text of a memory BIO, malloc'd and NUL-terminated (its length in
 * *len when len is not NULL), or NULL. */
char *mdmctl_bio_text(BIO *b, size_t *len);

/**
 * The whole file (at most MDMCTL_MAX_FILE), malloc'd with a NUL after
 * its *len bytes (free()). NULL after a message naming what and path.
 */
unsigned char *mdmctl_read_file(const char *what, const char *path,
                                size_t *len);

/**
 * Every certificate of a PEM file, or the one of a DER file (free with
 * sk_X509_pop_free(sk, X509_free)). NULL after a message.
 */
STACK_OF(X509) * mdmctl_load_certs(const char *what, const char *path);

/** An unencrypted PEM private key (EVP_PKEY_free()); NULL after a
 * message (an encrypted key is refused, never prompted for). */
EVP_PKEY *mdmctl_load_key(const char *what, const char *path);

/** One output file of mdmctl_write_files(). */
typedef struct {
    const char *path;
    mode_t mode; /* 0600 for keys and secrets: set at creation */
    const void *data;
    size_t len;
} mdmctl_file_t;

/**
 * Create every file exclusively (O_EXCL|O_NOFOLLOW: an existing one is
 * never replaced), write and fsync it. All or nothing: on any failure
 * the files this call created are removed. -1 after a message.
 */
int mdmctl_write_files(const mdmctl_file_t *files, size_t n);

/** One "--name VALUE" option of a subcommand and where its value goes. */
typedef struct {
    const char *name;
    const char **value; /* borrowed from argv */
} mdmctl_opt_t;

/**
 * Read argv[0..argc) as "--name VALUE" pairs into the table (ended by a
 * NULL name). NULL on success, else what is wrong (for the usage
 * message): an option without its value, or an unknown option.
 */
const char *mdmctl_opts(int argc, char **argv, const mdmctl_opt_t *opts);

/** DIR exists as a directory, or is created 0700. -1 after a message. */
int mdmctl_out_dir(const char *dir);

/** dir/name into buf; -1 after a message when it does not fit. */
int mdmctl_path(char *buf, size_t size, const char *dir, const char *name);

/** Base64 without line breaks, malloc'd, NUL-terminated; NULL: no
 * memory. */
char *mdmctl_b64(const unsigned char *in, size_t len);

/** Whole days from now until t (negative once passed); 0 on error. */
long mdmctl_days_left(const ASN1_TIME *t);

#endif
