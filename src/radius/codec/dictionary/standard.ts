/**
 * Attribute dictionary: names, numbers and value types of the IETF attributes, and a small vendor
 * table. Data only. Names and named values follow FreeRADIUS's dictionaries, so what we print
 * reads like radclient output and admins can grep one for the other.
 *
 * Sources: RFC 2865 §5, RFC 2866 §5, RFC 2867, RFC 2868 §3, RFC 2869 §5, RFC 3162 §2, RFC 3576/5176
 * (Error-Cause), RFC 3579 §3, RFC 3580, RFC 4072, RFC 4372, RFC 4603, RFC 4675, RFC 4818, RFC 4849,
 * RFC 5090, RFC 5580, RFC 5607, RFC 6911; vendor 311 from RFC 2548; the other vendors in vendors.ts.
 */
import { EXTRA_VENDORS } from './vendors.js';

export type ValueType =
  /** UTF-8 text (RFC 8044 §3.4). */
  | 'text'
  /** Opaque octets (RFC 8044 §3.5). */
  | 'octets'
  /** 32-bit unsigned, network order (RFC 8044 §3.1). */
  | 'integer'
  /** Seconds since 1970-01-01 UTC, 32-bit unsigned (RFC 8044 §3.2). */
  | 'date'
  | 'ipaddr'
  | 'ipv6addr'
  /** Reserved octet, prefix length, prefix (RFC 3162 §2.3). */
  | 'ipv6prefix'
  /** 8-octet interface identifier (RFC 3162 §2.2). */
  | 'ifid'
  /** Vendor-Specific (RFC 2865 §5.26): vendor id, then vendor data. Kept as octets. */
  | 'vsa';

export interface AttributeDefinition {
  readonly type: number;
  readonly name: string;
  readonly valueType: ValueType;
  /** Named values of an enumerated integer attribute. */
  readonly values?: ReadonlyMap<number, string>;
  /** RFC 2868 §3: the first octet may be a tag (0x01–0x1F; 0 for integers means no tag). */
  readonly tagged?: true;
  /** Hidden passwords, keys and password proofs: never printed, even encrypted (offline attacks). */
  readonly sensitive?: true;
  readonly rfc: string;
}

export interface VendorDefinition {
  readonly id: number;
  readonly name: string;
  readonly attributes: ReadonlyMap<number, AttributeDefinition>;
}

export type Flag = 'tagged' | 'sensitive';
export type Row = readonly [type: number, name: string, valueType: ValueType, rfc: string, ...flags: Flag[]];

