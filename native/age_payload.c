// age v1 payload chunks (ChaCha20-Poly1305 STREAM, 64 KiB) sealed and opened into buffers the caller
// owns, with the OpenSSL that Node.js itself links (its symbols are exported to addons). The same
// work as agent/package/age/payload-chunks.mjs, without the 64 KiB buffer that every call of
// Node's cipher.update() allocates, zero-fills and leaves to the garbage collector: on the export's
// worker thread that churn cost about a third of the thread's time (page faults, memset, GC).
//
//   sealInto(key, counter, input, final, out) -> bytes written to out
//   openInto(key, counter, input, final, out) -> bytes written to out, or, when chunk i of this run
//                                                fails, -(4 * i + why + 1), why being 0: it does not
//                                                authenticate, 1: a non-final chunk where the input
//                                                ends (truncated), 2: a final chunk with more after
//                                                it (trailing data), 3: an empty final chunk that is
//                                                not the first
//
// `counter` is the STREAM counter of the first chunk (a JS number below 2^53). A run that is not
// final is whole chunks; a final run ends with the final chunk (at least one, maybe empty).
// `out` may be `input` itself when opening (each plaintext lands below its own ciphertext).
#include <node_api.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 65536
#define TAG 16
#define SEALED (CHUNK + TAG)

static void set_nonce(unsigned char nonce[12], uint64_t counter, int last) {
  nonce[0] = 0;
  nonce[1] = 0;
  nonce[2] = 0;
  for (int i = 0; i < 8; i++) nonce[3 + i] = (unsigned char)(counter >> (56 - 8 * i));
  nonce[11] = last ? 1 : 0;
}

typedef struct {
  unsigned char *key;
  size_t key_len;
  uint64_t counter;
  unsigned char *in;
  size_t in_len;
  int final;
  unsigned char *out;
  size_t out_len;
} run_args;

static int get_buffer(napi_env env, napi_value v, unsigned char **data, size_t *len) {
  bool is;
  if (napi_is_buffer(env, v, &is) != napi_ok || !is) return 0;
  void *p;
  if (napi_get_buffer_info(env, v, &p, len) != napi_ok) return 0;
  *data = p;
  return 1;
}

static int read_args(napi_env env, napi_callback_info info, run_args *a) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5) goto bad;
  if (!get_buffer(env, argv[0], &a->key, &a->key_len) || a->key_len != 32) goto bad;
  double counter;
  if (napi_get_value_double(env, argv[1], &counter) != napi_ok || counter < 0 || counter > 9007199254740991.0)
    goto bad;
  a->counter = (uint64_t)counter;
  if (!get_buffer(env, argv[2], &a->in, &a->in_len)) goto bad;
  bool final;
  if (napi_get_value_bool(env, argv[3], &final) != napi_ok) goto bad;
  a->final = final;
  if (!get_buffer(env, argv[4], &a->out, &a->out_len)) goto bad;
  return 1;
bad:
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                        "expected (key: 32-byte Buffer, counter: number, input: Buffer, final: boolean, out: Buffer)");
  return 0;
}

static napi_value number(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

static napi_value seal_into(napi_env env, napi_callback_info info) {
  run_args a;
  if (!read_args(env, info, &a)) return NULL;
  size_t n = a.final ? (a.in_len == 0 ? 1 : (a.in_len + CHUNK - 1) / CHUNK) : a.in_len / CHUNK;
  if (!a.final && a.in_len % CHUNK != 0) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "a run of non-final chunks must be whole 64 KiB chunks");
    return NULL;
  }
  if (a.out_len < a.in_len + n * TAG) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "the output buffer is too small for the sealed run");
    return NULL;
  }
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (ctx == NULL || EVP_EncryptInit_ex(ctx, EVP_chacha20_poly1305(), NULL, NULL, NULL) != 1) goto fail;
  size_t written = 0;
  unsigned char nonce[12];
  for (size_t i = 0; i < n; i++) {
    size_t off = i * CHUNK;
    size_t len = a.in_len - off < CHUNK ? a.in_len - off : CHUNK;
    set_nonce(nonce, a.counter + i, a.final && i == n - 1);
    int l = 0;
    if (EVP_EncryptInit_ex(ctx, NULL, NULL, a.key, nonce) != 1) goto fail;
    if (len > 0 && EVP_EncryptUpdate(ctx, a.out + written, &l, a.in + off, (int)len) != 1) goto fail;
    written += (size_t)l;
    if (EVP_EncryptFinal_ex(ctx, a.out + written, &l) != 1) goto fail;
    written += (size_t)l;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG, a.out + written) != 1) goto fail;
    written += TAG;
  }
  EVP_CIPHER_CTX_free(ctx);
  return number(env, (double)written);
