/**
 * Faults (as opposed to rejections, which are values: see src/auth/decision.ts).
 * Every fault has a stable `code` that admins and scripts may match on; test/errors.test.ts
 * lists them all so a code never changes silently.
 */
export abstract class GatewayError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The configuration file is missing, unreadable or invalid. `issues` holds `path: message` lines. */
export class ConfigError extends GatewayError {
  readonly code = 'GW_ERR_CONFIG';
  constructor(
    message: string,
    readonly issues: readonly string[] = [],
  ) {
    super(message);
  }
}

/** A `{file: …}` / `{env: …}` secret reference could not be resolved. */
export class SecretError extends GatewayError {
  readonly code = 'GW_ERR_SECRET';
}

/** The store could not be opened, migrated, read or written. */
export class StoreError extends GatewayError {
  readonly code = 'GW_ERR_STORE';
}

/** A store write was refused because the store is read-only (e.g. the shared database is unreachable). */
export class StoreReadOnlyError extends GatewayError {
  readonly code = 'GW_ERR_STORE_READ_ONLY';
}

/** Something named by the caller (a user, a token) does not exist. */
export class NotFoundError extends GatewayError {
  readonly code = 'GW_ERR_NOT_FOUND';
}

/** Something the caller wants to create exists already. */
export class AlreadyExistsError extends GatewayError {
  readonly code = 'GW_ERR_ALREADY_EXISTS';
}

/** A caller-supplied value is not acceptable (bad base32 seed, bad user name, …). */
export class InvalidInputError extends GatewayError {
  readonly code = 'GW_ERR_INVALID_INPUT';
}

/** Sealed data (OATH secret, challenge State) failed to open: wrong key, tampered or truncated. */
export class SealError extends GatewayError {
  readonly code = 'GW_ERR_SEAL';
}

/** The audit chain is broken; `problems` names each offending record. */
export class AuditChainError extends GatewayError {
  readonly code = 'GW_ERR_AUDIT_CHAIN';
  constructor(
    message: string,
    readonly problems: readonly string[] = [],
  ) {
    super(message);
  }
}

/** A first-factor or second-factor service (directory, upstream RADIUS, cloud provider) did not answer. */
export class UpstreamUnavailable extends GatewayError {
  readonly code = 'GW_ERR_UPSTREAM_UNAVAILABLE';
}

/**
 * A second-factor provider (Twilio, Duo, ntfy, a webhook, SMTP) could not be reached, answered
 * 5xx or timed out, or its circuit breaker is open. The method tries its next provider; with none
 * left the policy's fail mode decides.
 */
export class ProviderUnavailableError extends GatewayError {
  readonly code = 'GW_ERR_PROVIDER_UNAVAILABLE';
}

/** A provider answered but refused the request (4xx: bad number, unknown user, bad credentials). */
export class ProviderRejectedError extends GatewayError {
  readonly code = 'GW_ERR_PROVIDER_REJECTED';
  constructor(
    message: string,
    /** The HTTP status or the provider's own error code, for the log. */
    readonly providerCode?: string,
  ) {
    super(message);
  }
}

/** A provider callback was not signed right, expired, or used before. */
export class CallbackRefusedError extends GatewayError {
  readonly code = 'GW_ERR_CALLBACK_REFUSED';
}

/** A listener could not bind its address. */
export class ListenError extends GatewayError {
  readonly code = 'GW_ERR_LISTEN';
}

/** A RADIUS exchange (the `try` command, an upstream) got no valid answer. */
export class RadiusTimeoutError extends GatewayError {
  readonly code = 'GW_ERR_RADIUS_TIMEOUT';
}

/** A restore was refused (live store without --force, broken backup). */
export class RestoreRefusedError extends GatewayError {
  readonly code = 'GW_ERR_RESTORE_REFUSED';
}

/** A state the code should never reach (a bug or an inconsistent configuration). */
export class InternalError extends GatewayError {
  readonly code = 'GW_ERR_INTERNAL';
}

/** The stable code of a fault: a GatewayError's own, anything else counts as GW_ERR_INTERNAL. */
export function errorCode(err: unknown): string {
  return err instanceof GatewayError ? err.code : 'GW_ERR_INTERNAL';
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