const STANDARD_ROWS: readonly Row[] = [
  // RFC 2865
  [1, 'User-Name', 'text', 'RFC 2865'],
  [2, 'User-Password', 'octets', 'RFC 2865', 'sensitive'],
  [3, 'CHAP-Password', 'octets', 'RFC 2865', 'sensitive'],
  [4, 'NAS-IP-Address', 'ipaddr', 'RFC 2865'],
  [5, 'NAS-Port', 'integer', 'RFC 2865'],
  [6, 'Service-Type', 'integer', 'RFC 2865'],
  [7, 'Framed-Protocol', 'integer', 'RFC 2865'],
  [8, 'Framed-IP-Address', 'ipaddr', 'RFC 2865'],
  [9, 'Framed-IP-Netmask', 'ipaddr', 'RFC 2865'],
  [10, 'Framed-Routing', 'integer', 'RFC 2865'],
  [11, 'Filter-Id', 'text', 'RFC 2865'],
  [12, 'Framed-MTU', 'integer', 'RFC 2865'],
  [13, 'Framed-Compression', 'integer', 'RFC 2865'],
  [14, 'Login-IP-Host', 'ipaddr', 'RFC 2865'],
  [15, 'Login-Service', 'integer', 'RFC 2865'],
  [16, 'Login-TCP-Port', 'integer', 'RFC 2865'],
  [18, 'Reply-Message', 'text', 'RFC 2865'],
  [19, 'Callback-Number', 'text', 'RFC 2865'],
  [20, 'Callback-Id', 'text', 'RFC 2865'],
  [22, 'Framed-Route', 'text', 'RFC 2865'],
  // Four octets of IPX network number; FreeRADIUS prints it as an address, so do we.
  [23, 'Framed-IPX-Network', 'ipaddr', 'RFC 2865'],
  [24, 'State', 'octets', 'RFC 2865'],
  [25, 'Class', 'octets', 'RFC 2865'],
  [26, 'Vendor-Specific', 'vsa', 'RFC 2865'],
  [27, 'Session-Timeout', 'integer', 'RFC 2865'],
  [28, 'Idle-Timeout', 'integer', 'RFC 2865'],
  [29, 'Termination-Action', 'integer', 'RFC 2865'],
  [30, 'Called-Station-Id', 'text', 'RFC 2865'],
  [31, 'Calling-Station-Id', 'text', 'RFC 2865'],
  [32, 'NAS-Identifier', 'text', 'RFC 2865'],
  [33, 'Proxy-State', 'octets', 'RFC 2865'],
  [34, 'Login-LAT-Service', 'text', 'RFC 2865'],
  [35, 'Login-LAT-Node', 'text', 'RFC 2865'],
  [36, 'Login-LAT-Group', 'octets', 'RFC 2865'],
  [37, 'Framed-AppleTalk-Link', 'integer', 'RFC 2865'],
  [38, 'Framed-AppleTalk-Network', 'integer', 'RFC 2865'],
  [39, 'Framed-AppleTalk-Zone', 'text', 'RFC 2865'],
  // RFC 2866
  [40, 'Acct-Status-Type', 'integer', 'RFC 2866'],
  [41, 'Acct-Delay-Time', 'integer', 'RFC 2866'],
  [42, 'Acct-Input-Octets', 'integer', 'RFC 2866'],
  [43, 'Acct-Output-Octets', 'integer', 'RFC 2866'],
  [44, 'Acct-Session-Id', 'text', 'RFC 2866'],
  [45, 'Acct-Authentic', 'integer', 'RFC 2866'],
  [46, 'Acct-Session-Time', 'integer', 'RFC 2866'],
  [47, 'Acct-Input-Packets', 'integer', 'RFC 2866'],
  [48, 'Acct-Output-Packets', 'integer', 'RFC 2866'],
  [49, 'Acct-Terminate-Cause', 'integer', 'RFC 2866'],
  [50, 'Acct-Multi-Session-Id', 'text', 'RFC 2866'],
  [51, 'Acct-Link-Count', 'integer', 'RFC 2866'],
  // RFC 2869
  [52, 'Acct-Input-Gigawords', 'integer', 'RFC 2869'],
  [53, 'Acct-Output-Gigawords', 'integer', 'RFC 2869'],
  [55, 'Event-Timestamp', 'date', 'RFC 2869'],
  // RFC 4675
  [56, 'Egress-VLANID', 'integer', 'RFC 4675'],
  [57, 'Ingress-Filters', 'integer', 'RFC 4675'],
  [58, 'Egress-VLAN-Name', 'text', 'RFC 4675'],
  [59, 'User-Priority-Table', 'octets', 'RFC 4675'],
  // RFC 2865
  [60, 'CHAP-Challenge', 'octets', 'RFC 2865'],
  [61, 'NAS-Port-Type', 'integer', 'RFC 2865'],
  [62, 'Port-Limit', 'integer', 'RFC 2865'],
  [63, 'Login-LAT-Port', 'text', 'RFC 2865'],
  // RFC 2868 (tunnels; 802.1X VLAN assignment uses 64, 65, 81 per RFC 3580 §3.31)
  [64, 'Tunnel-Type', 'integer', 'RFC 2868', 'tagged'],
  [65, 'Tunnel-Medium-Type', 'integer', 'RFC 2868', 'tagged'],
  [66, 'Tunnel-Client-Endpoint', 'text', 'RFC 2868', 'tagged'],
  [67, 'Tunnel-Server-Endpoint', 'text', 'RFC 2868', 'tagged'],
  [68, 'Acct-Tunnel-Connection', 'text', 'RFC 2867'],
  [69, 'Tunnel-Password', 'octets', 'RFC 2868', 'tagged', 'sensitive'],
  // RFC 2869
  [70, 'ARAP-Password', 'octets', 'RFC 2869', 'sensitive'],
  [71, 'ARAP-Features', 'octets', 'RFC 2869'],
  [72, 'ARAP-Zone-Access', 'integer', 'RFC 2869'],
  [73, 'ARAP-Security', 'integer', 'RFC 2869'],
  [74, 'ARAP-Security-Data', 'text', 'RFC 2869'],
  [75, 'Password-Retry', 'integer', 'RFC 2869'],
  [76, 'Prompt', 'integer', 'RFC 2869'],
  [77, 'Connect-Info', 'text', 'RFC 2869'],
  [78, 'Configuration-Token', 'text', 'RFC 2869'],
  [79, 'EAP-Message', 'octets', 'RFC 3579'],
  [80, 'Message-Authenticator', 'octets', 'RFC 3579'],
  [81, 'Tunnel-Private-Group-Id', 'text', 'RFC 2868', 'tagged'],
  [82, 'Tunnel-Assignment-Id', 'text', 'RFC 2868', 'tagged'],
  [83, 'Tunnel-Preference', 'integer', 'RFC 2868', 'tagged'],
  [84, 'ARAP-Challenge-Response', 'octets', 'RFC 2869'],
  [85, 'Acct-Interim-Interval', 'integer', 'RFC 2869'],
  [86, 'Acct-Tunnel-Packets-Lost', 'integer', 'RFC 2867'],
  [87, 'NAS-Port-Id', 'text', 'RFC 2869'],
  [88, 'Framed-Pool', 'text', 'RFC 2869'],
  [89, 'Chargeable-User-Identity', 'octets', 'RFC 4372'],
  [90, 'Tunnel-Client-Auth-Id', 'text', 'RFC 2868', 'tagged'],
  [91, 'Tunnel-Server-Auth-Id', 'text', 'RFC 2868', 'tagged'],
  [92, 'NAS-Filter-Rule', 'text', 'RFC 4849'],
  // RFC 3162
  [95, 'NAS-IPv6-Address', 'ipv6addr', 'RFC 3162'],
  [96, 'Framed-Interface-Id', 'ifid', 'RFC 3162'],
  [97, 'Framed-IPv6-Prefix', 'ipv6prefix', 'RFC 3162'],
  [98, 'Login-IPv6-Host', 'ipv6addr', 'RFC 3162'],
  [99, 'Framed-IPv6-Route', 'text', 'RFC 3162'],
  [100, 'Framed-IPv6-Pool', 'text', 'RFC 3162'],
  [101, 'Error-Cause', 'integer', 'RFC 5176'],
  [102, 'EAP-Key-Name', 'octets', 'RFC 4072'],
  // RFC 5090 (SIP digest)
  [103, 'Digest-Response', 'text', 'RFC 5090'],
  [104, 'Digest-Realm', 'text', 'RFC 5090'],
  [105, 'Digest-Nonce', 'text', 'RFC 5090'],
  [106, 'Digest-Response-Auth', 'text', 'RFC 5090'],
  [107, 'Digest-Nextnonce', 'text', 'RFC 5090'],
  [108, 'Digest-Method', 'text', 'RFC 5090'],
  [109, 'Digest-URI', 'text', 'RFC 5090'],
  [110, 'Digest-Qop', 'text', 'RFC 5090'],
  [111, 'Digest-Algorithm', 'text', 'RFC 5090'],
  [112, 'Digest-Entity-Body-Hash', 'text', 'RFC 5090'],
  [113, 'Digest-CNonce', 'text', 'RFC 5090'],
  [114, 'Digest-Nonce-Count', 'text', 'RFC 5090'],
  [115, 'Digest-Username', 'text', 'RFC 5090'],
  [116, 'Digest-Opaque', 'text', 'RFC 5090'],
  [117, 'Digest-Auth-Param', 'text', 'RFC 5090'],
  [118, 'Digest-AKA-Auts', 'text', 'RFC 5090'],
  [119, 'Digest-Domain', 'text', 'RFC 5090'],
  [120, 'Digest-Stale', 'text', 'RFC 5090'],
  [121, 'Digest-HA1', 'text', 'RFC 5090', 'sensitive'],
  [122, 'SIP-AOR', 'text', 'RFC 5090'],
  [123, 'Delegated-IPv6-Prefix', 'ipv6prefix', 'RFC 4818'],
  // RFC 5580
  [126, 'Operator-Name', 'text', 'RFC 5580'],
  [127, 'Location-Information', 'octets', 'RFC 5580'],
  [128, 'Location-Data', 'octets', 'RFC 5580'],
  [129, 'Basic-Location-Policy-Rules', 'octets', 'RFC 5580'],
  [130, 'Extended-Location-Policy-Rules', 'octets', 'RFC 5580'],
  [131, 'Location-Capable', 'integer', 'RFC 5580'],
  [132, 'Requested-Location-Info', 'integer', 'RFC 5580'],
  // RFC 5607 (management access: what a NAS-Prompt/Administrative login may do)
  [133, 'Framed-Management', 'integer', 'RFC 5607'],
  [134, 'Management-Transport-Protection', 'integer', 'RFC 5607'],
  [135, 'Management-Policy-Id', 'text', 'RFC 5607'],
  [136, 'Management-Privilege-Level', 'integer', 'RFC 5607'],
  // RFC 6911
  [168, 'Framed-IPv6-Address', 'ipv6addr', 'RFC 6911'],
  [169, 'DNS-Server-IPv6-Address', 'ipv6addr', 'RFC 6911'],
  [170, 'Route-IPv6-Information', 'ipv6prefix', 'RFC 6911'],
  [171, 'Delegated-IPv6-Prefix-Pool', 'text', 'RFC 6911'],
  [172, 'Stateful-IPv6-Address-Pool', 'text', 'RFC 6911'],
];

