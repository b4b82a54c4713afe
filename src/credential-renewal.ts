import { FailureKind, type RequestFailure } from './retry-policy.js';

/** A client whose configuration may hold the SDK's credential provider. */
interface WithCredentials {
  readonly config?: { readonly credentials?: unknown };
}

/**
 * Whether the client's credentials can renew, asked when the service says a token expired.
 * `ExpiredTokenException` is retried because the SDK fetches temporary credentials again before they
 * expire, but only those whose identity carries an `expiration`: one without it (static keys, a
 * session token as from `AWS_SESSION_TOKEN`) the SDK keeps for good, and no retry can pass. The
 * answer comes in the background: until it does, records are retried.
 */
export class CredentialRenewal {
  readonly #client: WithCredentials;
  #asking = false;
  /** The last answer: the client's credentials carry no expiration. */
  #neverRenew = false;

  constructor(client: WithCredentials) {
    this.#client = client;
  }

  /** `failure` (an `ExpiredTokenException`), fatal once the credentials are known never to renew. */
  judge(failure: RequestFailure): RequestFailure {
    this.#ask();
    if (!this.#neverRenew) return failure;
    return {
      code: failure.code,
      message: `${failure.message.replace(/\.?$/, '.')} The client's credentials carry no expiration (static keys, or a session token as from AWS_SESSION_TOKEN), and the SDK never fetches such credentials again, so no retry can pass: give the producer credentials that renew (a role, SSO, a profile with a credential_process), or create it again with fresh ones.`,
      kind: FailureKind.Fatal,
    };
  }

  #ask(): void {
    const provider = this.#client.config?.credentials;
    if (this.#asking || typeof provider !== 'function') return;
    this.#asking = true;
    // The SDK's provider keeps what it resolved until it nears its expiration: asking fetches nothing
    // that the next request would not.
    Promise.resolve()
      .then(() => (provider as () => unknown)())
      .then(
        (identity) => {
          this.#asking = false;
          if (typeof identity !== 'object' || identity === null || !('accessKeyId' in identity)) return;
          this.#neverRenew = (identity as { expiration?: unknown }).expiration === undefined;
        },
        () => {
          this.#asking = false;
        },
      );
  }
}
