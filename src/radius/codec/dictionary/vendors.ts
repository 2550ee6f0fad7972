/**
 * Vendor-Specific attributes of the appliances admins most often put behind the gateway: the
 * reply attributes that place a VPN or admin login into a group, role, VDOM or policy. Data only;
 * standard.ts builds the VENDORS table from it.
 *
 * Numbers, names and types are FreeRADIUS 3.2's (share/dictionary.fortinet, dictionary.paloalto,
 * dictionary.cisco, dictionary.cisco.asa), so what we print reads like radclient output and a
 * test compares each row with the installed FreeRADIUS dictionaries. FreeRADIUS `string` is
 * `text` here (a reply attribute an admin types). Only a subset of each vendor's list is named:
 * the others still pass through (an upstream's reply) and print as `<Vendor>-Attr-N = 0x…`.
 */
import type { Row, ValueRows } from './standard.js';

interface VendorRows {
  readonly id: number;
  readonly name: string;
  readonly rows: readonly Row[];
  readonly values: Readonly<Record<string, ValueRows>>;
}

const FORTINET = 'FreeRADIUS dictionary.fortinet';
const PALOALTO = 'FreeRADIUS dictionary.paloalto';
const CISCO = 'FreeRADIUS dictionary.cisco';
const CISCO_ASA = 'FreeRADIUS dictionary.cisco.asa';

/** Fortinet (FortiGate, FortiAuthenticator, FortiAP), PEN 12356. */
export const FORTINET_VENDOR: VendorRows = {
  id: 12356,
  name: 'Fortinet',
  rows: [
    // FortiOS: the user group a remote user lands in (firewall policies, SSL-VPN portal mapping).
    [1, 'Fortinet-Group-Name', 'text', FORTINET],
    [2, 'Fortinet-Client-IP-Address', 'ipaddr', FORTINET],
    [3, 'Fortinet-Vdom-Name', 'text', FORTINET],
    [4, 'Fortinet-Client-IPv6-Address', 'octets', FORTINET],
    [5, 'Fortinet-Interface-Name', 'text', FORTINET],
    // Admin logins: the admin profile (super_admin, prof_admin, …).
    [6, 'Fortinet-Access-Profile', 'text', FORTINET],
    [7, 'Fortinet-SSID', 'text', FORTINET],
    [8, 'Fortinet-AP-Name', 'text', FORTINET],
    [40, 'Fortinet-Fpc-User-Role', 'text', FORTINET],
    [41, 'Fortinet-Tenant-Identification', 'text', FORTINET],
    [42, 'Fortinet-Host-Port-AVPair', 'text', FORTINET],
  ],
  values: {},
};

/** Palo Alto Networks (PAN-OS, Panorama, GlobalProtect), PEN 25461. */
export const PALOALTO_VENDOR: VendorRows = {
  id: 25461,
  name: 'PaloAlto',
  rows: [
    [1, 'PaloAlto-Admin-Role', 'text', PALOALTO],
    [2, 'PaloAlto-Admin-Access-Domain', 'text', PALOALTO],
    [3, 'PaloAlto-Panorama-Admin-Role', 'text', PALOALTO],
    [4, 'PaloAlto-Panorama-Admin-Access-Domain', 'text', PALOALTO],
    // GlobalProtect / User-ID: the group that security policies match on.
    [5, 'PaloAlto-User-Group', 'text', PALOALTO],
    [6, 'PaloAlto-User-Domain', 'text', PALOALTO],
    [7, 'PaloAlto-Client-Source-IP', 'text', PALOALTO],
    [8, 'PaloAlto-Client-OS', 'text', PALOALTO],
    [9, 'PaloAlto-Client-Hostname', 'text', PALOALTO],
    [10, 'PaloAlto-GlobalProtect-Client-Version', 'text', PALOALTO],
  ],
  values: {},
};

/** Cisco (IOS, IOS-XE, NX-OS, ISE), PEN 9. */
export const CISCO_VENDOR: VendorRows = {
  id: 9,
  name: 'Cisco',
  rows: [
    // `shell:priv-lvl=15`, `ip:inacl#1=permit …`, `url-redirect=…`: repeated, one pair each.
    [1, 'Cisco-AVPair', 'text', CISCO],
    [2, 'Cisco-NAS-Port', 'text', CISCO],
    [37, 'Cisco-Policy-Up', 'text', CISCO],
    [38, 'Cisco-Policy-Down', 'text', CISCO],
    [250, 'Cisco-Account-Info', 'text', CISCO],
    [251, 'Cisco-Service-Info', 'text', CISCO],
    [252, 'Cisco-Command-Code', 'text', CISCO],
    [253, 'Cisco-Control-Info', 'text', CISCO],
  ],
  values: {},
};

/** Cisco ASA / Secure Firewall (the former VPN 3000 concentrator's vendor id), PEN 3076. */
export const CISCO_ASA_VENDOR: VendorRows = {
  id: 3076,
  name: 'Cisco-ASA',
  rows: [
    [2, 'ASA-Simultaneous-Logins', 'integer', CISCO_ASA],
    [5, 'ASA-Primary-DNS', 'ipaddr', CISCO_ASA],
    [6, 'ASA-Secondary-DNS', 'ipaddr', CISCO_ASA],
    [15, 'ASA-Banner1', 'text', CISCO_ASA],
    // The group policy an AnyConnect / Secure Client session gets.
    [25, 'ASA-Group-Policy', 'text', CISCO_ASA],
    [27, 'ASA-IPsec-Split-Tunnel-List', 'text', CISCO_ASA],
    [28, 'ASA-IPsec-Default-Domain', 'text', CISCO_ASA],
    [85, 'ASA-Tunnel-Group-Lock', 'text', CISCO_ASA],
    [217, 'ASA-Address-Pools', 'text', CISCO_ASA],
    [220, 'ASA-Privilege-Level', 'integer', CISCO_ASA],
  ],
  values: {},
};

export const EXTRA_VENDORS: readonly VendorRows[] = [FORTINET_VENDOR, PALOALTO_VENDOR, CISCO_VENDOR, CISCO_ASA_VENDOR];