export type ValueRows = readonly (readonly [number, string])[];

const STANDARD_VALUES: Readonly<Record<string, ValueRows>> = {
  'Service-Type': [
    [1, 'Login-User'],
    [2, 'Framed-User'],
    [3, 'Callback-Login-User'],
    [4, 'Callback-Framed-User'],
    [5, 'Outbound-User'],
    [6, 'Administrative-User'],
    [7, 'NAS-Prompt-User'],
    [8, 'Authenticate-Only'],
    [9, 'Callback-NAS-Prompt'],
    [10, 'Call-Check'],
    [11, 'Callback-Administrative'],
    [17, 'Authorize-Only'], // RFC 5176
    [18, 'Framed-Management'], // RFC 5607
  ],
  'Framed-Protocol': [
    [1, 'PPP'],
    [2, 'SLIP'],
    [3, 'ARAP'],
    [4, 'Gandalf-SLML'],
    [5, 'Xylogics-IPX-SLIP'],
    [6, 'X.75-Synchronous'],
  ],
  'Framed-Routing': [
    [0, 'None'],
    [1, 'Broadcast'],
    [2, 'Listen'],
    [3, 'Broadcast-Listen'],
  ],
  'Framed-Compression': [
    [0, 'None'],
    [1, 'Van-Jacobson-TCP-IP'],
    [2, 'IPX-Header-Compression'],
    [3, 'Stac-LZS'],
  ],
  'Login-Service': [
    [0, 'Telnet'],
    [1, 'Rlogin'],
    [2, 'TCP-Clear'],
    [3, 'PortMaster'],
    [4, 'LAT'],
    [5, 'X25-PAD'],
    [6, 'X25-T3POS'],
    [8, 'TCP-Clear-Quiet'],
  ],
  'Login-TCP-Port': [
    [23, 'Telnet'],
    [513, 'Rlogin'],
    [514, 'Rsh'],
  ],
  'Termination-Action': [
    [0, 'Default'],
    [1, 'RADIUS-Request'],
  ],
  'NAS-Port-Type': [
    [0, 'Async'],
    [1, 'Sync'],
    [2, 'ISDN'],
    [3, 'ISDN-V120'],
    [4, 'ISDN-V110'],
    [5, 'Virtual'],
    [6, 'PIAFS'],
    [7, 'HDLC-Clear-Channel'],
    [8, 'X.25'],
    [9, 'X.75'],
    [10, 'G.3-Fax'],
    [11, 'SDSL'],
    [12, 'ADSL-CAP'],
    [13, 'ADSL-DMT'],
    [14, 'IDSL'],
    [15, 'Ethernet'],
    [16, 'xDSL'],
    [17, 'Cable'],
    [18, 'Wireless-Other'],
    [19, 'Wireless-802.11'],
    [20, 'Token-Ring'], // RFC 3580
    [21, 'FDDI'], // RFC 3580
    [30, 'PPPoA'], // RFC 4603
    [31, 'PPPoEoA'],
    [32, 'PPPoEoE'],
    [33, 'PPPoEoVLAN'],
    [34, 'PPPoEoQinQ'],
  ],
  'Acct-Status-Type': [
    [1, 'Start'],
    [2, 'Stop'],
    [3, 'Interim-Update'],
    [7, 'Accounting-On'],
    [8, 'Accounting-Off'],
    [9, 'Tunnel-Start'], // RFC 2867
    [10, 'Tunnel-Stop'],
    [11, 'Tunnel-Reject'],
    [12, 'Tunnel-Link-Start'],
    [13, 'Tunnel-Link-Stop'],
    [14, 'Tunnel-Link-Reject'],
    [15, 'Failed'],
  ],
  'Acct-Authentic': [
    [1, 'RADIUS'],
    [2, 'Local'],
    [3, 'Remote'],
    [4, 'Diameter'],
  ],
  'Acct-Terminate-Cause': [
    [1, 'User-Request'],
    [2, 'Lost-Carrier'],
    [3, 'Lost-Service'],
    [4, 'Idle-Timeout'],
    [5, 'Session-Timeout'],
    [6, 'Admin-Reset'],
    [7, 'Admin-Reboot'],
    [8, 'Port-Error'],
    [9, 'NAS-Error'],
    [10, 'NAS-Request'],
    [11, 'NAS-Reboot'],
    [12, 'Port-Unneeded'],
    [13, 'Port-Preempted'],
    [14, 'Port-Suspended'],
    [15, 'Service-Unavailable'],
    [16, 'Callback'],
    [17, 'User-Error'],
    [18, 'Host-Request'],
    [19, 'Supplicant-Restart'], // RFC 3580
    [20, 'Reauthentication-Failure'],
    [21, 'Port-Reinit'],
    [22, 'Port-Disabled'],
  ],
  'Ingress-Filters': [
    [1, 'Enabled'],
    [2, 'Disabled'],
  ],
  'Tunnel-Type': [
    [1, 'PPTP'],
    [2, 'L2F'],
    [3, 'L2TP'],
    [4, 'ATMP'],
    [5, 'VTP'],
    [6, 'AH'],
    [7, 'IP'],
    [8, 'MIN-IP'],
    [9, 'ESP'],
    [10, 'GRE'],
    [11, 'DVS'],
    [12, 'IP-in-IP'],
    [13, 'VLAN'], // RFC 3580
  ],
  'Tunnel-Medium-Type': [
    [1, 'IPv4'],
    [2, 'IPv6'],
    [3, 'NSAP'],
    [4, 'HDLC'],
    [5, 'BBN-1822'],
    [6, 'IEEE-802'],
    [7, 'E.163'],
    [8, 'E.164'],
    [9, 'F.69'],
    [10, 'X.121'],
    [11, 'IPX'],
    [12, 'Appletalk'],
    [13, 'DecNet-IV'],
    [14, 'Banyan-Vines'],
    [15, 'E.164-NSAP'],
  ],
  'ARAP-Zone-Access': [
    [1, 'Default-Zone'],
    [2, 'Zone-Filter-Inclusive'],
    [4, 'Zone-Filter-Exclusive'],
  ],
  Prompt: [
    [0, 'No-Echo'],
    [1, 'Echo'],
  ],
  'Error-Cause': [
    [201, 'Residual-Context-Removed'],
    [202, 'Invalid-EAP-Packet'],
    [401, 'Unsupported-Attribute'],
    [402, 'Missing-Attribute'],
    [403, 'NAS-Identification-Mismatch'],
    [404, 'Invalid-Request'],
    [405, 'Unsupported-Service'],
    [406, 'Unsupported-Extension'],
    [407, 'Invalid-Attribute-Value'],
    [501, 'Administratively-Prohibited'],
    [502, 'Proxy-Request-Not-Routable'],
    [503, 'Session-Context-Not-Found'],
    [504, 'Session-Context-Not-Removable'],
    [505, 'Proxy-Processing-Error'],
    [506, 'Resources-Unavailable'],
    [507, 'Request-Initiated'],
    [508, 'Multiple-Session-Selection-Unsupported'],
  ],
  'Location-Capable': [
    [1, 'Civix-Location'],
    [2, 'Geo-Location'],
    [4, 'Users-Location'],
    [8, 'NAS-Location'],
  ],
  'Requested-Location-Info': [
    [1, 'Civix-Location'],
    [2, 'Geo-Location'],
    [4, 'Users-Location'],
    [8, 'NAS-Location'],
    [16, 'Future-Requests'],
    [32, 'None'],
  ],
  'Framed-Management': [
    [1, 'SNMP'],
    [2, 'Web-Based'],
    [3, 'Netconf'],
    [4, 'FTP'],
    [5, 'TFTP'],
    [6, 'SFTP'],
    [7, 'RCP'],
    [8, 'SCP'],
  ],
  'Management-Transport-Protection': [
    [1, 'No-Protection'],
    [2, 'Integrity-Protection'],
    [3, 'Integrity-Confidentiality-Protection'],
  ],
};

