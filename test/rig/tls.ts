// A certificate authority made for one test: openssl-generated CA, server certificates for the
// loopback names (with SAN, which Go's TLS requires — it ignores the CN), and signing certificates
// for the token server's JWTs. EC P-256 keys: generated in milliseconds, accepted by Go and Node.
import {mkdirSync, readFileSync, writeFileSync, copyFileSync} from 'node:fs'
import {join} from 'node:path'
import {execFileSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {requireCommand} from './process.js'

export interface IssuedCert {
  certFile: string
  keyFile: string
  certPem: string
  keyPem: string
}

/** A key pair whose certificate chains to the CA; the token server signs JWTs with it. */
export interface JwtSigner extends IssuedCert {
  /** JOSE algorithm matching the key. */
  alg: 'ES256'
  /** The certificate in DER, base64 (standard, not url-safe), as a JOSE `x5c` entry wants it. */
  certDerBase64: string
  /** The CA the registry must trust (`auth.token.rootcertbundle`). */
  rootCertFile: string
}

export interface TestCa {
  dir: string
  caFile: string
  caPem: string
  /** A dir holding only `ca.crt`: the containerd certs.d/<host>/ layout and skopeo's --*-cert-dir. */
  certDir: string
  /** A TLS server certificate for the given names. */
  issue(name: string, names: {dnsNames?: string[]; ipAddresses?: string[]}): IssuedCert
  /** A signing-only certificate (digitalSignature, no server use). */
  issueSigner(name: string): JwtSigner
}

export function createTestCa(dir: string): TestCa {
  requireCommand('openssl', 'openssl')
  mkdirSync(dir, {recursive: true})
  const caFile = join(dir, 'ca.crt')
  const caKey = join(dir, 'ca.key')
  openssl(['req', '-x509', ...ecKeyArgs(caKey), '-out', caFile, '-days', '7', '-subj', '/CN=lazyctl test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
  const certDir = join(dir, 'certs.d')
  mkdirSync(certDir)
  copyFileSync(caFile, join(certDir, 'ca.crt'))

  const sign = (name: string, extensions: string[]): IssuedCert => {
    const keyFile = join(dir, `${name}.key`)
    const csrFile = join(dir, `${name}.csr`)
    const certFile = join(dir, `${name}.crt`)
    const extFile = join(dir, `${name}.ext`)
    openssl(['req', '-new', ...ecKeyArgs(keyFile), '-out', csrFile, '-subj', `/CN=${name}`])
    writeFileSync(extFile, extensions.join('\n') + '\n')
    openssl(['x509', '-req', '-in', csrFile, '-CA', caFile, '-CAkey', caKey, '-set_serial', `0x${randomBytes(12).toString('hex')}`,
      '-days', '7', '-extfile', extFile, '-out', certFile])
    return {certFile, keyFile, certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8')}
  }

  return {
    dir,
    caFile,
    caPem: readFileSync(caFile, 'utf8'),
    certDir,
    issue(name, names) {
      const san = [...(names.dnsNames ?? []).map((n) => `DNS:${n}`), ...(names.ipAddresses ?? []).map((ip) => `IP:${ip}`)]
      return sign(name, ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth', `subjectAltName=${san.join(',')}`])
    },
    issueSigner(name) {
      const issued = sign(name, ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature'])
      const der = execFileSync('openssl', ['x509', '-in', issued.certFile, '-outform', 'DER'])
      return {...issued, alg: 'ES256', certDerBase64: der.toString('base64'), rootCertFile: caFile}
    },
  }
}

function ecKeyArgs(keyFile: string): string[] {
  return ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile]
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, {stdio: ['ignore', 'ignore', 'pipe']})
}
