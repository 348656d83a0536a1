/** Bytes per segment of the encrypted files' digests: 64 MiB. */
export declare const segmentSize: number;

/** SHA-256 (hex) of each consecutive `size`-byte segment of what it is given; the last may be shorter. */
export declare class SegmentHash {
  constructor(size?: number);
  update(data: Uint8Array): this;
  /** The digests, the last segment's included; call once, at the end. An empty stream has one. */
  digests(): string[];
}