// Microsoft, RFC 2548. MS-CHAP-MPPE-Keys and MS-MPPE-Send/Recv-Key are encrypted with the
// shared secret (§2.4.1); they and the password proofs are marked sensitive.
const MICROSOFT_ROWS: readonly Row[] = [
  [1, 'MS-CHAP-Response', 'octets', 'RFC 2548', 'sensitive'],
  [2, 'MS-CHAP-Error', 'text', 'RFC 2548'],
  [3, 'MS-CHAP-CPW-1', 'octets', 'RFC 2548', 'sensitive'],
  [4, 'MS-CHAP-CPW-2', 'octets', 'RFC 2548', 'sensitive'],
  [5, 'MS-CHAP-LM-Enc-PW', 'octets', 'RFC 2548', 'sensitive'],
  [6, 'MS-CHAP-NT-Enc-PW', 'octets', 'RFC 2548', 'sensitive'],
  [7, 'MS-MPPE-Encryption-Policy', 'integer', 'RFC 2548'],
  [8, 'MS-MPPE-Encryption-Types', 'integer', 'RFC 2548'],
  [9, 'MS-RAS-Vendor', 'integer', 'RFC 2548'],
  [10, 'MS-CHAP-Domain', 'text', 'RFC 2548'],
  [11, 'MS-CHAP-Challenge', 'octets', 'RFC 2548'],
  [12, 'MS-CHAP-MPPE-Keys', 'octets', 'RFC 2548', 'sensitive'],
  [13, 'MS-BAP-Usage', 'integer', 'RFC 2548'],
  [14, 'MS-Link-Utilization-Threshold', 'integer', 'RFC 2548'],
  [15, 'MS-Link-Drop-Time-Limit', 'integer', 'RFC 2548'],
  [16, 'MS-MPPE-Send-Key', 'octets', 'RFC 2548', 'sensitive'],
  [17, 'MS-MPPE-Recv-Key', 'octets', 'RFC 2548', 'sensitive'],
  [18, 'MS-RAS-Version', 'text', 'RFC 2548'],
  [19, 'MS-Old-ARAP-Password', 'octets', 'RFC 2548', 'sensitive'],
  [20, 'MS-New-ARAP-Password', 'octets', 'RFC 2548', 'sensitive'],
  [21, 'MS-ARAP-PW-Change-Reason', 'integer', 'RFC 2548'],
  [22, 'MS-Filter', 'octets', 'RFC 2548'],
  [23, 'MS-Acct-Auth-Type', 'integer', 'RFC 2548'],
  [24, 'MS-Acct-EAP-Type', 'integer', 'RFC 2548'],
  [25, 'MS-CHAP2-Response', 'octets', 'RFC 2548', 'sensitive'],
  [26, 'MS-CHAP2-Success', 'octets', 'RFC 2548'],
  [27, 'MS-CHAP2-CPW', 'octets', 'RFC 2548', 'sensitive'],
  [28, 'MS-Primary-DNS-Server', 'ipaddr', 'RFC 2548'],
  [29, 'MS-Secondary-DNS-Server', 'ipaddr', 'RFC 2548'],
  [30, 'MS-Primary-NBNS-Server', 'ipaddr', 'RFC 2548'],
  [31, 'MS-Secondary-NBNS-Server', 'ipaddr', 'RFC 2548'],
];

