// The native sealer/opener (native/age_payload.c) against Node's own ciphers (`portable`): the
// same bytes out, the same failures found at the same chunk, opening in place included. The
// stream tests (encrypt.test.ts) run on whichever is loaded (the addon, unless ODT_NATIVE=0).
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  chunkSize,
  nativePayload,
  openChunks,
  portable,
  sealChunks,
  sealedChunkSize,
} from '../../../../agent/package/age/payload-chunks.mjs';

/** Both arms of openChunks' result, to compare them field by field. */
type Opened = { readonly out?: Buffer; readonly failure?: string; readonly chunk?: number };

const key = randomBytes(32);
const sizes = [0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 16 * chunkSize, 16 * chunkSize + 777];

describe('age payload chunks, native addon', () => {
  it('is built and loaded in this checkout (npm install builds it; ODT_NATIVE=0 turns it off)', () => {
    expect(nativePayload).toBe(process.env.ODT_NATIVE !== '0');
  });

  it.runIf(nativePayload)(
    'seals byte for byte like Node’s cipher, final runs and not, from any counter',
    () => {
      for (const size of sizes) {
        for (const final of [true, false]) {
          if (!final && size % chunkSize !== 0) continue;
          const plain = randomBytes(size);
          for (const counter of [0, 5, 2 ** 32 + 3]) {
            const ours = sealChunks(key, counter, [plain], final);
            expect(ours.equals(portable.sealChunks(key, counter, [plain], final))).toBe(true);
          }
        }
      }
    },
  );

  it.runIf(nativePayload)('seals several parts and a plain Uint8Array as one run', () => {
    const a = randomBytes(2 * chunkSize);
    const b = new Uint8Array(randomBytes(chunkSize + 9));
    const ours = sealChunks(key, 3, [a, b], true);

    expect(ours.equals(portable.sealChunks(key, 3, [a, b], true))).toBe(true);
  });

  it.runIf(nativePayload)('opens into a new buffer and in place, giving the plaintext back', () => {
    for (const size of sizes) {
      const plain = randomBytes(size);
      const sealed = portable.sealChunks(key, 0, [plain], true);
      const fresh = openChunks(key, 0, [sealed], true) as Opened;
      expect(fresh.failure).toBeUndefined();
      expect(Buffer.from(fresh.out!).equals(plain)).toBe(true);
      const inPlace = Buffer.from(sealed);
      const opened = openChunks(key, 0, [inPlace], true, inPlace) as Opened;
      expect(opened.failure).toBeUndefined();
      expect(opened.out!.buffer).toBe(inPlace.buffer);
      expect(Buffer.from(opened.out!).equals(plain)).toBe(true);
    }
  });

  it.runIf(nativePayload)('finds the same failure at the same chunk as the portable opener', () => {
    const plain = randomBytes(3 * chunkSize + 100);
    const sealed = portable.sealChunks(key, 0, [plain], true);
    const flipped = Buffer.from(sealed);
    flipped[sealedChunkSize + 10]! ^= 1;
    const cases: { name: string; parts: Buffer; final: boolean; counter?: number }[] = [
      { name: 'a flipped byte in chunk 1', parts: flipped, final: true },
      { name: 'cut at a chunk boundary', parts: sealed.subarray(0, 2 * sealedChunkSize), final: true },
      { name: 'cut inside a chunk', parts: sealed.subarray(0, 2 * sealedChunkSize + 50), final: true },
      { name: 'shorter than a tag', parts: sealed.subarray(0, 10), final: true },
      {
        name: 'a final chunk where a non-final one belongs',
        parts: portable.sealChunks(key, 0, [randomBytes(chunkSize)], true),
        final: false,
      },
      {
        name: 'an empty final chunk after others',
        parts: portable.sealChunks(key, 4, [Buffer.alloc(0)], true),
        final: true,
        counter: 4,
      },
      { name: 'the wrong counter', parts: sealed, final: true, counter: 1 },
    ];
    for (const c of cases) {
      const expected = portable.openChunks(key, c.counter ?? 0, [Buffer.from(c.parts)], c.final) as Opened;
      const fresh = openChunks(key, c.counter ?? 0, [Buffer.from(c.parts)], c.final) as Opened;
      const inPlaceBuffer = Buffer.from(c.parts);
      const inPlace = openChunks(key, c.counter ?? 0, [inPlaceBuffer], c.final, inPlaceBuffer) as Opened;
      expect(expected.failure, c.name).toBeDefined();
      expect({ failure: fresh.failure, chunk: fresh.chunk }, c.name).toEqual({
        failure: expected.failure,
        chunk: expected.chunk,
      });
      expect({ failure: inPlace.failure, chunk: inPlace.chunk }, c.name).toEqual({
        failure: expected.failure,
        chunk: expected.chunk,
      });
    }
  });

  it.runIf(nativePayload)('refuses arguments of the wrong kind by name instead of crashing', () => {
    expect(() => sealChunks(Buffer.alloc(16), 0, [Buffer.alloc(1)], true)).toThrow(/32-byte Buffer/);
    expect(() => sealChunks(key, 0, [Buffer.alloc(5)], false)).toThrow(/not a multiple of 65536/);
  });
});
