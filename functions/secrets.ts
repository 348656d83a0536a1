import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

/**
 * Reads a secret once per container and keeps what `parse` makes of it. A failed read or a value
 * `parse` refuses is not kept: the next call reads again, so a secret put after deploy is picked
 * up by warm containers too.
 */
export function cachedSecret<T>(
  client: Pick<SecretsManagerClient, 'send'>,
  secretArn: string,
  parse: (value: string | undefined) => T,
): () => Promise<T> {
  let cached: Promise<T> | undefined;
  return () => {
    cached ??= client
      .send(new GetSecretValueCommand({ SecretId: secretArn }))
      .then((out) => parse(out.SecretString))
      .catch((error: unknown) => {
        cached = undefined;
        throw error;
      });
    return cached;
  };
}
