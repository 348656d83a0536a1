export { bech32Decode, bech32Encode } from './bech32.ts';
export {
  AgeDecryptStream,
  AgeEncryptStream,
  type AgeStreamOptions,
  chunkSize,
  createDecryptStream,
  createEncryptStream,
  encryptedSize,
  sealedChunkSize,
} from './encrypt.ts';
export { AgeError, type AgeErrorCode, ageErrorCodes } from './errors.ts';
export {
  formatIdentityFile,
  formatRecipient,
  type GeneratedIdentity,
  generateIdentity,
  parseIdentity,
  parseIdentityFile,
  parseRecipient,
  recipientFromIdentity,
} from './keys.ts';