const MICROSOFT_VALUES: Readonly<Record<string, ValueRows>> = {
  'MS-MPPE-Encryption-Policy': [
    [1, 'Encryption-Allowed'],
    [2, 'Encryption-Required'],
  ],
  'MS-MPPE-Encryption-Types': [
    [1, 'RC4-40bit-Allowed'],
    [2, 'RC4-128bit-Allowed'],
    [6, 'RC4-40or128-bit-Allowed'],
  ],
  'MS-BAP-Usage': [
    [0, 'Not-Allowed'],
    [1, 'Allowed'],
    [2, 'Required'],
  ],
  'MS-ARAP-PW-Change-Reason': [
    [1, 'Just-Change-Password'],
    [2, 'Expired-Password'],
    [3, 'Admin-Requires-Password-Change'],
    [4, 'Password-Too-Short'],
  ],
  'MS-Acct-Auth-Type': [
    [1, 'PAP'],
    [2, 'CHAP'],
    [3, 'MS-CHAP-1'],
    [4, 'MS-CHAP-2'],
    [5, 'EAP'],
  ],
  'MS-Acct-EAP-Type': [
    [4, 'MD5'],
    [5, 'OTP'],
    [6, 'Generic-Token-Card'],
    [13, 'TLS'],
  ],
};

