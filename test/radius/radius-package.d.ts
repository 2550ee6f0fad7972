// Minimal types for the `radius` npm package (1.1.4), a devDependency used only as a second
// implementation in test/radius/codec-crosscheck.test.ts. Only what that test calls is declared.
declare module 'radius' {
  type Secret = string | Buffer;
  /** `[name or number, value]`; values are strings, numbers, Dates or raw Buffers. */
  type AttributeList = Array<[string | number, string | number | Date | Buffer]>;

  interface DecodedPacket {
    code: string;
    identifier: number;
    length: number;
    authenticator: Buffer;
    /** By name; a repeated attribute becomes an array. Octets stay Buffers, strings are UTF-8 decoded. */
    attributes: Record<string, unknown>;
    raw_attributes: Array<[number, Buffer]>;
  }

  interface Radius {
    /** Throws on an unknown code, a bad authenticator (requests other than Access-Request) or a bad Message-Authenticator. */
    decode(args: { packet: Buffer; secret: Secret }): DecodedPacket;
    encode(args: {
      code: string;
      secret: Secret;
      identifier?: number;
      authenticator?: Buffer;
      attributes?: AttributeList;
      add_message_authenticator?: boolean;
    }): Buffer;
    encode_response(args: { packet: DecodedPacket; code: string; secret: Secret; attributes?: AttributeList }): Buffer;
    verify_response(args: { request: Buffer; response: Buffer; secret: Secret }): boolean;
    attr_id_to_name(id: number | string): string | undefined;
    load_dictionaries(): void;
  }

  const radius: Radius;
  export = radius;
}
