import t from 'tap';
import * as errors from '../src/errors.js';
import { UnknownClientError } from '../src/auth/flow.js';
import { RadiusDecodeError, RadiusEncodeError } from '../src/radius/codec/index.js';

// The error catalogue: codes are part of the contract (admins match on them); a change must be deliberate.
t.test('every GatewayError has its stable code', async (t) => {
  const catalogue: Record<string, string> = {};
  const classes = { ...errors, UnknownClientError, RadiusEncodeError } as Record<string, unknown>;
  for (const [name, value] of Object.entries(classes)) {
    if (typeof value !== 'function' || name === 'GatewayError' || !(value.prototype instanceof errors.GatewayError)) continue;
    const ctor = value as new (message: string) => errors.GatewayError;
    const err = new ctor('x');
    t.equal(err.name, name);
    catalogue[name] = err.code;
  }
  t.equal(new RadiusDecodeError('x', 'too_short').code, 'GW_ERR_RADIUS_DECODE');
  t.same(catalogue, {
    ConfigError: 'GW_ERR_CONFIG',
    SecretError: 'GW_ERR_SECRET',
    StoreError: 'GW_ERR_STORE',
    StoreReadOnlyError: 'GW_ERR_STORE_READ_ONLY',
    NotFoundError: 'GW_ERR_NOT_FOUND',
    AlreadyExistsError: 'GW_ERR_ALREADY_EXISTS',
    InvalidInputError: 'GW_ERR_INVALID_INPUT',
    SealError: 'GW_ERR_SEAL',
    AuditChainError: 'GW_ERR_AUDIT_CHAIN',
    UpstreamUnavailable: 'GW_ERR_UPSTREAM_UNAVAILABLE',
    ProviderUnavailableError: 'GW_ERR_PROVIDER_UNAVAILABLE',
    ProviderRejectedError: 'GW_ERR_PROVIDER_REJECTED',
    CallbackRefusedError: 'GW_ERR_CALLBACK_REFUSED',
    ListenError: 'GW_ERR_LISTEN',
    RadiusTimeoutError: 'GW_ERR_RADIUS_TIMEOUT',
    RestoreRefusedError: 'GW_ERR_RESTORE_REFUSED',
    InternalError: 'GW_ERR_INTERNAL',
    UnknownClientError: 'GW_ERR_UNKNOWN_CLIENT',
    RadiusEncodeError: 'GW_ERR_RADIUS_ENCODE',
  });
});