function build(rows: readonly Row[], values: Readonly<Record<string, ValueRows>>): ReadonlyMap<number, AttributeDefinition> {
  const byType = new Map<number, AttributeDefinition>();
  for (const [type, name, valueType, rfc, ...flags] of rows) {
    if (byType.has(type)) throw new Error(`dictionary: attribute ${type} defined twice`);
    const named = values[name];
    byType.set(
      type,
      Object.freeze({
        type,
        name,
        valueType,
        rfc,
        ...(named ? { values: new Map(named) } : {}),
        ...(flags.includes('tagged') ? { tagged: true as const } : {}),
        ...(flags.includes('sensitive') ? { sensitive: true as const } : {}),
      }),
    );
  }
  for (const name of Object.keys(values)) {
    if (![...byType.values()].some((d) => d.name === name)) throw new Error(`dictionary: values for unknown attribute ${name}`);
  }
  return byType;
}

export const STANDARD_ATTRIBUTES: ReadonlyMap<number, AttributeDefinition> = build(STANDARD_ROWS, STANDARD_VALUES);

export const STANDARD_ATTRIBUTES_BY_NAME: ReadonlyMap<string, AttributeDefinition> = new Map(
  [...STANDARD_ATTRIBUTES.values()].map((d) => [d.name, d]),
);

