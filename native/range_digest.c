// SHA-256 of a byte range of an open file, read and hashed on a libuv thread-pool thread, with the
// OpenSSL that Node.js links: the ODT node checks the segments of a transfer's files (transfer.json
// /2) on as many cores as it has lanes, instead of hashing every byte on the JavaScript thread.
//
//   sha256Range(fd, offset, length, headLength, dropBehind) -> Promise<{ sha256, bytes, head }>
//   dropCachedRange(fd, offset, length) -> 0 or an errno (length 0: to the end of the file)
//
// `bytes` is what was read: fewer than `length` when the file ended first. `head` holds the first
// `headLength` bytes read (a copy), for the age header check. A read error rejects with the
// error's text (strerror) and its number as the Error's `errno`. With `dropBehind`, each range
// read is dropped from the page cache once hashed (posix_fadvise POSIX_FADV_DONTNEED), as
// dropCachedRange does: for bytes read once, which the cache would only keep at the expense of
// everything else (see docs/decisions.md, "Drop-behind on the NAS").
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <node_api.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_SIZE (1 << 20)

// Offsets and lengths arrive as JavaScript numbers: whole, from 0 up to 2^53 - 1 (larger doubles
// would not convert to off_t safely).
static int is_byte_count(double v) { return isfinite(v) && v >= 0 && v <= 9007199254740991.0 && v == floor(v); }

// Drops [offset, offset + length) of fd from the page cache (length 0: to the end of the file);
// 0 or an errno. Without posix_fadvise (not Linux or a BSD), does nothing.
static int drop_range(int fd, int64_t offset, int64_t length) {
#ifdef POSIX_FADV_DONTNEED
  return posix_fadvise(fd, (off_t)offset, (off_t)length, POSIX_FADV_DONTNEED);
#else
  (void)fd;
  (void)offset;
  (void)length;
  return 0;
#endif
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  int64_t offset;
  int64_t length;
  size_t head_len;
  unsigned char *head;
  size_t head_got;
  int64_t done;
  unsigned char md[32];
  int err;
  int failed_openssl;
  int drop_behind;
} range_job;

static void range_execute(napi_env env, void *data) {
  (void)env;
  range_job *j = data;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned char *buf = malloc(READ_SIZE);
  if (ctx == NULL || buf == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
    j->failed_openssl = 1;
    goto out;
  }
  while (j->done < j->length) {
    int64_t left = j->length - j->done;
    size_t want = left < READ_SIZE ? (size_t)left : READ_SIZE;
    ssize_t n = pread(j->fd, buf, want, (off_t)(j->offset + j->done));
    if (n < 0) {
      if (errno == EINTR) continue;
      j->err = errno;
      goto out;
    }
    if (n == 0) break;
    if (j->head_got < j->head_len) {
      size_t take = j->head_len - j->head_got < (size_t)n ? j->head_len - j->head_got : (size_t)n;
      memcpy(j->head + j->head_got, buf, take);
      j->head_got += take;
    }
    if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
      j->failed_openssl = 1;
      goto out;
    }
    if (j->drop_behind) drop_range(j->fd, j->offset + j->done, n);
    j->done += n;
  }
  if (EVP_DigestFinal_ex(ctx, j->md, NULL) != 1) j->failed_openssl = 1;
out:
  free(buf);
  EVP_MD_CTX_free(ctx);
}

static void range_complete(napi_env env, napi_status status, void *data) {
  range_job *j = data;
  napi_value result, error, message, code;
  if (status != napi_ok || j->failed_openssl || j->err != 0) {
    const char *text = j->err != 0 ? strerror(j->err) : "SHA-256 failed in OpenSSL";
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &error);
    if (j->err != 0) {
      napi_create_int32(env, j->err, &code);
      napi_set_named_property(env, error, "errno", code);
    }
    napi_reject_deferred(env, j->deferred, error);
  } else {
    static const char hexdigits[] = "0123456789abcdef";
    char hex[64];
    for (int i = 0; i < 32; i++) {
      hex[2 * i] = hexdigits[j->md[i] >> 4];
      hex[2 * i + 1] = hexdigits[j->md[i] & 15];
    }
    napi_value sha, bytes, head;
    void *copy = NULL;
    napi_create_object(env, &result);
    napi_create_string_utf8(env, hex, 64, &sha);
    napi_create_double(env, (double)j->done, &bytes);
    napi_create_buffer_copy(env, j->head_got, j->head_got ? j->head : (const void *)"", &copy, &head);
    napi_set_named_property(env, result, "sha256", sha);
    napi_set_named_property(env, result, "bytes", bytes);
    napi_set_named_property(env, result, "head", head);
    napi_resolve_deferred(env, j->deferred, result);
  }
  napi_delete_async_work(env, j->work);
  free(j->head);
  free(j);
}

static napi_value sha256_range(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1;
  double offset = -1, length = -1, head_len = 0;
  bool drop_behind = false;
  napi_valuetype fifth = napi_undefined;
  if (argc > 4) napi_typeof(env, argv[4], &fifth);
  if (argc < 4 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_double(env, argv[1], &offset) != napi_ok ||
      napi_get_value_double(env, argv[2], &length) != napi_ok ||
      napi_get_value_double(env, argv[3], &head_len) != napi_ok || fd < 0 || !is_byte_count(offset) ||
      !is_byte_count(length) || !is_byte_count(head_len) || head_len > READ_SIZE ||
      (fifth != napi_undefined && napi_get_value_bool(env, argv[4], &drop_behind) != napi_ok)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "sha256Range(fd, offset, length, headLength, dropBehind) takes a file descriptor, "
                          "three non-negative numbers (headLength at most 1 MiB) and a boolean");
    return NULL;
  }
  range_job *j = calloc(1, sizeof(range_job));
  if (j == NULL) {
    napi_throw_error(env, "ERR_MEMORY_ALLOCATION_FAILED", "out of memory");
    return NULL;
  }
  j->fd = fd;
  j->offset = (int64_t)offset;
  j->length = (int64_t)length;
  j->head_len = (size_t)head_len;
  j->drop_behind = drop_behind;
  if (j->head_len > 0 && (j->head = malloc(j->head_len)) == NULL) {
    free(j);
    napi_throw_error(env, "ERR_MEMORY_ALLOCATION_FAILED", "out of memory");
    return NULL;
  }
  napi_value promise, name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_string_utf8(env, "odt:sha256Range", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, range_execute, range_complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

static napi_value drop_cached_range(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1;
  double offset = -1, length = -1;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_double(env, argv[1], &offset) != napi_ok ||
      napi_get_value_double(env, argv[2], &length) != napi_ok || fd < 0 || !is_byte_count(offset) ||
      !is_byte_count(length)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "dropCachedRange(fd, offset, length) takes a file descriptor and two non-negative numbers");
    return NULL;
  }
  // Clean pages only: the kernel starts writing dirty ones and keeps them. Cheap enough to run on
  // the JavaScript thread (it frees pages, reads nothing).
  napi_value result;
  napi_create_int32(env, drop_range(fd, (int64_t)offset, (int64_t)length), &result);
  return result;
}

napi_value range_digest_init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "dropCachedRange", NAPI_AUTO_LENGTH, drop_cached_range, NULL, &fn);
  napi_set_named_property(env, exports, "dropCachedRange", fn);
  napi_create_function(env, "sha256Range", NAPI_AUTO_LENGTH, sha256_range, NULL, &fn);
  napi_set_named_property(env, exports, "sha256Range", fn);
  return exports;
}
