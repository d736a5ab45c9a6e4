// The snapshotter's config file, the socket lookup shared by status/run/pull, and filter parsing.
import {after, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {isLazyError} from '../../src/cli/errors.js'
import {DEFAULT_SNAPSHOTTER_SOCKET, defaultSnapshotterConfig, loadSnapshotterConfig, parseSnapshotterConfig} from '../../src/snapshotter/config.js'
import {parseFilters} from '../../src/snapshotter/filters.js'
import {locateSnapshotter} from '../../src/snapshotter/locate.js'
import {readRemoteLabels} from '../../src/snapshotter/remote-labels.js'
import {isSnapshotError} from '../../src/snapshotter/snapshot-error.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'

const dir = rigTempDir('snapshotter-config')
after(() => removeDir(dir))

describe('config file', () => {
  test('a missing default file gives the stargz-compatible defaults', () => {
    const loaded = loadSnapshotterConfig(join(dir, 'absent.toml'))
    assert.equal(loaded.fromFile, false)
    assert.equal(loaded.config.socket, '/run/containerd-stargz-grpc/containerd-stargz-grpc.sock')
    assert.equal(loaded.config.root, '/var/lib/lazyctl')
  })

  test('a file named explicitly must exist', () => {
    assert.throws(() => loadSnapshotterConfig(join(dir, 'absent.toml'), {mustExist: true}), (err) => isLazyError(err, 'SNAPSHOTTER_CONFIG') && /no such config file/.test(err.message))
  })

  test('reads every section over the defaults and reports keys it does not know', () => {
    const {config, unknownKeys, setKeys} = parseSnapshotterConfig(
      [
        'socket = "/run/x.sock"',
        'log_level = "warn"',
        'future_knob = 1',
        '[remote]',
        'resolve_timeout_sec = 5',
        '[registry]',
        'insecure = ["reg.local:5000"]',
        '[prefetch]',
        'enable = false',
        '[background_fetch]',
        'rate_bytes_per_sec = 1048576',
        'mystery = true',
      ].join('\n'),
    )
    assert.equal(config.socket, '/run/x.sock')
    assert.equal(config.root, defaultSnapshotterConfig().root)
    assert.equal(config.logLevel, 'warn')
    assert.equal(config.remote.resolveTimeoutSec, 5)
    assert.equal(config.remote.enable, true)
    assert.deepEqual(config.registry.insecure, ['reg.local:5000'])
    assert.equal(config.prefetch.enable, false)
    assert.equal(config.backgroundFetch.rateBytesPerSec, 1048576)
    assert.deepEqual(unknownKeys.sort(), ['background_fetch.mystery', 'future_knob'])
    assert.ok(setKeys.includes('socket'))
  })

  test('[cache] max_bytes: absent leaves the bound to the daemon (half the filesystem), 0 is unbounded, a number is the bound', () => {
    assert.equal(parseSnapshotterConfig('').config.cache.maxBytes, undefined)
    assert.equal(parseSnapshotterConfig('[cache]\nmax_bytes = 0').config.cache.maxBytes, 0)
    assert.equal(parseSnapshotterConfig('[cache]\nmax_bytes = 1073741824').config.cache.maxBytes, 1 << 30)
  })

  test('refuses a wrongly typed value, naming the key and the file', () => {
    assert.throws(
      () => parseSnapshotterConfig('[remote]\nresolve_timeout_sec = "soon"\n', '/etc/lazyctl/config.toml'),
      (err) => isLazyError(err, 'SNAPSHOTTER_CONFIG') && err.message === '/etc/lazyctl/config.toml: remote.resolve_timeout_sec must be a number ≥ 1, not "soon"',
    )
    assert.throws(() => parseSnapshotterConfig('registry = 3\n'), (err) => isLazyError(err, 'SNAPSHOTTER_CONFIG') && /registry must be a table/.test(err.message))
  })

  test('refuses a file that is not TOML, with the line', () => {
    assert.throws(() => parseSnapshotterConfig('socket = \n', 'c.toml'), (err) => isLazyError(err, 'SNAPSHOTTER_CONFIG') && /^c\.toml: not valid TOML \(line 1/.test(err.message))
  })
})

describe('socket lookup', () => {
  const configFile = join(dir, 'lookup.toml')
  writeFileSync(configFile, 'socket = "/run/from-config.sock"\nroot = "/srv/lazy"\n')

  test('the flag wins over the env, the config and the default', () => {
    const found = locateSnapshotter({socket: '/run/flag.sock', env: {LAZYCTL_SNAPSHOTTER_SOCKET: '/run/env.sock', LAZYCTL_CONFIG: configFile}})
    assert.deepEqual(found, {socket: '/run/flag.sock', root: '/srv/lazy', configFile, socketFrom: 'flag'})
  })

  test('then LAZYCTL_SNAPSHOTTER_SOCKET, then the config file named by LAZYCTL_CONFIG', () => {
    assert.equal(locateSnapshotter({env: {LAZYCTL_SNAPSHOTTER_SOCKET: '/run/env.sock', LAZYCTL_CONFIG: configFile}}).socketFrom, 'env')
    const fromConfig = locateSnapshotter({env: {LAZYCTL_CONFIG: configFile}})
    assert.equal(fromConfig.socket, '/run/from-config.sock')
    assert.equal(fromConfig.socketFrom, 'config')
  })

  test('then the default, when the config file does not set a socket', () => {
    const bare = join(dir, 'bare.toml')
    writeFileSync(bare, 'root = "/srv/other"\n')
    const found = locateSnapshotter({configFile: bare, env: {}})
    assert.equal(found.socket, DEFAULT_SNAPSHOTTER_SOCKET)
    assert.equal(found.socketFrom, 'default')
    assert.equal(found.root, '/srv/other')
  })

  test('a config file named by LAZYCTL_CONFIG that does not exist is an error', () => {
    assert.throws(() => locateSnapshotter({env: {LAZYCTL_CONFIG: join(dir, 'nope.toml')}}), (err) => isLazyError(err, 'SNAPSHOTTER_CONFIG'))
  })
})

describe('containerd filters', () => {
  const info = (fields: Record<string, string>) => (path: string[]) => (path[0] === 'labels' ? fields[`labels.${path.slice(1).join('.')}`] : fields[path[0]!])

  test('quoted label keys with dots, commas as AND, separate strings as OR', () => {
    const filter = parseFilters(['labels."containerd.io/snapshot.ref"==sha256:abc,parent=="p1"'])
    assert.equal(filter.match(info({'labels.containerd.io/snapshot.ref': 'sha256:abc', parent: 'p1'})), true)
    assert.equal(filter.match(info({'labels.containerd.io/snapshot.ref': 'sha256:abc', parent: 'p2'})), false)
    const either = parseFilters(['name==a', 'name==b'])
    assert.equal(either.match(info({name: 'b'})), true)
    assert.equal(either.match(info({name: 'c'})), false)
  })

  test('presence, inequality of absent fields, and regular expressions', () => {
    assert.equal(parseFilters(['labels.x']).match(info({})), false)
    assert.equal(parseFilters(['labels.x']).match(info({'labels.x': ''})), true)
    assert.equal(parseFilters(['labels.x!=1']).match(info({})), true)
    assert.equal(parseFilters(['name~=^sha256:']).match(info({name: 'sha256:1'})), true)
    assert.equal(parseFilters([]).match(info({})), true)
  })

  test('a malformed filter is INVALID_ARGUMENT', () => {
    for (const bad of ['name==', '==x', 'name=="open', 'name~=(']) {
      assert.throws(() => parseFilters([bad]), (err) => isSnapshotError(err, 'INVALID_ARGUMENT'), bad)
    }
  })
})

describe('remote labels', () => {
  const digest = `sha256:${'a'.repeat(64)}`
  const toc = `sha256:${'b'.repeat(64)}`

  test('no target label: an ordinary snapshot, nothing to explain', () => {
    assert.deepEqual(readRemoteLabels({'containerd.io/snapshot/remote/stargz.digest': digest}), {remote: false})
  })

  test("CRI's labels are tried before stargz's", () => {
    const decision = readRemoteLabels({
      'containerd.io/snapshot.ref': 'sha256:chain',
      'containerd.io/snapshot/cri.image-ref': 'cri.example/app:1',
      'containerd.io/snapshot/cri.layer-digest': digest,
      'containerd.io/snapshot/remote/stargz.reference': 'stargz.example/app:1',
      'containerd.io/snapshot/remote/stargz.digest': digest,
      'containerd.io/snapshot/stargz/toc.digest': toc,
    })
    assert.equal(decision.remote, true)
    assert.deepEqual(decision.remote === true && decision.request.sources.map((s) => s.imageRef), ['cri.example/app:1', 'stargz.example/app:1'])
  })

  test('a layer without a TOC digest is refused with the reason', () => {
    const decision = readRemoteLabels({
      'containerd.io/snapshot.ref': 'sha256:chain',
      'containerd.io/snapshot/remote/stargz.reference': 'r/app:1',
      'containerd.io/snapshot/remote/stargz.digest': digest,
    })
    assert.equal(decision.remote, 'refused')
    assert.match(decision.reason ?? '', /toc\.digest annotation \(not an eStargz layer\)/)
  })
})