/**
 * Vendors whose Vendor-Specific attributes we can name. All use the RFC 2865 §5.26 suggested
 * layout (one-octet vendor type, one-octet vendor length). To add one, add its rows to
 * vendors.ts (and to EXTRA_VENDORS there).
 */
export const VENDORS: ReadonlyMap<number, VendorDefinition> = new Map([
  [311, Object.freeze({ id: 311, name: 'Microsoft', attributes: build(MICROSOFT_ROWS, MICROSOFT_VALUES) })],
  ...EXTRA_VENDORS.map((v): [number, VendorDefinition] => [v.id, Object.freeze({ id: v.id, name: v.name, attributes: build(v.rows, v.values) })]),
]);

/** A vendor attribute found by its dictionary name. */
export interface VendorAttributeDefinition {
  readonly vendor: VendorDefinition;
  readonly attribute: AttributeDefinition;
}

/** Vendor attributes by name (`Fortinet-Group-Name`); names are unique across vendors and the standard dictionary. */
export const VENDOR_ATTRIBUTES_BY_NAME: ReadonlyMap<string, VendorAttributeDefinition> = (() => {
  const byName = new Map<string, VendorAttributeDefinition>();
  for (const vendor of VENDORS.values()) {
    for (const attribute of vendor.attributes.values()) {
      if (byName.has(attribute.name) || STANDARD_ATTRIBUTES_BY_NAME.has(attribute.name)) throw new Error(`dictionary: attribute name ${attribute.name} defined twice`);
      byName.set(attribute.name, Object.freeze({ vendor, attribute }));
    }
  }
  return byName;
})();
