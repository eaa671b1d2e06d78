// Self-signed certificates made with openssl for tests, of the kind Incus makes for itself and its clients
// (EC P-384): a client certificate for Berth, or a stranger's certificate to pin by mistake.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export type CertFiles = { cert: string; key: string; pem: string; fingerprint: string };

/** Writes <dir>/<name>.crt and .key; the fingerprint is Incus's (SHA-256 of the DER, lowercase hex). */
export function makeCert(dir: string, name: string, usage: 'clientAuth' | 'serverAuth' = 'clientAuth'): CertFiles {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:secp384r1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      `/O=Berth tests/CN=${name}`,
      '-addext',
      `extendedKeyUsage=${usage}`,
    ],
    { stdio: 'ignore' },
  );
  const pem = readFileSync(cert, 'utf8');
  return { cert, key, pem, fingerprint: new X509Certificate(pem).fingerprint256.replaceAll(':', '').toLowerCase() };
}
