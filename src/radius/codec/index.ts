export {
  AUTHENTICATOR_LENGTH,
  CODE_NAMES,
  Code,
  HEADER_LENGTH,
  MAX_ATTRIBUTE_VALUE_LENGTH,
  MAX_PACKET_LENGTH,
  MIN_PACKET_LENGTH,
  RadiusDecodeError,
  RadiusEncodeError,
  codeName,
  decodePacket,
  encodePacket,
  getAttribute,
  getAttributes,
  isKnownCode,
} from './packet.js';
export type { CodeNumber, DecodeFailure, PacketFields, RadiusAttribute, RadiusPacket } from './packet.js';

export {
  AttributeType,
  MS_CHAP2_RESPONSE_LENGTH,
  MS_CHAP_CHALLENGE_LENGTH,
  MicrosoftAttributeType,
  VendorId,
  attr,
  formatAttribute,
  formatAttributes,
  formatIpv6,
  getVendorAttributes,
  parseAttribute,
  parseIpv4,
  parseIpv6,
  readDate,
  readInteger,
  readInterfaceId,
  readIpv4,
  readIpv6,
  readIpv6Prefix,
  readText,
  readTextStrict,
  readVendorSpecific,
} from './attributes.js';
export type { AttributeTypeNumber, FormattedAttribute, VendorAttribute, VendorSpecific } from './attributes.js';

export { MAX_PASSWORD_LENGTH, hidePassword, unhidePassword } from './user-password.js';

export { MAX_MPPE_KEY_LENGTH, MPPE_SALT_LENGTH, decryptMppeKey, encryptMppeKey, newMppeSalts } from './mppe.js';

export {
  MESSAGE_AUTHENTICATOR_LENGTH,
  computeMessageAuthenticator,
  verifyReplyMessageAuthenticator,
  verifyRequestMessageAuthenticator,
} from './message-authenticator.js';
export type { MessageAuthenticatorCheck } from './message-authenticator.js';

export {
  computeAccountingRequestAuthenticator,
  computeResponseAuthenticator,
  randomAuthenticator,
  verifyAccountingRequestAuthenticator,
  verifyResponseAuthenticator,
} from './authenticators.js';

export { encodeAccessRequest, encodeAccountingRequest, encodeReply, verifyReply } from './reply.js';
export type { AccessRequestOptions, AccountingRequestOptions, VerifyReplyOptions } from './reply.js';

export { STANDARD_ATTRIBUTES, STANDARD_ATTRIBUTES_BY_NAME, VENDORS } from './dictionary/standard.js';
export type { AttributeDefinition, ValueType, VendorDefinition } from './dictionary/standard.js';
