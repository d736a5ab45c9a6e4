// Amazon ECR credentials. AWS is unreachable here, so the ECR API is a local stand-in that speaks
// GetAuthorizationToken's wire format (awsJson1_1); everything on our side is the real SDK.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {createServer, type Server} from 'node:http'
import {mkdirSync} from 'node:fs'
import {join} from 'node:path'
import {ecrLocator, parseEcrHost} from '../../src/registry/ecr.js'
import {isLazyError} from '../../src/cli/errors.js'
import {startRegistry} from '../rig/registry.js'
import {runCli} from '../rig/cli.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'

const ECR_HOST = '123456789012.dkr.ecr.us-east-1.amazonaws.com'

describe('Amazon ECR (AWS API stand-in)', () => {
  let server: Server
  let endpoint: string
  const calls: Array<{target: string; auth: string}> = []
  let password = `ecr-token-${Date.now()}`
  let fail = false

  before(async () => {
    process.env.AWS_ACCESS_KEY_ID = 'AKIASTANDIN'
    process.env.AWS_SECRET_ACCESS_KEY = 'stand-in-secret'
    server = createServer((req, res) => {
      let body = ''
      req.on('data', (d: Buffer) => (body += d))
      req.on('end', () => {
        calls.push({target: String(req.headers['x-amz-target']), auth: String(req.headers.authorization ?? '')})
        if (fail) {
          res.writeHead(400, {'content-type': 'application/x-amz-json-1.1'})
          res.end(JSON.stringify({__type: 'AccessDeniedException', message: 'not authorized to perform ecr:GetAuthorizationToken'}))
          return
        }
        res.writeHead(200, {'content-type': 'application/x-amz-json-1.1'})
        res.end(JSON.stringify({
          authorizationData: [{
            authorizationToken: Buffer.from(`AWS:${password}`).toString('base64'),
            expiresAt: Math.floor(Date.now() / 1000) + 12 * 3600,
            proxyEndpoint: `https://${ECR_HOST}`,
          }],
        }))
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const addr = server.address() as {port: number}
    endpoint = `http://127.0.0.1:${addr.port}`
  })
  after(async () => {
    await new Promise<void>((resolve) => server?.close(() => resolve()))
  })

  test('recognises private ECR hosts only', () => {
    assert.deepEqual(parseEcrHost(ECR_HOST), {account: '123456789012', region: 'us-east-1', fips: false})
    assert.equal(parseEcrHost('123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com')?.fips, true)
    assert.equal(parseEcrHost('public.ecr.aws'), undefined)
    assert.equal(parseEcrHost('registry.example.com'), undefined)
  })

  test('gets AWS:<password> from GetAuthorizationToken through the SDK, signed, and caches it', async () => {
    const locator = ecrLocator({endpoint})
    const got = await locator.find(ECR_HOST)
    assert.deepEqual(got, {username: 'AWS', password})
    assert.equal(calls.at(-1)!.target, 'AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken')
    assert.match(calls.at(-1)!.auth, /^AWS4-HMAC-SHA256 Credential=AKIASTANDIN\/\d{8}\/us-east-1\/ecr\/aws4_request/)
    const n = calls.length
    assert.deepEqual(await locator.find(ECR_HOST), got)
    assert.equal(calls.length, n, 'second lookup served from the cache')
    assert.equal(await locator.find('registry.example.com'), undefined)
  })

  test('a refused GetAuthorizationToken is AUTH_FAILED with a hint about AWS credentials', async () => {
    fail = true
    try {
      await assert.rejects(ecrLocator({endpoint}).find(ECR_HOST), (e: unknown) => isLazyError(e, 'AUTH_FAILED') && /ecr:GetAuthorizationToken/.test((e as Error).message))
    } finally {
      fail = false
    }
  })

  test('the `get-login-password | login --username AWS --password-stdin` flow logs in with the piped password', async () => {
    password = `eyJwYXlsb2FkIjoi${'x'.repeat(200)}` // real ECR passwords are longer; htpasswd caps at 256
    const registry = await startRegistry({auth: 'htpasswd', username: 'AWS', password})
    const work = rigTempDir('ecr-login')
    try {
      mkdirSync(join(work, 'docker'))
      const cred = await ecrLocator({endpoint}).find(ECR_HOST)
      const res = await runCli(['login', '--username', 'AWS', '--password-stdin', registry.host], {input: `${cred!.password}\n`, env: {DOCKER_CONFIG: join(work, 'docker'), HOME: work}})
      assert.equal(res.status, 0, res.stderr)
      assert.match(res.stdout, /^Login Succeeded/)
      assert.ok(!res.stdout.includes(password))
    } finally {
      await registry.stop()
      removeDir(work)
    }
  })
})
