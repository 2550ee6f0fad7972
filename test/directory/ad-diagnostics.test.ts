import t from 'tap';
import { REJECT_REASONS } from '../../src/auth/decision.js';
import { AD_BIND_CODES, adBindRejection, adDataCode } from '../../src/directory/ad-diagnostics.js';

// The texts as Windows Server and Samba 4.17 send them (Samba always says DSID-0C0903A9; Windows
// varies the DSID by build, and appends a NUL).
const ad = (code: string, dsid = '0C0903A9', tail = 'v1db1'): string =>
  `80090308: LdapErr: DSID-${dsid}, comment: AcceptSecurityContext error, data ${code}, ${tail}`;

t.test('every documented data code maps to its reject reason', async (t) => {
  const table: Array<[string, string]> = [
    ['52e', 'bad_password'],
    ['525', 'user_unknown'],
    ['530', 'logon_restricted'],
    ['531', 'logon_restricted'],
    ['532', 'password_expired'],
    ['533', 'account_disabled'],
    ['701', 'account_expired'],
    ['773', 'must_change_password'],
    ['775', 'locked_out'],
  ];
  for (const [code, reason] of table) {
    t.same(adBindRejection(ad(code)), { reason, diagnostic: `data ${code}` }, code);
  }
  t.equal(AD_BIND_CODES.size, table.length, 'the table above is the whole map');
  for (const reason of AD_BIND_CODES.values()) t.ok((REJECT_REASONS as readonly string[]).includes(reason), `${reason} is a RejectReason`);
});

t.test('the DSID, case, the trailing NUL and the ldapts suffix do not matter', async (t) => {
  t.same(adBindRejection(ad('775', '0C09042A', 'v2580')), { reason: 'locked_out', diagnostic: 'data 775' });
  t.same(adBindRejection(ad('52E', '0C0903C5', 'v4563\0')), { reason: 'bad_password', diagnostic: 'data 52e' });
  t.same(adBindRejection(`${ad('533')}\0 Code: 0x31`), { reason: 'account_disabled', diagnostic: 'data 533' });
  t.same(adBindRejection(ad('00000773')), { reason: 'must_change_password', diagnostic: 'data 773' }, 'leading zeros');
  t.same(adBindRejection('80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 701'), {
    reason: 'account_expired',
    diagnostic: 'data 701',
  }, 'code at the very end');
});

t.test('unknown codes, OpenLDAP and no text are a plain bad password', async (t) => {
  t.same(adBindRejection(ad('0')), { reason: 'bad_password', diagnostic: 'data 0' });
  t.same(adBindRejection(ad('568')), { reason: 'bad_password', diagnostic: 'data 568' }, 'unknown code keeps its diagnostic');
  t.same(adBindRejection('Invalid credentials Code: 0x31'), { reason: 'bad_password' }, 'OpenLDAP');
  t.same(adBindRejection(''), { reason: 'bad_password' });
  t.same(adBindRejection(undefined), { reason: 'bad_password' });
});

t.test('only a real `data XXX` field is read', async (t) => {
  t.equal(adDataCode('metadata 775, v1db1'), undefined, 'inside another word');
  t.equal(adDataCode('data 775x'), undefined, 'not hex up to a separator');
  t.equal(adDataCode('data'), undefined);
  t.equal(adDataCode('comment: data 52e, data 775'), '52e', 'the first one wins');
  t.equal(adDataCode(ad('775')), '775');
});
