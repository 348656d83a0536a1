/** Plaintext bytes per payload chunk (64 KiB). */
export declare const chunkSize: number;
/** Poly1305 tag bytes per chunk. */
export declare const tagLength: number;
/** Ciphertext bytes per full payload chunk. */
export declare const sealedChunkSize: number;

/**
 * Seals chunks `counter, counter+1, …` of `parts`, each part holding whole 64 KiB chunks; if
 * `final`, the last part ends with the final chunk (short, or empty only as the only chunk).
 * Returns ciphertext and tags interleaved, in one buffer with its own ArrayBuffer.
 */
export declare function sealChunks(
  key: Uint8Array,
  counter: number,
  parts: readonly Uint8Array[],
  final: boolean,
  /** A buffer of its own to write into, if large enough (else a new one). */
  into?: Uint8Array,
): Buffer;

/** Why a run of chunks did not open, and at which chunk. */
export type OpenFailure = 'auth' | 'trailing' | 'truncated' | 'empty-final';

/**
 * Opens sealed chunks like `sealChunks` wrote them; all plaintext in one buffer, or the failure.
 * With `into` (large enough; it may be the only part itself: opening in place), the plaintext is
 * written there.
 */
export declare function openChunks(
  key: Uint8Array,
  counter: number,
  parts: readonly Uint8Array[],
  final: boolean,
  into?: Uint8Array,
):
  | { readonly out: Buffer; readonly failure?: undefined }
  | { readonly failure: OpenFailure; readonly chunk: number };

/** Whether runs are sealed and opened by the native addon (native/age_payload.c). */
export declare const nativePayload: boolean;

/** sealChunks and openChunks with Node's own ciphers even where the addon is loaded: for tests. */
export declare const portable: {
  readonly sealChunks: typeof sealChunks;
  readonly openChunks: typeof openChunks;
};

/**
 * SHA-256 of the bytes [offset, offset + length) of the open file `fd`, read and hashed on the
 * libuv thread pool; `bytes` is what was read (fewer when the file ended first), `head` a copy of
 * the first `headLength` bytes (at most 1 MiB). With `dropBehind`, each MiB read is dropped from
 * the page cache once hashed. Undefined without the native addon.
 */
export declare const nativeSha256Range:
  | ((
      fd: number,
      offset: number,
      length: number,
      headLength: number,
      dropBehind?: boolean,
    ) => Promise<{ sha256: string; bytes: number; head: Buffer }>)
  | undefined;

/**
 * Drops the clean pages of the bytes [offset, offset + length) of the open file `fd` from the page
 * cache (posix_fadvise POSIX_FADV_DONTNEED; length 0: to the end of the file); returns 0 or the
 * error number. Undefined without the native addon.
 */
export declare const nativeDropCachedRange:
  | ((fd: number, offset: number, length: number) => number)
  | undefined;