fail:
  EVP_CIPHER_CTX_free(ctx);
  napi_throw_error(env, "ERR_CRYPTO_OPERATION_FAILED", "ChaCha20-Poly1305 sealing failed in OpenSSL");
  return NULL;
}

/** Opens one sealed chunk into `out`; 1 when it authenticates. */
static int open_chunk(EVP_CIPHER_CTX *ctx, const unsigned char *key, uint64_t counter, int last,
                      const unsigned char *in, size_t len, unsigned char *out, size_t *written) {
  unsigned char nonce[12];
  set_nonce(nonce, counter, last);
  int l = 0, f = 0;
  if (EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) != 1) return -1;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG, (void *)(in + len)) != 1) return -1;
  if (len > 0 && EVP_DecryptUpdate(ctx, out, &l, in, (int)len) != 1) return -1;
  if (EVP_DecryptFinal_ex(ctx, out + l, &f) != 1) return 0;
  *written = (size_t)(l + f);
  return 1;
}

static napi_value open_into(napi_env env, napi_callback_info info) {
  run_args a;
  if (!read_args(env, info, &a)) return NULL;
  size_t n = a.final ? (a.in_len + SEALED - 1) / SEALED : a.in_len / SEALED;
  if (a.final && n == 0) n = 1;
  if (!a.final && a.in_len % SEALED != 0) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "a run of non-final sealed chunks must be whole chunks");
    return NULL;
  }
  size_t plain = a.in_len >= n * TAG ? a.in_len - n * TAG : 0;
  if (a.out_len < plain) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "the output buffer is too small for the opened run");
    return NULL;
  }
  // Opening in place, a chunk's plaintext would overwrite the start of its own ciphertext before its
  // tag is checked; it goes through a scratch buffer, so a failed chunk can still be classified.
  int aliased = a.out < a.in + a.in_len && a.in < a.out + a.out_len;
  unsigned char *scratch = NULL;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (ctx == NULL || EVP_DecryptInit_ex(ctx, EVP_chacha20_poly1305(), NULL, NULL, NULL) != 1) goto fail;
  if (aliased && (scratch = malloc(CHUNK)) == NULL) goto fail;
  size_t written = 0;
  for (size_t i = 0; i < n; i++) {
    size_t off = i * SEALED;
    size_t sealed = a.in_len - off < SEALED ? a.in_len - off : SEALED;
    int last = a.final && i == n - 1;
    double failed = -(double)(4 * i + 1);
    if (sealed < TAG) goto done_failed_auth;
    size_t len = sealed - TAG, got = 0;
    unsigned char *to = aliased ? scratch : a.out + written;
    int ok = open_chunk(ctx, a.key, a.counter + i, last, a.in + off, len, to, &got);
    if (ok < 0) goto fail;
    if (ok == 0) {
      // As the other kind of chunk it may open: then it is in the wrong place, not damaged.
      int other = sealed == SEALED ? open_chunk(ctx, a.key, a.counter + i, !last, a.in + off, len, to, &got) : 0;
      if (other < 0) goto fail;
      if (other == 1) failed -= last ? 1 : 2;
      EVP_CIPHER_CTX_free(ctx);
      free(scratch);
      return number(env, failed);
    }
    if (last && got == 0 && a.counter + i > 0) {
      EVP_CIPHER_CTX_free(ctx);
      free(scratch);
      return number(env, failed - 3);
    }
    if (aliased) memmove(a.out + written, scratch, got);
    written += got;
    continue;
  done_failed_auth:
    EVP_CIPHER_CTX_free(ctx);
    free(scratch);
    return number(env, failed);
  }
  EVP_CIPHER_CTX_free(ctx);
  free(scratch);
  return number(env, (double)written);
fail:
  EVP_CIPHER_CTX_free(ctx);
  free(scratch);
  napi_throw_error(env, "ERR_CRYPTO_OPERATION_FAILED", "ChaCha20-Poly1305 opening failed in OpenSSL");
  return NULL;
}

napi_value range_digest_init(napi_env env, napi_value exports);

NAPI_MODULE_INIT() {
  napi_value fn;
  range_digest_init(env, exports);
  napi_create_function(env, "sealInto", NAPI_AUTO_LENGTH, seal_into, NULL, &fn);
  napi_set_named_property(env, exports, "sealInto", fn);
  napi_create_function(env, "openInto", NAPI_AUTO_LENGTH, open_into, NULL, &fn);
  napi_set_named_property(env, exports, "openInto", fn);
  return exports;
}
